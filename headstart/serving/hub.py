"""Races between the websocket viewers and the training workers (asyncio side).

The hub ties the parts together, each with a module of its own: the races it knows
(registry.py), the workers (pool.py, behind headstart/workers), the queue and its fair
order (queue.py), fan-out to viewers, history first, then live messages, so a late joiner
misses nothing and a slow browser cannot stall the others (fanout.py), replays of stored
races (replays.py), and class codes (classroom.py). What it does itself: admit a race, hand
it to a worker, and tell its viewers what happened. A race left without viewers for a grace
period is cancelled.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from headstart.race import protocol
from headstart.race.cost import race_cost
from headstart.race.events import RaceConfig
from headstart.race.strategies import raced
from headstart.serving import admission
from headstart.serving.classroom import Classroom
from headstart.serving.fanout import Outbox, deliver, tell
from headstart.serving.metrics import Metrics
from headstart.serving.pool import Pool, Slot, default_workers
from headstart.serving.queue import RaceQueue
from headstart.serving.quotas import Refused, TooMany
from headstart.serving.races import Race, Status
from headstart.serving.registry import Registry
from headstart.serving.replays import Replays
from headstart.serving.turns import Turns
from headstart.serving.uploading import Receiving
from headstart.settings import Limits, Settings
from headstart.store import Store
from headstart.workers.interface import Cancelled, EventOut, Failed, Finished, Paused, TrainingWorker, WorkerMessage

log = logging.getLogger(__name__)

UPLOAD_SWEEP_S = 3600.0  # how often expired uploads are looked for
STORE_WAIT_S = 10.0  # how long start waits for the store's first writes; a locked file says so in the log


class Hub:
    # ``new_worker``: how a worker is made (a process on this machine unless told otherwise).
    def __init__(self, settings: Settings, new_worker: Callable[[], TrainingWorker] | None = None) -> None:
        self.settings = settings
        self.store = Store(settings.paths.database)
        self.registry = Registry(settings, self.store)
        self.classroom = Classroom(settings, self.registry)
        self.pool = Pool(settings, new_worker or default_workers(settings), self._on_race, self._on_lost, self._on_gave_up)
        self.turns = Turns(settings, self.pool)
        self.metrics = Metrics()
        self.replays = Replays(settings.server.replay_interval_s)
        self.uploading = Receiving(settings, self.registry.uploads, self.registry.folders)
        self._sweeper: asyncio.Task[None] | None = None
        self._listeners: set[Outbox] = set()  # every connection's outbox, for news of the server
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closing = False

    @property
    def races(self) -> dict[str, Race]:
        return self.registry.races

    @property
    def waiting(self) -> RaceQueue[Race]:
        return self.turns.waiting

    @property
    def slots(self) -> list[Slot]:
        return self.pool.slots

    @property
    def worker_error(self) -> str | None:
        return self.pool.error

    # --- lifecycle ---------------------------------------------------------
    async def start(self) -> None:
        self._loop = self.registry.loop = self.classroom.loop = asyncio.get_running_loop()
        await self.pool.start(self._loop)
        self.classroom.forget_codes()
        # Served only once that write is done: a stale code typed at once must not find last term's race.
        await asyncio.to_thread(self.store.written, STORE_WAIT_S)
        self._sweeper = asyncio.create_task(self._sweep_uploads())

    async def _sweep_uploads(self) -> None:
        """Expired uploads deleted every so often, not only when another arrives."""
        while True:
            await asyncio.sleep(UPLOAD_SWEEP_S)
            for upload_id in await asyncio.to_thread(self.registry.uploads.sweep):
                self.registry.folders.forget(upload_id)

    async def stop(self) -> None:
        self._closing = self.registry.closing = self.classroom.closing = True
        if self._sweeper is not None:
            self._sweeper.cancel()
        for race in [*self.waiting, *self.pool.busy()]:
            self._finish(race, "cancelled", protocol.Cancelled(race_id=race.id, reason="the server is shutting down"))
        await self.pool.stop()
        self.replays.stop()
        await asyncio.to_thread(self.store.close)  # it finishes the writes asked for

    # --- what the websocket layer calls -------------------------------------
    def submit(
        self, config: RaceConfig, owner: str, broadcast: bool = False, address: str = "", lesson: str | None = None
    ) -> Race:
        """Queue a race, or join the identical one already training, or replay a stored one.

        A broadcast race gets a class code (classroom.py). A client's broadcasts share one: the
        class that followed its last race is told of the next (``next``). ``address`` is where
        the request came from, for the limits each address has.
        """
        code = self.classroom.code_for(owner, address) if broadcast else None
        race = self._submit(config, owner, address, lambda r: not broadcast or r.code in (None, code), lesson)
        if code is not None and race.code is None:
            self.classroom.broadcast(race, code, self._publish)
            if race in self.waiting:
                self._announce_positions()  # a broadcast race goes ahead within its turn
        return race

    def predict(self, race_id: str, client: str, answer: str) -> None:
        """Count a page's prediction for a class race, and tell its viewers the counts (live
        only, like a viewer count: a tally in the history would be stale)."""
        race = self.get(race_id)
        if race.code is None:
            raise Refused("not_a_class_race", "predictions are counted for a class race (one broadcast with a code)", "race_id")
        lanes = raced(race.config.extra)
        if answer not in lanes:
            raise Refused("invalid_prediction", f"answer must be one of {', '.join(lanes)}, got {answer!r}", "answer")
        if client not in race.predictions and len(race.predictions) >= self.settings.quotas.max_connections:
            raise TooMany("too_many_predictions", f"this race has counted {len(race.predictions)} pages' predictions already")
        race.predictions[client] = answer
        counts = {lane: sum(1 for a in race.predictions.values() if a == lane) for lane in lanes}
        tell(protocol.wire(protocol.Tally(race_id=race.id, counts=counts)), race.subscribers)

    def by_code(self, code: str, address: str = "") -> Race:
        return self.classroom.find(code, address)

    def get(self, race_id: str) -> Race:
        return self.registry.get(race_id)

    def owner_of(self, race_id: str) -> str | None:
        return self.registry.owner_of(race_id)

    async def recent(self, limit: int, offset: int) -> dict[str, Any]:
        return await self.registry.recent(limit, offset)

    def cancel(self, race_id: str, reason: str = "its starter pressed Stop") -> None:
        race = self.get(race_id)
        if race.finished:
            return
        queued = race in self.waiting  # a replay never queues: it streams from the store
        if queued or race.replay_of:
            if queued:
                self.turns.unqueue(race)
            self._finish(race, "cancelled", protocol.Cancelled(race_id=race.id, reason=reason))
            self._announce_positions()
            return
        for slot in self.slots:
            if slot.race is race:
                race.stop_reason = race.stop_reason or reason
                slot.worker.stop_race()  # the worker confirms with "cancelled" within a batch

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

    @contextmanager
    def subscribe(self, race_id: str, outbox: Outbox) -> Iterator[Race]:
        """History first, then live messages, into ``outbox``; no await in between, so no gap."""
        race = self.get(race_id)
        for message in race.messages:
            outbox.put_nowait(message)
        if race.status == "queued":
            outbox.put_nowait(protocol.wire(self.turns.told(race)))
        race.subscribers.add(outbox)
        self.classroom.count_viewers(race)
        if race.orphan_timer:
            race.orphan_timer.cancel()
            race.orphan_timer = None
        try:
            yield race
        finally:
            race.subscribers.discard(outbox)
            self.classroom.count_viewers(race)
            if not race.subscribers and not race.finished and self._loop and not self._closing:
                race.orphan_timer = self._loop.call_later(self.settings.server.orphan_grace_s, self._cancel_orphan, race)

    def limits(self) -> Limits:
        """The settings' limits, n capped at what the worker's dataset holds (admission.py)."""
        return admission.offered(self.settings.limits, self.pool.holds())

    def health(self) -> dict[str, Any]:
        return self.pool.health() | {"queued": len(self.waiting), "error": self.worker_error}

    def count_workers(self) -> None:
        """The workers gauge: busy (training a race), idle (ready, waiting for one), starting."""
        for state, count in self.pool.states().items():
            self.metrics.workers.labels(state).set(count)

    # --- admission (admission.py) -----------------------------------------------
    def _submit(
        self, config: RaceConfig, owner: str, address: str, may_join: Callable[[Race], bool], lesson: str | None = None
    ) -> Race:
        if self.worker_error:
            raise Refused("worker_unavailable", self._cannot_train().message)
        if joined := self.registry.joinable(config, may_join):
            return joined  # training it twice would give the same curves: watch this one
        admission.may_start(config, owner, self.registry, self.pool.holds(), self.settings)
        ready = self.pool.ready_slot()
        # A replay streams from the store: it needs no queue slot, so no queue limit applies.
        stored = self.registry.stored(config, ready.device, ready.recipe) if ready and ready.device else None
        race = Race(id=secrets.token_urlsafe(6), config=config, owner=owner, address=address, lesson=lesson)
        if stored:
            self.registry.add(race)
            self._replay(race, stored)
            return race
        race.cost = race_cost(config, self.settings)
        if dropped := admission.make_room(race, self.waiting, self.pool.busy(), self.settings):
            count = sum(1 for r in self.waiting if r.address == dropped.address and not r.paused)
            self.turns.unqueue(dropped)
            reason = admission.dropped_reason(self.settings, count)
            self._finish(dropped, "cancelled", protocol.Cancelled(race_id=dropped.id, reason=reason))
        self.registry.add(race)
        self._publish(race, protocol.Accepted(race_id=race.id, config=config, lesson=lesson))
        self.waiting.append(race)
        self._dispatch()
        self._announce_positions()
        return race

    # --- dispatch and news ---------------------------------------------------
    def _replay(self, race: Race, stored: dict[str, Any]) -> None:
        self.replays.start(race, stored, self._publish, self._replayed)

    def _replayed(self, race: Race) -> None:
        log.info("race %s replayed from %s", race.id, race.replay_of)
        self.classroom.replayed(race)

    def _cancel_orphan(self, race: Race) -> None:
        race.orphan_timer = None
        if not race.subscribers and not race.finished:
            log.info("race %s has no viewers left; cancelling", race.id)
            self.cancel(race.id, reason="no viewers left")

    def _dispatch(self) -> None:
        for slot in self.slots:
            while slot.race is None and slot.worker.alive and (race := self.turns.next_for(slot)):
                self.waiting.remove(race)
                if race.paused:  # resumed where it stopped, in the memory of the worker that paused it
                    slot.parked.remove(race)
                    race.status, race.paused, slot.race = "running", False, race
                    slot.worker.run(race.id, race.config.model_dump())
                    continue
                # An identical race may have finished while this one waited (another class's,
                # which a broadcast does not join): replay it rather than train it again. This
                # process trained it, so memory has it; the store was searched when this one came.
                stored = self.registry.trained_here(self.registry.key(race.config, slot.device, slot.recipe))
                if stored:
                    self._replay(race, stored)
                    continue
                race.status, slot.race = "running", race
                race.device = slot.device
                slot.worker.run(race.id, race.config.model_dump())

    def _announce_positions(self) -> None:
        """Ask any race that should give way to pause at its round's end (turns.py), then tell
        every waiting race's viewers where it stands."""
        self.turns.pause_due()
        self.metrics.queued.set(len(self.waiting))
        self.metrics.running.set(len(self.pool.busy()))
        for race, queued in self.turns.positions():
            tell(protocol.wire(queued), race.subscribers)

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
        seconds = time.time() - race.created
        log.info(
            "race %s %s: config=%s device=%s epochs=%d seconds=%.1f",
            *(race.id, status, race.config.model_dump_json(), race.device, epochs, seconds),
        )

    def _free(self, slot: Slot) -> None:
        slot.race = None
        self._dispatch()
        self._announce_positions()

    # --- what the workers say ----------------------------------------------------
    def _on_race(self, slot: Slot, msg: WorkerMessage) -> None:
        race = slot.race
        if race is None or getattr(msg, "race_id", None) != race.id:
            return
        match msg:
            case EventOut(event=event, emitted_at=emitted_at):
                if event.type == "plan":
                    race.device = event.device
                rounds = race.rounds_done
                race.epochs_seen += event.type == "epoch"
                self.metrics.event_latency.observe(max(0.0, time.time() - emitted_at))
                message = protocol.race_event(event, race.id, emitted_at)
                if event.type == "done":
                    # Finished as soon as viewers can see it, so a repeat request replays it rather
                    # than attaching to a race that will say nothing more.
                    self._finish(race, "done", message)
                    self.turns.learn(race, event.wall_s)
                    race.key = self.registry.key(race.config, race.device, slot.recipe)
                    self.registry.save(race.snapshot(), race.key, time.time())
                else:
                    self._publish(race, message)
                    if race.rounds_done > rounds:  # what it has left shrank: a waiting race may now go first
                        self._announce_positions()
            case Finished():
                self._free(slot)
            case Paused() if race.stop_reason:  # asked to stop as well: stopped it is
                slot.worker.drop_race(race.id)
                self._finish(race, "cancelled", protocol.Cancelled(race_id=race.id, reason=race.stop_reason))
                self._free(slot)
            case Paused():
                race.status, race.paused, race.yielding = "queued", True, False
                slot.parked.append(race)
                self.waiting.append(race)
                self._free(slot)
            case Cancelled():
                reason = race.stop_reason or "stopped before the last epoch"
                self._finish(race, "cancelled", protocol.Cancelled(race_id=race.id, reason=reason))
                self._free(slot)
            case Failed(why=why):
                self._finish(race, "error", protocol.Error(code="training_failed", message=why, race_id=race.id))
                self._free(slot)

    def _on_lost(self, slot: Slot, code: int | None) -> None:
        """A worker died and a fresh one is starting: its race, and those it held paused, end,
        saying so; the next may go to it."""
        message = (
            f"the training worker stopped unexpectedly (exit code {code}); a fresh worker is starting, so start the race again"
        )
        for race in slot.parked:
            self.waiting.remove(race)
        for race in [*([slot.race] if slot.race else []), *slot.parked]:
            self._finish(race, "error", protocol.Error(code="worker_died", message=message, race_id=race.id))
        slot.race, slot.parked = None, []
        self._dispatch()
        self._announce_positions()

    def _on_gave_up(self, slot: Slot) -> None:
        """No more workers: every race waiting to train, and any training, ends with the reason,
        and every connection hears it."""
        for r in [*([slot.race] if slot.race else []), *self.waiting]:
            self._finish(r, "error", self._cannot_train(r.id))
        self.waiting.clear()
        slot.race = None
        for outbox in self._listeners:
            outbox.put_nowait(protocol.wire(self._cannot_train()))

    def _cannot_train(self, race_id: str | None = None) -> protocol.Error:
        message = f"this server cannot train: {self.worker_error}"
        return protocol.Error(code="worker_unavailable", message=message, race_id=race_id)
