"""The training workers, one slot each: started, listened to, and replaced when one dies.

Each worker's messages are read on a thread of their own and handed to the event loop; the
hub hears of races through ``on_race``, of a worker replaced after it died through
``on_lost``, and of a pool that cannot train through ``on_gave_up``.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from headstart.serving.races import Race
from headstart.settings import Settings
from headstart.workers.interface import Fatal, Ready, TrainingWorker, WorkerMessage
from headstart.workers.processes import Worker

log = logging.getLogger(__name__)


@dataclass
class Slot:
    """One worker and the race it is running, if any."""

    worker: TrainingWorker
    race: Race | None = None
    device: str | None = None
    recipe: str | None = None  # fingerprint of the checkpoint and training recipe
    max_n: int | None = None  # the most target images its dataset holds, balanced over the classes
    ready: bool = False
    failed_starts: int = 0  # workers in a row that died before they were ready
    parked: list[Race] = field(default_factory=list)  # races paused in its worker's memory


def default_workers(settings: Settings) -> Callable[[], TrainingWorker]:
    """How a worker is made: a process on this machine, or a Ray actor (``HEADSTART_BACKEND=ray``)."""
    if settings.server.backend == "ray":
        from headstart.workers.ray_actors import RayWorker

        return lambda: RayWorker(settings)
    return lambda: Worker(settings)


class Pool:
    def __init__(
        self,
        settings: Settings,
        new_worker: Callable[[], TrainingWorker],
        on_race: Callable[[Slot, WorkerMessage], None],
        on_lost: Callable[[Slot, int | None], None],
        on_gave_up: Callable[[Slot], None],
    ) -> None:
        self.settings, self._new_worker = settings, new_worker
        self._on_race, self._on_lost, self._on_gave_up = on_race, on_lost, on_gave_up
        self.slots: list[Slot] = []
        self.error: str | None = None  # why no worker can train, once the pool has given up
        self.loop: asyncio.AbstractEventLoop | None = None
        self.closing = False

    async def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        if self.settings.server.backend == "ray":  # a cluster that cannot be reached stops the start, named
            from headstart.workers import ray_actors

            await asyncio.to_thread(ray_actors.connect, self.settings)
        for _ in range(self.settings.server.workers):
            slot = Slot(self._new_worker())
            self.slots.append(slot)
            self._launch(slot)

    async def stop(self) -> None:
        self.closing = True
        for slot in self.slots:
            await asyncio.to_thread(slot.worker.shutdown)

    def busy(self) -> list[Race]:
        return [slot.race for slot in self.slots if slot.race]

    def holds(self) -> int | None:
        """The most target images the workers' dataset holds, once one has said."""
        return next((slot.max_n for slot in self.slots if slot.max_n is not None), None)

    def device(self) -> str | None:
        return next((s.device for s in self.slots if s.device), None)

    def ready_slot(self) -> Slot | None:
        """A slot whose worker has said its device and recipe: what a stored race is found by."""
        return next((slot for slot in self.slots if slot.device), None)

    def health(self) -> dict[str, Any]:
        up = [s for s in self.slots if s.worker.alive]
        return {
            "status": "ok" if up and not self.error else "degraded",
            "worker": "up" if up and all(s.ready for s in up) else ("starting" if up else "down"),
            "workers": len(up),
            "device": self.device(),
            "running": sum(1 for s in self.slots if s.race),
        }

    def states(self) -> dict[str, int]:
        """How many workers are busy (training a race), idle (ready, waiting for one), starting."""
        alive = [s for s in self.slots if s.worker.alive]
        busy = sum(1 for s in alive if s.race)
        idle = sum(1 for s in alive if s.ready and not s.race)
        return {"busy": busy, "idle": idle, "starting": len(alive) - busy - idle}

    def _launch(self, slot: Slot) -> None:
        slot.worker.start()
        threading.Thread(target=self._read, args=(slot, slot.worker), daemon=True, name="worker-reader").start()

    def _read(self, slot: Slot, worker: TrainingWorker) -> None:
        """Reader thread: hands the worker's messages to the event loop; reports its death."""
        assert self.loop is not None
        while not self.closing:
            msg = worker.poll(0.2)
            if msg is not None:
                self.loop.call_soon_threadsafe(self._on_message, slot, worker, msg)
            elif not worker.alive:
                if not self.closing:
                    self.loop.call_soon_threadsafe(self._on_death, slot, worker)
                return

    def _on_message(self, slot: Slot, worker: TrainingWorker, msg: WorkerMessage) -> None:
        if worker is not slot.worker:
            return  # from a worker already replaced
        if isinstance(msg, Ready):
            slot.ready, slot.device, slot.recipe, slot.max_n = True, msg.device, msg.recipe, msg.max_n
            slot.failed_starts = 0
        elif isinstance(msg, Fatal):
            self._give_up(slot, msg.why)
        else:
            self._on_race(slot, msg)

    def _give_up(self, slot: Slot, why: str) -> None:
        self.error = why
        log.error("training worker cannot start: %s", why)
        self._on_gave_up(slot)

    def _on_death(self, slot: Slot, worker: TrainingWorker) -> None:
        if worker is not slot.worker or self.closing or self.error:
            return
        code = worker.exit_code
        slot.failed_starts += 0 if slot.ready else 1
        if slot.failed_starts >= self.settings.server.worker_start_tries:
            worker.shutdown(timeout=1.0)
            self._give_up(
                slot,
                f"the training worker stopped {slot.failed_starts} times in a row before it was ready (last exit "
                f"code {code}); the server's log may say why. Mend that, then restart the server.",
            )
            return
        log.error("training worker died (exit code %s); starting a fresh one", code)
        worker.shutdown(timeout=1.0)
        slot.worker, slot.ready, slot.device, slot.recipe = self._new_worker(), False, None, None
        self._launch(slot)
        self._on_lost(slot, code)  # its race, if any, ends; the fresh worker may take the next
