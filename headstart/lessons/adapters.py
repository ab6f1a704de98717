"""What each way of adapting costs and buys: final accuracy against trainable parameters.

``python -m headstart sweep --lanes`` races the default configuration with both extra lanes
(gradual, LoRA at the default rank) at every k fine-tune may lock, several seeds each, and
LoRA alone at the other ranks. Every epoch of every strategy goes to a CSV beside the other
sweeps; the plot, the page's *What each way of adapting costs* panel and the lesson's checks
E1 and E2 come from it.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from headstart.lessons import sweep
from headstart.lessons.scenario import Check, run_checks
from headstart.race.events import RaceConfig
from headstart.race.strategies import EXTRAS, LOOKS
from headstart.settings import Limits, Settings

RANKS = (1, 2, 4, 8, 16)
LABELS: dict[str, str] = {name: look.label for name, look in LOOKS.items()}
LORA_SHARE = 0.10  # E1: LoRA at rank 4 trains at most this share of fine-tune's parameters…
LORA_NEAR_PTS = 3.0  # …and ends within this many points of fine-tune

COLUMNS = (
    "extra",
    "lora_rank",
    "locked",
    "seed",
    "strategy",
    "epochs",
    "epoch",
    "test_acc",
    "source_acc",
    "trainable_params",
    "compute_s",
)


TABLE = sweep.Table(
    COLUMNS,
    key=("extra", "lora_rank", "locked", "seed"),
    ints=frozenset({"lora_rank", "locked", "seed", "epochs", "epoch", "trainable_params"}),
    texts=frozenset({"extra", "strategy"}),
    rows=sweep.epoch_rows(COLUMNS, lambda c: {"extra": " ".join(c.extra)}),
    config_key=lambda c: (" ".join(c.extra), c.lora_rank, c.locked, c.seed),
)


@dataclass(frozen=True)
class Plan:
    base: RaceConfig  # the default race, both lanes added
    seeds: tuple[int, ...]
    locked_scan: tuple[int, ...]
    ranks: tuple[int, ...]

    def races(self) -> list[RaceConfig]:
        scan = [self.base.model_copy(update={"locked": k, "seed": s}) for k in self.locked_scan for s in self.seeds]
        lora = self.base.model_copy(update={"extra": ("lora",)})
        ranks = [
            lora.model_copy(update={"lora_rank": r, "seed": s})
            for r in self.ranks
            if r != self.base.lora_rank
            for s in self.seeds
        ]
        return scan + ranks

    def scenario(self, settings: Settings, checkpoint: Any) -> dict[str, Any]:
        fixed = {k: v for k, v in self.base.model_dump(mode="json").items() if k not in ("seed", "locked", "extra", "lora_rank")}
        defaults = {"locked": self.base.locked, "lora_rank": self.base.lora_rank}
        return {"race": fixed, **defaults, **settings.recipe(), "checkpoint_sha256": checkpoint.sha256}


def default_plan(limits: Limits, seeds: int = 3) -> Plan:
    base = RaceConfig.validate_with({"extra": EXTRAS}, limits)
    scan = tuple(range(limits.locked.min, limits.locked.max + 1))
    ranks = tuple(r for r in RANKS if limits.lora_rank.min <= r <= limits.lora_rank.max)
    return Plan(base=base, seeds=tuple(range(seeds)), locked_scan=scan, ranks=ranks)


@dataclass(frozen=True)
class Point:
    """One lane at one setting: its final accuracy across seeds, and what it trains."""

    strategy: str
    locked: int  # fine-tune's locked units (the race's k, for the other lanes)
    lora_rank: int
    trainable_params: int  # in the last epoch: gradual's grow as it unlocks
    seeds: int
    test_acc: float
    test_lo: float
    test_hi: float
    source_acc: float | None
    compute_s: float


def summarise(rows: Sequence[dict[str, Any]], default_locked: int, default_rank: int) -> list[Point]:
    """Each lane once (fine-tune at every k, LoRA at every rank), across its seeds.

    Scratch, frozen and gradual do not depend on k, nor anything but LoRA on the rank: they
    are read from the default race's settings, fine-tune from the races with both lanes.
    """
    groups: dict[tuple[str, int, int], list[dict[str, Any]]] = {}
    for r in sweep.finals(rows):
        lane, k, rank = r["strategy"], r["locked"], r["lora_rank"]
        if lane == "lora":
            wanted = k == default_locked
        elif lane == "finetune":
            wanted = r["extra"] == " ".join(EXTRAS) and rank == default_rank
        else:
            wanted = r["extra"] == " ".join(EXTRAS) and k == default_locked and rank == default_rank
        if wanted:
            groups.setdefault(
                (lane, k if lane == "finetune" else default_locked, rank if lane == "lora" else default_rank), []
            ).append(r)
    points = []
    for (lane, k, rank), rs in groups.items():
        test = [r["test_acc"] for r in rs]
        sources = [r["source_acc"] for r in rs if r["source_acc"] is not None]
        points.append(
            Point(
                strategy=lane,
                locked=k,
                lora_rank=rank,
                trainable_params=rs[0]["trainable_params"],
                seeds=len(rs),
                test_acc=statistics.fmean(test),
                test_lo=min(test),
                test_hi=max(test),
                source_acc=statistics.fmean(sources) if sources else None,
                compute_s=statistics.fmean(r["compute_s"] for r in rs),
            )
        )
    order = {name: i for i, name in enumerate(LABELS)}
    return sorted(points, key=lambda p: (order[p.strategy], p.locked, p.lora_rank))


def _one(points: Sequence[Point], strategy: str, **where: int) -> Point:
    found = [p for p in points if p.strategy == strategy and all(getattr(p, k) == v for k, v in where.items())]
    if not found:
        raise ValueError(f"no {strategy} point with {where}")
    return found[0]


CLAIMS: dict[int | str, str] = {
    "E1": (
        f"LoRA at rank 4 trains ≤ {100 * LORA_SHARE:.0f} % of fine-tune's parameters (default k), ends above frozen "
        f"and within {LORA_NEAR_PTS:.0f} points of fine-tune"
    ),
    "E2": "gradual ends at least as high as frozen, and forgets less of the source than fine-tune at k = 0",
}


def evaluate(points: Sequence[Point], default_locked: int) -> list[Check]:
    def lora() -> tuple[str, bool]:
        lo, ft, fr = _one(points, "lora", lora_rank=4), _one(points, "finetune", locked=default_locked), _one(points, "frozen")
        share = lo.trainable_params / ft.trainable_params
        ranks = ", ".join(f"r{p.lora_rank} {100 * p.test_acc:.1f}" for p in points if p.strategy == "lora")
        measured = (
            f"{lo.trainable_params:,} parameters, {100 * share:.1f} % of fine-tune's {ft.trainable_params:,}; "
            f"LoRA {100 * lo.test_acc:.1f}, fine-tune {100 * ft.test_acc:.1f}, frozen {100 * fr.test_acc:.1f} "
            f"(by rank: {ranks})"
        )
        near = 100 * (ft.test_acc - lo.test_acc) <= LORA_NEAR_PTS
        return measured, share <= LORA_SHARE and lo.test_acc > fr.test_acc and near

    def gradual() -> tuple[str, bool]:
        gr, fr, ft0 = _one(points, "gradual"), _one(points, "frozen"), _one(points, "finetune", locked=0)
        assert gr.source_acc is not None and ft0.source_acc is not None
        measured = (
            f"gradual {100 * gr.test_acc:.1f}, frozen {100 * fr.test_acc:.1f}; source kept: gradual "
            f"{100 * gr.source_acc:.1f}, fine-tune at k = 0 {100 * ft0.source_acc:.1f}"
        )
        return measured, gr.test_acc >= fr.test_acc and gr.source_acc > ft0.source_acc

    return run_checks({"E1": lora, "E2": gradual}, CLAIMS, "the lanes sweep lacks these races")


def table(points: Sequence[Point]) -> str:
    """Markdown: each lane's trainable parameters and final accuracy (%), mean and range over seeds."""
    lines = ["| lane | k | rank | trainable | target | source | compute s |", "|---|---|---|---|---|---|---|"]
    for p in points:
        k = str(p.locked) if p.strategy == "finetune" else "–"
        rank = str(p.lora_rank) if p.strategy == "lora" else "–"
        source = "–" if p.source_acc is None else f"{100 * p.source_acc:.1f}"
        lines.append(
            f"| {LABELS[p.strategy]} | {k} | {rank} | {p.trainable_params:,} | {100 * p.test_acc:.1f} "
            f"({100 * p.test_lo:.1f}–{100 * p.test_hi:.1f}) | {source} | {p.compute_s:.2f} |"
        )
    return "\n".join(lines)


def plot(points: Sequence[Point], out: Path, title: str) -> list[Path]:
    """Final accuracy against trainable parameters (log scale): the cost/benefit frontier."""
    fig, ax = sweep.new_figure()
    for lane, look in LOOKS.items():
        pts = sorted((p for p in points if p.strategy == lane), key=lambda p: p.trainable_params)
        if not pts:
            continue
        xs, ys = [p.trainable_params for p in pts], [100 * p.test_acc for p in pts]
        ax.plot(xs, ys, "o-" if len(pts) > 1 else "o", color=look.colour, label=look.label, lw=1.5, ms=6)
        for p, x, y in zip(pts, xs, ys, strict=True):
            tag = f"k={p.locked}" if lane == "finetune" else f"r={p.lora_rank}" if lane == "lora" else ""
            if tag:
                ax.annotate(tag, (x, y), textcoords="offset points", xytext=(4, -10), fontsize=6, color=look.ink)
    ax.set_xscale("log")
    ax.set_xlabel("trainable parameters (log scale)")
    ax.set_ylabel("final target test accuracy (%)")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", frameon=False, fontsize=8)  # few parameters and much accuracy: no lane reaches there
    return sweep.save_figure(fig, out, "headstart-lanes")


def page_payload(csv_path: Path) -> dict[str, Any] | None:
    """The frontier as the page's panel wants it: one point per lane and setting."""
    if (shipped := sweep.read_shipped(csv_path, TABLE)) is None:
        return None
    meta, rows = shipped
    default_locked = int(meta["locked"])
    points = summarise(rows, default_locked, int(meta["lora_rank"]))
    return {
        "scenario": meta,
        "default_locked": default_locked,
        "seeds": max((p.seeds for p in points), default=0),
        "looks": {name: asdict(look) for name, look in LOOKS.items()},
        "points": [asdict(p) for p in points],
    }


def run(plan: Plan, settings: Settings, out: Path, fresh: bool = False, progress: sweep.Progress | None = None) -> sweep.Results:
    """Run every race of the plan not already in ``out``'s CSV, then draw the plot."""
    base = plan.base
    results = sweep.run_plan(
        plan.races(), lambda res: plan.scenario(settings, res.card), out, TABLE, settings, base, fresh, progress
    )
    plot(
        summarise(results.rows, base.locked, base.lora_rank),
        out,
        f"Ways to adapt, n = {base.n}, {base.epochs} epochs; mean of {len(plan.seeds)} seeds",
    )
    return results
