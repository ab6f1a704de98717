"""What keeping the source task costs: fine-tune's final target accuracy against its source accuracy.

``python -m headstart sweep --keep`` races fine-tune with every unit unlocked (k = 0) at the default
n, its body at the head's rate (``body_lr_ratio`` = 1, where plain fine-tuning forgets most),
across a log grid of strengths for L2-SP and for EWC, several seeds each, plus fine-tune
without a regulariser at that rate and at the default, gentler one, and at that rate with
k = 0…4 units locked. Every epoch of every strategy goes to a CSV beside the head-start
sweep's; the plot, the page's panel and the forgetting checks (``headstart.lessons.forgetting``) come from it.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from headstart.lessons import sweep
from headstart.race.events import RaceConfig
from headstart.race.strategies import KEEP_LOOKS, LOOKS
from headstart.settings import Limits, Settings

NAIVE_RATIO = 1.0  # the body learns at the head's rate: naive full fine-tuning

COLUMNS = (
    "keep",
    "keep_strength",
    "body_lr_ratio",
    "locked",
    "seed",
    "strategy",
    "epochs",
    "epoch",
    "test_acc",
    "source_acc",
    "train_loss",
    "compute_s",
)


def _strength(config: RaceConfig) -> float:
    """As the CSV writes it: 0 where there is no regulariser to be strong."""
    return config.keep_strength if config.keep != "none" else 0.0


TABLE = sweep.Table(
    COLUMNS,
    key=("keep", "keep_strength", "body_lr_ratio", "locked", "seed"),
    ints=frozenset({"locked", "seed", "epochs", "epoch"}),
    texts=frozenset({"keep", "strategy"}),
    rows=sweep.epoch_rows(COLUMNS, lambda c: {"keep_strength": _strength(c)}),
    config_key=lambda c: (c.keep, _strength(c), c.body_lr_ratio, c.locked, c.seed),
)


def strengths(limits: Limits) -> tuple[float, ...]:
    """1 and 3 × 10^d across the strength's range: 0.001, 0.003, 0.01, … 100."""
    lo, hi = limits.keep_strength.min, limits.keep_strength.max
    grid = {round(m * 10.0**d, 12) for d in range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1) for m in (1, 3)}
    return tuple(sorted(v for v in grid if lo <= v <= hi))


@dataclass(frozen=True)
class Plan:
    base: RaceConfig  # the default race at k = 0
    strengths: tuple[float, ...]
    seeds: tuple[int, ...]

    locked_scan: tuple[int, ...] = ()

    def races(self) -> list[RaceConfig]:
        naive = self.base.model_copy(update={"body_lr_ratio": NAIVE_RATIO})
        refs = [c.model_copy(update={"seed": s}) for c in (naive, self.base) for s in self.seeds]
        refs += [
            naive.model_copy(update={"locked": k, "seed": s})
            for k in self.locked_scan
            if k != self.base.locked
            for s in self.seeds
        ]
        kept = [
            naive.model_copy(update={"keep": keep, "keep_strength": x, "seed": s})
            for keep in KEEP_LOOKS
            for x in self.strengths
            for s in self.seeds
        ]
        return refs + kept

    def scenario(self, settings: Settings, checkpoint: Any) -> dict[str, Any]:
        fixed = {k: v for k, v in self.base.identity().items() if k not in ("seed", "body_lr_ratio", "locked")}
        return {
            "race": fixed,
            "naive_ratio": NAIVE_RATIO,
            **settings.recipe(),
            "source_test_size": settings.data.source_test_size,
            "checkpoint_sha256": checkpoint.sha256,
            "fisher_sha256": checkpoint.fisher_sha256,
        }


def default_plan(limits: Limits, seeds: int = 3) -> Plan:
    base = RaceConfig.validate_with({"locked": 0}, limits)
    scan = tuple(range(limits.locked.min, limits.locked.max + 1))
    return Plan(base=base, strengths=strengths(limits), seeds=tuple(range(seeds)), locked_scan=scan)


@dataclass(frozen=True)
class Point:
    """One setting of fine-tune: its final target and source accuracy across seeds."""

    keep: str
    keep_strength: float
    body_lr_ratio: float
    seeds: int
    test_acc: float
    test_lo: float
    test_hi: float
    source_acc: float
    source_lo: float
    source_hi: float


def summarise(rows: Sequence[dict[str, Any]], locked: int = 0) -> list[Point]:
    """Fine-tune's settings at ``locked`` units locked, each across its seeds."""
    groups: dict[tuple[str, float, float], list[dict[str, Any]]] = {}
    for r in sweep.finals(rows):
        if r["strategy"] != "finetune" or r["locked"] != locked:
            continue
        groups.setdefault((r["keep"], r["keep_strength"], r["body_lr_ratio"]), []).append(r)
    points = []
    for (keep, strength, ratio), rs in sorted(groups.items()):
        test, source = [r["test_acc"] for r in rs], [r["source_acc"] for r in rs]
        mean = statistics.fmean
        spread = (mean(test), min(test), max(test), mean(source), min(source), max(source))
        points.append(Point(keep, strength, ratio, len(rs), *spread))
    return points


def table(points: Sequence[Point]) -> str:
    """Markdown: final target and source accuracy (%) per setting, mean ± spread over seeds."""
    lines = ["| keep | strength | body × head | target | source |", "|---|---|---|---|---|"]
    for p in points:
        strength = "–" if p.keep == "none" else f"{p.keep_strength:g}"
        lines.append(
            f"| {p.keep} | {strength} | {p.body_lr_ratio:g} | {100 * p.test_acc:.1f} ± {100 * (p.test_hi - p.test_lo):.1f} "
            f"| {100 * p.source_acc:.1f} ± {100 * (p.source_hi - p.source_lo):.1f} |"
        )
    return "\n".join(lines)


def plot(points: Sequence[Point], out: Path, title: str) -> list[Path]:
    """Final target accuracy against final source accuracy: a curve per regulariser through its
    strengths, and fine-tune without one at both body rates."""
    fig, ax = sweep.new_figure()
    for keep, look in KEEP_LOOKS.items():
        pts = sorted((p for p in points if p.keep == keep), key=lambda p: p.keep_strength)
        if not pts:
            continue
        xs, ys = [100 * p.source_acc for p in pts], [100 * p.test_acc for p in pts]
        ax.plot(xs, ys, "o-", color=look.colour, label=look.label, lw=2, ms=4)
        for p, x, y in zip(pts, xs, ys, strict=True):
            ax.annotate(f"{p.keep_strength:g}", (x, y), textcoords="offset points", xytext=(4, 4), fontsize=6, color=look.ink)
    plain = LOOKS["finetune"]
    for p in (p for p in points if p.keep == "none"):
        marker = "X" if p.body_lr_ratio == NAIVE_RATIO else "D"
        what = f"no regulariser, body × head = {p.body_lr_ratio:g}"
        ax.plot([100 * p.source_acc], [100 * p.test_acc], marker, color=plain.colour, ms=8, label=what, ls="none")
    ax.set_xlabel("final source-task accuracy (%): what fine-tuning kept")
    ax.set_ylabel("final target test accuracy (%)")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left", frameon=False, fontsize=8)
    return sweep.save_figure(fig, out, "headstart-keep")


def page_payload(csv_path: Path) -> dict[str, Any] | None:
    """The trade-off as the page's panel wants it: one point per setting, and how to draw each."""
    if (shipped := sweep.read_shipped(csv_path, TABLE)) is None:
        return None
    meta, rows = shipped
    points = summarise(rows)
    return {
        "scenario": meta,
        "seeds": max((p.seeds for p in points), default=0),
        "looks": {name: asdict(look) for name, look in (KEEP_LOOKS | {"none": LOOKS["finetune"]}).items()},
        "points": [asdict(p) for p in points],
    }


def run(plan: Plan, settings: Settings, out: Path, fresh: bool = False, progress: sweep.Progress | None = None) -> sweep.Results:
    """Run every race of the plan not already in ``out``'s CSV, then draw the plot."""

    def scenario(res: Any) -> dict[str, Any]:
        return plan.scenario(settings, res.card)

    results = sweep.run_plan(plan.races(), scenario, out, TABLE, settings, plan.base, fresh, progress)
    base = plan.base
    title = (
        f"Fine-tune, every unit unlocked, n = {base.n}, {base.epochs} epochs; mean of {len(plan.seeds)} seeds; labels: strength"
    )
    plot(summarise(results.rows), out, title)
    return results
