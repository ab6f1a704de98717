"""Guided lessons in the page: open one, predict, train, see the outcome beside the prediction
and the explanation, go to the next; in an embed; axe-clean and without sideways scroll."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, expect

from headstart.settings import Settings
from headstart.site import bake
from tests.e2e.test_accessibility import PHONE, context, violations
from tests.e2e.test_page import ARTIFACTS, browser, open_page
from tests.e2e.test_static_site import serving_files

__all__ = ["browser", "context"]  # the modules' fixtures, shared
pytestmark = pytest.mark.browser


def test_a_lesson_asks_then_races_then_explains_then_leads_on(browser: Browser, live_server: str) -> None:
    page = open_page(browser, live_server + "/?lesson=data", width=1280, height=720)
    expect(page.locator("#lesson-title")).to_have_text("Little data")
    expect(page.locator("#lesson-question")).to_contain_text("With only 50 images")
    expect(page.locator("#lesson-count")).to_have_text("Lesson 1 of 7")
    expect(page.locator("#lesson-prev")).to_be_hidden()
    # Only what the lesson asks about: its free controls and its panel.
    expect(page.locator("#n")).to_be_visible()
    expect(page.locator("#n-out")).to_contain_text("50 images")
    for hidden in ("#locked", "#source", "#your-images", "#keep", "#data", "#explain"):
        expect(page.locator(hidden)).to_be_hidden()
    assert "lesson=data" in page.url and "hide=" not in page.url
    # On a projector's 1280×720: the question, the controls and Train, the chart and the panel, together.
    expect(page.locator("#sweep")).to_be_visible()
    for part in ("#lesson-question", "#n", "#train", "#chart", "#sweep-chart"):
        box = page.locator(part).bounding_box()
        assert box is not None and box["y"] + 40 < 720, (part, box)

    # Predict, then observe.
    page.locator("#train").click()
    expect(page.locator("#status")).to_contain_text("First predict")
    expect(page.locator("#chart-title")).to_be_visible()
    page.get_by_role("radio", name="Fine-tune").check()
    expect(page.locator("#lesson-result")).to_contain_text("You predicted Fine-tune")
    expect(page.locator("#lesson-explanation")).to_be_hidden()
    page.locator("#train").click()
    expect(page.locator("#status")).to_have_attribute("data-kind", "done", timeout=120_000)
    result = page.locator("#lesson-result")
    expect(result).to_contain_text(re.compile(r"ended (level )?ahead on the new task's test images: "))
    said = result.text_content() or ""
    right = said.split(":")[0].count("Fine-tune") > 0
    expect(result).to_have_attribute("data-kind", "right" if right else "wrong")
    expect(page.locator("#lesson-explanation")).to_contain_text("76.4 %")
    expect(page.get_by_role("radio", name="Fine-tune")).to_be_hidden()  # answered: the verdict says what was predicted
    page.screenshot(path=str(ARTIFACTS / "lesson-done.png"), full_page=False)
    for part in ("#lesson-explanation", "#chart", "#sweep-chart"):  # the answer, the race and the panel, still together
        box = page.locator(part).bounding_box()
        assert box is not None and box["y"] + 40 < 720, (part, box)
    assert page.evaluate("document.documentElement.scrollWidth") <= 1280

    page.locator("#lesson-next").click()
    expect(page.locator("#lesson-title")).to_have_text("A far source")
    expect(page.locator("#source")).to_have_value("far")
    expect(page.locator("#lesson-pick")).to_have_value("source")
    page.locator("#lesson-full").click()
    expect(page.locator("#lesson")).to_be_hidden()
    expect(page.locator("#locked")).to_be_visible()
    assert page.errors == []  # type: ignore[attr-defined]


# The classes lesson's panel answers once its race has run: its own test checks it on a projector.
@pytest.mark.parametrize("lesson", ["data", "source", "locking", "forgetting", "adapters"])
def test_each_lesson_fits_a_projector_axe_clean(context: BrowserContext, live_server: str, lesson: str) -> None:
    page = open_page(context, f"{live_server}/?lesson={lesson}", width=1280, height=720)
    expect(page.locator("#lesson-question")).to_be_visible()
    panel = page.locator("section.sweep:not([hidden])")
    expect(panel).to_have_count(1)
    for part in (page.locator("#lesson-question"), page.locator("#train"), page.locator("#chart"), panel):
        box = part.bounding_box()
        assert box is not None and box["y"] + 40 < 720, (lesson, box)
    assert page.evaluate("document.documentElement.scrollWidth") <= 1280
    assert violations(page) == []


def test_the_classes_lesson_is_judged_on_one_class_and_answered_by_matrices(context: BrowserContext, live_server: str) -> None:
    page = open_page(context, live_server + "/?lesson=classes", width=1280, height=720)
    expect(page.locator("#lesson-count")).to_have_text("Lesson 6 of 7")
    expect(page.locator("#lesson-metric")).to_contain_text("pullover")
    expect(page.locator("#outcome")).to_be_hidden()  # it answers once the race has run
    for hidden in ("#sweep", "#depth-sweep", "#n", "#locked"):
        expect(page.locator(hidden)).to_be_hidden()
    page.get_by_role("radio", name="Scratch").check()
    page.locator("#train").click()
    expect(page.locator("#status")).to_have_attribute("data-kind", "done", timeout=120_000)
    # The verdict ranks the lanes on the pullovers alone, as the race measured them.
    received = {m["type"]: m for way, m in page.frames_log if way == "received"}  # type: ignore[attr-defined]
    pullover = received["plan"]["classes"].index("Pullover")
    scores = {lane: s["per_class_acc"][pullover] for lane, s in received["done"]["summary"].items()}
    ranked = sorted(scores, key=lambda lane: -scores[lane])
    said = page.locator("#lesson-result").text_content() or ""
    assert "ahead on the test's pullover images: " in said
    names = {"scratch": "Scratch", "frozen": "Frozen", "finetune": "Fine-tune"}
    assert ", ".join(f"{names[lane]} {100 * scores[lane]:.1f} %" for lane in ranked) in said, (scores, said)
    expect(page.locator("#lesson-explanation")).to_contain_text("82.2 %")
    expect(page.locator("#outcome")).to_be_visible()
    expect(page.locator(".matrix")).to_have_count(3)
    expect(page.locator("#per-class tr.focus th")).to_have_text("Pullover")  # the class it asks about, marked
    page.screenshot(path=str(ARTIFACTS / "lesson-classes.png"), full_page=False)
    page.screenshot(path=str(ARTIFACTS / "lesson-classes-full.png"), full_page=True)
    for part in ("#lesson-question", "#train", "#chart", "#outcome"):
        box = page.locator(part).bounding_box()
        assert box is not None and box["y"] + 40 < 720, (part, box)
    assert page.evaluate("document.documentElement.scrollWidth") <= 1280
    assert violations(page) == []
    assert page.errors == []  # type: ignore[attr-defined]


def test_a_lesson_in_an_embed_and_on_a_phone_is_axe_clean_without_sideways_scroll(
    context: BrowserContext, live_server: str
) -> None:
    embed = open_page(context, live_server + "/embed?lesson=adapters", width=640, height=480)
    expect(embed.locator("#lesson-title")).to_have_text("Cheaper ways to adapt")
    expect(embed.locator(".lesson-option")).to_have_count(5)
    expect(embed.locator("#lora_rank")).to_be_visible()
    assert violations(embed) == []
    phone = open_page(context, live_server + "/?lesson=forgetting", **PHONE)
    expect(phone.locator("#lesson-metric")).to_contain_text("source-task accuracy")
    assert phone.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    phone.screenshot(path=str(ARTIFACTS / "lesson-phone.png"), full_page=False)
    assert violations(phone) == []


def test_a_class_follows_its_teachers_lesson_and_the_teacher_sees_its_predictions(browser: Browser, live_server: str) -> None:
    teacher = open_page(browser.new_context(), live_server + "/?lesson=data")
    teacher.get_by_role("radio", name="Fine-tune").check()
    teacher.locator("#broadcast").check()
    teacher.locator("#train").click()
    expect(teacher.locator("#code-text")).to_have_text(re.compile(r"[A-Z]{4}"))
    code = teacher.locator("#code-text").text_content()

    # A student opens the class link: the page moves to the teacher's lesson, still following the code.
    student = browser.new_context(viewport={"width": 1280, "height": 720}).new_page()
    student.goto(f"{live_server}/w/{code}")
    expect(student.locator("#lesson-title")).to_have_text("Little data", timeout=10_000)
    assert "lesson=data" in student.url
    student.get_by_role("radio", name="Frozen").check()
    expect(teacher.locator("#lesson-tally")).to_contain_text("The class predicted (1 page): Frozen 1")
    expect(teacher.locator("#status")).to_have_attribute("data-kind", "done", timeout=120_000)

    # The teacher moves on: the class's page follows to the next lesson.
    teacher.locator("#lesson-next").click()
    expect(teacher.locator("#lesson-title")).to_have_text("A far source")
    teacher.get_by_role("radio", name="Scratch").check()
    teacher.locator("#broadcast").check()
    started = time.monotonic()
    teacher.locator("#train").click()
    expect(student.locator("#lesson-title")).to_have_text("A far source", timeout=10_000)
    followed = time.monotonic() - started
    expect(student.locator("#source")).to_have_value("far")
    expect(student.locator("#status")).to_have_attribute("data-kind", "done", timeout=120_000)  # the teacher's race, followed
    print(f"the student's page reached the teacher's next lesson {followed:.2f} s after Train")
    student.screenshot(path=str(ARTIFACTS / "lesson-student.png"), full_page=False)


def test_a_bake_of_a_lesson_offers_it_and_replays_its_race(browser: Browser, tiny: Settings, tmp_path: Path) -> None:
    bake.bake(tiny, bake.Grid(n=(25,), locked=(2,), seeds=(0,), epochs=1, lessons=("data",)), tmp_path / "site")
    config = json.loads((tmp_path / "site" / "api" / "config.json").read_text())
    # Only the lessons whose race it recorded: the classes lesson asks its question of the same race.
    assert [lesson["id"] for lesson in config["lessons"]] == ["data", "classes"]
    with serving_files(tmp_path / "site") as base:
        page = open_page(browser, base + "/?lesson=data")
        expect(page.locator("#lesson-title")).to_have_text("Little data")
        expect(page.locator("#lesson-pick option")).to_have_count(3)
        page.get_by_role("radio", name="Frozen").check()
        page.locator("#train").click()
        expect(page.locator("#lesson-result")).to_contain_text("ahead on ", timeout=60_000)
        expect(page.locator("#lesson-explanation")).to_be_visible()
        assert page.errors == []  # type: ignore[attr-defined]
