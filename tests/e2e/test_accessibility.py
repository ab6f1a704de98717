"""The page and the embed, checked by axe-core in Chromium: no serious or critical violation."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, expect

from tests.e2e.test_page import ARTIFACTS, browser, open_page

__all__ = ["browser"]  # the module's Chromium, shared with the page's tests
pytestmark = pytest.mark.browser
AXE = Path(__file__).parent / "vendor" / "axe-core-4.14.1" / "axe.min.js"
PHONE = {"width": 390, "height": 844}


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    # axe is injected as a script: the page's own CSP allows only its own files.
    ctx = browser.new_context(bypass_csp=True)
    yield ctx
    ctx.close()


def violations(page: Any) -> list[str]:
    """axe's serious and critical findings, each as 'rule: the elements it names'."""
    page.add_script_tag(content=AXE.read_text())
    results = page.evaluate("axe.run(document)")
    return [
        f"{v['id']} ({v['impact']}): {', '.join(str(n['target']) for n in v['nodes'])}"
        for v in results["violations"]
        if v["impact"] in ("serious", "critical")
    ]


@pytest.mark.parametrize("width", ["desktop", "phone"])
def test_the_page_has_no_serious_accessibility_violation(context: BrowserContext, live_server: str, width: str) -> None:
    size = PHONE if width == "phone" else {"width": 1366, "height": 900}
    page = open_page(context, live_server + "/?n=25&epochs=1", **size)
    page.locator("#train").click()
    expect(page.locator("#status")).to_have_attribute("data-kind", "done", timeout=60_000)  # every part of the page drawn
    page.screenshot(path=ARTIFACTS / f"axe-{width}.png", full_page=True)
    assert violations(page) == []


def test_the_embed_has_no_serious_accessibility_violation(context: BrowserContext, live_server: str) -> None:
    page = open_page(context, live_server + "/embed?n=25&epochs=1", width=640, height=480)
    assert violations(page) == []
    assert page.locator("h1").count() == 1
