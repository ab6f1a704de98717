"""Does the forgetting lesson hold? Four checks, measured on the trade-off sweep's CSV.

Each reads real training results (``headstart.lessons.keeping``) and reports what it measured, what it
needs and whether it holds; docs/scenario.md shows the table for the shipped sweep.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from itertools import pairwise
from typing import Any

from headstart.lessons.keeping import NAIVE_RATIO
from headstart.lessons.scenario import Check, run_checks
from headstart.lessons.sweep import finals

FORGETS_PTS = 20.0  # naive fine-tuning ends at least this far below where its source accuracy started
KEEPS_PTS = 15.0  # a regulariser at its default strength keeps at least this much more of the source
COSTS_PTS = 3.0  # …for at most this much target accuracy
LOCKED_KEEPS_PTS = 10.0  # locking every unit but the last keeps at least this much more than locking none

CLAIMS: dict[int | str, str] = {
    "F1": (
        f"k = 0, no regulariser: body × head = {NAIVE_RATIO:g} ends ≥ {FORGETS_PTS:.0f} points below the source "
        "accuracy it started at; the default body rate forgets far less"
    ),
    "F2": f"default strength: L2-SP and EWC each keep ≥ {KEEPS_PTS:.0f} more source points, target within {COSTS_PTS:.0f}",
    "F3": "frozen's source accuracy is the checkpoint's at every epoch of every race",
    "F4": (
        f"body × head = {NAIVE_RATIO:g}: the more units fine-tune locks, the less it forgets: each step keeps as much "
        f"within its seeds' spread, and the most locked keeps ≥ {LOCKED_KEEPS_PTS:.0f} points more than k = 0"
    ),
}


def _mean(rows: Sequence[dict[str, Any]], key: str, **where: Any) -> float:
    picked = [r[key] for r in finals(rows) if all(r[k] == v for k, v in where.items())]
    if not picked:
        raise ValueError(f"no races with {where}")
    return statistics.fmean(picked)


def _start(rows: Sequence[dict[str, Any]]) -> float:
    """The pretrained body's source accuracy: frozen's, whose body never moves."""
    return _mean(rows, "source_acc", strategy="frozen")


def _forgets(rows: Sequence[dict[str, Any]], default_ratio: float) -> tuple[str, bool]:
    start = _start(rows)
    naive = _mean(rows, "source_acc", strategy="finetune", keep="none", locked=0, body_lr_ratio=NAIVE_RATIO)
    gentle = _mean(rows, "source_acc", strategy="finetune", keep="none", locked=0, body_lr_ratio=default_ratio)
    measured = (
        f"started at {100 * start:.1f}; body × head = {NAIVE_RATIO:g}: {100 * naive:.1f} ({100 * (naive - start):+.1f}); "
        f"{default_ratio:g}: {100 * gentle:.1f} ({100 * (gentle - start):+.1f})"
    )
    return measured, 100 * (start - naive) >= FORGETS_PTS and start - gentle < (start - naive) / 4


def _keeps(rows: Sequence[dict[str, Any]], strength: float) -> tuple[str, bool]:
    plain = {"strategy": "finetune", "locked": 0, "body_lr_ratio": NAIVE_RATIO}
    src0, tgt0 = (_mean(rows, key, keep="none", **plain) for key in ("source_acc", "test_acc"))
    parts, holds = [f"none: target {100 * tgt0:.1f}, source {100 * src0:.1f}"], True
    for keep, label in (("l2sp", "L2-SP"), ("ewc", "EWC")):
        src, tgt = (_mean(rows, key, keep=keep, keep_strength=strength, **plain) for key in ("source_acc", "test_acc"))
        kept, cost = 100 * (src - src0), 100 * (tgt0 - tgt)
        parts.append(f"{label} {strength:g}: target {100 * tgt:.1f} ({-cost:+.1f}), source {100 * src:.1f} ({kept:+.1f})")
        holds = holds and kept >= KEEPS_PTS and cost <= COSTS_PTS
    return "; ".join(parts), holds


def _frozen_keeps(rows: Sequence[dict[str, Any]]) -> tuple[str, bool]:
    values = {r["source_acc"] for r in rows if r["strategy"] == "frozen"}
    races = len({(r["keep"], r["keep_strength"], r["body_lr_ratio"], r["locked"], r["seed"]) for r in rows})
    shown = ", ".join(f"{100 * v:.2f}" for v in sorted(values))
    return f"{shown} at every epoch of {races} races", len(values) == 1


def _lock_to_keep(rows: Sequence[dict[str, Any]]) -> tuple[str, bool]:
    ks = sorted({r["locked"] for r in rows})
    where = {"strategy": "finetune", "keep": "none", "body_lr_ratio": NAIVE_RATIO}
    per_seed = [
        [r["source_acc"] for r in finals(rows) if r["locked"] == k and all(r[f] == v for f, v in where.items())] for k in ks
    ]
    left = [statistics.fmean(s) for s in per_seed]
    spread = [max(s) - min(s) for s in per_seed]
    measured = "source at k = " + ", ".join(
        f"{k}: {100 * v:.1f} ± {100 * d:.1f}" for k, v, d in zip(ks, left, spread, strict=True)
    )
    steps = all(b >= a - max(da, db) for (a, da), (b, db) in pairwise(zip(left, spread, strict=True)))
    return measured, len(ks) >= 2 and steps and 100 * (left[-1] - left[0]) >= LOCKED_KEEPS_PTS


def evaluate(rows: Sequence[dict[str, Any]], default_ratio: float, default_strength: float) -> list[Check]:
    """The four checks on the trade-off sweep's rows; one it has no data for is reported, not raised."""
    measures: dict[int | str, Callable[[], tuple[str, bool]]] = {
        "F1": lambda: _forgets(rows, default_ratio),
        "F2": lambda: _keeps(rows, default_strength),
        "F3": lambda: _frozen_keeps(rows),
        "F4": lambda: _lock_to_keep(rows),
    }
    return run_checks(measures, CLAIMS, "the sweep lacks the settings this needs")
