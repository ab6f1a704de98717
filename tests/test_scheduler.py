"""The hub's scheduling against workers that train nothing: fair order, one race per worker,
cancellation queued and running, a worker dying mid-race. Fast: no process, no torch."""

from __future__ import annotations

import asyncio
import queue
import time
from collections.abc import Awaitable, Callable
from typing import Any

from headstart.race import protocol
from headstart.race.events import STRATEGIES, Done, Plan, RaceConfig, StrategySummary
from headstart.serving.hub import Hub, Race
from headstart.settings import Settings
from headstart.workers.interface import Cancelled, EventOut, Finished, Ready, WorkerMessage


class FakeWorker:
    """A worker that is ready at once and trains a race only when the test says so."""

    def __init__(self) -> None:
        self.messages: queue.Queue[WorkerMessage] = queue.Queue()
        self.running: tuple[str, dict[str, Any]] | None = None
        self.ran: list[str] = []
        self.dropped: list[str] = []
        self.pausing = False
        self._alive = False

    def start(self) -> None:
        self._alive = True
        self.messages.put(Ready(device="fake", recipe="fake-recipe", max_n=5000))

    @property
    def alive(self) -> bool:
        return self._alive

    @property
    def exit_code(self) -> int | None:
        return None if self._alive else -9

    def run(self, race_id: str, config: dict[str, Any]) -> None:
        assert self.running is None, f"{race_id} sent to a worker still training {self.running[0]}"
        self.running = (race_id, config)
        self.ran.append(race_id)

    def stop_race(self) -> None:
        if self.running:
            self.messages.put(Cancelled(self.running[0]))
            self.running = None

    def pause_race(self) -> None:
        self.pausing = True

    def drop_race(self, race_id: str) -> None:
        self.dropped.append(race_id)

    def poll(self, timeout: float) -> WorkerMessage | None:
        try:
            return self.messages.get(timeout=min(timeout, 0.02))
        except queue.Empty:
            return None

    def shutdown(self, timeout: float = 5.0) -> None:
        self._alive = False

    # --- what a test does to it ---
    def finish(self) -> None:
        assert self.running is not None
        race_id, fields = self.running
        self.running = None
        config = RaceConfig.model_validate(fields)
        now = time.time()
        plan = Plan(config=config, device="fake", units=[], strategies={}, train_size=config.n, test_size=10, classes=[])
        summary = {s: StrategySummary(final_test_acc=0.5, best_test_acc=0.5, compute_s=0.1) for s in STRATEGIES}
        for event in (plan, Done(summary=summary, wall_s=0.1)):
            self.messages.put(EventOut(race_id, event, now))
        self.messages.put(Finished(race_id))

    def die(self) -> None:
        self._alive = False


class Workers:
    """Makes the hub's workers and keeps them, in the order made."""

    def __init__(self) -> None:
        self.made: list[FakeWorker] = []

    def __call__(self) -> FakeWorker:
        self.made.append(FakeWorker())
        return self.made[-1]

    def training(self, race: Race) -> FakeWorker:
        return next(w for w in self.made if w.running and w.running[0] == race.id)


def run(tiny: Settings, tmp_path: Any, test: Callable[[Hub, Workers], Awaitable[None]], workers: int = 2) -> None:
    settings = tiny.model_copy(
        update={
            "database": tmp_path / "races.sqlite3",
            "max_concurrent_races": workers,
            "orphan_grace_s": 600.0,
        }
    )

    async def main() -> None:
        made = Workers()
        hub = Hub(settings, new_worker=made)
        await hub.start()
        try:
            await until(lambda: all(slot.ready for slot in hub.slots))
            await test(hub, made)
        finally:
            await hub.stop()

    asyncio.run(main())


async def until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the hub did not get there in time"
        await asyncio.sleep(0.01)


def start(hub: Hub, seed: int, address: str, broadcast: bool = False) -> Race:
    config = RaceConfig.validate_with({"n": 50, "epochs": 1, "seed": seed}, hub.settings.limits)
    return hub.submit(config, owner=f"{address}-{seed}", broadcast=broadcast, address=address)


def positions(hub: Hub) -> list[str]:
    return [race.id for race in hub.turns.order()]


def test_an_address_holding_workers_waits_its_turn_behind_one_holding_none(tiny: Settings, tmp_path) -> None:
    async def test(hub: Hub, workers: Workers) -> None:
        a1, a2, a3 = (start(hub, seed, "10.0.0.1") for seed in (1, 2, 3))
        await until(lambda: a1.status == a2.status == "running")
        b1 = start(hub, 4, "10.0.0.2")
        assert positions(hub) == [b1.id, a3.id]  # a3 came first, but its address holds both workers
        assert protocol.wire(hub.turns.told(b1)) == {"type": "queued", "race_id": b1.id, "position": 1, "paused": False}
        first = workers.training(a1)
        first.finish()
        await until(lambda: b1.status == "running")
        assert first.ran == [a1.id, b1.id] and a3.status == "queued"

    run(tiny, tmp_path, test)


def test_a_broadcast_race_goes_first_within_its_turn(tiny: Settings, tmp_path) -> None:
    async def test(hub: Hub, workers: Workers) -> None:
        busy = start(hub, 1, "10.0.0.9")
        await until(lambda: busy.status == "running")
        students = [start(hub, seed, f"10.0.1.{seed}") for seed in (2, 3, 4)]
        teacher = start(hub, 5, "10.0.2.1", broadcast=True)
        assert teacher.code and positions(hub) == [teacher.id] + [s.id for s in students]
        workers.training(busy).finish()
        await until(lambda: teacher.status == "running")

    run(tiny, tmp_path, test, workers=1)


def test_no_worker_is_given_two_races_and_cancelling_frees_it(tiny: Settings, tmp_path) -> None:
    async def test(hub: Hub, workers: Workers) -> None:
        races = [start(hub, seed, f"10.0.0.{seed}") for seed in range(1, 6)]
        await until(lambda: sum(r.status == "running" for r in races) == 2)
        hub.cancel(races[3].id)  # queued: it leaves the queue at once
        assert races[3].status == "cancelled" and races[3].id not in positions(hub)
        assert positions(hub) == [races[2].id, races[4].id]
        hub.cancel(races[0].id)  # running: its worker stops it, then takes the next
        await until(lambda: races[0].status == "cancelled" and races[2].status == "running")
        assert races[0].messages[-1]["type"] == "cancelled"
        for race in (races[1], races[2]):
            workers.training(race).finish()
        await until(lambda: races[4].status == "running")
        workers.training(races[4]).finish()
        await until(lambda: all(r.finished for r in races))
        # Five races, one cancelled while queued; no worker was sent one while it trained another.
        assert sorted(r for w in workers.made for r in w.ran) == sorted(r.id for r in races if r is not races[3])

    run(tiny, tmp_path, test)


def test_a_worker_dying_mid_race_is_said_and_a_fresh_one_takes_the_next(tiny: Settings, tmp_path) -> None:
    async def test(hub: Hub, workers: Workers) -> None:
        first, second = start(hub, 1, "10.0.0.1"), start(hub, 2, "10.0.0.2")
        await until(lambda: first.status == "running")
        workers.training(first).die()
        await until(lambda: first.finished)
        error = first.messages[-1]
        assert first.status == "error" and error["code"] == "worker_died" and "exit code -9" in error["message"]
        assert len(workers.made) == 2  # a fresh worker in the dead one's place
        await until(lambda: second.status == "running")
        workers.training(second).finish()
        await until(lambda: second.status == "done")
        assert hub.store.find(second.key or "") is not None  # what finished is kept

    run(tiny, tmp_path, test, workers=1)
