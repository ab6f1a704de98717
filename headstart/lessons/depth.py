"""Layer by layer (Yosinski et al., 2014): final accuracy against the number of locked units, per source.

``python -m headstart sweep --by frozen`` races every source at a small and a large n with fine-tune
locking k = 0…4 units, several seeds each; frozen (all five locked) and scratch (nothing
pretrained) come with every race. Every epoch goes to a CSV; the plot shows, per n, a line per
source from k = 0 to 5 and scratch as the level to beat: how the best depth to lock moves with
the source's distance.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from headstart.lessons import sweep
from headstart.race.architecture import UNITS
from headstart.race.events import RaceConfig
from headstart.race.sources import SOURCES, Source
from headstart.settings import Limits, Settings

NS = (50, 1000)
COLUMNS = ("source", "n", "locked", "seed", "strategy", "epochs", "epoch", "test_acc")


TABLE = sweep.Table(
    COLUMNS,
    key=("source", "n", "locked", "seed"),
    ints=frozenset({"n", "locked", "seed", "epochs", "epoch"}),
    texts=frozenset({"source", "strategy"}),
    rows=sweep.epoch_rows(COLUMNS),
)


@dataclass(frozen=True)
class Plan:
    base: RaceConfig
    sources: tuple[Source, ...]
    ns: tuple[int, ...]
    depths: tuple[int, ...]
    seeds: tuple[int, ...]

    def races(self) -> list[RaceConfig]:
        return [
            self.base.model_copy(update={"source": src, "n": n, "locked": k, "seed": s})
            for src in self.sources
            for n in self.ns
            for k in self.depths
            for s in self.seeds
        ]

    def scenario(self, settings: Settings, shas: dict[Source, str]) -> dict[str, Any]:
        fixed = {k: v for k, v in self.base.identity().items() if k not in ("seed", "n", "locked", "source")}
        return {"race": fixed, **settings.recipe(), "checkpoint_sha256": shas}


def default_plan(limits: Limits, seeds: int = 3, ns: Sequence[int] | None = None) -> Plan:
    return Plan(
        base=RaceConfig.validate_with({}, limits),
        sources=tuple(SOURCES),
        ns=tuple(ns or NS),
        depths=tuple(range(limits.locked.min, limits.locked.max + 1)),
        seeds=tuple(range(seeds)),
    )


@dataclass(frozen=True)
class Depth:
    """One source at one n with ``locked`` units locked (5: frozen; -1: scratch), across seeds."""

    source: str
    n: int
    locked: int
    seeds: int
    mean: float
    lo: float
    hi: float


def summarise(rows: Sequence[dict[str, Any]]) -> list[Depth]:
    """Fine-tune at each k, frozen at 5 and scratch at -1; frozen and scratch do not depend on k,
    so each seed counts once."""
    finals: dict[tuple[str, int, int], dict[int, float]] = {}
    for r in sweep.finals(rows):
        locked = {"finetune": r["locked"], "frozen": len(UNITS), "scratch": -1}[r["strategy"]]
        finals.setdefault((r["source"], r["n"], locked), {})[r["seed"]] = r["test_acc"]
    return [
        Depth(src, n, k, len(accs), statistics.fmean(accs.values()), min(accs.values()), max(accs.values()))
        for (src, n, k), accs in sorted(finals.items())
    ]


def table(depths: Sequence[Depth]) -> str:
    """Markdown: final test accuracy (%) per source and n, by locked units (mean over seeds)."""
    ks = sorted({d.locked for d in depths if d.locked >= 0})
    head = "| source | n | scratch | " + " | ".join(f"k = {k}" + (" (frozen)" if k == len(UNITS) else "") for k in ks) + " |"
    lines = [head, "|---" * (len(ks) + 3) + "|"]
    at = {(d.source, d.n, d.locked): d.mean for d in depths}
    for src, n in sorted({(d.source, d.n) for d in depths}, key=lambda sn: (list(SOURCES).index(sn[0]), sn[1])):  # type: ignore[arg-type]
        cells = [f"{100 * at[(src, n, k)]:.1f}" if (src, n, k) in at else "–" for k in (-1, *ks)]
        lines.append(f"| {src} | {n} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(depths: Sequence[Depth], out: Path, title: str) -> list[Path]:
    """Per n, final accuracy against locked units: a line per source, scratch as a dashed level."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from headstart.race.strategies import LOOKS

    ns = sorted({d.n for d in depths})
    fig, axes = plt.subplots(1, len(ns), figsize=(9, 4.2), dpi=150, layout="constrained", squeeze=False)
    for ax, n in zip(axes[0], ns, strict=True):
        for src in SOURCES:
            pts = sorted((d for d in depths if d.source == src and d.n == n and d.locked >= 0), key=lambda d: d.locked)
            if pts:
                ks = [d.locked for d in pts]
                ax.fill_between(
                    ks, [100 * d.lo for d in pts], [100 * d.hi for d in pts], color=SOURCES[src].colour, alpha=0.12, lw=0
                )
                ax.plot(ks, [100 * d.mean for d in pts], "o-", color=SOURCES[src].colour, label=SOURCES[src].label, lw=2, ms=4)
        scratch = [d.mean for d in depths if d.n == n and d.locked == -1]
        if scratch:
            ax.axhline(100 * statistics.fmean(scratch), color=LOOKS["scratch"].colour, ls="--", lw=1.5, label="scratch")
        ax.set_xticks(range(len(UNITS) + 1), [*map(str, range(len(UNITS))), "5\n(frozen)"])
        ax.set_xlabel("body units locked, from the input")
        ax.set_title(f"n = {n}", fontsize=10)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("final test accuracy (%)")
    axes[0][-1].legend(loc="lower left", frameon=False, fontsize=8)
    fig.suptitle(title, fontsize=10)
    return sweep.save_figure(fig, out, "headstart-depth")


def page_payload(csv_path: Path) -> dict[str, Any] | None:
    """The depth sweep as the page's panel wants it: one point per source, n and locked units."""
    if (shipped := sweep.read_shipped(csv_path, TABLE)) is None:
        return None
    meta, rows = shipped
    depths = summarise(rows)
    return {
        "scenario": meta,
        "seeds": max((d.seeds for d in depths), default=0),
        "sources": {s: {"label": SOURCES[s].label, "colour": SOURCES[s].colour} for s in SOURCES},
        "points": [asdict(d) for d in depths],
    }


def run(plan: Plan, settings: Settings, out: Path, fresh: bool = False, progress: sweep.Progress | None = None) -> sweep.Results:
    """Run every race of the plan not already in ``out``'s CSV, then draw the plot."""

    def scenario(res: Any) -> dict[str, Any]:
        return plan.scenario(settings, {src: res.pretrained(src).card.sha256 for src in plan.sources})

    results = sweep.run_plan(plan.races(), scenario, out, TABLE, settings, plan.base, fresh, progress)
    title = (
        f"Layer by layer: fine-tune locking k units, {plan.base.epochs} epochs, mean of {len(plan.seeds)} seeds (band: min–max)"
    )
    plot(summarise(results.rows), out, title)
    return results
