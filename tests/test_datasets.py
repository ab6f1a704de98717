"""A teacher's own image folder: scanned, split, decoded once, and raced; bad input named, never fatal."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from headstart.race import datasets, pictures
from headstart.race.events import RaceConfig
from headstart.settings import Settings
from headstart.training import engine, images, tasks
from tests.conftest import SHAPES, make_image_folder, tiny_env


def test_a_folder_is_scanned_into_sorted_classes_split_by_the_stated_rule(tmp_path: Path) -> None:
    root = make_image_folder(tmp_path / "shapes", per_class=12)
    folder = datasets.scan("shapes", root)
    assert folder.classes == tuple(sorted(SHAPES))
    test = max(datasets.MIN_TEST, math.ceil(datasets.TEST_SHARE * 12))
    assert [len(f) for f in folder.test] == [test] * 3 and [len(f) for f in folder.pool] == [12 - test] * 3
    assert folder.capacity == 3 * (12 - test)
    for held_out, pool in zip(folder.test, folder.pool, strict=True):
        assert not set(held_out) & set(pool)
    # The same files and seed give the same split whatever order the disk lists them in; another seed another.
    files = list(root.glob("circle/*"))
    assert datasets.split(files, 0) == datasets.split(list(reversed(files)), 0)
    assert datasets.split(files, 0) != datasets.split(files, 1)


def test_what_a_folder_holds_besides_images_is_ignored_and_said(tmp_path: Path) -> None:
    root = make_image_folder(tmp_path / "shapes", per_class=8)
    (root / "__MACOSX" / "circle").mkdir(parents=True)
    (root / "__MACOSX" / "circle" / "._000.png").write_bytes(b"resource fork")
    (root / "circle" / "._001.png").write_bytes(b"resource fork")
    (root / ".thumbnails").mkdir()
    (root / "square" / "notes.txt").write_text("not an image")
    outside = tmp_path / "elsewhere.png"
    Image.new("RGB", (8, 8)).save(outside)
    (root / "square" / "link.png").symlink_to(outside)
    (root / "empty").mkdir()
    folder = datasets.scan("shapes", root)
    assert folder.classes == ("circle", "square", "triangle")
    every = {p.name for files in (*folder.test, *folder.pool) for p in files}
    assert not {"._001.png", "notes.txt", "link.png"} & every
    said = "\n".join(folder.ignored)
    assert "square/notes.txt: not an image file" in said
    assert "square/link.png: a link leading out of the folder, not followed" in said
    assert "empty/: no images" in said
    assert "__MACOSX" not in said and "._001" not in said  # a Mac's leftovers are silently passed over


def test_a_folder_that_cannot_be_a_dataset_is_named_with_what_is_allowed(tmp_path: Path) -> None:
    with pytest.raises(datasets.DatasetError, match="is not a folder"):
        datasets.scan("x", tmp_path / "missing")
    one = make_image_folder(tmp_path / "one", per_class=8, classes=("cats",))
    with pytest.raises(datasets.DatasetError, match=r"1 usable class folder; a dataset needs 2–20 subfolders"):
        datasets.scan("one", one)
    small = make_image_folder(tmp_path / "small", per_class=8)
    for path in sorted((small / "square").iterdir())[3:]:
        path.unlink()
    assert datasets.scan("small", small).classes == ("circle", "triangle")  # too small a class is left out, and said
    assert "classes with fewer than 6 images, left out: square (3)" in datasets.scan("small", small).ignored
    for path in sorted((small / "triangle").iterdir())[2:]:
        path.unlink()
    with pytest.raises(datasets.DatasetError, match=r"1 usable class folder.*left out: square \(3\), triangle \(2\)"):
        datasets.scan("small", small)
    few = make_image_folder(tmp_path / "few", per_class=8)
    with pytest.raises(datasets.DatasetError, match=r"smallest class, 'circle', leaves 6 training images.*at least 12 images"):
        datasets.scan("few", few, smallest_race=25)


def test_the_fingerprint_changes_when_a_file_does(tmp_path: Path) -> None:
    root = make_image_folder(tmp_path / "shapes", per_class=8)
    before = datasets.scan("shapes", root).fingerprint
    assert datasets.scan("shapes", root).fingerprint == before
    Image.new("RGB", (30, 30), "white").save(root / "circle" / "000.jpg")
    assert datasets.scan("shapes", root).fingerprint != before


def test_bad_files_are_skipped_and_listed_with_why(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = make_image_folder(tmp_path / "shapes", per_class=10)
    (root / "circle" / "text.png").write_text("a text file renamed .png")
    good = (root / "square" / "000.jpg").read_bytes()
    (root / "square" / "cut.jpg").write_bytes(good[: len(good) // 3])
    Image.new("L", (400, 400)).save(root / "triangle" / "bomb.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 20_000)  # so a 400×400 image counts as a bomb
    decoded = images.decode_folder(datasets.scan("shapes", root), 24, 3)
    said = "\n".join(decoded.skipped)
    assert "circle/text.png: not an image Pillow can read" in said
    assert "square/cut.jpg: cannot be decoded" in said
    assert "triangle/bomb.png: refused: more pixels than Pillow's limit of 20,000" in said
    assert len(decoded.skipped) == 3
    assert decoded.pool_images.shape[1:] == (24, 24, 3) and decoded.pool_images.dtype == np.uint8
    assert len(decoded.test_labels) + len(decoded.pool_labels) == 30


def test_images_are_resized_on_the_short_side_and_centre_cropped(tmp_path: Path) -> None:
    wide = Image.new("RGB", (90, 30), "black")
    wide.paste((255, 0, 0), (30, 0, 60, 30))  # the centre third red
    wide.save(tmp_path / "wide.png")
    out = pictures.decode(tmp_path / "wide.png", 12, 3)
    assert out.shape == (12, 12, 3) and out[6, 6].tolist() == [255, 0, 0]
    gray = pictures.decode(tmp_path / "wide.png", 12, 1)
    assert gray.shape == (12, 12, 1)


def test_training_subsets_are_balanced_and_nested_and_too_many_is_named(tiny: Settings, tmp_path: Path) -> None:
    root = make_image_folder(tmp_path / "shapes", per_class=20)
    folder = datasets.scan("shapes", root)
    task = tasks.load(tiny, "shapes", "tiny", 28, folder)
    small, large = task.train(12), task.train(24)
    assert np.bincount(small.y.numpy()).tolist() == [4, 4, 4]
    assert small.x.shape == (12, 1, 28, 28)
    # Nested: the larger subset holds every image of the smaller one.
    rows = {tuple(x.flatten().tolist()) for x in large.x}
    assert all(tuple(x.flatten().tolist()) in rows for x in small.x)
    with pytest.raises(Exception, match=r"at most 48, not 60"):
        task.train(60)


def test_a_race_on_a_folder_trains_on_its_classes_and_decodes_once(
    tiny: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = make_image_folder(tmp_path / "shapes", per_class=20)
    (root / "circle" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    settings = tiny.with_datasets({"shapes": root})
    decoded = []
    original = tasks.decode_folder
    monkeypatch.setattr(tasks, "decode_folder", lambda *a: decoded.append(a) or original(*a))
    res = engine.Resources.load(settings)
    config = RaceConfig.validate_with({"dataset": "shapes", "n": 30, "epochs": 2}, settings.limits)
    events = list(engine.run_race(config, res))
    plan, done = events[0], events[-1]
    assert plan.classes == ["circle", "square", "triangle"]
    assert plan.skipped == 1 and plan.skipped_files[0].startswith("circle/broken.jpg")
    scanned = datasets.scan("shapes", root)
    broken_held_out = any(path.name == "broken.jpg" for path in scanned.test[0])
    assert plan.train_size == 30 and plan.test_size == scanned.test_size - broken_held_out
    assert plan.units[-1].params == 32 * 3 + 3  # the head for three classes
    assert set(done.summary) == {"scratch", "frozen", "finetune"}
    list(engine.run_race(config.model_copy(update={"seed": 1}), res))
    assert len(decoded) == 1  # decoded once per dataset and size, not per race
    # The built-in task is untouched: the same race without the dataset field trains as before.
    assert RaceConfig.validate_with({"n": 30}, settings.limits).key() == RaceConfig.validate_with({"n": 30}, tiny.limits).key()


def test_a_race_names_only_the_datasets_offered(tiny: Settings, tmp_path: Path) -> None:
    settings = tiny.with_datasets({"shapes": make_image_folder(tmp_path / "shapes")})
    with pytest.raises(ValueError, match=r"one of fashion, shapes, or an uploaded dataset's id \(up-…\), got 'leaves'"):
        RaceConfig.validate_with({"dataset": "leaves"}, settings.limits)
    with pytest.raises(ValueError, match="dataset name 'Bad Name'"):
        Settings(datasets={"Bad Name": tmp_path})


def _cli(args: list[str], settings: Settings) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **tiny_env(settings)}
    return subprocess.run([sys.executable, "-m", "headstart", *args], env=env, capture_output=True, text=True, timeout=120)


def test_the_cli_races_a_folder_and_says_what_it_skipped(tiny: Settings, tmp_path: Path) -> None:
    root = make_image_folder(tmp_path / "my-shapes", per_class=20)
    (root / "square" / "bad.png").write_text("not a png")
    done = _cli(["race", "--dataset", str(root), "--n", "30", "--epochs", "1"], tiny)
    assert done.returncode == 0, done.stderr
    assert "skipped 1 file(s)" in done.stderr and "square/bad.png: not an image Pillow can read" in done.stderr
    assert '"dataset":"my-shapes"' in done.stdout.splitlines()[0]


def test_a_folder_with_one_class_exits_2_from_the_cli_and_stops_the_server_at_start(tiny: Settings, tmp_path: Path) -> None:
    one = make_image_folder(tmp_path / "one", per_class=8, classes=("cats",))
    raced = _cli(["race", "--dataset", str(one)], tiny)
    assert raced.returncode == 2 and "1 usable class folder" in raced.stderr
    served = _cli(["serve", "--port", "1", "--dataset", f"one={one}"], tiny)
    assert served.returncode == 1 and "dataset 'one'" in served.stderr and "1 usable class folder" in served.stderr
    named = _cli(["serve", "--dataset", "Bad=/x"], tiny)
    assert named.returncode == 2 and "write NAME=FOLDER" in named.stderr


def test_serve_offers_its_datasets_in_the_config(tiny: Settings, tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from headstart.serving.app import create_app

    root = make_image_folder(tmp_path / "shapes", per_class=20)
    settings = tiny.with_datasets({"shapes": root}).model_copy(update={"database": tmp_path / "races.sqlite3"})
    with TestClient(create_app(settings)) as client:
        config = client.get("/api/config").json()
        field = next(f for f in config["fields"] if f["name"] == "dataset")
        assert [o["value"] for o in field["options"]] == ["fashion", "shapes"]
        assert "3 classes (circle, square, triangle), 60 images" in field["options"][1]["description"]
        assert config["datasets"]["shapes"] == {"classes": ["circle", "square", "triangle"], "capacity": 48}
        with client.websocket_connect("/ws") as ws:
            ws.send_json({"type": "start", "config": {"dataset": "shapes", "n": 60}})
            refused = ws.receive_json()
            assert refused["code"] == "dataset_too_small" and "at most 48" in refused["message"]
            ws.send_json({"type": "start", "config": {"dataset": "shapes", "n": 30, "epochs": 1}})
            seen = []
            while (msg := ws.receive_json())["type"] != "done":
                assert msg["type"] != "error", msg
                seen.append(msg)
            plan = next(m for m in seen if m["type"] == "plan")
            assert plan["classes"] == ["circle", "square", "triangle"]
