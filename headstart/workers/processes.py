"""The training worker: a separate process that owns the device and runs races.

Training never runs on the server's event loop. The server sends ``RunRace`` commands;
the worker answers with the messages below (``WorkerMessage``), picklable dataclasses the
server tells apart by their type. If the process dies, the server notices (``is_alive``)
and starts a fresh one.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import queue
import signal
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from headstart.race.events import RaceEvent
from headstart.settings import Settings

log = logging.getLogger(__name__)
_ctx = mp.get_context("spawn")  # forking a process that holds torch threads or CUDA is unsafe


@dataclass(frozen=True)
class RunRace:
    """To the worker: train this race."""

    race_id: str
    config: dict[str, Any]


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
class Failed:
    race_id: str
    why: str


WorkerMessage = Ready | Fatal | EventOut | Finished | Cancelled | Failed


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
        """Train this race: its events come back through ``poll``, then ``Finished``."""

    def stop_race(self) -> None:
        """Stop the race it trains: it answers ``Cancelled`` within a batch."""

    def poll(self, timeout: float) -> WorkerMessage | None:
        """Its next message, waiting at most ``timeout`` seconds (called from a reader thread)."""

    def shutdown(self, timeout: float = 5.0) -> None: ...


def _exit_with_the_server() -> None:
    """End this process when the server that started it ends, however it ends.

    A server stopped cleanly tells its worker to stop; a killed one (kill -9, the OOM killer, a
    crash) cannot, and its worker then lived on, orphaned, holding the device and most of a
    gigabyte, for every restart after.
    """
    server = mp.parent_process()
    if server is not None:
        server.join()  # returns once the server's end of a pipe closes, which it does as it dies
        os._exit(0)


def _serve(
    settings_json: dict[str, Any], commands: mp.Queue[RunRace | None], results: mp.Queue[WorkerMessage], cancel: Any
) -> None:
    """The worker process's main loop."""
    # Ctrl-C in a terminal, and systemd's stop, signal the whole group, the worker with its server.
    # The server stops it in order (its race cancelled, then told to stop), and it ends with its
    # server in any case; at their defaults the signals killed it first, with a KeyboardInterrupt
    # traceback, and the server, not yet shutting down, started a fresh one.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)
    threading.Thread(target=_exit_with_the_server, daemon=True, name="server-watch").start()
    res, said = load(settings_json)
    results.put(said)
    if res is None:
        return
    while True:
        command = commands.get()
        if command is None:
            return
        for message in race_messages(res, command, cancel.is_set):
            results.put(message)


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


@dataclass
class Worker:
    """The server's handle on one training process."""

    settings: Settings
    process: Any = None
    commands: Any = field(default_factory=_ctx.Queue)
    results: Any = field(default_factory=_ctx.Queue)
    cancel: Any = field(default_factory=_ctx.Event)

    def start(self) -> None:
        self.process = _ctx.Process(
            target=_serve,
            args=(self.settings.model_dump(mode="json"), self.commands, self.results, self.cancel),
            name="headstart-worker",
            daemon=True,
        )
        self.process.start()
        log.info("training worker started (pid %s)", self.process.pid)

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.is_alive()

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    @property
    def exit_code(self) -> int | None:
        return self.process.exitcode if self.process else None

    def run(self, race_id: str, config: dict[str, Any]) -> None:
        self.cancel.clear()  # cleared before sending, so a cancel that follows is never lost
        self.commands.put(RunRace(race_id, config))

    def stop_race(self) -> None:
        self.cancel.set()

    def poll(self, timeout: float) -> WorkerMessage | None:
        try:
            message: WorkerMessage = self.results.get(timeout=timeout)
            return message
        except queue.Empty:
            return None

    def shutdown(self, timeout: float = 5.0) -> None:
        if self.process is None:
            return
        self.cancel.set()
        if self.process.is_alive():
            self.commands.put(None)
            self.process.join(timeout)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(timeout)
        for q in (self.commands, self.results):
            q.cancel_join_thread()
            q.close()
