"""The locked units were once called ``frozen``: links, commands, settings, stored races, bakes and
sweep files that say so still work, and races stored under the old name still replay."""

from __future__ import annotations

import json
import sqlite3
import time

from fastapi.testclient import TestClient

from headstart import cli
from headstart.lessons import sweep
from headstart.race.events import RaceConfig
from headstart.serving.app import create_app
from headstart.settings import Settings
from headstart.site import bake, pages
from headstart.store import Store

CONFIG = {"n": 50, "locked": 1, "seed": 0, "epochs": 2}


def as_before(text: str) -> str:
    """JSON as it was written before the rename."""
    return text.replace('"locked":', '"frozen":')


def test_a_configuration_reads_the_former_name_and_keeps_its_stored_key(tiny: Settings) -> None:
    old = RaceConfig.validate_with({"frozen": 3, "n": 50}, tiny.limits)
    assert old == RaceConfig.validate_with({"locked": 3, "n": 50}, tiny.limits) and old.locked == 3
    assert old.key().startswith('{"frozen":3,"n":50,')  # the key races were stored under before the rename


def test_the_command_line_and_the_environment_take_the_former_names(tiny: Settings, monkeypatch) -> None:
    parser = cli._parser(tiny)
    assert parser.parse_args(["race", "--frozen", "3"]).locked == 3
    assert parser.parse_args(["sweep", "--by", "frozen"]).by == "locked"
    assert parser.parse_args(["bake", "--out", "x", "--frozen", "1", "2"]).locked == [1, 2]
    monkeypatch.setenv("HEADSTART_LIMITS__FROZEN__MAX", "3")
    assert Settings().limits.locked.max == 3


def test_a_shipped_sweep_written_with_the_former_column_reads_as_locked(tiny: Settings) -> None:
    assert tiny.paths.sweep_csv.read_text().split(",")[2] == "frozen"  # the file as shipped, unchanged
    rows = sweep.read_rows(tiny.paths.sweep_csv)
    assert "frozen" not in rows[0] and rows[0]["locked"] == 2
    payload = sweep.page_payload(tiny.paths.sweep_csv)
    assert payload is not None and payload["locked"] == 2 and payload["scenario"]["default_locked"] == 2


def test_a_race_stored_before_the_rename_replays_under_todays_name(tiny: Settings, tmp_path) -> None:
    settings = tiny.model_copy(update={"database": tmp_path / "races.sqlite3", "replay_interval_s": 0.0})
    with TestClient(create_app(settings)) as client, client.websocket_connect("/ws") as ws:
        ws.send_json({"type": "start", "config": CONFIG})
        while (message := ws.receive_json())["type"] != "done":
            pass
        trained = message["race_id"]
    with sqlite3.connect(settings.paths.database) as db:  # as the store held it before the rename
        config, events = db.execute("SELECT config, events FROM races WHERE id = ?", (trained,)).fetchone()
        db.execute("UPDATE races SET config = ?, events = ? WHERE id = ?", (as_before(config), as_before(events), trained))
    with TestClient(create_app(settings)) as client, client.websocket_connect("/ws") as ws:
        deadline = time.monotonic() + 60
        while client.get("/healthz").json()["worker"] != "up" and time.monotonic() < deadline:
            time.sleep(0.1)
        assert client.get(f"/api/races/{trained}").json()["config"]["locked"] == 1
        assert client.get("/api/races").json()["races"][0]["config"]["locked"] == 1
        ws.send_json({"type": "start", "config": {"n": 50, "frozen": 1, "seed": 0, "epochs": 2}})  # as an old link asks
        messages = [ws.receive_json()]
        while messages[-1]["type"] != "done":
            messages.append(ws.receive_json())
    accepted = next(m for m in messages if m["type"] == "accepted")
    plan = next(m for m in messages if m["type"] == "plan")
    assert accepted["replay_of"] == trained  # found under the key it was stored with
    assert plan["config"]["locked"] == 1 and "frozen" not in plan["config"]


def test_a_bake_made_before_the_rename_preloads_and_makes_a_site(tiny: Settings, tmp_path) -> None:
    grid = bake.Grid(n=(50,), locked=(1,), seeds=(0,), epochs=2)
    for path in bake.bake(tiny, grid, tmp_path / "bake"):
        path.write_text(as_before(path.read_text()))
    races = list(bake.read(tmp_path / "bake"))
    assert races[0]["config"]["locked"] == 1 and all("frozen" not in e.get("config", {}) for e in races[0]["events"])
    store = Store(tmp_path / "races.sqlite3")
    assert bake.preload(tmp_path / "bake", store) == 1
    stored = store.get(races[0]["race_id"])
    store.close()
    assert stored is not None and stored["config"]["locked"] == 1
    pages.write(tiny, tmp_path / "bake", races, races[0]["device"])
    config = json.loads((tmp_path / "bake" / "api" / "config.json").read_text())
    locked = next(f for f in config["fields"] if f["name"] == "locked")
    assert locked["recorded"] == [1] and locked["former"] == ["frozen"]
