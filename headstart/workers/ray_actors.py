"""Training workers as Ray actors: ``HEADSTART_BACKEND=ray`` (``pip install -e ".[ray]"``).

Each worker is an actor holding its resources (dataset, checkpoints, kept features) for as
long as it lives, on whichever machine of the cluster Ray places it, with a share of a GPU
where the cluster has them. A race is a streaming call: the actor yields the same messages a
local worker process sends (headstart/workers/interface.py), as they happen, and a thread here hands them to
the hub through ``poll``. An actor that dies is a worker that died: the hub hears it and makes
a fresh one, as for a local process. The hub sees only ``TrainingWorker``.
"""

from __future__ import annotations

import logging
import queue
import threading
from typing import Any

from headstart.errors import SetupError
from headstart.settings import Settings
from headstart.workers.interface import Fatal, RunRace, WorkerMessage
from headstart.workers.runner import Parking, load

log = logging.getLogger(__name__)


class RayUnavailable(SetupError):
    """The Ray cluster named cannot be reached, or Ray is not installed: the server does not start."""


def connect(settings: Settings) -> None:
    """Join the cluster at ``ray_address`` (``auto``, ``ray://host:10001``), or start one here
    (no address: this machine's CPUs, on loopback). Refused at once, naming the address."""
    try:
        import ray
    except ImportError as exc:
        raise RayUnavailable('HEADSTART_BACKEND=ray needs Ray: pip install -e ".[ray]"') from exc
    if ray.is_initialized():
        return
    address = settings.ray.address
    try:
        if address:
            ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False)
        else:
            cpus = settings.ray.cpus
            ray.init(num_cpus=cpus, include_dashboard=False, logging_level=logging.WARNING, log_to_driver=False)
    except Exception as exc:  # ConnectionError, TimeoutError, ray's own: all mean the same here
        where = address or "a new local instance"
        raise RayUnavailable(f"cannot reach the Ray cluster at {where}: {type(exc).__name__}: {exc}") from exc
    log.info("Ray cluster: %s", ray.cluster_resources())  # type: ignore[no-untyped-call]


class _Trainer:
    """The actor: one worker's resources, and the race it trains."""

    def __init__(self, settings_json: dict[str, Any]) -> None:
        self.res, self.said = load(settings_json)
        self.stop, self.pausing = threading.Event(), threading.Event()
        self.parked = Parking()

    def ready(self) -> WorkerMessage:
        return self.said

    def run(self, race_id: str, config: dict[str, Any]) -> Any:
        self.stop.clear()
        self.pausing.clear()
        yield from self.parked.train(self.res, RunRace(race_id, config), self.stop.is_set, self.pausing.is_set)

    def cancel(self) -> None:
        self.stop.set()

    def pause(self) -> None:
        self.pausing.set()

    def drop(self, race_id: str) -> None:
        self.parked.drop(race_id)


class RayWorker:
    """The hub's handle on one actor (a ``TrainingWorker``)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.messages: queue.Queue[WorkerMessage] = queue.Queue()
        self.actor: Any = None
        self._alive = False

    def start(self) -> None:
        import ray

        has_gpus = ray.cluster_resources().get("GPU", 0)  # type: ignore[no-untyped-call]
        gpus = self.settings.ray.gpus_per_worker if has_gpus else 0
        # Calls at once: a race, and the cancel or pause that stops it.
        options: dict[str, Any] = {"max_concurrency": 3, "num_cpus": 1, "num_gpus": gpus}
        self.actor = ray.remote(_Trainer).options(**options).remote(self.settings.model_dump(mode="json"))
        self._alive = True
        threading.Thread(target=self._follow, args=(self.actor.ready.remote(),), daemon=True, name="ray-ready").start()

    def _follow(self, calls: Any) -> None:
        """Hand a call's messages to ``poll`` as they come; an actor that died is a worker that died."""
        import ray
        from ray.exceptions import RayActorError

        try:
            for ref in calls if isinstance(calls, ray.ObjectRefGenerator) else [calls]:
                message = ray.get(ref)
                self.messages.put(message)
                if isinstance(message, Fatal):
                    return
        except RayActorError as exc:
            log.error("training actor died: %s", exc)
            self._alive = False

    @property
    def alive(self) -> bool:
        return self._alive

    @property
    def exit_code(self) -> int | None:
        return None  # an actor has no exit code here: the log says why it died

    def run(self, race_id: str, config: dict[str, Any]) -> None:
        calls = self.actor.run.options(num_returns="streaming").remote(race_id, config)
        threading.Thread(target=self._follow, args=(calls,), daemon=True, name="ray-race").start()

    def stop_race(self) -> None:
        self.actor.cancel.remote()

    def pause_race(self) -> None:
        self.actor.pause.remote()

    def drop_race(self, race_id: str) -> None:
        self.actor.drop.remote(race_id)

    def poll(self, timeout: float) -> WorkerMessage | None:
        try:
            return self.messages.get(timeout=timeout)
        except queue.Empty:
            return None

    def shutdown(self, timeout: float = 5.0) -> None:
        import ray

        if self.actor is not None:
            ray.kill(self.actor)
        self._alive = False
