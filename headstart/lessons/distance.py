"""Does the source's distance teach what it claims? Four checks, on each source's head-start sweep.

Each reads real training results (``headstart.lessons.sweep``, one CSV per source) and reports what it
measured, what it needs and whether it holds; docs/scenario.md shows the table for the
shipped sweeps.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from headstart.lessons.scenario import Check, run_checks
from headstart.lessons.sweep import Point, summarise

SMALL_N = 50
LARGE_N = 1000  # "enough data": negative transfer is judged from here up
CLOSER_LEADS_BY_PTS = 8.0  # at SMALL_N, near's fine-tune lead over scratch beats far's by at least this

CLAIMS: dict[int | str, str] = {
    "D1a": f"n = {SMALL_N}: fine-tune's lead over scratch is largest with near, smaller with far and with shuffled",
    "D1": f"n = {SMALL_N}: fine-tune's lead over scratch is largest with near, ≥ {CLOSER_LEADS_BY_PTS:.0f} smaller with far",
    "D2": f"n ≥ {LARGE_N}: frozen from far and from shuffled end below scratch; fine-tune from shuffled ends below scratch",
    "D3": f"n = {SMALL_N}: how far a poor source's fine-tune and frozen end above or below scratch (measured, no bar)",
}
Grid = Mapping[str, Sequence[Point]]  # source -> its sweep's points at its default k


def _at(grid: Grid, source: str, strategy: str, n: int) -> float:
    return next(p.mean for p in grid[source] if p.strategy == strategy and p.n == n)


def _lead(grid: Grid, source: str, strategy: str, n: int) -> float:
    return 100 * (_at(grid, source, strategy, n) - _at(grid, source, "scratch", n))


def _leads(grid: Grid) -> tuple[str, dict[str, float]]:
    leads = {s: _lead(grid, s, "finetune", SMALL_N) for s in grid}
    return "fine-tune − scratch: " + ", ".join(f"{s} {v:+.1f}" for s, v in leads.items()), leads


def _closer_leads_more(grid: Grid) -> tuple[str, bool]:
    measured, leads = _leads(grid)
    return measured, all(leads["near"] > v for s, v in leads.items() if s != "near")


def _closer_leads_by(grid: Grid) -> tuple[str, bool]:
    measured, leads = _leads(grid)
    gap = leads["near"] - leads["far"]
    return f"{measured}: near − far {gap:.1f}", max(leads, key=leads.__getitem__) == "near" and gap >= CLOSER_LEADS_BY_PTS


def _negative(grid: Grid) -> tuple[str, bool]:
    ns = sorted({p.n for p in grid["near"] if p.n >= LARGE_N})
    if not ns:
        raise ValueError(f"no sizes of at least {LARGE_N}")
    parts, holds = [], True
    for n in ns:
        gaps = {
            "frozen far": _lead(grid, "far", "frozen", n),
            "frozen shuffled": _lead(grid, "shuffled", "frozen", n),
            "fine-tune shuffled": _lead(grid, "shuffled", "finetune", n),
        }
        parts.append(f"n={n}: " + ", ".join(f"{k} {v:+.1f}" for k, v in gaps.items()))
        holds = holds and all(v < 0 for v in gaps.values())
    return "; ".join(parts) + " (points against scratch)", holds


def _poor_at_small(grid: Grid) -> tuple[str, bool]:
    parts = [
        f"{s}: fine-tune {_lead(grid, s, 'finetune', SMALL_N):+.1f}, frozen {_lead(grid, s, 'frozen', SMALL_N):+.1f}"
        for s in grid
        if s != "near"
    ]
    return "; ".join(parts) + " (points against scratch)", True


def evaluate(rows_by_source: Mapping[str, Sequence[dict[str, Any]]], default_locked: int) -> list[Check]:
    """The checks on each source's sweep rows; one they lack data for is reported, not raised."""
    grid = {s: summarise(rows, locked=default_locked) for s, rows in rows_by_source.items()}
    measures: dict[int | str, Callable[[], tuple[str, bool]]] = {
        "D1a": lambda: _closer_leads_more(grid),
        "D1": lambda: _closer_leads_by(grid),
        "D2": lambda: _negative(grid),
        "D3": lambda: _poor_at_small(grid),
    }
    return run_checks(measures, CLAIMS, "the sweeps lack the sources or sizes this needs")
