"""The images before a race, and what each strategy got right after it: live and in a bake."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from headstart.settings import FASHION_CLASSES, Settings
from tests.e2e.test_page import browser, open_page, shot
from tests.e2e.test_static_site import site, static_host, watched

__all__ = ["browser", "site", "static_host"]  # the modules' fixtures, shared
pytestmark = pytest.mark.browser


def images_loaded(page: Page, selector: str) -> bool:
    """Once every image under ``selector`` has settled: whether each one decoded. (Polled from
    here: the page's own policy forbids the evaluated strings wait_for_function would use.)"""
    settled = f"[...document.querySelectorAll('{selector}')].every((img) => img.complete)"
    for _ in range(100):
        if page.evaluate(settled):
            break
        page.wait_for_timeout(50)
    decoded = f"[...document.querySelectorAll('{selector}')].every((img) => img.complete && img.naturalWidth > 0)"
    return bool(page.evaluate(decoded))


def check_outcome(page: Page, classes: list[str]) -> None:
    """After a race: the per-class table, three matrices on one scale, the sentence, the gallery,
    and a confusion cell that filters it."""
    outcome = page.locator("#outcome")
    expect(outcome).to_be_visible(timeout=1_000)  # within a second of done
    expect(page.locator("table.per-class tbody tr")).to_have_count(len(classes))
    expect(page.locator("table.confusion")).to_have_count(3)
    expect(page.locator("table.confusion").first.locator("caption")).to_contain_text("rows the true class")
    said = re.compile("Most confused: Scratch calls \\d+|got every test image right")
    expect(page.locator("#outcome-said")).to_contain_text(said)
    expect(page.locator("#gallery-right")).to_have_value("finetune")
    expect(page.locator("#gallery-wrong")).to_have_value("scratch")
    expect(page.locator("#gallery-said")).to_contain_text("Fine-tune right, Scratch wrong")
    for alt in page.locator("#gallery img").evaluate_all("(imgs) => imgs.map((img) => img.alt)"):
        assert alt.split(";")[0] in classes and "Scratch said" in alt and "Fine-tune said" in alt
    assert images_loaded(page, "#gallery img")

    # A confusion cell, reached by the keyboard, shows that cell's images.
    cell = page.locator("table.confusion").first.locator("td button").first
    label = cell.get_attribute("aria-label") or ""
    found = re.match(r"Scratch called (\d+) (.+) images (.+): show them", label)
    assert found, label
    cell.focus()
    page.keyboard.press("Enter")
    count, true_class, said = int(found[1]), found[2], found[3]
    images = f"{count} image{'s' if count > 1 else ''}"
    expect(page.locator("#gallery-said")).to_contain_text(f"Scratch called {images} of {true_class} “{said}”")
    expect(page.locator("#gallery li")).to_have_count(min(count, 24))
    for alt in page.locator("#gallery img").evaluate_all("(imgs) => imgs.map((img) => img.alt)"):
        assert alt.startswith(f"{true_class}; Scratch said {said}")
    expect(page.locator("#gallery-all")).to_be_visible()
    page.locator("#gallery-all").click()
    expect(page.locator("#gallery-said")).to_contain_text("Fine-tune right, Scratch wrong")


def test_the_data_row_then_what_each_strategy_got_right(browser: Browser, live_server: str, tiny: Settings) -> None:
    page = open_page(browser, live_server + "/?n=50&epochs=2")
    target = [FASHION_CLASSES[c] for c in tiny.data.target_classes]
    # Before any race: each target class and each source class, with labelled examples.
    expect(page.locator("#outcome")).to_be_hidden()
    rows = page.locator("#data-row .example-row .example-class")
    expect(rows).to_have_count(10)
    assert rows.all_text_contents() == target + [FASHION_CLASSES[c] for c in tiny.data.source_classes]
    expect(page.locator("#data-row figcaption").nth(1)).to_contain_text("five other kinds of clothing")
    assert images_loaded(page, "#data-row img")
    assert page.locator("#data-row img").first.get_attribute("alt") == f"An example of {target[0]}"
    page.locator("#source").select_option("far")
    expect(page.locator("#data-row figcaption").nth(1)).to_contain_text("scrambled")

    page.locator("#source").select_option("near")
    page.locator("#train").click()
    expect(page.locator("#status")).to_have_attribute("data-kind", "done", timeout=120_000)
    check_outcome(page, target)
    page.locator("#outcome").scroll_into_view_if_needed()
    shot(page, "outcome.png")
    assert page.errors == []  # type: ignore[attr-defined]


def test_a_baked_site_shows_the_images_and_the_outcome(browser: Browser, static_host: str, site: Path, tiny: Settings) -> None:
    page = browser.new_page(viewport={"width": 1366, "height": 900})
    seen = watched(page, (static_host,))
    page.goto(static_host + "/?n=50")
    expect(page.locator("#data-row .example-row")).to_have_count(10)
    page.locator("#train").click()
    expect(page.locator("#status")).to_have_attribute("data-kind", "done", timeout=30_000)
    check_outcome(page, [FASHION_CLASSES[c] for c in tiny.data.target_classes])
    assert seen == {"failed": [], "foreign": [], "sockets": [], "console": [], "errors": []}, seen
