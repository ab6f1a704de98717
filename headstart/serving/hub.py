"""Races between the websocket viewers and the training workers (asyncio side).

The hub ties the parts together, each with a module of its own: the workers, behind one
interface (``TrainingWorker``: a local process, headstart/workers/processes.py, or a Ray actor,
headstart/workers/ray_actors.py); the queue and its fair order (headstart/serving/queue.py); fan-out to viewers,
history first, then live messages, so a late joiner misses nothing and a slow browser cannot
stall the others (headstart/serving/fanout.py); replays of stored races (headstart/serving/replays.py); and class codes
(headstart/serving/class_codes.py). A race left without viewers for a grace period is cancelled.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

from headstart.race import protocol, sources
from headstart.race.events import RaceConfig, beyond_data
from headstart.race.identity import cache_key
from headstart.serving import class_codes
from headstart.serving.fanout import Outbox, deliver
from headstart.serving.metrics import Metrics
from headstart.serving.queue import RaceQueue
from headstart.serving.quotas import NotFound, Rate, Refused, TooMany
from headstart.serving.replays import Replays
from headstart.settings import Limits, Settings
from headstart.store import Store, StoreError
from headstart.workers.processes import Cancelled, EventOut, Failed, Fatal, Finished, Ready, TrainingWorker, Worker, WorkerMessage

log = logging.getLogger(__name__)


Status = Literal["queued", "running", "done", "cancelled", "error"]
FINISHED: tuple[Status, ...] = ("done", "cancelled", "error")


VIEWER_COUNT_DELAY_S = 0.25  # a broadcast race's viewers hear their number at most this often
LISTING_WAIT_S = 1.0  # how long a listing of finished races waits for one being written

SAVE_RETRY_S = 60.0  # a finished race the store refused (a full or read-only disk) is tried again so often


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

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    def snapshot(self) -> dict[str, Any]:
        return {
            "race_id": self.id,
            "status": self.status,
            "config": self.config.model_dump(),
            "device": self.device,
            "created": self.created,
            "events": list(self.messages),  # a copy: the store writes it on its own thread
        }


@dataclass
class Slot:
    """One worker process and the race it is running, if any."""

    worker: TrainingWorker
    race: Race | None = None
    device: str | None = None
    recipe: str | None = None  # fingerprint of the checkpoint and training recipe
    max_n: int | None = None  # the most target images its dataset holds, balanced over the classes
    ready: bool = False
    failed_starts: int = 0  # workers in a row that died before they were ready


class Hub:
    # ``new_worker``: how a worker is made (a process on this machine unless told otherwise).
    def __init__(self, settings: Settings, new_worker: Callable[[], TrainingWorker] | None = None) -> None:
        self.settings = settings
        self._new_worker = new_worker or self._default_workers()
        self.races: OrderedDict[str, Race] = OrderedDict()
        self.waiting: RaceQueue[Race] = RaceQueue()
        self.slots: list[Slot] = []
        self.worker_error: str | None = None
        self.store = Store(settings.database)
        self.metrics = Metrics()
        self.replays = Replays(settings.replay_interval_s)
        self._listeners: set[Outbox] = set()  # every connection's outbox, for news of the server
        self.codes = class_codes.ClassCodes(self.store)
        self.broadcasts = Rate(settings.broadcasts_per_address_per_minute, 60)
        self.guesses = Rate(settings.code_guesses_per_address_per_minute, 60)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closing = False

    def _default_workers(self) -> Callable[[], TrainingWorker]:
        if self.settings.backend == "ray":
            from headstart.workers.ray_actors import RayWorker

            return lambda: RayWorker(self.settings)
        return lambda: Worker(self.settings)

    # --- lifecycle ---------------------------------------------------------
    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        if self.settings.backend == "ray":  # a cluster that cannot be reached stops the start, named
            from headstart.workers import ray_actors

            await asyncio.to_thread(ray_actors.connect, self.settings)
        self._forget_codes()
        for _ in range(self.settings.max_concurrent_races):
            slot = Slot(self._new_worker())
            self.slots.append(slot)
            self._launch(slot)

    def _forget_codes(self) -> None:
        """Free codes nothing was broadcast under for ``class_code_days``, now and every hour."""
        self.codes.forget_older_than(self.settings.class_code_days)
        if self._loop is not None and not self._closing:
            self._loop.call_later(3600, self._forget_codes)

    async def stop(self) -> None:
        self._closing = True
        for race in list(self.waiting):
            self._finish(race, "cancelled", protocol.Cancelled(race_id=race.id, reason="the server is shutting down"))
        for slot in self.slots:
            if slot.race:
                self._finish(
                    slot.race, "cancelled", protocol.Cancelled(race_id=slot.race.id, reason="the server is shutting down")
                )
            await asyncio.to_thread(slot.worker.shutdown)
        self.replays.stop()
        await asyncio.to_thread(self.store.close)  # it finishes the writes asked for

    def _launch(self, slot: Slot) -> None:
        slot.worker.start()
        threading.Thread(target=self._read, args=(slot, slot.worker), daemon=True, name="worker-reader").start()

    def _read(self, slot: Slot, worker: TrainingWorker) -> None:
        """Reader thread: hands the worker's messages to the event loop; reports its death."""
        assert self._loop is not None
        while not self._closing:
            msg = worker.poll(0.2)
            if msg is not None:
                self._loop.call_soon_threadsafe(self._on_message, slot, worker, msg)
            elif not worker.alive:
                if not self._closing:
                    self._loop.call_soon_threadsafe(self._on_death, slot, worker)
                return

    # --- what the websocket layer calls -------------------------------------
    def submit(self, config: RaceConfig, owner: str, broadcast: bool = False, address: str = "") -> Race:
        """Queue a race, or join the identical one already training, or replay a stored one.

        A broadcast race gets a class code (headstart.serving.class_codes). A client's broadcasts share one:
        the class that followed its last race is told of the next (``next``). ``address`` is
        where the request came from, for the limits each address has.
        """
        code = None
        if broadcast:
            if not self.broadcasts.allow(address):
                allowed = self.broadcasts.describe("races")
                raise TooMany("too_many_broadcasts", f"this address may broadcast {allowed}; try again shortly")
            code = self.codes.of(owner) or self._new_code()
        race = self._submit(config, owner, address, joinable=lambda r: not broadcast or r.code in (None, code))
        if code is not None and race.code is None:
            previous = self.races.get(self.codes.race_of(code) or "")
            race.code = code
            if race in self.waiting:
                self._announce_positions()  # a broadcast race goes ahead within its turn
            self.codes.keep(code, owner, race.id)
            self._publish(race, protocol.Broadcast(race_id=race.id, code=code))
            if previous is not None and previous is not race:
                # To its viewers now, not into its history: a page that opens that race later,
                # from Recent races or its own link, wants that race.
                moved = protocol.wire(protocol.Next(race_id=previous.id, next_race_id=race.id, code=code))
                for outbox in previous.subscribers:
                    outbox.put_nowait(moved)
        return race

    def by_code(self, code: str, address: str = "") -> Race:
        """The latest race broadcast under ``code``. Each address may miss only so many codes a
        minute: the whole space of codes could otherwise be tried in seconds."""
        typed, code = code, code.strip().upper()
        if self.guesses.exhausted(address):
            raise TooMany(
                "too_many_guesses",
                f"this address may try {self.guesses.describe('class codes')}; check the code on the board and try again shortly",
                "code",
            )
        race_id = self.codes.race_of(code) if len(code) == class_codes.LENGTH else None
        if race_id is None:
            self.guesses.allow(address)
            raise NotFound(
                "unknown_code",
                f"no broadcast race with code {typed!r}; a code is the {class_codes.LENGTH} letters on the teacher's screen",
                "code",
            )
        try:
            race = self.get(race_id)
        except Refused:
            # Unfinished races live in memory only. The code is still its starter's, so a page can
            # wait for the next race broadcast under it rather than send the class away.
            raise NotFound(
                "race_lost",
                f"the last race broadcast under code {code} did not finish before the server restarted; "
                "the code will show the next race its starter broadcasts",
                "code",
            ) from None
        race.code = race.code or code  # a finished race read back from the store
        return race

    def _new_code(self) -> str:
        try:
            return self.codes.new()
        except class_codes.CodesExhausted as exc:
            raise Refused("no_free_code", f"{exc}; try again later, or train without broadcasting") from None

    def _submit(self, config: RaceConfig, owner: str, address: str, joinable: Callable[[Race], bool]) -> Race:
        if self.worker_error:
            raise Refused("worker_unavailable", self._cannot_train().message)
        for race in self.races.values():
            if race.config == config and not race.finished and race.replay_of is None and joinable(race):
                return race  # training it twice would give the same curves: watch this one
        in_flight = sum(1 for r in self.races.values() if r.owner == owner and not r.finished)
        if in_flight >= self.settings.max_races_per_client:
            raise TooMany(
                "too_many_races",
                f"you already have {in_flight} race(s) in flight (limit "
                f"{self.settings.max_races_per_client}); cancel it or wait for it to finish",
            )
        ready = next((slot for slot in self.slots if slot.device), None)
        held = self._data_holds()
        if held is not None and config.n > held:
            raise Refused(
                "dataset_too_small",
                f"config.n: {beyond_data(config.n, held, len(self.settings.target_classes))}",
                "config.n",
            )
        # A replay streams from the store: it needs no queue slot, so no queue limit applies.
        stored = self._stored(config, ready) if ready else None
        if not stored:
            self._may_queue(address)
        race = Race(id=secrets.token_urlsafe(6), config=config, owner=owner, address=address)
        self.races[race.id] = race
        self._forget_old()
        if stored:
            self._replay(race, stored)
            return race
        self._publish(race, protocol.Accepted(race_id=race.id, config=config))
        self.waiting.append(race)
        self._dispatch()
        self._announce_positions()
        return race

    def _may_queue(self, address: str) -> None:
        """Refuse a race that would take a queue slot past the queue's or this address's limit."""
        limit = self.settings.max_races_per_address
        held = sum(1 for r in self.races.values() if r.address == address and not r.finished and r.replay_of is None)
        if held >= limit:
            raise TooMany(
                "too_many_races_from_address",
                f"{held} races from this address are queued or training (limit {limit}); wait for one to finish",
            )
        if len(self.waiting) >= self.settings.max_queue:
            raise Refused("queue_full", f"the queue is full ({self.settings.max_queue} races waiting); try again shortly")

    def cancel(self, race_id: str, reason: str = "its starter pressed Stop") -> None:
        race = self.get(race_id)
        if race.finished:
            return
        queued = race in self.waiting  # a replay never queues: it streams from the store
        if queued or race.replay_of:
            if queued:
                self.waiting.remove(race)
            self._finish(race, "cancelled", protocol.Cancelled(race_id=race.id, reason=reason))
            self._announce_positions()
        else:
            for slot in self.slots:
                if slot.race is race:
                    race.stop_reason = race.stop_reason or reason
                    slot.worker.stop_race()  # the worker confirms with "cancelled" within a batch

    def get(self, race_id: str) -> Race:
        race = self.races.get(race_id)
        if race is None and (stored := self.store.get(race_id)):
            race = Race(
                id=race_id,
                config=RaceConfig.as_stored(stored["config"]),
                owner="",
                status="done",
                messages=stored["events"],
                created=stored["created"],
                device=stored["device"],
            )
            self.races[race_id] = race
            self._forget_old()
        if race is None:
            raise NotFound("unknown_race", f"no race with id {race_id!r}", field="race_id")
        return race

    async def recent(self, limit: int, offset: int) -> dict[str, Any]:
        # A race that has just finished is listed, unless the database is held locked: then the
        # list comes without it rather than keeping the page waiting.
        await asyncio.to_thread(self.store.written, timeout=LISTING_WAIT_S)
        total, races = self.store.recent(limit, offset)
        return {"total": total, "limit": limit, "offset": offset, "races": races}

    @contextmanager
    def listen(self, outbox: Outbox) -> Iterator[None]:
        """News of the server itself, not of one race, into ``outbox``: that it can no longer train.

        Told to every connection, so an idle page learns it before its next Train, and at once to
        one that connects later (a page whose socket dropped meanwhile).
        """
        if self.worker_error:
            outbox.put_nowait(protocol.wire(self._cannot_train()))
        self._listeners.add(outbox)
        try:
            yield
        finally:
            self._listeners.discard(outbox)

    def owner_of(self, race_id: str) -> str | None:
        race = self.races.get(race_id)
        return race.owner if race else None

    @contextmanager
    def subscribe(self, race_id: str, outbox: Outbox) -> Iterator[Race]:
        """History first, then live messages, into ``outbox``; no await in between, so no gap."""
        race = self.get(race_id)
        for message in race.messages:
            outbox.put_nowait(message)
        if race.status == "queued":
            outbox.put_nowait(self._position_message(race))
        race.subscribers.add(outbox)
        self._count_viewers(race)
        if race.orphan_timer:
            race.orphan_timer.cancel()
            race.orphan_timer = None
        try:
            yield race
        finally:
            race.subscribers.discard(outbox)
            self._count_viewers(race)
            if not race.subscribers and not race.finished and self._loop and not self._closing:
                race.orphan_timer = self._loop.call_later(self.settings.orphan_grace_s, self._cancel_orphan, race)

    def limits(self) -> Limits:
        """The settings' limits, n capped at what the worker's dataset holds once it has said.

        A page then offers only races this server can train. The worker trains the default race
        before it is ready, so a dataset it reports always holds the default n.
        """
        limits, held = self.settings.limits, self._data_holds()
        if held is None or held >= limits.n.max:
            return limits
        return limits.model_copy(update={"n": limits.n.model_copy(update={"max": held})})

    def health(self) -> dict[str, Any]:
        up = [s for s in self.slots if s.worker.alive]
        return {
            "status": "ok" if up and not self.worker_error else "degraded",
            "worker": "up" if up and all(s.ready for s in up) else ("starting" if up else "down"),
            "workers": len(up),
            "device": next((s.device for s in self.slots if s.device), None),
            "running": sum(1 for s in self.slots if s.race),
            "queued": len(self.waiting),
            "error": self.worker_error,
        }

    # --- internals -----------------------------------------------------------
    def _replay(self, race: Race, stored: dict[str, Any]) -> None:
        self.replays.start(race, stored, self._publish, self._replayed)

    def _replayed(self, race: Race) -> None:
        log.info("race %s replayed from %s", race.id, race.replay_of)
        if race.code and race.replay_of:
            # A replay is not stored: after a restart its code names the race it replayed.
            self.codes.settle(race.code, race.owner, race.replay_of)

    def _data_holds(self) -> int | None:
        """The most target images the workers' dataset holds, once one has said."""
        return next((slot.max_n for slot in self.slots if slot.max_n is not None), None)

    def _trained_here(self, key: str) -> dict[str, Any] | None:
        """A race of ``key`` (``cache_key``) this process trained to the end.

        Found whether or not the store has it yet (its write may be waiting for a lock, or have
        failed on a full disk), and without a read that could wait.
        """
        race = next((r for r in reversed(self.races.values()) if r.key == key), None)
        return race.snapshot() if race else None

    def _key(self, config: RaceConfig, device: str | None, recipe: str | None) -> str:
        sha = None
        if config.source != sources.DEFAULT:
            card = sources.card(self.settings.checkpoint, config.source) or {}
            sha = str(card.get("sha256"))
        return cache_key(config, device, recipe, sha)

    def _stored(self, config: RaceConfig, slot: Slot) -> dict[str, Any] | None:
        """A finished race of ``config`` on ``slot``'s device and recipe, to replay."""
        if not slot.device:
            return None
        key = self._key(config, slot.device, slot.recipe)
        if trained := self._trained_here(key):
            return trained
        try:
            return self.store.find(key)
        except StoreError as exc:
            log.error("%s; training the race rather than replaying it", exc)
            return None

    def _count_viewers(self, race: Race) -> None:
        """Tell a broadcast race's viewers how many they are, so a teacher sees the class arrive.

        Once per quarter second at most: a class of thirty joining at once is one message each,
        not thirty. Live only, like a queue position: a count in the history would be stale.
        """
        if race.code is None or race.viewers_due is not None or self._loop is None or self._closing:
            return

        def tell() -> None:
            race.viewers_due = None
            message = protocol.wire(protocol.Viewers(race_id=race.id, count=len(race.subscribers)))
            for outbox in race.subscribers:
                outbox.put_nowait(message)

        race.viewers_due = self._loop.call_later(VIEWER_COUNT_DELAY_S, tell)

    def _cancel_orphan(self, race: Race) -> None:
        race.orphan_timer = None
        if not race.subscribers and not race.finished:
            log.info("race %s has no viewers left; cancelling", race.id)
            self.cancel(race.id, reason="no viewers left")

    def _dispatch(self) -> None:
        for slot in self.slots:
            while slot.race is None and slot.worker.alive and self.waiting:
                race = self._queue_order()[0]
                self.waiting.remove(race)
                # An identical race may have finished while this one waited (another class's,
                # which a broadcast does not join): replay it rather than train it again. This
                # process trained it, so memory has it; the store was searched when this one came.
                stored = self._trained_here(self._key(race.config, slot.device, slot.recipe))
                if stored:
                    self._replay(race, stored)
                    continue
                race.status, slot.race = "running", race
                race.device = slot.device
                slot.worker.run(race.id, race.config.model_dump())

    def _announce_positions(self) -> None:
        self.metrics.queued.set(len(self.waiting))
        self.metrics.running.set(sum(1 for slot in self.slots if slot.race))
        for position, race in enumerate(self._queue_order(), 1):
            message = protocol.wire(protocol.Queued(race_id=race.id, position=position))
            for outbox in race.subscribers:
                outbox.put_nowait(message)

    def count_workers(self) -> None:
        """The workers gauge: busy (training a race), idle (ready, waiting for one), starting."""
        alive = [s for s in self.slots if s.worker.alive]
        busy = sum(1 for s in alive if s.race)
        idle = sum(1 for s in alive if s.ready and not s.race)
        for state, count in (("busy", busy), ("idle", idle), ("starting", len(alive) - busy - idle)):
            self.metrics.workers.labels(state).set(count)

    def _position_message(self, race: Race) -> dict[str, Any]:
        return protocol.wire(protocol.Queued(race_id=race.id, position=self._queue_order().index(race) + 1))

    def _queue_order(self) -> list[Race]:
        """The waiting races in the order they will train (headstart/serving/queue.py)."""
        return self.waiting.order(slot.race for slot in self.slots if slot.race)

    def _publish(self, race: Race, message: protocol.ServerMessage | dict[str, Any]) -> None:
        """Into the race's history and to its viewers: a server message, or a stamped race event."""
        deliver(message if isinstance(message, dict) else protocol.wire(message), race.messages, race.subscribers)

    def _finish(self, race: Race, status: Status, message: protocol.ServerMessage | dict[str, Any]) -> None:
        if race.finished:
            return
        self._publish(race, message)
        race.status = status
        self.metrics.finished.labels(status).inc()
        epochs = sum(1 for m in race.messages if m["type"] == "epoch")
        log.info(
            "race %s %s: config=%s device=%s epochs=%d seconds=%.1f",
            race.id,
            status,
            race.config.model_dump_json(),
            race.device,
            epochs,
            time.time() - race.created,
        )

    def _free(self, slot: Slot) -> None:
        slot.race = None
        self._dispatch()
        self._announce_positions()

    def _on_message(self, slot: Slot, worker: TrainingWorker, msg: WorkerMessage) -> None:
        if worker is not slot.worker:
            return  # from a worker already replaced
        if isinstance(msg, Ready):
            slot.ready, slot.device, slot.recipe, slot.max_n = True, msg.device, msg.recipe, msg.max_n
            slot.failed_starts = 0
            return
        if isinstance(msg, Fatal):
            self._give_up(slot, msg.why)
            return
        race = slot.race
        if race is None or race.id != msg.race_id:
            return
        match msg:
            case EventOut(event=event, emitted_at=emitted_at):
                if event.type == "plan":
                    race.device = event.device
                self.metrics.event_latency.observe(max(0.0, time.time() - emitted_at))
                message = protocol.race_event(event, race.id, emitted_at)
                if event.type == "done":
                    # Finished as soon as viewers can see it, so a repeat request replays it rather
                    # than attaching to a race that will say nothing more.
                    self._finish(race, "done", message)
                    race.key = self._key(race.config, race.device, slot.recipe)
                    self._save(race.snapshot(), race.key, time.time())
                else:
                    self._publish(race, message)
            case Finished():
                self._free(slot)
            case Cancelled():
                reason = race.stop_reason or "stopped before the last epoch"
                self._finish(race, "cancelled", protocol.Cancelled(race_id=race.id, reason=reason))
                self._free(slot)
            case Failed(why=why):
                self._finish(race, "error", protocol.Error(code="training_failed", message=why, race_id=race.id))
                self._free(slot)

    def _save(self, snapshot: dict[str, Any], key: str, finished: float) -> None:
        """Store a finished race; one the store refuses is tried again until it takes it, so it is
        listed once the disk has room again. Meanwhile memory keeps it for repeats."""

        def failed(exc: StoreError) -> None:  # on the store's thread
            log.error("%s; it replays from memory meanwhile, and is tried again in %g s", exc, SAVE_RETRY_S)
            if self._loop is not None and not self._closing:
                with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: the server stopped
                    self._loop.call_soon_threadsafe(self._loop.call_later, SAVE_RETRY_S, self._save, snapshot, key, finished)

        self.store.later(self.store.save, snapshot, key, finished, failed=failed)

    def _cannot_train(self, race_id: str | None = None) -> protocol.Error:
        message = f"this server cannot train: {self.worker_error}"
        return protocol.Error(code="worker_unavailable", message=message, race_id=race_id)

    def _give_up(self, slot: Slot, why: str) -> None:
        """No more workers: every race waiting to train, and any training, ends with the reason,
        and every connection hears it."""
        self.worker_error = why
        log.error("training worker cannot start: %s", why)
        for r in [*([slot.race] if slot.race else []), *self.waiting]:
            self._finish(r, "error", self._cannot_train(r.id))
        self.waiting.clear()
        slot.race = None
        for outbox in self._listeners:
            outbox.put_nowait(protocol.wire(self._cannot_train()))

    def _on_death(self, slot: Slot, worker: TrainingWorker) -> None:
        if worker is not slot.worker or self._closing or self.worker_error:
            return
        code = worker.exit_code
        slot.failed_starts += 0 if slot.ready else 1
        if slot.failed_starts >= self.settings.worker_start_tries:
            worker.shutdown(timeout=1.0)
            self._give_up(
                slot,
                f"the training worker stopped {slot.failed_starts} times in a row before it was ready (last exit "
                f"code {code}); the server's log may say why. Mend that, then restart the server.",
            )
            return
        log.error("training worker died (exit code %s); starting a fresh one", code)
        if slot.race:
            message = (
                f"the training worker stopped unexpectedly (exit code {code}); a fresh worker is starting, "
                "so start the race again"
            )
            self._finish(slot.race, "error", protocol.Error(code="worker_died", message=message, race_id=slot.race.id))
            slot.race = None
        worker.shutdown(timeout=1.0)
        slot.worker, slot.ready, slot.device, slot.recipe = self._new_worker(), False, None, None
        self._launch(slot)
        self._dispatch()

    def _forget_old(self, keep: int = 500) -> None:
        while len(self.races) > keep:
            oldest_id = next((rid for rid, r in self.races.items() if r.finished), None)
            if oldest_id is None:
                return
            self.races.pop(oldest_id)  # a finished race is still in the store, where its code finds it
