"""The one interface between the races and the training: what a worker is sent, what it says
back, and what the hub asks of any worker, a process on this machine or a Ray actor.

Messages are picklable dataclasses the hub tells apart by their type.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from headstart.race.events import RaceEvent


@dataclass(frozen=True)
class RunRace:
    """To the worker: train this race."""

    race_id: str
    config: dict[str, Any]


@dataclass(frozen=True)
class DropRace:
    """To the worker: forget this paused race (its viewers cancelled it, or it cannot resume)."""

    race_id: str


@dataclass(frozen=True)
class Ready:
    """The worker loaded its data and checkpoint and trained the default race once."""

    device: str
    recipe: str  # fingerprint of the checkpoint and training recipe: part of a stored race's key
    max_n: int  # the most target images its dataset holds, balanced over the classes


@dataclass(frozen=True)
class Fatal:
    """The worker cannot train at all (no dataset, a corrupt checkpoint), and stops."""

    why: str


@dataclass(frozen=True)
class EventOut:
    """One of a race's events, stamped with the worker's clock as it was made."""

    race_id: str
    event: RaceEvent
    emitted_at: float


@dataclass(frozen=True)
class Finished:
    race_id: str


@dataclass(frozen=True)
class Cancelled:
    race_id: str


@dataclass(frozen=True)
class Paused:
    """The race stopped at the end of an epoch's round, as asked, and is kept in the worker's
    memory: a later ``run`` of its id resumes it where it stopped."""

    race_id: str


@dataclass(frozen=True)
class Failed:
    race_id: str
    why: str


WorkerMessage = Ready | Fatal | EventOut | Finished | Cancelled | Paused | Failed


class TrainingWorker(Protocol):
    """What the hub asks of a worker, wherever it trains: the one seam between the races and
    the training. ``Worker`` is a process on this machine; the scheduler's tests use one that
    trains nothing."""

    def start(self) -> None:
        """Start it: it answers ``Ready`` once it can train, or ``Fatal``."""

    @property
    def alive(self) -> bool: ...

    @property
    def exit_code(self) -> int | None:
        """How it ended, once it is not alive (None while it runs, or where unknown)."""

    def run(self, race_id: str, config: dict[str, Any]) -> None:
        """Train this race, or resume it where it paused: its events come back through ``poll``,
        then ``Finished`` (or ``Paused``)."""

    def stop_race(self) -> None:
        """Stop the race it trains: it answers ``Cancelled`` within a batch."""

    def pause_race(self) -> None:
        """Pause the race it trains at the end of its current round: it answers ``Paused``."""

    def drop_race(self, race_id: str) -> None:
        """Forget a race it holds paused."""

    def poll(self, timeout: float) -> WorkerMessage | None:
        """Its next message, waiting at most ``timeout`` seconds (called from a reader thread)."""

    def shutdown(self, timeout: float = 5.0) -> None: ...
