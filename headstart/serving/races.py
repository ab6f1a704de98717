"""A race as the server holds it: its configuration, its status, everything said of it, its viewers."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any, Literal

from headstart.race.cost import Cost
from headstart.race.events import RaceConfig
from headstart.race.strategies import raced
from headstart.serving.fanout import Outbox

Status = Literal["queued", "running", "done", "cancelled", "error"]
FINISHED: tuple[Status, ...] = ("done", "cancelled", "error")


@dataclass
class Race:
    id: str
    config: RaceConfig
    owner: str
    status: Status = "queued"
    messages: list[dict[str, Any]] = field(default_factory=list)  # everything said about it, in order
    subscribers: set[Outbox] = field(default_factory=set)
    created: float = field(default_factory=time.time)
    device: str | None = None
    replay_of: str | None = None  # set when this race replays a stored one instead of training
    code: str | None = None  # a short code students type to watch a broadcast race
    address: str = ""  # where its starter's request came from
    orphan_timer: asyncio.TimerHandle | None = None
    stop_reason: str | None = None  # why it was asked to stop, told to viewers once the worker stops
    viewers_due: asyncio.TimerHandle | None = None  # a viewer count about to be told
    key: str | None = None  # once trained to the end here: its cache_key, for a repeat to replay
    cost: Cost | None = None  # its arithmetic, known before it starts
    epochs_seen: int = 0  # epoch events so far, every lane's
    paused: bool = False  # held paused in a worker's memory, waiting to resume there
    yielding: bool = False  # asked to pause at the end of its round
    lesson: str | None = None  # the guided lesson it was started in
    predictions: dict[str, str] = field(default_factory=dict)  # a class's, by client id: counted, never shown by name

    @property
    def rounds_done(self) -> int:
        """Epochs every lane has finished."""
        return self.epochs_seen // len(raced(self.config.extra))

    @property
    def left(self) -> float:
        """The work it has still to do, in multiply-accumulates."""
        return self.cost.left(self.rounds_done) if self.cost else 0.0

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    @property
    def trains(self) -> bool:
        """Queued or training here: it holds, or waits for, a worker."""
        return not self.finished and self.replay_of is None

    def snapshot(self) -> dict[str, Any]:
        return {
            "race_id": self.id,
            "status": self.status,
            "config": self.config.model_dump(),
            "device": self.device,
            "created": self.created,
            "events": list(self.messages),  # a copy: the store writes it on its own thread
        }
