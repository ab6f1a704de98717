"""A bake: real races written to files, resumable, equal to the CLI's, and preloaded as replays."""

from __future__ import annotations

import json
import re
import time

import pytest
from fastapi.testclient import TestClient

from headstart.race.events import Epoch, RaceConfig
from headstart.race.export import predictions_csv, races_csv
from headstart.serving.app import create_app
from headstart.settings import Settings
from headstart.site import bake
from headstart.store import Store
from headstart.training import engine
from tests.conftest import tiny_env
from tests.test_cli import run_cli

GRID = bake.Grid(n=(50,), locked=(1, 2), seeds=(0,), epochs=2)


def numbers(events: list[dict]) -> list[tuple]:
    return [(e["strategy"], e["epoch"], e["train_loss"], e["test_acc"], e["source_acc"]) for e in events if e["type"] == "epoch"]


def test_a_baked_race_is_the_race_the_engine_trains(tiny: Settings, tmp_path) -> None:
    written = bake.bake(tiny, GRID, tmp_path / "bake")
    assert len(written) == 2 and all(p.is_file() for p in written)
    index = json.loads((tmp_path / "bake" / "bake.json").read_text())
    config = RaceConfig.validate_with({"n": 50, "locked": 2, "seed": 0, "epochs": 2}, tiny.limits)
    baked = json.loads((tmp_path / "bake" / "races" / f"{index['races'][config.key()]}.json").read_text())
    assert baked["config"] == config.model_dump(mode="json") and baked["device"] == index["device"]
    direct = [e.model_dump() for e in engine.run_race(config, engine.Resources.load(tiny)) if isinstance(e, Epoch)]
    assert numbers(baked["events"]) == numbers(direct)
    cli = run_cli("race", "--n", "50", "--locked", "2", "--seed", "0", "--epochs", "2", env=tiny_env(tiny))
    assert cli.returncode == 0, cli.stderr
    assert numbers(baked["events"]) == numbers([json.loads(line) for line in cli.stdout.splitlines()])
    assert all(e["emitted_at"] > 0 for e in baked["events"])  # when each was emitted: a replay can keep the pace


def test_an_interrupted_bake_resumes_to_what_one_run_straight_through_writes(tiny: Settings, tmp_path) -> None:
    def stop_after_one(todo, total):  # type: ignore[no-untyped-def]
        for i, config in enumerate(todo):
            if i == 1:
                raise KeyboardInterrupt
            yield config

    with pytest.raises(KeyboardInterrupt):
        bake.bake(tiny, GRID, tmp_path / "resumed", stop_after_one)
    assert len(list((tmp_path / "resumed" / "races").glob("*.json"))) == 1
    ran: list[RaceConfig] = []
    bake.bake(tiny, GRID, tmp_path / "resumed", lambda todo, total: ran.extend(todo) or todo)
    assert len(ran) == 1  # only the race the interruption left
    bake.bake(tiny, GRID, tmp_path / "straight")
    for name in ("resumed", "straight"):
        assert len(list((tmp_path / name / "races").glob("*.json"))) == 2
    resumed = {r["key"]: numbers(r["events"]) for r in bake.read(tmp_path / "resumed")}
    straight = {r["key"]: numbers(r["events"]) for r in bake.read(tmp_path / "straight")}
    assert resumed == straight


def test_a_preloaded_bake_replays_from_the_first_race(tiny: Settings, tmp_path) -> None:
    bake.bake(tiny, GRID, tmp_path / "bake")
    settings = tiny.model_copy(update={"database": tmp_path / "races.sqlite3", "replay_interval_s": 0.0})
    store = Store(settings.paths.database)
    assert bake.preload(tmp_path / "bake", store) == 2
    assert bake.preload(tmp_path / "bake", store) == 0  # already there
    store.close()
    with TestClient(create_app(settings)) as client, client.websocket_connect("/ws") as ws:
        deadline = time.monotonic() + 60
        while client.get("/healthz").json()["worker"] != "up" and time.monotonic() < deadline:
            time.sleep(0.1)  # a worker not yet up has not said its device: nothing can be found for it
        ws.send_json({"type": "start", "config": {"n": 50, "locked": 1, "seed": 0, "epochs": 2}})
        accepted = ws.receive_json()
        while accepted["type"] != "accepted":
            accepted = ws.receive_json()
    assert accepted.get("replay_of"), accepted  # a replay of the baked race, not a new training


def test_a_grid_outside_the_limits_exits_2_naming_what_is_allowed(tmp_path) -> None:
    result = run_cli("bake", "--out", str(tmp_path), "--n", "3", "50")
    assert result.returncode == 2 and "argument --n: every value must be between 25 and 5000, got [3]" in result.stderr
    assert not (tmp_path / "bake.json").exists()


def test_a_bake_is_a_static_site_that_names_only_its_own_files(tiny: Settings, tmp_path) -> None:
    served_to_a_class = tiny.model_copy(update={"class_address": "headstart.school.example"})
    bake.bake(served_to_a_class, GRID, tmp_path / "site")
    site = tmp_path / "site"
    config = json.loads((site / "api" / "config.json").read_text())
    assert config["class_address"] is None and config["reachable_by_others"] is False  # no class races without a server
    recorded = {f["name"]: f["recorded"] for f in config["fields"]}
    assert recorded["n"] == [50] and recorded["locked"] == [1, 2] and recorded["epochs"] == [2]
    assert recorded["lr_head"] == [tiny.limits.lr_head.default] and recorded["source"] == ["near"]
    index = json.loads((site / "bake.json").read_text())
    assert len(config["recorded"]["races"]) == 2 and config["recorded"]["device"] == index["device"]
    for race in config["recorded"]["races"]:  # each race, as JSON and as the live server's CSV
        baked = json.loads((site / "races" / f"{race['id']}.json").read_text())
        assert baked["config"] == race["config"]
        assert (site / "races" / f"{race['id']}.csv").read_text() == races_csv(baked)
        assert (site / "races" / race["id"] / "predictions.csv").read_text() == predictions_csv(baked)
        # Every image its gallery can show, as the live server names it.
        predictions = next(e for e in baked["events"] if e["type"] == "predictions")
        for index in predictions["index"]:
            assert (site / "images" / "fashion" / "fmnist" / "test" / f"{index}.png").is_file()
    examples = json.loads((site / "api" / "examples-fashion-tiny-near.json").read_text())
    for section in examples.values():
        for row in section["classes"]:
            for image in row["images"]:
                assert (site / "images" / "fashion" / "fmnist" / image["part"] / f"{image['index']}.png").is_file()
    for page in ("index.html", "embed.html"):
        html = (site / page).read_text()
        assert 'name="headstart-recorded"' in html and "{{" not in html
        assert not re.search(r'(src|href)="(/|https?:)', html)  # relative: any folder of any host
    assert (site / "static" / "js" / "recorded.js").is_file() and (site / "static" / "vendor" / "README.md").is_file()
    assert (site / "api" / "sweep-near.json").is_file() and (site / "api" / "sweep-keep.json").is_file()


def test_a_grid_spans_sources_and_regularisers_when_asked(tiny: Settings) -> None:
    grid = bake.Grid(n=(50, 100), locked=(2,), seeds=(0, 1), epochs=2, sources=("near", "far"), keeps=("none", "ewc"))
    races = grid.races(tiny)
    assert len(races) == 16 and len({r.key() for r in races}) == 16
    assert {(r.source, r.keep) for r in races} == {("near", "none"), ("near", "ewc"), ("far", "none"), ("far", "ewc")}


def test_the_live_page_names_no_recorded_races(tiny: Settings) -> None:
    with TestClient(create_app(tiny)) as client:
        html = client.get("/").text
    assert 'name="headstart-recorded"' not in html and 'src="static/js/main.js"' in html


def test_a_bake_with_the_extra_lanes_replays_them_on_its_static_page(tiny: Settings, tmp_path) -> None:
    grid = bake.Grid(n=(50,), locked=(2,), seeds=(0,), epochs=1, extras=((), ("gradual", "lora")))
    bake.bake(tiny, grid, tmp_path / "site")
    config = json.loads((tmp_path / "site" / "api" / "config.json").read_text())
    assert {f["name"]: f["recorded"] for f in config["fields"]}["extra"] == [[], ["gradual", "lora"]]
    lanes = next(r for r in config["recorded"]["races"] if r["config"]["extra"])
    race = json.loads((tmp_path / "site" / "races" / f"{lanes['id']}.json").read_text())
    assert {e["strategy"] for e in race["events"] if e["type"] == "epoch"} == {"scratch", "frozen", "finetune", "gradual", "lora"}
    result = run_cli("bake", "--out", str(tmp_path / "bad"), "--extra", "none", "lra")
    assert result.returncode == 2 and "each set is none or lanes among gradual, lora, not lra" in result.stderr


def test_a_bake_of_a_folder_on_an_imagenet_body_records_both_and_its_site_offers_them(tiny: Settings, tmp_path) -> None:
    from tests.conftest import make_image_folder

    root = make_image_folder(tmp_path / "shapes", per_class=20)
    settings = tiny.with_datasets({"shapes": root}).model_copy(update={"image_size": 32})
    grid = bake.Grid(
        n=(30,), locked=(2,), seeds=(0,), epochs=1, sources=("near", "far"), keeps=("none", "ewc"),
        datasets=("fashion", "shapes"), bodies=("tiny", "efficientnet_lite0"),
    )  # fmt: skip
    races = grid.races(settings)
    # An ImageNet body has one source and no EWC: 2 datasets × (tiny: 2 sources × 2 keeps + Lite0: 1).
    assert len(races) == 2 * (4 + 1)
    bake.bake(settings, grid, tmp_path / "site")
    config = json.loads((tmp_path / "site" / "api" / "config.json").read_text())
    recorded = {f["name"]: f.get("recorded") for f in config["fields"]}
    assert sorted(recorded["dataset"]) == ["fashion", "shapes"] and sorted(recorded["body"]) == ["efficientnet_lite0", "tiny"]
    lite = next(
        r
        for r in config["recorded"]["races"]
        if r["config"]["body"] == "efficientnet_lite0" and r["config"]["dataset"] == "shapes"
    )
    race = json.loads((tmp_path / "site" / "races" / f"{lite['id']}.json").read_text())
    plan = next(e for e in race["events"] if e["type"] == "plan")
    assert plan["classes"] == ["circle", "square", "triangle"] and plan["image_size"] == 32
    result = run_cli("bake", "--out", str(tmp_path / "bad"), "--body", "resnet18", env=tiny_env(tiny))
    assert result.returncode == 2 and "resnet18-f37072fd.pth" in result.stderr


def test_a_bake_of_an_upload_carries_its_races_and_images_and_offers_it(tiny: Settings, tmp_path) -> None:
    from headstart.race import intake, uploads
    from headstart.tools import payloads

    settings = tiny.model_copy(update={"upload_dir": tmp_path / "uploads"})
    taking = intake.Intake(settings.uploads, tmp_path / "staging")
    with taking.part(intake.ZIP_FIELD, "shapes.zip") as out:
        out.write(payloads.class_zip(per_class=20))
    manifest = uploads.Uploads(settings).add(tmp_path / "staging" / "dataset", taking.check(), "Shapes")
    result = run_cli(
        "bake", "--out", str(tmp_path / "site"), "--dataset", manifest.id, "--n", "30", "--locked", "2", "--seeds", "1",
        "--epochs", "1", env={**tiny_env(settings)},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    config = json.loads((tmp_path / "site" / "api" / "config.json").read_text())
    field = next(f for f in config["fields"] if f["name"] == "dataset")
    assert field["recorded"] == [manifest.id]
    assert next(o for o in field["options"] if o["value"] == manifest.id)["label"] == "Shapes"
    race = config["recorded"]["races"][0]
    baked = json.loads((tmp_path / "site" / "races" / f"{race['id']}.json").read_text())
    predictions = next(e for e in baked["events"] if e["type"] == "predictions")
    first = tmp_path / "site" / "images" / manifest.id / predictions["images_version"] / "test" / f"{predictions['index'][0]}.png"
    assert first.is_file()
