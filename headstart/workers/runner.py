"""What every worker does, whatever hosts it: load the data and checkpoint once, warm up, then
train each race it is sent and report it as messages (headstart/workers/interface.py).

Torch is imported inside these functions: they run in the worker's process or actor, never in
the web server's.
"""

from __future__ import annotations

import logging
import os
import time
import traceback
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from typing import Any

from headstart.settings import Settings
from headstart.workers.interface import (
    Cancelled,
    EventOut,
    Failed,
    Fatal,
    Finished,
    Paused,
    Ready,
    RunRace,
    WorkerMessage,
)

log = logging.getLogger(__name__)


def load(settings_json: dict[str, Any]) -> tuple[Any, Ready | Fatal]:
    """A worker's resources, loaded and warmed up, and what it says of them: ``Ready``, or
    ``Fatal`` (and no resources) where it cannot train."""
    import torch

    from headstart.training.engine import Resources, warm_up

    try:
        settings = Settings(**settings_json)  # validated again: a copy the server updated was not
        if threads := worker_threads(settings):
            torch.set_num_threads(threads)
        res = Resources.load(settings)
    except Exception as exc:  # a missing dataset or corrupt checkpoint: tell the server, then stop
        return None, Fatal(f"{type(exc).__name__}: {exc}")
    try:
        warm_up(res)  # so the first race's clocks show what it costs, not the process's start-up
    except Exception as exc:
        return None, Fatal(f"the default race could not train: {type(exc).__name__}: {exc}")
    return res, ready(res)


def worker_threads(settings: Settings) -> int:
    """CPU threads for one worker: as set, or this machine's cores shared among the workers
    (0: torch decides, for one worker). Two workers each taking every core ran the same six
    races four times slower than one (docs/performance.md)."""
    if settings.training.threads or settings.server.workers == 1 or settings.server.backend == "ray":
        return settings.training.threads  # Ray gives each actor its own CPU and sets its threads to match
    return max(1, (os.cpu_count() or 1) // settings.server.workers)


def ready(res: Any) -> Ready:
    """What a worker says once it can train: its device, recipe and dataset's capacity.

    The recipe fingerprint joins the device in a stored race's key: a race trained with
    another checkpoint or recipe is never replayed as this one. The dataset's capacity too: a
    folder with fewer images than the n slider allows is refused by the server with the
    largest n it holds, before a race is queued.
    """
    from headstart.training.data import target_capacity
    from headstart.training.devices import describe_device

    settings = res.settings
    device, recipe = describe_device(res.device), settings.recipe_fingerprint(res.card.sha256)
    return Ready(device=device, recipe=recipe, max_n=target_capacity(res.dataset, settings))


def race_messages(res: Any, command: RunRace, should_stop: Callable[[], bool]) -> Generator[WorkerMessage]:
    """One race as a worker reports it, wherever it runs: its events, then how it ended."""
    import torch

    from headstart.race.events import RaceConfig
    from headstart.training.engine import RaceCancelled, run_race

    race_id = command.race_id
    try:
        config = RaceConfig.validate_with(command.config, res.settings.limits)
        for event in run_race(config, res, should_stop=should_stop):
            # Stamped here so the server can measure how long events take to reach viewers.
            yield EventOut(race_id, event, time.time())
        yield Finished(race_id)
    except RaceCancelled:
        yield Cancelled(race_id)
    except torch.cuda.OutOfMemoryError:
        torch.cuda.empty_cache()
        yield Failed(race_id, "the GPU ran out of memory; try a smaller n")
    except Exception as exc:
        log.error("race %s failed:\n%s", race_id, traceback.format_exc())
        yield Failed(race_id, f"training failed: {type(exc).__name__}: {exc}")


@dataclass
class _Held:
    messages: Generator[WorkerMessage]
    last_lane: str | None  # the lane whose epoch ends a round
    paused_s: float = 0.0  # time spent paused so far
    paused_at: float = 0.0


class Parking:
    """Races paused at the end of an epoch's round, held in this worker's memory (models,
    optimizers, kept features) until they resume or are dropped.

    A race pauses only between rounds, where every lane has trained the same epochs, and
    resumes the same generator: its numbers are those of an uninterrupted run, since each lane
    shuffles with its own seeded generator and nothing random is drawn after the models are
    built. The time it spent paused is taken out of its ``wall_s``.
    """

    def __init__(self) -> None:
        self._held: dict[str, _Held] = {}

    def __len__(self) -> int:
        return len(self._held)

    def train(
        self, res: Any, command: RunRace, should_stop: Callable[[], bool], should_pause: Callable[[], bool]
    ) -> Iterator[WorkerMessage]:
        """A race's messages: from its start, or from where it paused; it pauses at the first
        round's end (or right after its plan) once ``should_pause`` says so."""
        race_id = command.race_id
        held = self._held.pop(race_id, None)
        if held is None:
            held = _Held(race_messages(res, command, should_stop), None)
        else:
            held.paused_s += time.perf_counter() - held.paused_at
        for message in held.messages:
            event = message.event if isinstance(message, EventOut) else None
            if event is not None and event.type == "done" and held.paused_s:
                event = event.model_copy(update={"wall_s": max(0.0, event.wall_s - held.paused_s)})
                message = EventOut(race_id, event, time.time())
            yield message
            if event is not None and event.type == "plan":
                held.last_lane = list(event.strategies)[-1]
            at_boundary = event is not None and (event.type == "plan" or getattr(event, "strategy", None) == held.last_lane)
            if at_boundary and should_pause() and not should_stop():  # a stop asked for as well wins
                held.paused_at = time.perf_counter()
                self._held[race_id] = held
                yield Paused(race_id)
                return

    def drop(self, race_id: str) -> None:
        held = self._held.pop(race_id, None)
        if held is not None:
            held.messages.close()  # its models and features go with it
