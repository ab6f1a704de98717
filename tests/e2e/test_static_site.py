"""A bake's static site, served as plain files (``python -m http.server``: no FastAPI, no websocket)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, Page, expect

from headstart.settings import Settings
from headstart.site import bake
from tests.conftest import free_port
from tests.e2e.test_page import browser, course_page, shot

__all__ = ["browser"]  # the module's Chromium, shared with the page's tests
pytestmark = pytest.mark.browser
GRID = bake.Grid(n=(50, 200), locked=(2,), seeds=(0,), epochs=2)


@pytest.fixture(scope="module")
def site(tiny: Settings, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("site")
    bake.bake(tiny, GRID, out)
    return out


@pytest.fixture(scope="module")
def static_host(site: Path) -> Iterator[str]:
    with serving_files(site) as base:
        yield base


@contextmanager
def serving_files(site: Path) -> Iterator[str]:
    """``python -m http.server`` over ``site``, on loopback: a plain static host."""
    port = free_port()
    command = [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1", "--directory", str(site)]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while True:
        try:
            urllib.request.urlopen(base + "/bake.json", timeout=1).close()
            break
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                raise
            time.sleep(0.1)
    try:
        yield base
    finally:
        proc.kill()
        proc.wait()


def watched(page: Page, allowed: tuple[str, ...]) -> dict[str, list[str]]:
    """What went wrong as the page ran: failed or foreign requests, websockets, console errors."""
    seen: dict[str, list[str]] = {"failed": [], "foreign": [], "sockets": [], "console": [], "errors": []}
    origin = lambda url: "{0.scheme}://{0.netloc}".format(urlsplit(url))  # noqa: E731
    page.on("requestfailed", lambda r: seen["failed"].append(f"{r.url} {r.failure}"))
    page.on("response", lambda r: r.status >= 400 and seen["failed"].append(f"{r.url} {r.status}"))
    page.on("request", lambda r: r.url.startswith("data:") or origin(r.url) in allowed or seen["foreign"].append(r.url))
    page.on("websocket", lambda ws: seen["sockets"].append(ws.url))
    page.on("console", lambda m: m.type == "error" and seen["console"].append(m.text))
    page.on("pageerror", lambda e: seen["errors"].append(str(e)))
    return seen


def recorded_race(site: Path, n: int) -> dict:
    config = json.loads((site / "api" / "config.json").read_text())
    found = next(r["id"] for r in config["recorded"]["races"] if r["config"]["n"] == n)
    return json.loads((site / "races" / f"{found}.json").read_text())


def test_the_static_site_replays_recorded_races_with_no_server(browser: Browser, static_host: str, site: Path) -> None:
    page = browser.new_page(viewport={"width": 1366, "height": 900})
    seen = watched(page, (static_host,))
    page.goto(static_host + "/")
    expect(page.locator(".s-finetune .unit")).to_have_count(6)
    expect(page.locator("#device")).to_contain_text("Races recorded on ")
    expect(page.locator("#device")).to_contain_text("replayed here, not trained")
    for needs_a_server in ("#broadcast", "#join", "#recent"):
        expect(page.locator(needs_a_server)).to_be_hidden()
    # One value recorded: shown, not movable. The data slider snaps to the two recorded sizes.
    expect(page.locator("#epochs")).to_be_disabled()
    expect(page.locator("#locked")).to_be_disabled()
    expect(page.locator("#locked-out")).to_contain_text("(the one value recorded)")
    far = page.locator('#source option[value="far"]')  # a source no race was recorded with: shown, not choosable
    expect(far).to_be_disabled()
    expect(far).to_have_text("Far: scrambled pixels (not recorded)")
    expect(far).to_have_attribute("title", re.compile("no race recorded that way"))
    expect(page.locator("#extra-lora")).to_be_disabled()  # no lane recorded: each box says why it is fixed
    expect(page.locator(".lane.s-lora")).to_have_attribute("title", re.compile("no race recorded that way"))
    page.locator("#n").focus()
    page.keyboard.press("Home")
    expect(page.locator("#n-out")).to_contain_text("50 images")
    page.keyboard.press("End")
    expect(page.locator("#n-out")).to_contain_text("200 images")
    page.keyboard.press("Home")
    expect(page.locator("#n-out")).to_contain_text("50 images")  # the URL is written with the output
    assert "n=50" in page.url and "epochs=2" in page.url

    page.locator("#train").click()
    expect(page.locator("#status")).to_have_attribute("data-kind", "done", timeout=30_000)
    expect(page.locator("#status")).to_contain_text("Replayed the race recorded on ")
    race = recorded_race(site, 50)
    shown = page.evaluate("window.headstart.chart.current.map((e) => [e.strategy, e.epoch, e.test_acc])")
    assert shown == [[e["strategy"], e["epoch"], e["test_acc"]] for e in race["events"] if e["type"] == "epoch"]
    assert len(shown) == 6  # three strategies, two epochs each

    # The exports are the recorded race's own files.
    for link, ext in (("#export-csv", ".csv"), ("#export-json", ".json")):
        href = page.locator(link).get_attribute("href")
        assert href == f"races/{race['race_id']}{ext}"
        assert page.request.get(f"{static_host}/{href}").ok
    shot(page, "static-site.png")

    # A link to settings no race was recorded at says so, and offers the nearest.
    page.goto(static_host + "/index.html?n=120&locked=3")
    nearest = "Target images 120 was not recorded on this site; using the nearest recorded, 200"
    expect(page.locator("#status")).to_contain_text(nearest)
    expect(page.locator("#status")).to_contain_text("using the nearest recorded, 2 (recorded: 2)")
    page.locator("#train").click()
    expect(page.locator("#status")).to_have_attribute("data-kind", "done", timeout=30_000)
    # A watch link names a recorded race: it replays it.
    page.goto(f"{static_host}/index.html?race={race['race_id']}")
    expect(page.locator("#status")).to_have_attribute("data-kind", "done", timeout=30_000)
    assert page.evaluate("window.headstart.ui.n") == 50

    assert seen == {"failed": [], "foreign": [], "sockets": [], "console": [], "errors": []}, seen
    page.close()


def test_the_static_embed_replays_in_a_course_page(browser: Browser, static_host: str) -> None:
    page = browser.new_page(viewport={"width": 800, "height": 600})
    html = f'<h1>Lesson 4</h1><iframe src="{static_host}/embed.html?n=200&hide=seed" width="640" height="480"></iframe>'
    with course_page(html) as course:  # another origin, as an author's course site would be
        seen = watched(page, (static_host, "{0.scheme}://{0.netloc}".format(urlsplit(course))))
        page.goto(course)
        frame = page.frame_locator("iframe")
        expect(frame.locator(".s-finetune .unit")).to_have_count(6)
        expect(frame.locator("[data-control=seed]")).to_be_hidden()
        frame.locator("#train").click()
        expect(frame.locator("#status")).to_have_attribute("data-kind", "done", timeout=30_000)
        assert page.frames[1].evaluate("window.headstart.chart.current.length") == 6
        assert page.frames[1].evaluate("document.documentElement.scrollWidth") <= 640
        shot(page, "static-embed.png")
    assert seen == {"failed": [], "foreign": [], "sockets": [], "console": [], "errors": []}, seen
    page.close()


def test_a_bake_with_the_extra_lanes_offers_only_the_sets_it_recorded(browser: Browser, tiny: Settings, tmp_path: Path) -> None:
    grid = bake.Grid(n=(50,), locked=(2,), seeds=(0,), epochs=1, extras=((), ("gradual", "lora")))
    bake.bake(tiny, grid, tmp_path / "site")
    with serving_files(tmp_path / "site") as base:
        page = browser.new_page()
        seen = watched(page, (base,))
        page.goto(base + "/")
        expect(page.locator(".s-finetune .unit")).to_have_count(6)
        page.locator("#extra-gradual").check()  # only recorded with LoRA beside it: both are added
        expect(page.locator("#status")).to_contain_text("recorded races with gradual and lora, not with gradual")
        expect(page.locator("#extra-lora")).to_be_checked()
        page.locator("#train").click()
        expect(page.locator("#status")).to_have_attribute("data-kind", "done", timeout=30_000)
        assert sorted({e for e in page.evaluate("window.headstart.chart.current.map((e) => e.strategy)")}) == [
            "finetune",
            "frozen",
            "gradual",
            "lora",
            "scratch",
        ]
        page.close()
    assert seen == {"failed": [], "foreign": [], "sockets": [], "console": [], "errors": []}, seen
