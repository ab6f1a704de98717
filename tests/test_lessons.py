"""The guided lessons: each number an explanation quotes is the shipped sweep's, and each
lesson's preset, free controls and panel are ones the page has."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from headstart.race.events import RaceConfig
from headstart.race.lessons import COUNTS, LESSONS, public
from headstart.settings import FASHION_CLASSES, SWEEP_DIR, Settings

PANELS = {"sweep", "source", "keep", "extra", "outcome"}


@pytest.mark.parametrize("lesson", LESSONS, ids=lambda lesson: lesson.id)
def test_each_quoted_number_is_what_the_shipped_sweep_measured(lesson) -> None:  # type: ignore[no-untyped-def]
    for measured in lesson.measured:
        assert measured.read(SWEEP_DIR) == measured.value, (lesson.id, measured)
        shown = f"{measured.value:,.0f}" if measured.metric in COUNTS else f"{measured.value:.1f} %"
        assert shown in lesson.explanation + lesson.question, (lesson.id, shown)


@pytest.mark.parametrize("lesson", LESSONS, ids=lambda lesson: lesson.id)
def test_each_lessons_answer_is_the_lane_ahead_in_the_sweep(lesson) -> None:  # type: ignore[no-untyped-def]
    judged = [m for m in lesson.measured if m.metric == lesson.judged and m.where.get("class") == lesson.focus]
    answer = next(m for m in judged if m.strategy == lesson.answer)
    rivals = [m for m in judged if m.where == answer.where and m.sweep == answer.sweep]
    assert len(rivals) >= 2 and max(rivals, key=lambda m: m.value) is answer


def test_each_lesson_is_a_race_the_page_can_set_up(tiny: Settings) -> None:
    fields = set(RaceConfig.model_fields)
    for lesson in LESSONS:
        config = RaceConfig.validate_with(lesson.preset, tiny.limits)
        assert set(lesson.free) <= fields and lesson.panel in PANELS
        assert lesson.answer in ("scratch", "frozen", "finetune", *config.extra)
        assert re.fullmatch(r"[a-z-]+", lesson.id) and lesson.question.endswith("?")
        assert lesson.focus is None or lesson.focus in [FASHION_CLASSES[c] for c in tiny.data.target_classes]
    assert [lesson.id for lesson in LESSONS] == ["data", "source", "locking", "forgetting", "adapters", "classes", "imagenet"]
    assert "measured" not in public(LESSONS[0])


def test_a_lesson_whose_body_cannot_train_here_is_not_offered(tiny: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    from headstart.page import page_config
    from headstart.race import bodies

    offered = [entry["id"] for entry in page_config(tiny, tiny.limits, "cpu")["lessons"]]
    assert "imagenet" in offered  # the bodies extra is installed where the tests run
    monkeypatch.setattr(bodies, "unavailable", lambda body, settings: "timm is not installed" if body != "tiny" else None)
    offered = [entry["id"] for entry in page_config(tiny, tiny.limits, "cpu")["lessons"]]
    assert "imagenet" not in offered and offered[:5] == ["data", "source", "locking", "forgetting", "adapters"]


def test_a_class_races_in_the_teachers_lesson_and_its_predictions_are_counted_without_names(
    tiny: Settings, tmp_path: Path
) -> None:
    from fastapi.testclient import TestClient

    from headstart.serving.app import create_app

    settings = tiny.model_copy(update={"database": tmp_path / "races.sqlite3", "replay_interval_s": 0.0})
    race = {"n": 25, "epochs": 1}
    with TestClient(create_app(settings)) as client, client.websocket_connect("/ws?client=teacher") as teacher:
        listed = client.get("/api/config").json()["lessons"]
        assert listed == [public(lesson) for lesson in LESSONS]
        assert listed[0]["preset"]["n"] == 50 and listed[0]["free"] == ["n", "seed"]
        teacher.send_json({"type": "start", "config": race, "lesson": "nonsense"})
        refused = teacher.receive_json()
        assert refused["code"] == "invalid_message" and "lesson must be one of data, source" in refused["message"]
        teacher.send_json({"type": "start", "config": race, "broadcast": True, "lesson": "adapters"})
        accepted = teacher.receive_json()
        assert accepted["type"] == "accepted" and accepted["lesson"] == "adapters"
        for client_id, answer in (("a", "finetune"), ("b", "frozen"), ("a", "scratch")):  # a page's last counts
            with client.websocket_connect(f"/ws?client={client_id}") as student:
                student.send_json({"type": "predict", "race_id": accepted["race_id"], "answer": answer})
        teacher.send_json({"type": "predict", "race_id": accepted["race_id"], "answer": "lora"})
        while (message := teacher.receive_json())["type"] != "error":
            tally = message if message["type"] == "tally" else None
        assert message["code"] == "invalid_prediction" and "scratch, frozen, finetune" in message["message"]
        assert tally is not None and tally["counts"] == {"scratch": 1, "frozen": 1, "finetune": 0}
        while message["type"] != "done":  # one race in flight per page
            message = teacher.receive_json()
        teacher.send_json({"type": "start", "config": race | {"seed": 3}})
        while (alone := teacher.receive_json())["type"] != "accepted":
            pass
        teacher.send_json({"type": "predict", "race_id": alone["race_id"], "answer": "finetune"})
        while (message := teacher.receive_json())["type"] != "error":
            pass
        assert message["code"] == "not_a_class_race"


def test_a_bake_of_every_lesson_leaves_out_one_whose_body_cannot_train_here(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from headstart import cli
    from headstart.race import bodies
    from headstart.site import bake

    grids: list[bake.Grid] = []
    monkeypatch.setattr(bake, "bake", lambda settings, grid, out, *args, **kwargs: grids.append(grid) or [])
    monkeypatch.setattr(bodies, "unavailable", lambda body, settings: "timm is not installed" if body != "tiny" else None)
    assert cli.main(["bake", "--out", str(tmp_path / "site"), "--lessons"]) == 0
    assert "imagenet" not in grids[0].lessons and "classes" in grids[0].lessons
    with pytest.raises(SystemExit) as refused:
        cli.main(["bake", "--out", str(tmp_path / "site"), "--lessons", "imagenet"])
    assert refused.value.code == 2 and "argument --lessons: imagenet: timm is not installed" in capsys.readouterr().err
