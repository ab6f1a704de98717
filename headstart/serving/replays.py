"""Replaying a stored race: its events again, at a brisk pace, marked as a replay.

A race whose configuration already trained on this device and recipe is not trained again:
its viewers get the stored race's events, each with ``"replay": true`` (docs/protocol.md).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Protocol

from headstart.race import protocol
from headstart.race.events import RACE_EVENT, RACE_EVENT_TYPES, RaceConfig


class Replaying(Protocol):
    id: str
    config: RaceConfig
    status: Any
    device: str | None
    replay_of: str | None
    lesson: str | None

    @property
    def finished(self) -> bool: ...


class Replays:
    """The replays streaming now, so a stopping server can end them."""

    def __init__(self, interval_s: float) -> None:
        self.interval_s = interval_s
        self.tasks: set[asyncio.Task[None]] = set()

    def start(
        self,
        race: Replaying,
        stored: dict[str, Any],
        publish: Callable[[Any, protocol.ServerMessage | dict[str, Any]], None],
        ended: Callable[[Any], None],
    ) -> None:
        """Stream ``stored``'s events into ``race`` through ``publish``; ``ended`` once all are sent."""
        race.status, race.device, race.replay_of = "running", stored["device"], stored["race_id"]
        publish(race, protocol.Accepted(race_id=race.id, config=race.config, replay_of=stored["race_id"], lesson=race.lesson))
        events = [e for e in stored["events"] if e["type"] in RACE_EVENT_TYPES]

        async def stream() -> None:
            for event in events:
                await asyncio.sleep(self.interval_s)
                if race.finished:
                    return
                replayed = RACE_EVENT.validate_python(event)
                publish(race, protocol.race_event(replayed, race.id, event.get("emitted_at"), replay=True))
            race.status = "done"
            ended(race)

        task = asyncio.get_running_loop().create_task(stream())
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
