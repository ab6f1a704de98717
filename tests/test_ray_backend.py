"""The Ray backend: a local Ray instance started inside the test (loopback, 2 CPUs), two
distinct races at once through the server, an actor killed mid-race, an unreachable cluster.

Marked ``ray``: Ray's start-up and two actors loading their resources take about a minute.
``scripts/test.sh`` installs the ``ray`` extra and runs them with the rest.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from fastapi.testclient import TestClient

from headstart.serving.app import create_app
from headstart.settings import Settings

ray = pytest.importorskip("ray")
pytestmark = [pytest.mark.ray, pytest.mark.timeout(600)]


@pytest.fixture(scope="module")
def on_ray(tiny: Settings, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return tiny.model_copy(
        update={
            "backend": "ray",
            "ray_cpus": 2,
            "max_concurrent_races": 2,
            "database": tmp_path_factory.mktemp("ray") / "races.sqlite3",
        }
    )


def receive_until(ws: Any, kinds: set[str], race_id: str | None = None) -> list[dict[str, Any]]:
    got = []
    while True:
        message = ws.receive_json()
        got.append(message)
        if message["type"] in kinds and (race_id is None or message.get("race_id") == race_id):
            return got


def wait_until_up(client: TestClient, workers: int) -> None:
    deadline = time.monotonic() + 300
    while client.get("/healthz").json()["worker"] != "up" or client.get("/healthz").json()["workers"] < workers:
        assert time.monotonic() < deadline, client.get("/healthz").json()
        time.sleep(0.5)


def test_two_races_train_at_once_on_ray_actors_and_a_killed_one_is_replaced(on_ray: Settings) -> None:
    try:
        with TestClient(create_app(on_ray)) as client:
            wait_until_up(client, 2)
            with client.websocket_connect("/ws?client=a") as a, client.websocket_connect("/ws?client=b") as b:
                a.send_json({"type": "start", "config": {"n": 50, "epochs": 3, "seed": 1}})
                b.send_json({"type": "start", "config": {"n": 50, "epochs": 3, "seed": 2}})
                races = [receive_until(ws, {"done", "error"}) for ws in (a, b)]
            for got in races:
                assert [m["type"] for m in got if m["type"] in ("plan", "done")] == ["plan", "done"], got
                assert sum(m["type"] == "epoch" for m in got) == 9  # three strategies, three epochs: streamed
            hub = client.app.state.hub  # type: ignore[attr-defined]
            assert all(slot.device for slot in hub.slots) and len(hub.slots) == 2
            # Both trained at once: each race's plan came before the other's done.
            stamps = [{m["type"]: m["emitted_at"] for m in got if m["type"] in ("plan", "done")} for got in races]
            assert stamps[0]["plan"] < stamps[1]["done"] and stamps[1]["plan"] < stamps[0]["done"]

            # An actor killed mid-race: its viewers hear it, and a fresh actor takes the next race.
            with client.websocket_connect("/ws?client=c") as c:
                c.send_json({"type": "start", "config": {"n": 200, "epochs": 30, "seed": 3}})
                race_id = receive_until(c, {"plan"})[-1]["race_id"]
                slot = next(s for s in hub.slots if s.race and s.race.id == race_id)
                ray.kill(slot.worker.actor)
                error = receive_until(c, {"error"}, race_id)[-1]
                assert error["code"] == "worker_died", error
                wait_until_up(client, 2)
                c.send_json({"type": "start", "config": {"n": 50, "epochs": 2, "seed": 4}})
                assert receive_until(c, {"done", "error"})[-1]["type"] == "done"
            # What finished before is kept.
            listed = client.get("/api/races?limit=10").json()["races"]
            assert {r["config"]["seed"] for r in listed} >= {1, 2, 4}
    finally:
        ray.shutdown()


def test_a_ray_cluster_that_cannot_be_reached_is_named_and_the_server_does_not_start(on_ray: Settings) -> None:
    from headstart.workers.ray_actors import RayUnavailable

    settings = on_ray.model_copy(update={"ray_address": "ray://127.0.0.1:9"})
    unreachable = pytest.raises(RayUnavailable, match=r"cannot reach the Ray cluster at ray://127\.0\.0\.1:9")
    with unreachable, TestClient(create_app(settings)):
        pass


def test_a_race_pauses_for_a_smaller_one_and_resumes_on_its_actor(on_ray: Settings) -> None:
    from tests.test_fair_share import a_small_race_overtakes_a_large_one

    a_small_race_overtakes_a_large_one(on_ray.model_copy(update={"database": on_ray.paths.database.with_name("paused.sqlite3")}))
