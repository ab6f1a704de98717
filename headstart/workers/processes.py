"""The local training worker: a separate process on this machine that owns the device and runs races.

Training never runs on the server's event loop. The server sends ``RunRace`` commands; the
worker answers with the messages of headstart/workers/interface.py. If the process dies, the
server notices (``alive``) and starts a fresh one.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import queue
import signal
import threading
from dataclasses import dataclass, field
from typing import Any

from headstart.settings import Settings
from headstart.workers.interface import DropRace, RunRace, WorkerMessage
from headstart.workers.runner import Parking, load

log = logging.getLogger(__name__)
_ctx = mp.get_context("spawn")  # forking a process that holds torch threads or CUDA is unsafe


def _exit_with_the_server() -> None:
    """End this process when the server that started it ends, however it ends: a killed server
    (kill -9, the OOM killer) cannot tell its worker to stop, and an orphan holds the device."""
    server = mp.parent_process()
    if server is not None:
        server.join()  # returns once the server's end of a pipe closes, which it does as it dies
        os._exit(0)


def _serve(
    settings_json: dict[str, Any],
    commands: mp.Queue[RunRace | DropRace | None],
    results: mp.Queue[WorkerMessage],
    cancel: Any,
    pause: Any,
) -> None:
    """The worker process's main loop."""
    # Ctrl-C and systemd's stop signal the whole group: the worker leaves them to its server,
    # which stops it in order (its race cancelled first), and it ends with its server anyway.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)
    threading.Thread(target=_exit_with_the_server, daemon=True, name="server-watch").start()
    res, said = load(settings_json)
    results.put(said)
    if res is None:
        return
    parked = Parking()
    while True:
        command = commands.get()
        if command is None:
            return
        if isinstance(command, DropRace):
            parked.drop(command.race_id)
            continue
        for message in parked.train(res, command, cancel.is_set, pause.is_set):
            results.put(message)


@dataclass
class Worker:
    """The server's handle on one training process."""

    settings: Settings
    process: Any = None
    commands: Any = field(default_factory=_ctx.Queue)
    results: Any = field(default_factory=_ctx.Queue)
    cancel: Any = field(default_factory=_ctx.Event)
    pause: Any = field(default_factory=_ctx.Event)

    def start(self) -> None:
        self.process = _ctx.Process(
            target=_serve,
            args=(self.settings.model_dump(mode="json"), self.commands, self.results, self.cancel, self.pause),
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
        self.cancel.clear()  # cleared before sending, so a cancel or pause that follows is never lost
        self.pause.clear()
        self.commands.put(RunRace(race_id, config))

    def stop_race(self) -> None:
        self.cancel.set()

    def pause_race(self) -> None:
        self.pause.set()

    def drop_race(self, race_id: str) -> None:
        self.commands.put(DropRace(race_id))

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
