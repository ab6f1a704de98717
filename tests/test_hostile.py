"""One client cannot stop the server for everyone: each attack, at small scale, meets a limit
that names itself, while a client on another address is unaffected."""

from __future__ import annotations

import logging
import os
import socket as socketlib
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack

import pytest
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from headstart.serving import class_codes
from headstart.serving.app import create_app, redact_client_ids
from headstart.serving.fanout import Outbox
from headstart.settings import Settings
from headstart.store import Store
from tests.conftest import free_port, tiny_env, wait_until_up

LONG = {"n": 200, "epochs": 50, "locked": 2}  # in flight for as long as a test needs it


@pytest.fixture(scope="module")
def strict(tiny: Settings, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Small per-address limits; each test names its address in a header from a trusted proxy."""
    return tiny.model_copy(
        update={
            "database": tmp_path_factory.mktemp("db") / "races.sqlite3",
            "trusted_proxy_header": "x-forwarded-for",
            "trusted_proxies": ("testclient",),
            "code_guesses_per_address_per_minute": 3,
            "max_connections_per_address": 2,
            "broadcasts_per_address_per_minute": 2,
            "messages_per_connection_per_10s": 10,
            "max_races_per_client": 3,
            "max_watched_per_connection": 2,
            "replay_interval_s": 0.0,
        }
    )


@pytest.fixture(scope="module")
def client(strict: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(strict)) as c:
        yield c


def at(address: str) -> dict[str, str]:
    return {"x-forwarded-for": address}


def first_error(ws) -> dict:  # type: ignore[no-untyped-def]
    while (message := ws.receive_json())["type"] != "error":
        pass
    return message


def test_guessing_class_codes_is_limited_per_address(client: TestClient) -> None:
    for guess in ("ZZZA", "ZZZB", "ZZZC"):
        assert client.get(f"/api/codes/{guess}", headers=at("10.0.0.1")).json()["code"] == "unknown_code"
    refused = client.get("/api/codes/ZZZD", headers=at("10.0.0.1"))
    assert refused.status_code == 429 and refused.json()["code"] == "too_many_guesses"
    assert "3 class codes a minute" in refused.json()["message"]
    with client.websocket_connect("/ws", headers=at("10.0.0.1")) as ws:
        ws.send_json({"type": "watch", "code": "ZZZE"})
        assert first_error(ws)["code"] == "too_many_guesses"
    assert client.get("/api/codes/ZZZD", headers=at("10.0.0.2")).json()["code"] == "unknown_code"  # another address


def test_connections_are_limited_per_address(client: TestClient) -> None:
    with client.websocket_connect("/ws", headers=at("10.0.1.1")), client.websocket_connect("/ws", headers=at("10.0.1.1")):
        with client.websocket_connect("/ws", headers=at("10.0.1.1")) as third:
            refused = third.receive_json()
            assert refused["code"] == "too_many_connections_from_address" and "limit 2" in refused["message"]
        with client.websocket_connect("/ws", headers=at("10.0.1.2")) as other:
            other.send_json({"type": "watch", "race_id": "nosuchrace"})
            assert other.receive_json()["code"] == "unknown_race"


def test_broadcasts_are_limited_per_address_while_its_races_all_queue(client: TestClient) -> None:
    with (
        client.websocket_connect("/ws?client=b1", headers=at("10.0.2.1")) as one,
        client.websocket_connect("/ws?client=b2", headers=at("10.0.2.1")) as two,
        client.websocket_connect("/ws?client=b3", headers=at("10.0.2.2")) as elsewhere,
    ):
        one.send_json({"type": "start", "config": LONG | {"seed": 201}, "broadcast": True})
        first = one.receive_json()["race_id"]
        two.send_json({"type": "start", "config": LONG | {"seed": 202}, "broadcast": True})
        second = two.receive_json()  # a class on one address: queued, not refused
        assert second["type"] == "accepted"
        two.send_json({"type": "cancel", "race_id": second["race_id"]})
        two.send_json({"type": "start", "config": LONG | {"seed": 203}, "broadcast": True})
        refused = first_error(two)
        assert refused["code"] == "too_many_broadcasts" and "2 races a minute" in refused["message"]
        elsewhere.send_json({"type": "start", "config": LONG | {"seed": 204}, "broadcast": True})
        accepted = elsewhere.receive_json()
        assert accepted["type"] == "accepted"
        one.send_json({"type": "cancel", "race_id": first})
        elsewhere.send_json({"type": "cancel", "race_id": accepted["race_id"]})


def test_a_stored_race_replays_without_a_queue_slot(client: TestClient) -> None:
    with client.websocket_connect("/ws?client=r1", headers=at("10.0.3.1")) as ws:
        ws.send_json({"type": "start", "config": {"n": 25, "epochs": 1, "seed": 301}})
        while (done := ws.receive_json())["type"] != "done":
            pass
        ws.send_json({"type": "unwatch", "race_id": done["race_id"]})  # as the page does when it moves on
        ws.send_json({"type": "start", "config": LONG | {"seed": 302}})  # keeps the worker busy
        long = ws.receive_json()["race_id"]
        ws.send_json({"type": "start", "config": {"n": 25, "epochs": 1, "seed": 301}})
        while (replay := ws.receive_json())["type"] not in ("accepted", "error") or replay.get("race_id") == long:
            pass
        assert replay.get("replay_of"), replay
        ws.send_json({"type": "cancel", "race_id": long})


def test_a_flood_of_messages_is_refused_once_and_not_read(client: TestClient) -> None:
    with client.websocket_connect("/ws", headers=at("10.0.4.1")) as ws:
        for _ in range(25):
            ws.send_json({"type": "unwatch", "race_id": "x"})  # does nothing, cheaply: only the count matters
        refused = ws.receive_json()
        assert refused["code"] == "too_many_messages" and "10 messages per 10 s" in refused["message"]


def test_a_connection_follows_a_bounded_number_of_races(client: TestClient) -> None:
    with client.websocket_connect("/ws?client=w1", headers=at("10.0.5.1")) as ws:
        for seed in (501, 502):
            ws.send_json({"type": "start", "config": {"n": 25, "epochs": 1, "seed": seed}})
            while ws.receive_json()["type"] != "done":
                pass
        ws.send_json({"type": "start", "config": {"n": 25, "epochs": 1, "seed": 503}})
        refused = ws.receive_json()
        assert refused["code"] == "too_many_watched" and "follows 2 races" in refused["message"]
        assert not any(r.config.seed == 503 for r in client.app.state.hub.races.values())  # refused before it started


def test_a_page_from_another_site_cannot_open_the_websocket(client: TestClient) -> None:
    with client.websocket_connect("/ws", headers={"origin": "http://evil.example"}) as ws:
        refused = ws.receive_json()
        assert refused["code"] == "origin_not_allowed" and "http://evil.example" in refused["message"]
    with client.websocket_connect("/ws", headers={"origin": "http://testserver"}) as ws:  # the page it served
        ws.send_json({"type": "watch", "race_id": "nosuchrace"})
        assert ws.receive_json()["code"] == "unknown_race"


def test_a_host_this_server_is_not_is_refused_and_answers_carry_safe_headers(client: TestClient) -> None:
    rebound = client.get("/", headers={"host": "evil.example"})
    assert rebound.status_code == 400 and rebound.json()["code"] == "host_not_allowed"
    assert "HEADSTART_ALLOWED_HOSTS" in rebound.json()["message"]
    # The machine's own name, as a student might type it, bare or as mDNS announces it; no other.
    name = socketlib.gethostname().split(".")[0]
    for host in ("127.0.0.1:8000", "[::1]:8000", "localhost:8000", "testserver", f"{name}:8000", f"{name.upper()}.local"):
        assert client.get("/healthz", headers={"host": host}).status_code == 200, host
    assert client.get("/healthz", headers={"host": f"not-{name}.local"}).status_code == 400
    assert f"localhost, {name.lower()}, {name.lower()}.local, and the class address" in rebound.json()["message"]
    page = client.get("/")
    assert page.headers["x-content-type-options"] == "nosniff" and page.headers["referrer-policy"] == "same-origin"


def test_an_absurd_offset_is_a_clear_error_not_a_crash(client: TestClient) -> None:
    for offset in ("1e23", str(10**23)):
        answer = client.get(f"/api/races?offset={offset}")
        assert answer.status_code == 422 and answer.json()["field"] == "offset"


def test_a_reader_that_falls_behind_is_cut_off_and_its_messages_freed() -> None:
    outbox = Outbox(limit=3)
    for i in range(3):
        outbox.put_nowait({"i": i})
    outbox.put_nowait({"i": 3})  # one too many
    assert outbox.overflowed and outbox.qsize() == 1 and outbox.get_nowait() is None
    outbox.put_nowait({"i": 4})
    assert outbox.empty()  # nothing more is kept for it


def test_class_code_allocation_fails_clearly_when_the_space_is_full(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(class_codes, "LETTERS", "AB")
    monkeypatch.setattr(class_codes, "LENGTH", 1)
    store = Store(tmp_path / "codes.sqlite3")
    codes = class_codes.ClassCodes(store)
    for owner in ("t1", "t2"):
        codes.keep(codes.new(), owner, f"race-{owner}")
    with pytest.raises(class_codes.CodesExhausted, match="no free class code: nearly all 2 are held"):
        codes.new()
    store.close()


def test_client_ids_stay_out_of_the_access_log(caplog: pytest.LogCaptureFixture) -> None:
    redact_client_ids()
    access = logging.getLogger("uvicorn.access")
    with caplog.at_level(logging.INFO, logger="uvicorn.access"):
        access.info('%s - "%s %s HTTP/%s" %d', "127.0.0.1:5", "GET", "/ws?client=3f9a2b7c&x=1", "1.1", 101)
    assert "3f9a2b7c" not in caplog.text and "client=…&x=1" in caplog.text


def test_the_transport_refuses_big_frames_and_slow_headers(tiny: Settings, tmp_path) -> None:  # type: ignore[no-untyped-def]
    port = free_port()
    env = {
        **os.environ,
        **tiny_env(tiny),
        "HEADSTART_DATABASE": str(tmp_path / "r.sqlite3"),
        "HEADSTART_MAX_MESSAGE_BYTES": "1024",
        "HEADSTART_HEADER_TIMEOUT_S": "0.5",
    }
    proc = subprocess.Popen([sys.executable, "-m", "headstart", "serve", "--port", str(port)], env=env, stderr=subprocess.DEVNULL)
    try:
        wait_until_up(proc, f"http://127.0.0.1:{port}")
        with connect(f"ws://127.0.0.1:{port}/ws") as ws:
            ws.send("x" * 100_000)
            with pytest.raises(ConnectionClosed) as closed:
                ws.recv(timeout=10)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009  # message too big
        with socketlib.create_connection(("127.0.0.1", port), timeout=10) as slow:
            slow.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # and the rest never comes
            t0 = time.monotonic()
            assert slow.recv(1024) == b""  # closed by the server, unanswered
            assert time.monotonic() - t0 < 5
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_a_code_whose_last_race_was_a_replay_names_it_after_a_restart(tiny: Settings, tmp_path) -> None:  # type: ignore[no-untyped-def]
    kept = tiny.model_copy(update={"database": tmp_path / "codes.sqlite3", "replay_interval_s": 0.0})
    race = {"n": 25, "epochs": 1, "seed": 601}
    with TestClient(create_app(kept)) as c, c.websocket_connect("/ws?client=teacher-p") as teacher:
        teacher.send_json({"type": "start", "config": race, "broadcast": True})
        said = [teacher.receive_json()]
        while said[-1]["type"] != "done":
            said.append(teacher.receive_json())
        (code,) = [m["code"] for m in said if m["type"] == "broadcast"]
        trained = said[-1]["race_id"]
        teacher.send_json({"type": "start", "config": race, "broadcast": True})  # the same settings: a replay
        while (message := teacher.receive_json())["type"] != "done" or message["race_id"] == trained:
            pass
        assert message["replay"] is True
        assert c.app.state.hub.store.written(timeout=5)
    with TestClient(create_app(kept)) as c:
        found = c.get(f"/api/codes/{code}")
        assert found.status_code == 200 and found.json()["race_id"] == trained and found.json()["status"] == "done"


def test_the_queue_takes_each_address_in_turn(strict: Settings, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from headstart.race.cost import race_cost
    from headstart.race.events import RaceConfig
    from headstart.serving.hub import Hub, Race

    hub = Hub(strict.model_copy(update={"database": tmp_path / "q.sqlite3"}))
    config = RaceConfig.validate_with({}, strict.limits)
    arrivals = [("flood", "a1"), ("flood", "a2"), ("flood", "a3"), ("class", "b1"), ("flood", "a4"), ("class", "b2")]
    hub.waiting.extend(
        Race(id=rid, config=config, owner=rid, address=address, cost=race_cost(config, strict), created=i)
        for i, (address, rid) in enumerate(arrivals)
    )
    assert [r.id for r in hub.turns.order()] == ["a1", "b1", "a2", "b2", "a3", "a4"]
    hub.store.close()


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_the_hostile_load_test_passes_against_the_embedded_default() -> None:
    """Every attack at full scale against a real server: docs/reliability.md, 'Hostile clients'."""
    result = subprocess.run([sys.executable, "-m", "headstart.tools.hostile"], capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_hostile_uploads_leave_a_teacher_uploading_and_racing_and_nothing_outside_the_folder() -> None:
    """Zip and pixel bombs, 10,000 files, traversal names, renamed files and quota exhaustion
    from one address and from many: docs/reliability.md, 'Hostile uploads'."""
    hostile = [sys.executable, "-m", "headstart.tools.hostile", "--uploads"]
    result = subprocess.run(hostile, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "a teacher on another address: uploaded and raced" in result.stdout
    assert "files outside the uploads folder: 0 []; left half-arrived: 0" in result.stdout


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_crowds_from_many_addresses_leave_a_newcomer_its_share() -> None:
    """A class on one address, then 12 addresses' sockets, largest races and half-open requests,
    each beside a newcomer: docs/reliability.md, 'Fair shares'."""
    hostile = [sys.executable, "-m", "headstart.tools.hostile", "--addresses", "12"]
    result = subprocess.run(hostile, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "30 students on one address → 30 done" in result.stdout


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_the_classroom_load_test_passes_with_every_client_on_one_address() -> None:
    loadtest = [sys.executable, "-m", "headstart.tools.loadtest", "--one-address"]
    result = subprocess.run(loadtest, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "a teacher's next lesson reached 30/30 students' pages" in result.stdout  # each within a second


def test_starting_a_race_already_followed_needs_no_more_room(client: TestClient) -> None:
    """At its limit, a connection may still start the race it follows: it joins it again."""
    with (
        client.websocket_connect("/ws?client=w2", headers=at("10.0.5.2")) as ws,
        client.websocket_connect("/ws?client=w3", headers=at("10.0.5.3")) as other,
    ):
        ws.send_json({"type": "start", "config": LONG | {"seed": 521}})
        while (accepted := ws.receive_json())["type"] != "accepted":
            pass
        other.send_json({"type": "start", "config": {"n": 25, "epochs": 1, "seed": 522}})
        while (queued := other.receive_json())["type"] != "accepted":
            pass
        ws.send_json({"type": "watch", "race_id": queued["race_id"]})  # now it follows two, its limit
        ws.send_json({"type": "start", "config": LONG | {"seed": 521}})
        # Its history again, from its start; live epochs of that race may come first.
        while (again := ws.receive_json())["type"] != "error" and again != accepted:
            pass
        assert again == accepted
        ws.send_json({"type": "start", "config": LONG | {"seed": 523}})  # a new race still needs room
        assert first_error(ws)["code"] == "too_many_watched"
        ws.send_json({"type": "cancel", "race_id": accepted["race_id"]})


def test_a_full_server_makes_room_for_an_address_holding_less(strict: Settings, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Three connections from one address fill the server; a newcomer from another gets in, and
    the oldest idle one of the three is told why and closed with 1013."""
    full = strict.model_copy(
        update={"database": tmp_path / "full.sqlite3", "max_connections": 3, "max_connections_per_address": 3}
    )
    with TestClient(create_app(full)) as c, ExitStack() as held:
        crowd = [held.enter_context(c.websocket_connect("/ws", headers=at("10.0.7.1"))) for _ in range(3)]
        with c.websocket_connect("/ws", headers=at("10.0.7.2")) as newcomer:
            told = crowd[0].receive_json()
            assert told["code"] == "too_many_connections" and "max_connections" in told["message"]
            with pytest.raises(WebSocketDisconnect) as closed:
                crowd[0].receive_json()
            assert closed.value.code == 1013
            newcomer.send_json({"type": "watch", "race_id": "nosuchrace"})
            assert newcomer.receive_json()["code"] == "unknown_race"  # in, and answered
            with c.websocket_connect("/ws", headers=at("10.0.7.1")) as again:  # 2 held, newcomer 1: no room
                assert again.receive_json()["code"] == "too_many_connections"
