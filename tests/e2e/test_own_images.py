"""A teacher's own images and a real ImageNet body, chosen in the page."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, expect

from headstart.settings import Settings
from tests.conftest import free_port, make_image_folder, serving
from tests.e2e.test_page import ARTIFACTS, browser, open_page

__all__ = ["browser"]  # the module's browser fixture, shared
pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def server(tiny: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("own")
    settings = tiny.with_datasets({"shapes": make_image_folder(root / "shapes", per_class=20)}).model_copy(
        update={"database": root / "races.sqlite3", "image_size": 32, "weights_dir": root / "no-weights"}
    )
    with serving(settings, free_port()) as base:
        yield base


def test_the_page_offers_datasets_and_bodies_and_races_a_folder(browser: Browser, server: str) -> None:
    page = open_page(browser, server + "/?n=30&epochs=2")
    body, dataset = page.locator("#body"), page.locator("#dataset")
    # A body whose weights are not here stays in the menu, disabled, saying what is missing.
    resnet = body.locator("option[value=resnet18]")
    expect(resnet).to_be_disabled()
    expect(resnet).to_contain_text("not installed")
    assert "resnet18-f37072fd.pth" in (resnet.get_attribute("title") or "")
    expect(body.locator("option[value=efficientnet_lite0]")).to_be_enabled()
    expect(dataset.locator("option")).to_have_count(2)

    # Another body redraws the strip with its own units and counts; the source menu no longer applies.
    body.select_option("efficientnet_lite0")
    expect(page.locator(".s-finetune .unit").nth(1)).to_contain_text("stages 1–2")
    expect(page.locator(".s-frozen .pill")).to_contain_text("6.4 k of 3.4 M trainable")
    expect(page.locator(".s-frozen .origin")).to_have_text("from ImageNet")
    expect(page.locator("#source")).to_be_disabled()
    assert "body=efficientnet_lite0" in page.url

    dataset.select_option("shapes")
    expect(page.locator("#dataset-about")).to_contain_text("3 classes (circle, square, triangle)")
    expect(page.locator(".s-frozen .pill")).to_contain_text("3.8 k of 3.4 M trainable")  # a head for three classes
    expect(page.locator("#n-out")).to_contain_text("30 images · 10 per class")
    page.locator("#train").click()
    expect(page.locator("#status")).to_contain_text("Done", timeout=120_000)
    expect(page.locator(".s-frozen .acc")).to_contain_text("test")
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(ARTIFACTS / "own-images.png"), full_page=False)
    assert page.errors == []  # type: ignore[attr-defined]


def test_the_imagenet_lesson_races_the_real_body_and_asks_before_it_answers(browser: Browser, server: str) -> None:
    page = open_page(browser, server + "/?lesson=imagenet", width=1280, height=720)
    expect(page.locator("#lesson-title")).to_have_text("A real ImageNet body")
    expect(page.locator("#body")).to_be_hidden()  # the lesson chose the body: only n and the seed are free
    expect(page.locator("#n")).to_be_visible()
    expect(page.locator(".s-frozen .origin")).to_have_text("from ImageNet")
    expect(page.locator(".s-frozen .pill")).to_contain_text("of 3.4 M trainable")
    page.get_by_role("radio", name="Frozen").check()
    page.locator("#train").click()
    expect(page.locator("#status")).to_have_attribute("data-kind", "done", timeout=180_000)
    accepted = next(m for way, m in page.frames_log if way == "received" and m["type"] == "accepted")  # type: ignore[attr-defined]
    assert accepted["config"]["body"] == "efficientnet_lite0" and accepted["config"]["n"] == 50
    expect(page.locator("#lesson-result")).to_contain_text("ahead on the new task's test images: ")
    expect(page.locator("#lesson-explanation")).to_contain_text("73.4 %")
    expect(page.locator("#outcome")).to_be_visible()
    page.screenshot(path=str(ARTIFACTS / "lesson-imagenet.png"), full_page=False)
    for part in ("#lesson-explanation", "#chart", "#outcome"):  # on a projector, the answer beside the race
        box = page.locator(part).bounding_box()
        assert box is not None and box["y"] + 40 < 720, (part, box)
    assert page.errors == []  # type: ignore[attr-defined]
