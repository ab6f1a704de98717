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
from collections.abc import Callable, Iterator
from typing import Any

from headstart.settings import Settings
from headstart.workers.interface import Cancelled, EventOut, Failed, Fatal, Finished, Ready, RunRace, WorkerMessage

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
    if settings.threads or settings.max_concurrent_races == 1 or settings.backend == "ray":
        return settings.threads  # Ray gives each actor its own CPU and sets its threads to match
    return max(1, (os.cpu_count() or 1) // settings.max_concurrent_races)


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


def race_messages(res: Any, command: RunRace, should_stop: Callable[[], bool]) -> Iterator[WorkerMessage]:
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
