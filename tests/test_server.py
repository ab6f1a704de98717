from __future__ import annotations

import csv
import json
import multiprocessing
import os
import signal
import sqlite3
import time
from collections.abc import Iterator
from contextlib import ExitStack

import pytest
from fastapi.testclient import TestClient

from headstart import store as store_module
from headstart.race import identity
from headstart.serving import hub as hub_module
from headstart.serving import pool as pool_module
from headstart.serving import registry as registry_module
from headstart.serving.app import create_app
from headstart.serving.deps import get_app_settings
from headstart.settings import IntRange, Limits, Settings
from headstart.store import Store, StoreError

TINY = {"n": 25, "epochs": 2, "locked": 2, "seed": 0}


@pytest.fixture(scope="module")
def settings(tiny: Settings, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    database = tmp_path_factory.mktemp("db") / "races.sqlite3"
    return tiny.model_copy(
        update={
            "max_races_per_client": 2,
            "orphan_grace_s": 0.3,
            "max_connections": 6,
            "database": database,
            "replay_interval_s": 0.01,
        }
    )


@pytest.fixture(scope="module")
def client(settings: Settings) -> Iterator[TestClient]:
    app = create_app(settings)
    with TestClient(app) as c:
        yield c


def until(ws, kind: str) -> list[dict]:
    """Messages up to and including the first of type ``kind``."""
    seen = []
    while True:
        msg = ws.receive_json()
        seen.append(msg)
        if msg["type"] == kind:
            return seen
        assert msg["type"] != "error", msg  # a refusal would otherwise leave us waiting for ever


def worker_error(client: TestClient) -> str:
    """Why the server's worker cannot start, once it has found out; as /api/config tells the page."""
    for _ in range(600):
        if client.get("/healthz").json()["error"]:
            break
        time.sleep(0.05)  # polling an HTTP status: nothing to await from this side
    return client.get("/api/config").json()["worker_error"]


def run_race(ws, config: dict) -> list[dict]:
    ws.send_json({"type": "start", "config": config})
    return until(ws, "done")


def test_config_reports_limits_units_and_defaults(client: TestClient, tiny: Settings) -> None:
    body = client.get("/api/config").json()
    assert body["limits"]["n"]["min"] == 25 and body["limits"]["n"]["default"] == 200
    assert body["limits"]["epochs"] == {"min": 1, "max": 50, "default": 10}
    assert [u["name"] for u in body["units"]] == ["stem", "stage1", "stage2", "stage3", "stage4", "head"]
    assert [(s["name"], s["extra"]) for s in body["strategies"]] == [
        ("scratch", False),
        ("frozen", False),
        ("finetune", False),
        ("gradual", True),
        ("lora", True),
    ]
    assert all(s["label"] and s["colour"].startswith("#") for s in body["strategies"])
    fields = {f["name"]: f for f in body["fields"]}
    assert list(fields) == [
        "locked",
        "n",
        "epochs",
        "seed",
        "lr_scratch",
        "lr_head",
        "body_lr_ratio",
        "source",
        "keep",
        "keep_strength",
        "extra",
        "lora_rank",
        "dataset",
        "body",
    ]
    assert fields["epochs"] | {"label": "", "help": ""} == {
        "name": "epochs",
        "label": "",
        "help": "",
        "kind": "int",
        "control": "number",
        "group": "basic",
        "min": 1,
        "max": 50,
        "options": None,
        "default": 10,
        "neutral": None,
        "moot_when": None,
        "needs": None,
        "former": [],
    }
    assert fields["locked"]["former"] == ["frozen"]  # links with ?frozen= still read
    assert fields["extra"]["kind"] == "set" and [o["value"] for o in fields["extra"]["options"]] == ["gradual", "lora"]
    assert fields["lora_rank"]["needs"] == {"extra": "lora"} and fields["extra"]["neutral"] == []
    assert [o["value"] for o in fields["keep"]["options"]] == ["none", "l2sp", "ewc"] and fields["keep"]["neutral"] == "none"
    assert fields["keep_strength"]["moot_when"] == {"keep": "none"}
    assert fields["source"]["needs"] == {"body": "tiny"} and fields["body"]["group"] == "task"
    missing = {o["value"]: o["unavailable"] for o in fields["body"]["options"]}
    assert missing["tiny"] is None and "resnet18-f37072fd.pth" in missing["resnet18"]
    assert [u["label"] for u in body["bodies"]["resnet50"]["units"]][1:5] == ["layer 1", "layer 2", "layer 3", "layer 4"]
    assert body["datasets"] == {"fashion": {"classes": body["classes"], "capacity": None}}
    assert body["schedule"] == {"warmup_epochs": 2.0, "cosine_decay": True}  # the page explains the race from these
    assert body["class_address"] is None and body["reachable_by_others"] is False  # served on 127.0.0.1


def test_a_configured_class_address_is_what_the_page_shows_students(settings: Settings) -> None:
    behind_a_proxy = settings.model_copy(update={"class_address": "headstart.school.example"})
    body = TestClient(create_app(behind_a_proxy)).get("/api/config").json()
    assert body["class_address"] == "headstart.school.example" and body["reachable_by_others"] is True


def test_healthz_reports_the_worker(client: TestClient) -> None:
    body = client.get("/healthz").json()
    assert body["status"] == "ok" and body["worker"] in ("up", "starting")


def test_start_streams_accepted_plan_epochs_done_and_the_race_is_stored(client: TestClient) -> None:
    with client.websocket_connect("/ws") as ws:
        msgs = run_race(ws, TINY)
    assert msgs[0]["type"] == "accepted" and msgs[0]["config"]["n"] == 25
    race_id = msgs[0]["race_id"]
    assert all(m["race_id"] == race_id for m in msgs)
    kinds = [m["type"] for m in msgs if m["type"] != "queued"]
    assert kinds == ["accepted", "plan"] + ["epoch"] * 6 + ["predictions", "done"]
    stored = client.get(f"/api/races/{race_id}").json()
    assert stored["status"] == "done" and stored["config"]["epochs"] == 2
    assert [e["type"] for e in stored["events"]] == [m["type"] for m in msgs if m["type"] != "queued"]
    csv_text = client.get(f"/api/races/{race_id}.csv").text.splitlines()
    rows = list(csv.DictReader(csv_text))
    assert len(rows) == 6 and rows[0]["strategy"] == "scratch" and float(rows[0]["train_loss"]) > 0
    assert {r["race_id"] for r in rows} == {race_id} and {r["n"] for r in rows} == {"25"} and {r["epochs"] for r in rows} == {"2"}
    assert rows[0]["device"] == stored["device"] and rows[0]["device"].startswith("cpu")
    # The last epoch's rows carry each strategy's per-class accuracy and confusion matrix.
    done = msgs[-1]["summary"]
    for row in rows:
        last = row["epoch"] == "2"
        assert bool(row["per_class_acc"]) == last and bool(row["confusion"]) == last
        if last:
            confusion = [[int(n) for n in counts.split()] for counts in row["confusion"].split(" | ")]
            assert confusion == done[row["strategy"]]["confusion"]
            per_class = [float(a) for a in row["per_class_acc"].split()]
            assert per_class == pytest.approx(done[row["strategy"]]["per_class_acc"], abs=1e-4)
    # And each test image, with its true class and every strategy's prediction, by name.
    predictions = next(m for m in msgs if m["type"] == "predictions")
    plan = next(m for m in msgs if m["type"] == "plan")
    images = list(csv.DictReader(client.get(f"/api/races/{race_id}/predictions.csv").text.splitlines()))
    assert len(images) == plan["test_size"] and list(images[0])[-3:] == ["scratch", "frozen", "finetune"]
    assert [int(r["index"]) for r in images] == predictions["index"]
    assert [r["true_class"] for r in images] == [plan["classes"][t] for t in predictions["truth"]]
    assert [r["frozen"] for r in images] == [plan["classes"][p] for p in predictions["predicted"]["frozen"]]


def test_omitted_fields_take_their_defaults(client: TestClient) -> None:
    with client.websocket_connect("/ws") as ws:
        ws.send_json({"type": "start", "config": {"epochs": 1, "n": 25}})
        accepted = ws.receive_json()
        assert accepted["config"]["locked"] == 2 and accepted["config"]["seed"] == 0
        ws.send_json({"type": "cancel", "race_id": accepted["race_id"]})
        assert until(ws, "cancelled")[-1]["race_id"] == accepted["race_id"]


def test_a_late_watcher_receives_the_whole_history(client: TestClient) -> None:
    with client.websocket_connect("/ws") as a:
        race = run_race(a, TINY | {"seed": 3})
        with client.websocket_connect("/ws") as b:
            b.send_json({"type": "watch", "race_id": race[0]["race_id"]})
            replay = until(b, "done")
    assert [m["type"] for m in replay] == [m["type"] for m in race if m["type"] != "queued"]


@pytest.mark.parametrize(
    ("frame", "code", "field", "needle"),
    [
        ('{"type": "start", "config": {"n": 3}}', "invalid_message", "config.n", "between 25 and 5000"),
        ('{"type": "start", "config": {"locked": 9}}', "invalid_message", "config.locked", "between 0 and 4"),
        ('{"type": "start", "config": {"epochs": "many"}}', "invalid_message", "config.epochs", "a whole number from 1 to"),
        ('{"type": "start", "config": {"colour": 1}}', "invalid_message", "config.colour", "Extra inputs"),
        ('{"type": "dance"}', "invalid_message", "type", "start, cancel, watch, unwatch"),
        ('{"race_id": "x"}', "invalid_message", "type", "start, cancel, watch, unwatch"),
        ('{"type": "unwatch"}', "invalid_message", "race_id", "Field required"),
        ('{"type": "watch"}', "invalid_message", None, "exactly one of race_id or code"),
        ('{"type": "watch", "code": "ZZZZ"}', "unknown_code", "code", "no broadcast race with code"),
        ('{"type": "watch", "race_id": "nope"}', "unknown_race", "race_id", "no race with id"),
        ('{"type": "cancel", "race_id": "nope"}', "unknown_race", "race_id", "no race with id"),
        ("{not json", "invalid_message", None, "Invalid JSON"),
        ("[1, 2]", "invalid_message", None, ""),
        ('{"type": "start", "pad": "' + "x" * 9000 + '"}', "too_large", None, "limit is 8192 bytes"),
    ],
)
def test_bad_messages_get_a_clear_error_and_the_socket_stays_usable(client, frame, code, field, needle) -> None:
    with client.websocket_connect("/ws") as ws:
        ws.send_text(frame)
        err = ws.receive_json()
        assert err["type"] == "error" and err["code"] == code, err
        assert err.get("field") == field and needle in err["message"]
        ws.send_json({"type": "watch", "race_id": "still-here"})
        assert ws.receive_json()["code"] == "unknown_race"


def test_a_race_larger_than_the_dataset_is_refused_with_the_most_it_can_have(client: TestClient) -> None:
    with client.websocket_connect("/ws") as ws:
        run_race(ws, TINY | {"seed": 24})  # the worker is ready, and has said what its data holds
        ws.send_json({"type": "start", "config": TINY | {"n": 301}})  # the test data: 60 images a class
        err = ws.receive_json()
    assert err["code"] == "dataset_too_small" and err["field"] == "config.n"
    assert "60 images of each target class" in err["message"] and "at most 300 target images, not 301" in err["message"]
    # The page's n slider then ends at what the data holds, not at the setting's 5,000.
    assert client.get("/api/config").json()["limits"]["n"] == {"min": 25, "max": 300, "default": 200}


def test_the_limits_a_page_is_given_stay_the_settings_while_the_data_holds_more(tiny: Settings, tmp_path) -> None:
    limits = Limits(n=IntRange(min=25, max=250, default=100))
    hub = hub_module.Hub(tiny.model_copy(update={"limits": limits, "database": tmp_path / "races.sqlite3"}))
    assert hub.limits() == limits  # the worker has not said what its data holds yet
    hub.slots.append(pool_module.Slot(worker=None, max_n=300))  # type: ignore[arg-type]
    assert hub.limits() == limits
    hub.slots[0].max_n = 200
    assert hub.limits().n == IntRange(min=25, max=200, default=100) and hub.limits().epochs == limits.epochs
    hub.store.close()


def test_binary_frames_are_refused(client: TestClient) -> None:
    with client.websocket_connect("/ws") as ws:
        ws.send_bytes(b"\x00\x01")
        assert ws.receive_json()["code"] == "binary_frame"


def test_the_page_modules_are_revalidated_and_the_vendored_library_kept(client: TestClient) -> None:
    module = client.get("/static/js/main.js")
    assert module.status_code == 200 and module.headers["cache-control"] == "no-cache"
    again = client.get("/static/js/main.js", headers={"If-None-Match": module.headers["etag"]})
    assert again.status_code == 304 and again.headers["cache-control"] == "no-cache"
    vendored = client.get("/static/vendor/uplot-1.6.32/uPlot.esm.js")
    assert vendored.status_code == 200 and "immutable" in vendored.headers["cache-control"]
    assert client.get("/static/js/nothing.js").status_code == 404
    for page in ("/", "/embed"):  # as a course platform's link checker asks
        assert client.head(page).status_code == 200
    assert "frame-ancestors 'self'" in client.get("/").headers["content-security-policy"]
    # By default any page may frame the embed, slides opened from disk too: "*" would not match file://.
    assert "frame-ancestors" not in client.get("/embed").headers["content-security-policy"]
    assert client.head("/w/ZZZZ", follow_redirects=False).status_code == 303


def test_the_sweep_panel_data_missing_or_damaged_is_named(client: TestClient, settings: Settings, tmp_path) -> None:
    app = client.app
    damaged = tmp_path / "sweep.csv"
    damaged.write_text("n,seed,frozen\n25,0,x\n")
    try:
        for csv_path, status, code, named in [
            (tmp_path / "none.csv", 404, "no_sweep", "run `python -m headstart sweep`"),
            (damaged, 500, "bad_sweep", "cannot read line 2 of"),
        ]:
            app.dependency_overrides[get_app_settings] = lambda csv_path=csv_path: settings.model_copy(
                update={"sweep_csv": csv_path}
            )
            r = client.get("/api/sweep")
            assert r.status_code == status and r.json()["code"] == code, r.json()
            assert str(csv_path) in r.json()["message"] and named in r.json()["message"]
    finally:
        app.dependency_overrides.clear()
    assert client.get("/api/sweep").status_code == 200  # the shipped one


def test_the_trade_off_panel_gets_each_setting_of_fine_tune_and_how_to_draw_it(client: TestClient) -> None:
    body = client.get("/api/sweep/keep").json()
    assert body["seeds"] == 3 and set(body["looks"]) == {"none", "l2sp", "ewc"}
    keeps = {p["keep"] for p in body["points"]}
    assert keeps == {"none", "l2sp", "ewc"}
    assert all(0 <= p["source_lo"] <= p["source_acc"] <= p["source_hi"] <= 1 for p in body["points"])


def test_each_source_has_its_head_start_and_the_layer_by_layer_panel_all_of_them(client: TestClient) -> None:
    for source in ("far", "shuffled"):
        body = client.get(f"/api/sweep?source={source}").json()
        assert body["scenario"]["race"]["source"] == source and body["seeds"] == 3
    assert "source" not in client.get("/api/sweep").json()["scenario"]["race"]  # the default, as it always was
    depth = client.get("/api/sweep/depth").json()
    assert set(depth["sources"]) == {"near", "far", "shuffled"}
    assert {p["locked"] for p in depth["points"]} == {-1, 0, 1, 2, 3, 4, 5}


def test_http_errors_name_the_problem(client: TestClient) -> None:
    r = client.get("/api/races/nope")
    assert r.status_code == 404 and r.json()["code"] == "unknown_race" and "nope" in r.json()["message"]
    assert client.get("/api/races/nope.csv").status_code == 404
    assert client.get("/api/races/nope/predictions.csv").json()["code"] == "unknown_race"


def test_only_the_starter_cancels_and_per_client_limits_hold(client: TestClient) -> None:
    slow = TINY | {"epochs": 50, "n": 200}
    with client.websocket_connect("/ws?client=alice") as a, client.websocket_connect("/ws?client=bob") as b:
        a.send_json({"type": "start", "config": slow})
        race_id = a.receive_json()["race_id"]
        b.send_json({"type": "cancel", "race_id": race_id})
        assert b.receive_json()["code"] == "not_owner"
        a.send_json({"type": "start", "config": slow | {"seed": 1}})
        second = until(a, "accepted")[-1]["race_id"]
        a.send_json({"type": "start", "config": slow | {"seed": 2}})
        refused = until(a, "error")[-1]
        assert refused["code"] == "too_many_races" and "limit 2" in refused["message"]
        for rid in (race_id, second):
            a.send_json({"type": "cancel", "race_id": rid})
        reasons = {}  # the running race and the queued one
        while len(reasons) < 2:
            msg = a.receive_json()
            if msg["type"] == "cancelled":
                reasons[msg["race_id"]] = msg["reason"]
        assert set(reasons.values()) == {"its starter pressed Stop"}


def test_a_killed_worker_reports_an_error_and_the_next_race_completes(client: TestClient) -> None:
    hub = client.app.state.hub
    with client.websocket_connect("/ws") as ws:
        ws.send_json({"type": "start", "config": TINY | {"epochs": 50, "n": 200}})
        until(ws, "epoch")
        os.kill(hub.slots[0].worker.pid, signal.SIGKILL)
        err = until(ws, "error")[-1]
        assert err["code"] == "worker_died" and "exit code" in err["message"]
        fresh = run_race(ws, TINY | {"seed": 7})
        assert fresh[-1]["type"] == "done" and not any(m.get("replay") for m in fresh)
    assert json.dumps(client.get("/healthz").json())


def test_a_race_left_without_viewers_is_cancelled(client: TestClient) -> None:
    with client.websocket_connect("/ws") as ws:
        ws.send_json({"type": "start", "config": TINY | {"epochs": 50, "n": 200}})
        race_id = ws.receive_json()["race_id"]
    for _ in range(200):
        status = client.get(f"/api/races/{race_id}").json()["status"]
        if status == "cancelled":
            break
        time.sleep(0.05)  # polling an HTTP status: nothing to await from this side
    assert status == "cancelled"
    events = client.get(f"/api/races/{race_id}").json()["events"]
    assert events[-1]["reason"] == "no viewers left"


def test_an_unwatched_race_says_nothing_more_and_is_cancelled_once_no_one_watches(client: TestClient) -> None:
    with client.websocket_connect("/ws?client=alice") as a, client.websocket_connect("/ws?client=bob") as b:
        a.send_json({"type": "start", "config": TINY | {"epochs": 50, "n": 200, "seed": 21}})
        race_id = until(a, "epoch")[0]["race_id"]
        b.send_json({"type": "watch", "race_id": race_id})
        b.send_json({"type": "unwatch", "race_id": race_id})
        b.send_text("{")  # its error reply follows whatever the race said before the unwatch
        heard = [m for m in until(b, "error") if m.get("race_id") == race_id]
        assert heard[0]["type"] == "accepted"
        # Every epoch Alice hears past those was published after Bob left.
        seen = sum(m["type"] == "epoch" for m in heard) + 1
        while seen:
            seen -= a.receive_json()["type"] == "epoch"
        b.send_text("{")
        assert b.receive_json()["type"] == "error"
        b.send_json({"type": "unwatch", "race_id": "never-watched"})  # nothing to do, nothing said
        b.send_text("{")
        assert b.receive_json()["type"] == "error"
        # Its starter leaves too, connection still open: no viewers, so the race stops.
        a.send_json({"type": "unwatch", "race_id": race_id})
        for _ in range(200):
            race = client.get(f"/api/races/{race_id}").json()
            if race["status"] == "cancelled":
                break
            time.sleep(0.05)  # polling an HTTP status: nothing to await from this side
        assert race["status"] == "cancelled" and race["events"][-1]["reason"] == "no viewers left"


def test_connections_beyond_the_limit_are_refused_clearly(client: TestClient) -> None:
    with ExitStack() as stack:
        for _ in range(6):
            stack.enter_context(client.websocket_connect("/ws"))
        with client.websocket_connect("/ws") as extra:
            refusal = extra.receive_json()
            assert refusal["code"] == "too_many_connections" and "limit of 6" in refusal["message"]
    with client.websocket_connect("/ws") as ws:  # capacity is back once they close
        ws.send_json({"type": "watch", "race_id": "x"})
        assert ws.receive_json()["code"] == "unknown_race"


def test_an_identical_request_attaches_to_the_race_already_training(client: TestClient) -> None:
    config = TINY | {"epochs": 50, "n": 200, "seed": 11}
    with client.websocket_connect("/ws?client=carol") as a, client.websocket_connect("/ws?client=dave") as b:
        a.send_json({"type": "start", "config": config})
        accepted = a.receive_json()
        first = accepted["race_id"]
        assert accepted["yours"] is True
        b.send_json({"type": "start", "config": config})
        joined = until(b, "accepted")[-1]
        assert joined["race_id"] == first and joined["yours"] is False  # dave may watch, not cancel
        b.send_json({"type": "cancel", "race_id": first})
        assert until(b, "error")[-1]["code"] == "not_owner"
        a.send_json({"type": "cancel", "race_id": first})
        until(b, "cancelled")


def test_a_race_the_store_cannot_keep_still_finishes_replays_from_memory_and_is_stored_later(
    client: TestClient, settings: Settings, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    store = client.app.state.hub.store
    working = store.save
    full = Store(settings.paths.database)
    full.close()  # every write to it fails, as on a full or read-only disk
    monkeypatch.setattr(store, "save", full.save)
    monkeypatch.setattr(registry_module, "SAVE_RETRY_S", 0.2)
    config = TINY | {"seed": 17}
    with client.websocket_connect("/ws") as ws:
        first = run_race(ws, config)
        again = run_race(ws, config)
        monkeypatch.setattr(store, "save", working)  # the disk takes writes again
    accuracies = lambda msgs: [(m["strategy"], m["epoch"], m["test_acc"]) for m in msgs if m["type"] == "epoch"]  # noqa: E731
    assert again[0]["replay_of"] == first[0]["race_id"] and accuracies(again) == accuracies(first)
    deadline = time.monotonic() + 10
    while store.get(first[0]["race_id"]) is None:  # tried again on a timer: polled, with nothing to await here
        assert time.monotonic() < deadline, "the race was never stored"
        time.sleep(0.05)
    listed = client.get("/api/races?limit=100").json()["races"]
    assert first[0]["race_id"] in [r["race_id"] for r in listed]
    said = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert said and said[0] == (
        f"race {first[0]['race_id']} could not be stored in {settings.paths.database}: Cannot operate on a closed "
        "database; it replays from memory meanwhile, and is tried again in 0.2 s"
    )


def test_a_race_finished_while_another_program_holds_the_database_is_kept_when_it_lets_go(
    settings: Settings, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store_module, "BUSY_TIMEOUT_S", 0.05)  # each try waits this long for the lock
    locked = settings.model_copy(update={"database": tmp_path / "races.sqlite3"})
    config = TINY | {"seed": 19}
    with TestClient(create_app(locked)) as c, c.websocket_connect("/ws") as ws:
        other = sqlite3.connect(locked.paths.database, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")  # a backup, say, or an operator's sqlite3 shell
        first = run_race(ws, config)
        race_id = first[0]["race_id"]
        # The server goes on meanwhile: the race is there, and a repeat replays it.
        assert c.get(f"/api/races/{race_id}").json()["status"] == "done"
        assert run_race(ws, config)[0]["replay_of"] == race_id
        assert c.get("/api/races").json()["total"] == 0  # listed once it is written
        other.execute("COMMIT")
        other.close()
        assert c.app.state.hub.store.written(timeout=10)
    with TestClient(create_app(locked)) as restarted:  # and a restart finds it
        assert restarted.get("/api/races").json()["races"][0]["race_id"] == race_id


def test_a_race_database_that_cannot_be_read_is_named_and_nothing_else_stops(
    client: TestClient, settings: Settings, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    store = client.app.state.hub.store
    broken = Store(settings.paths.database)
    broken.close()  # every call fails, as on a disk error or a file another program holds locked
    for name in ("find", "recent", "race_of", "get"):
        monkeypatch.setattr(store, name, getattr(broken, name))
    where = f"in {settings.paths.database}: Cannot operate on a closed database; try again shortly"
    listed = client.get("/api/races")
    assert listed.status_code == 503
    assert listed.json() == {
        "type": "error",
        "code": "store_unavailable",
        "message": f"the finished races could not be listed {where}",
    }
    with client.websocket_connect("/ws") as ws:
        ws.send_json({"type": "watch", "code": "ABCD"})
        refused = ws.receive_json()
        assert (refused["code"], refused["message"]) == ("store_unavailable", f"the class codes could not be read {where}")
        raced = run_race(ws, TINY | {"seed": 18})  # the same socket: training goes on without the store
    assert not any(m.get("replay") for m in raced) and raced[-1]["type"] == "done"
    said = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert (
        f"the finished races could not be searched in {settings.paths.database}: Cannot operate on a closed database; "
        "training the race rather than replaying it" in said
    )


def test_a_server_starts_though_its_old_class_codes_cannot_be_cleared(
    settings: Settings, tmp_path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def locked(self: Store, before: float) -> int:  # another program holds the database for a while
        raise StoreError(f"old class codes could not be cleared in {settings.paths.database}: database is locked")

    monkeypatch.setattr(Store, "forget_codes", locked)
    with TestClient(create_app(settings.model_copy(update={"database": tmp_path / "races.sqlite3"}))) as c:
        assert c.get("/api/races").json()["total"] == 0
    said = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert said == [
        f"old class codes could not be cleared in {settings.paths.database}: database is locked; "
        "they are cleared at the next start"
    ]


def test_a_finished_race_is_replayed_from_the_store(client: TestClient) -> None:
    config = TINY | {"seed": 12}
    with client.websocket_connect("/ws") as ws:
        trained = run_race(ws, config)
        replayed = run_race(ws, config)
    assert replayed[0]["replay_of"] == trained[0]["race_id"] != replayed[0]["race_id"]
    epochs = lambda msgs: [(m["strategy"], m["epoch"], m["test_acc"]) for m in msgs if m["type"] == "epoch"]  # noqa: E731
    assert epochs(replayed) == epochs(trained)
    assert all(m["replay"] for m in replayed if m["type"] in ("plan", "epoch", "done"))


def test_watching_a_race_again_sends_its_history_again(client: TestClient) -> None:
    with client.websocket_connect("/ws") as ws:
        first = run_race(ws, TINY | {"seed": 15})
        ws.send_json({"type": "watch", "race_id": first[0]["race_id"]})
        ws.send_text("{")  # its error reply marks the end of what the watch sent
        again = []
        while (msg := ws.receive_json())["type"] != "error":
            again.append(msg)
    # A page coming back to a race redraws it from its start.
    assert [m["type"] for m in again] == [m["type"] for m in first if m["type"] != "queued"]
    assert again[0]["type"] == "accepted" and again[-1] == first[-1]


def test_the_starter_can_stop_a_replay_and_keep_the_connection(client: TestClient) -> None:
    config = TINY | {"seed": 14, "epochs": 10}  # 32 replayed events at 10 ms: time to stop it
    with client.websocket_connect("/ws?client=carol") as ws:
        run_race(ws, config)
        ws.send_json({"type": "start", "config": config})
        accepted = ws.receive_json()
        assert accepted["replay_of"] and accepted["yours"]
        ws.send_json({"type": "cancel", "race_id": accepted["race_id"]})
        while (msg := ws.receive_json())["type"] != "cancelled":
            assert msg["type"] in ("plan", "epoch"), msg
        assert client.get(f"/api/races/{accepted['race_id']}").json()["status"] == "cancelled"
        assert run_race(ws, config)[0]["replay_of"]  # the same connection goes on


def test_a_race_stored_with_clocks_that_meant_something_else_is_retrained(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = TINY | {"seed": 13}
    with client.websocket_connect("/ws") as ws:
        monkeypatch.setattr(identity, "CLOCKS", identity.CLOCKS - 1)
        run_race(ws, config)
        monkeypatch.undo()
        again = run_race(ws, config)
        assert "replay_of" not in again[0] and not any(m.get("replay") for m in again)
        assert run_race(ws, config)[0]["replay_of"] == again[0]["race_id"]  # stored with today's clocks


def test_finished_races_survive_a_restart(settings: Settings, tmp_path) -> None:
    restartable = settings.model_copy(update={"database": tmp_path / "races.sqlite3"})
    with TestClient(create_app(restartable)) as first, first.websocket_connect("/ws") as ws:
        race = run_race(ws, TINY | {"seed": 21})
    race_id = race[0]["race_id"]
    with TestClient(create_app(restartable)) as second:
        stored = second.get(f"/api/races/{race_id}").json()
        assert stored["status"] == "done" and len(stored["events"]) == len(race) - sum(m["type"] == "queued" for m in race)
        listing = second.get("/api/races?limit=5").json()
        assert listing["total"] == 1 and listing["races"][0]["race_id"] == race_id
        assert listing["races"][0]["summary"]["finetune"]["final_test_acc"] == race[-1]["summary"]["finetune"]["final_test_acc"]
        with second.websocket_connect("/ws") as ws:
            ws.send_json({"type": "watch", "race_id": race_id})
            assert until(ws, "done")[0]["type"] == "accepted"


def crash_when(go: str) -> None:
    """A worker that dies before it is ready, once ``go`` exists (module level: a spawned process imports it)."""
    while not os.path.exists(go):
        time.sleep(0.01)
    os._exit(7)


@pytest.mark.timeout(60)  # a server that never tells the idle page would leave it waiting
def test_a_worker_that_keeps_dying_before_it_is_ready_is_not_restarted_for_ever(
    settings: Settings, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    starts: list[int] = []
    go = tmp_path / "go"

    def crashing(self: pool_module.Worker) -> None:  # as a library that crashes the process on load
        self.process = multiprocessing.get_context("spawn").Process(target=crash_when, args=(str(go),), daemon=True)
        self.process.start()
        starts.append(self.process.pid)

    monkeypatch.setattr(pool_module.Worker, "start", crashing)
    with TestClient(create_app(settings.model_copy(update={"database": tmp_path / "races.sqlite3"}))) as c:
        with c.websocket_connect("/ws") as idle:
            idle.send_text("{")
            assert idle.receive_json()["code"] == "invalid_message"  # connected and listening, and nothing else said
            go.touch()
            told = idle.receive_json()  # a page that asked for nothing learns it all the same
        why = worker_error(c)
        assert why == (
            "the training worker stopped 3 times in a row before it was ready (last exit code 7); the "
            "server's log may say why. Mend that, then restart the server."
        )
        # One subject: the reason already names the worker.
        cannot = {"type": "error", "code": "worker_unavailable", "message": f"this server cannot train: {why}"}
        assert told == cannot
        time.sleep(0.5)
        assert len(starts) == 3  # and no more
        with c.websocket_connect("/ws") as ws:
            assert ws.receive_json() == cannot  # told as it connects, as a page whose socket dropped meanwhile
            ws.send_json({"type": "start", "config": TINY})
            assert ws.receive_json() == cannot


def test_settings_the_worker_cannot_take_are_named_as_why_it_cannot_start(settings: Settings, tmp_path) -> None:
    # model_copy does not validate: the worker, which validates what it is sent, is the one to find out.
    unchecked = settings.model_copy(update={"database": tmp_path / "races.sqlite3", "port": 0})
    with TestClient(create_app(unchecked)) as c:
        why = worker_error(c)
    said = "ValidationError: 1 validation error for Settings\nserver.port\n  Input should be greater than or equal to 1"
    assert why.startswith(said)


def test_a_server_whose_worker_cannot_start_says_why_and_keeps_its_races(settings: Settings, tmp_path) -> None:
    kept = settings.model_copy(update={"database": tmp_path / "races.sqlite3"})
    with TestClient(create_app(kept)) as first, first.websocket_connect("/ws") as ws:
        race_id = run_race(ws, TINY | {"seed": 25})[0]["race_id"]
    no_data = kept.model_copy(update={"data_dir": tmp_path / "nowhere"})
    with TestClient(create_app(no_data)) as second:
        why = worker_error(second)
        assert why.startswith("DataError: Fashion-MNIST not found") and "HEADSTART_DATA_DIR" in why
        with second.websocket_connect("/ws") as ws:
            told = ws.receive_json()  # as it connects
            ws.send_json({"type": "start", "config": TINY})
            refused = ws.receive_json()
            assert told == refused and refused["code"] == "worker_unavailable" and refused["message"].endswith(why)
            ws.send_json({"type": "watch", "race_id": race_id})  # what it trained before is all there
            assert until(ws, "done")[-1]["race_id"] == race_id
        assert second.get(f"/api/races/{race_id}").json()["status"] == "done"


@pytest.mark.parametrize(
    ("query", "allowed"),
    [("limit=0", "greater than or equal to 1"), ("limit=500", "less than or equal to 100"), ("offset=x", "integer")],
)
def test_bad_listing_parameters_answer_the_documented_error_shape(client: TestClient, query: str, allowed: str) -> None:
    response = client.get(f"/api/races?{query}")
    field = query.split("=")[0]
    assert response.status_code == 422
    body = response.json()
    assert body["type"] == "error" and body["code"] == "invalid_request" and body["field"] == field
    assert body["message"].startswith(f"{field}: ") and allowed in body["message"]


def test_metrics_count_races_connections_and_event_latency(client: TestClient) -> None:
    with client.websocket_connect("/ws") as ws:
        run_race(ws, TINY | {"seed": 31})
        text = client.get("/metrics").text
    assert 'headstart_races_finished_total{outcome="done"}' in text
    assert "headstart_websocket_connections 1.0" in text
    assert 'headstart_workers{state="idle"} 1.0' in text and 'headstart_workers{state="busy"} 0.0' in text
    count = next(line for line in text.splitlines() if line.startswith("headstart_event_latency_seconds_count"))
    assert float(count.split()[-1]) >= 8  # plan, six epochs and done of this race at least


def test_a_broadcast_race_gets_a_code_the_class_can_join_by(client: TestClient) -> None:
    with client.websocket_connect("/ws?client=teacher") as teacher, client.websocket_connect("/ws") as student:
        teacher.send_json({"type": "start", "config": TINY | {"seed": 41}, "broadcast": True})
        accepted, broadcast = teacher.receive_json(), teacher.receive_json()
        code = broadcast["code"]
        assert broadcast["type"] == "broadcast" and broadcast["race_id"] == accepted["race_id"]
        assert len(code) == 4 and code.isalpha() and code.isupper() and not set(code) & set("IO")
        assert client.get(f"/api/codes/{code.lower()}").json()["race_id"] == accepted["race_id"]
        link = client.get(f"/w/{code}", follow_redirects=False)
        assert link.status_code == 303 and link.headers["location"] == f"/?race={accepted['race_id']}"
        student.send_json({"type": "watch", "code": code})
        seen = until(student, "done")
        assert seen[0]["race_id"] == accepted["race_id"] and seen[0]["yours"] is False
        assert accepted["yours"] is True
        until(teacher, "done")
        # The teacher's next broadcast keeps the code, and the class following the last race hears of it.
        teacher.send_json({"type": "start", "config": TINY | {"seed": 42}, "broadcast": True})
        second = until(teacher, "broadcast")[-1]
        assert second["code"] == code and second["race_id"] != accepted["race_id"]
        moved = until(student, "next")[-1]
        assert moved == {"type": "next", "race_id": accepted["race_id"], "next_race_id": second["race_id"], "code": code}
        assert client.get(f"/api/codes/{code}").json()["race_id"] == second["race_id"]
        # Not in the first race's history: opened again by its id, it is that race.
        assert "next" not in [m["type"] for m in client.get(f"/api/races/{accepted['race_id']}").json()["events"]]
        until(teacher, "done")
    with client.websocket_connect("/ws?client=another-teacher") as other:
        other.send_json({"type": "start", "config": TINY | {"seed": 43}, "broadcast": True})
        assert until(other, "broadcast")[-1]["code"] != code  # each teacher's class has its own
        until(other, "done")
    assert client.get("/api/codes/ABCD").status_code == 404
    unknown = client.get("/w/AB CD", follow_redirects=False)  # the page looks it up and says what was wrong
    assert unknown.status_code == 303 and unknown.headers["location"] == "/?join=AB+CD"


def test_a_class_code_the_store_cannot_keep_still_works_while_the_server_runs(
    client: TestClient, settings: Settings, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    full = Store(settings.paths.database)
    full.close()  # every write to it fails, as on a full disk
    monkeypatch.setattr(client.app.state.hub.store, "save_code", full.save_code)
    with client.websocket_connect("/ws?client=teacher-on-a-full-disk") as teacher:
        teacher.send_json({"type": "start", "config": TINY | {"seed": 47}, "broadcast": True})
        first = until(teacher, "broadcast")[-1]
        code = first["code"]
        assert client.get(f"/api/codes/{code}").json()["race_id"] == first["race_id"]
        with client.websocket_connect("/ws") as student:
            student.send_json({"type": "watch", "code": code})
            assert until(student, "done")[0]["race_id"] == first["race_id"]
        until(teacher, "done")
        teacher.send_json({"type": "start", "config": TINY | {"seed": 48}, "broadcast": True})
        second = until(teacher, "broadcast")[-1]
        assert second["code"] == code  # still the one on the board
        assert client.get(f"/api/codes/{code}").json()["race_id"] == second["race_id"]
        until(teacher, "done")
    said = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert said[0] == (
        f"class code {code} could not be stored in {settings.paths.database}: Cannot operate on a closed "
        "database; it works until the server restarts"
    )


def test_two_teachers_broadcasting_the_same_settings_each_keep_their_own_class(client: TestClient) -> None:
    config = TINY | {"n": 200, "epochs": 8, "seed": 45}
    with client.websocket_connect("/ws?client=teacher-a") as a, client.websocket_connect("/ws?client=teacher-b") as b:
        a.send_json({"type": "start", "config": config, "broadcast": True})
        first, code_a = until(a, "accepted")[-1]["race_id"], until(a, "broadcast")[-1]["code"]
        until(a, "epoch")
        # A class race is not joined by another teacher's broadcast: that class would be shown,
        # and follow, the other teacher's code. Waiting, it replays the first once that is done.
        b.send_json({"type": "start", "config": config, "broadcast": True})
        mine = until(b, "broadcast")
        code_b, second = mine[-1]["code"], mine[-1]["race_id"]
        assert code_b != code_a and second != first
        queued = until(b, "queued")[-1]
        assert (queued["race_id"], queued["position"], queued["paused"]) == (second, 1, False)
        assert client.get(f"/api/codes/{code_b}").json()["race_id"] == second
        until(a, "done")
        replayed = until(b, "done")
        assert [m["replay_of"] for m in replayed if m["type"] == "accepted"] == [first]
        assert {m["type"] for m in replayed} >= {"plan", "epoch"} and all(m["race_id"] == second for m in replayed)
        # The same teacher broadcasting the same settings again watches its own race, as anyone would.
        b.send_json({"type": "start", "config": config | {"seed": 46, "epochs": 50}, "broadcast": True})
        third = until(b, "accepted")[-1]["race_id"]
        b.send_json({"type": "start", "config": config | {"seed": 46, "epochs": 50}, "broadcast": True})
        assert until(b, "accepted")[-1]["race_id"] == third
        b.send_json({"type": "cancel", "race_id": third})
        until(b, "cancelled")


def test_a_class_code_outlives_a_restart_of_the_server(settings: Settings, tmp_path) -> None:
    kept = settings.model_copy(update={"database": tmp_path / "codes.sqlite3"})
    with TestClient(create_app(kept)) as c, c.websocket_connect("/ws?client=teacher-r") as teacher:
        teacher.send_json({"type": "start", "config": TINY | {"seed": 71}, "broadcast": True})
        code = until(teacher, "broadcast")[-1]["code"]
        finished = until(teacher, "done")[-1]["race_id"]
    with TestClient(create_app(kept)) as c:
        # A finished race is stored: the code still shows it, and a student joining sees its code.
        assert c.get(f"/api/codes/{code}").json() == {"code": code, "race_id": finished, "status": "done"}
        with c.websocket_connect("/ws") as student:
            student.send_json({"type": "watch", "code": code.lower()})
            history = until(student, "done")
            assert {"type": "broadcast", "race_id": finished, "code": code} in history
        with c.websocket_connect("/ws?client=teacher-r") as teacher:
            teacher.send_json({"type": "start", "config": TINY | {"epochs": 50, "n": 200, "seed": 72}, "broadcast": True})
            assert until(teacher, "broadcast")[-1]["code"] == code  # the same code after the restart
            until(teacher, "epoch")
    with TestClient(create_app(kept)) as c:  # restarted mid-race: that race is gone, its code is not
        lost = c.get(f"/api/codes/{code}")
        assert lost.status_code == 404 and lost.json()["code"] == "race_lost" and code in lost.json()["message"]
        with c.websocket_connect("/ws") as student:
            student.send_json({"type": "watch", "code": code})
            assert student.receive_json()["code"] == "race_lost"
        with c.websocket_connect("/ws?client=teacher-r") as teacher:
            teacher.send_json({"type": "start", "config": TINY | {"seed": 73}, "broadcast": True})
            again = until(teacher, "broadcast")[-1]
            assert again["code"] == code and c.get(f"/api/codes/{code}").json()["race_id"] == again["race_id"]
            until(teacher, "done")


def test_a_class_code_unused_for_days_is_freed(settings: Settings, tmp_path) -> None:
    kept = settings.model_copy(update={"database": tmp_path / "old.sqlite3", "class_code_days": 7})
    store = Store(kept.paths.database)
    store.save_code("OLDC", "last-term", "gone", time.time() - 8 * 86400)
    store.save_code("WEEK", "this-week", "gone", time.time() - 6 * 86400)
    store.close()
    with TestClient(create_app(kept)) as c:
        assert c.get("/api/codes/OLDC").json()["code"] == "unknown_code"
        assert c.get("/api/codes/WEEK").json()["code"] == "race_lost"


def test_a_teacher_sees_how_many_follow_a_broadcast_race(client: TestClient) -> None:
    with client.websocket_connect("/ws?client=teacher-v") as teacher:
        teacher.send_json({"type": "start", "config": TINY | {"epochs": 50, "n": 200, "seed": 44}, "broadcast": True})
        code = until(teacher, "broadcast")[-1]["code"]
        assert until(teacher, "viewers")[-1]["count"] == 1  # its own page
        with client.websocket_connect("/ws") as one, client.websocket_connect("/ws") as two:
            for student in (one, two):
                student.send_json({"type": "watch", "code": code})
            counts = [until(teacher, "viewers")[-1]["count"]]
            while counts[-1] < 3:  # both within a quarter second: one message, or two
                counts.append(until(teacher, "viewers")[-1]["count"])
            assert counts[-1] == 3 and len(counts) <= 2
        while until(teacher, "viewers")[-1]["count"] != 1:  # the class left, one page or both at once
            pass
        race_id = client.get(f"/api/codes/{code}").json()["race_id"]
        teacher.send_json({"type": "cancel", "race_id": race_id})
        until(teacher, "cancelled")
        events = client.get(f"/api/races/{race_id}").json()["events"]
        assert "viewers" not in [e["type"] for e in events]  # a count in the history would be stale


def test_a_full_queue_refuses_clearly_and_shows_positions(settings: Settings, tmp_path) -> None:
    small = settings.model_copy(update={"max_queue": 1, "database": tmp_path / "q.sqlite3"})
    slow = TINY | {"epochs": 50, "n": 200}
    with TestClient(create_app(small)) as c, ExitStack() as stack:
        a, b, d = (stack.enter_context(c.websocket_connect(f"/ws?client={name}")) for name in "abd")
        a.send_json({"type": "start", "config": slow | {"seed": 61}})
        until(a, "accepted")
        b.send_json({"type": "start", "config": slow | {"seed": 62}})
        assert until(b, "queued")[-1]["position"] == 1
        d.send_json({"type": "start", "config": slow | {"seed": 63}})
        refusal = until(d, "error")[-1]
        assert refusal["code"] == "queue_full" and "1 races waiting" in refusal["message"]


def test_a_configured_frame_ancestors_list_restricts_who_may_frame_the_embed(settings: Settings) -> None:
    restricted = settings.model_copy(update={"frame_ancestors": "https://lms.example 'self'"})
    policy = TestClient(create_app(restricted)).get("/embed").headers["content-security-policy"]
    assert policy.endswith("frame-ancestors https://lms.example 'self'")
