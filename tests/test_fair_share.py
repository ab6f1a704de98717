"""Sharing instead of refusing: the queue's order by cost, room made at every global bound, and a
race that pauses for a smaller one and resumes with the numbers of an uninterrupted run."""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field
from typing import Any

import pytest

from headstart.race import protocol
from headstart.race.cost import race_cost
from headstart.race.events import Done, Epoch, RaceConfig
from headstart.serving import admission
from headstart.serving.queue import RaceQueue
from headstart.serving.quotas import TooMany
from headstart.serving.races import Race
from headstart.serving.sockets import Sockets
from headstart.settings import Settings
from headstart.workers.interface import EventOut, Finished, Paused, RunRace
from headstart.workers.runner import Parking
from tests.test_scheduler import Workers, run, until

_clock = itertools.count()


@dataclass(eq=False)
class R:
    """A waiting race as the queue sees it."""

    id: str
    address: str
    left: float = 1.0
    code: str | None = None
    paused: bool = False
    created: float = field(default_factory=lambda: float(next(_clock)))


def ids(races: list[R]) -> list[str]:
    return [r.id for r in races]


def test_a_class_on_one_address_takes_turns_with_each_other_address() -> None:
    class_ = [R(f"s{i}", "school") for i in range(4)]
    other = [R("o1", "home"), R("o2", "home")]
    queue = RaceQueue([*class_, *other])
    assert ids(queue.order()) == ["s0", "o1", "s1", "o2", "s2", "s3"]


def test_a_small_race_from_an_idle_address_goes_before_many_addresses_large_races() -> None:
    large = [R(f"a{a}-{i}", f"attacker{a}", left=1000.0) for a in range(12) for i in range(6)]
    small = R("small", "newcomer", left=5.0)
    queue = RaceQueue([*large, small])
    running = [R("running", "attacker0", left=800.0)]
    assert queue.order(running)[0] is small
    assert queue.position(small, running) == 1


def test_splitting_work_into_small_races_gains_an_address_nothing() -> None:
    split = [R(f"p{i}", "splitter", left=10.0) for i in range(10)]  # 100 in all
    whole = R("whole", "other", left=50.0)
    order = ids(RaceQueue([*split, whole]).order())
    assert order.index("whole") == 5  # after the splitter's first 50, not after all 100


def test_a_paused_race_comes_first_within_its_address_and_a_broadcast_among_equals() -> None:
    later = R("later", "a")
    paused = R("paused", "a", paused=True)
    student, teacher = R("student", "b"), R("teacher", "c", code="WXYZ")
    assert ids(RaceQueue([later, paused, student, teacher]).order()) == ["teacher", "paused", "student", "later"]


def race(address: str, settings: Settings, seed: int, n: int = 50, epochs: int = 1) -> Race:
    config = RaceConfig.validate_with({"n": n, "epochs": epochs, "seed": seed}, settings.limits)
    cost = race_cost(config, settings)
    return Race(id=f"{address}-{seed}", config=config, owner=f"{address}-{seed}", address=address, cost=cost)


def test_a_full_queue_drops_the_race_that_would_train_last_to_fit_one_that_would_not(tiny: Settings) -> None:
    settings = tiny.model_copy(update={"max_queue": 4})
    waiting = [race("flood", settings, seed) for seed in (1, 2, 3)]
    newcomer = race("newcomer", settings, 9)
    assert admission.make_room(newcomer, waiting, [], settings) is None  # room left
    waiting.append(race("flood", settings, 4))
    assert admission.make_room(newcomer, waiting, [], settings) is waiting[-1]  # flood's last turn gives way
    waiting[-2:] = [race("class", settings, 5), race("class", settings, 6)]  # flood 2, class 2
    with pytest.raises(TooMany) as refused:
        admission.make_room(race("class", settings, 7), waiting, [], settings)  # it would be last
    assert refused.value.code == "queue_full" and "max_queue" in refused.value.message
    assert admission.make_room(newcomer, waiting, [], settings) is waiting[-1]  # class's second turn
    equal = [race(f"a{i}", settings, 10 + i) for i in range(4)]  # four addresses, one race each
    small = race("small", settings, 8)  # asked for after them, as a newcomer is
    with pytest.raises(TooMany):
        admission.make_room(small, equal, [], settings)  # as small as theirs, so last among equals
    large = [race(f"a{i}", settings, 10 + i, n=5000, epochs=50) for i in range(4)]
    assert admission.make_room(small, large, [], settings) is large[-1]  # smaller than any: goes in


@dataclass(eq=False)
class Conn:
    idle: bool
    address: str = ""


def test_a_full_table_of_sockets_closes_the_most_holding_addresss_oldest_idle_one(tiny: Settings) -> None:
    sockets: Sockets[Conn] = Sockets(tiny.model_copy(update={"max_connections": 6, "max_connections_per_address": 4}))
    busy, idle = Conn(idle=False), Conn(idle=True)
    for conn in (busy, idle, Conn(idle=True), Conn(idle=False)):
        sockets.add("many", conn)
    sockets.add("few", Conn(idle=True))
    assert sockets.make_room("newcomer") is None  # 5 of 6
    sockets.add("newcomer", Conn(idle=True))
    assert sockets.make_room("newcomer") is idle  # full: "many" (4) gives way to one holding 1
    with pytest.raises(TooMany) as refused:
        sockets.make_room("many")
    assert refused.value.code == "too_many_connections_from_address"  # its own limit, 4
    sockets.remove("many", idle)
    sockets.add("few", Conn(idle=False))  # full again: many 3, few 2, newcomer 1
    with pytest.raises(TooMany) as full:
        sockets.make_room("few")  # 3 < 2 + 2: no address holds more than its share
    assert full.value.code == "too_many_connections" and len(sockets) == 6


def test_cost_grows_with_images_epochs_and_lanes_and_counts_down(tiny: Settings) -> None:
    def cost(**fields: Any) -> float:
        return race_cost(RaceConfig.validate_with({"n": 50, "epochs": 2} | fields, tiny.limits), tiny).total

    assert cost(n=100) > cost() and cost(epochs=4) > cost() and cost(extra=["gradual", "lora"]) > cost()
    assert cost(locked=4) < cost(locked=0)  # fewer units trained
    every = race_cost(RaceConfig.validate_with({"n": 50, "epochs": 3}, tiny.limits), tiny)
    assert every.left(0) == every.total > every.left(1) > every.left(2) > every.left(3) == 0.0


async def large_then_small(hub: Any, workers: Workers, seed: int) -> tuple[Race, Race, Any]:
    """A large race from address a training on the one worker, then a small one from address b
    waiting: the large one is asked to pause. Its worker is returned too."""
    limits = hub.settings.limits
    large = hub.submit(RaceConfig.validate_with({"n": 500, "epochs": 5, "seed": seed}, limits), "big", address="a")
    await until(lambda: large.status == "running")
    small = hub.submit(RaceConfig.validate_with({"n": 25, "epochs": 1, "seed": seed + 1}, limits), "me", address="b")
    return large, small, workers.training(large)


def pauses(worker: Any, race: Race) -> None:
    """The worker reaches the race's round's end and pauses it."""
    worker.running = None
    worker.messages.put(Paused(race.id))


def test_a_large_race_pauses_for_a_small_one_from_another_address_and_resumes(tiny: Settings, tmp_path) -> None:
    async def test(hub: Any, workers: Workers) -> None:
        large, small, worker = await large_then_small(hub, workers, 1)
        assert worker.pausing and large.yielding  # asked to give way at its round's end
        assert protocol.wire(hub.turns.told(small))["position"] == 1
        pauses(worker, large)
        await until(lambda: small.status == "running")
        assert large.status == "queued" and large.paused
        assert protocol.wire(hub.turns.told(large))["paused"] is True
        worker.finish()
        await until(lambda: large.status == "running")
        assert worker.ran == [large.id, small.id, large.id]  # resumed on the worker holding it
        worker.finish()
        await until(lambda: large.status == "done")

    run(tiny, tmp_path, test, workers=1)


def test_a_paused_race_cancelled_is_dropped_from_its_workers_memory(tiny: Settings, tmp_path) -> None:
    async def test(hub: Any, workers: Workers) -> None:
        large, _, worker = await large_then_small(hub, workers, 3)
        pauses(worker, large)
        await until(lambda: large.paused)
        hub.cancel(large.id)
        assert large.status == "cancelled" and worker.dropped == [large.id] and not hub.slots[0].parked

    run(tiny, tmp_path, test, workers=1)


def test_a_full_queue_tells_the_dropped_race_why_and_takes_the_newcomer(tiny: Settings, tmp_path) -> None:
    async def test(hub: Any, workers: Workers) -> None:
        limits = hub.settings.limits
        flood = [hub.submit(RaceConfig.validate_with({"n": 50, "seed": s}, limits), f"f{s}", address="flood") for s in range(4)]
        await until(lambda: flood[0].status == "running")
        newcomer = hub.submit(RaceConfig.validate_with({"n": 25, "seed": 9}, limits), "new", address="newcomer")
        assert flood[-1].status == "cancelled" and newcomer in hub.waiting
        reason = flood[-1].messages[-1]["reason"]
        assert "max_queue" in reason and "Start it again" in reason

    run(tiny.model_copy(update={"max_queue": 3}), tmp_path, test, workers=1)


def test_a_paused_race_resumes_with_the_numbers_of_an_uninterrupted_run(tiny: Settings) -> None:
    """Paused after its first round, with another race trained in between, a race ends with the
    same accuracies as when it ran straight through; its time paused is not in its wall_s."""
    from headstart.training.engine import Resources

    res = Resources.load(tiny)
    config = {"n": 50, "epochs": 3, "locked": 2, "seed": 5}

    def epochs(messages: list[Any]) -> list[tuple[str, int, float]]:
        return [
            (m.event.strategy, m.event.epoch, m.event.test_acc)
            for m in messages
            if isinstance(m, EventOut) and isinstance(m.event, Epoch)
        ]

    straight = list(Parking().train(res, RunRace("straight", config), lambda: False, lambda: False))
    parking, pause = Parking(), {"now": False}
    started = time.perf_counter()
    first = []
    for message in parking.train(res, RunRace("paused", config), lambda: False, lambda: pause["now"]):
        first.append(message)
        if isinstance(message, EventOut) and message.event.type == "epoch":
            pause["now"] = True
    assert isinstance(first[-1], Paused) and len(parking) == 1
    assert len(epochs(first)) == 3  # one whole round: every lane's first epoch
    between = list(parking.train(res, RunRace("between", config | {"seed": 6}), lambda: False, lambda: False))
    assert isinstance(between[-1], Finished)
    time.sleep(1.0)  # paused a second longer: none of it may reach the race's wall_s
    pause["now"] = False
    rest = list(parking.train(res, RunRace("paused", config), lambda: False, lambda: False))
    assert isinstance(rest[-1], Finished) and len(parking) == 0
    assert epochs(first + rest) == epochs(straight)
    done = next(m.event for m in rest if isinstance(m, EventOut) and m.event.type == "done")
    assert isinstance(done, Done) and done.wall_s < time.perf_counter() - started - 1.0


def a_small_race_overtakes_a_large_one(settings: Settings) -> None:
    """Through a real server with one worker: a large race from one address pauses at an
    epoch's end for another address's small race, which finishes first; the large one then
    resumes and finishes, every epoch once, in order."""
    from fastapi.testclient import TestClient

    from headstart.serving.app import create_app

    proxied = settings.model_copy(
        update={"max_concurrent_races": 1, "trusted_proxy_header": "x-forwarded-for", "trusted_proxies": ("testclient",)}
    )
    large, small = {"n": 200, "epochs": 40, "seed": 71}, {"n": 25, "epochs": 1, "seed": 72}
    with (
        TestClient(create_app(proxied)) as client,
        client.websocket_connect("/ws?client=big", headers={"x-forwarded-for": "10.9.0.1"}) as a,
        client.websocket_connect("/ws?client=me", headers={"x-forwarded-for": "10.9.0.2"}) as b,
    ):
        a.send_json({"type": "start", "config": large})
        while (message := a.receive_json())["type"] != "epoch":
            pass
        b.send_json({"type": "start", "config": small})
        while (message := b.receive_json())["type"] not in ("done", "error"):
            pass
        assert message["type"] == "done", message
        said = [a.receive_json()]
        while said[-1]["type"] not in ("done", "error", "cancelled"):
            said.append(a.receive_json())
    assert said[-1]["type"] == "done", said[-1]
    assert any(m["type"] == "queued" and m["paused"] for m in said)
    epochs = [(m["epoch"], m["strategy"]) for m in said if m["type"] == "epoch"]
    assert len(epochs) == len(set(epochs)) and epochs == sorted(epochs, key=lambda e: e[0])


def test_a_small_race_overtakes_a_large_one_on_a_local_worker(tiny: Settings, tmp_path) -> None:
    a_small_race_overtakes_a_large_one(tiny.model_copy(update={"database": tmp_path / "races.sqlite3"}))


def test_a_race_stopped_as_it_pauses_is_cancelled_not_parked(tiny: Settings, tmp_path) -> None:
    async def test(hub: Any, workers: Workers) -> None:
        large, _, worker = await large_then_small(hub, workers, 5)
        worker.stop_race = lambda: None  # it reached its round's end first
        hub.cancel(large.id)
        pauses(worker, large)
        await until(lambda: large.finished)
        assert large.status == "cancelled" and worker.dropped == [large.id] and not hub.slots[0].parked
        assert large.messages[-1]["reason"] == "its starter pressed Stop"

    run(tiny, tmp_path, test, workers=1)
