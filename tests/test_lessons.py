"""The guided lessons: each number an explanation quotes is the shipped sweep's, and each
lesson's preset, free controls and panel are ones the page has."""

from __future__ import annotations

import re

import pytest

from headstart.race.events import RaceConfig
from headstart.race.lessons import LESSONS, public
from headstart.settings import SWEEP_DIR, Settings

PANELS = {"sweep", "source", "keep", "extra"}


@pytest.mark.parametrize("lesson", LESSONS, ids=lambda lesson: lesson.id)
def test_each_quoted_number_is_what_the_shipped_sweep_measured(lesson) -> None:  # type: ignore[no-untyped-def]
    for measured in lesson.measured:
        assert measured.read(SWEEP_DIR) == measured.value, (lesson.id, measured)
        shown = f"{measured.value:,.0f}" if measured.metric == "trainable_params" else f"{measured.value:.1f} %"
        assert shown in lesson.explanation + lesson.question, (lesson.id, shown)


@pytest.mark.parametrize("lesson", LESSONS, ids=lambda lesson: lesson.id)
def test_each_lessons_answer_is_the_lane_ahead_in_the_sweep(lesson) -> None:  # type: ignore[no-untyped-def]
    answer = next(m for m in lesson.measured if m.strategy == lesson.answer and m.metric == lesson.metric)
    rivals = [m for m in lesson.measured if m.where == answer.where and m.metric == lesson.metric and m.sweep == answer.sweep]
    assert len(rivals) >= 2 and max(rivals, key=lambda m: m.value) is answer


def test_each_lesson_is_a_race_the_page_can_set_up(tiny: Settings) -> None:
    fields = set(RaceConfig.model_fields)
    for lesson in LESSONS:
        config = RaceConfig.validate_with(lesson.preset, tiny.limits)
        assert set(lesson.free) <= fields and lesson.panel in PANELS
        assert lesson.answer in ("scratch", "frozen", "finetune", *config.extra)
        assert re.fullmatch(r"[a-z-]+", lesson.id) and lesson.question.endswith("?")
    assert [entry["id"] for entry in public()] == ["data", "source", "locking", "forgetting", "adapters"]
    assert "measured" not in public()[0]
