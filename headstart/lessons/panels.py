"""The shipped sweeps the page draws as panels: where each is read from, and what makes it.

One list for the live server's ``/api/sweep/...`` and for a bake's ``api/sweep-NAME.json``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from headstart.lessons import adapters, depth, keeping, sweep
from headstart.race import sources
from headstart.settings import Settings


@dataclass(frozen=True)
class Panel:
    name: str  # its address, /api/sweep/NAME, and its file in a bake, api/sweep-NAME.json
    payload: Callable[[Path], dict[str, Any] | None]  # the CSV as the panel draws it; None where it is absent
    csv: Callable[[Settings], Path]
    command: str  # what makes its CSV, named where it is missing


def head_start(source: sources.Source) -> Panel:
    """Final accuracy against n, one source's: the page's head-start panel."""
    command = "python -m headstart sweep" + ("" if source == sources.DEFAULT else f" --source {source}")
    return Panel(source, sweep.page_payload, lambda s: sources.checkpoint_path(s.paths.sweep_csv, source), command)


# Each lesson's sweep beyond the head start's, in the order the page shows them.
LESSONS = (
    Panel("keep", keeping.page_payload, lambda s: s.paths.keep_sweep_csv, "python -m headstart sweep --keep"),
    Panel("depth", depth.page_payload, lambda s: s.paths.depth_sweep_csv, "python -m headstart sweep --by frozen"),
    Panel("lanes", adapters.page_payload, lambda s: s.paths.lanes_sweep_csv, "python -m headstart sweep --lanes"),
)


def every_panel() -> list[Panel]:
    return [*(head_start(source) for source in sources.SOURCES), *LESSONS]
