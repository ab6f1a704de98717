"""The page as a person uses it, in headless Chromium against a real server."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from PIL import Image
from playwright.sync_api import Browser, BrowserContext, Page, Route, WebSocket, WebSocketRoute, expect, sync_playwright

from headstart.settings import PROJECT_DIR, Settings
from tests.conftest import free_port, serving

pytestmark = pytest.mark.browser
ARTIFACTS = PROJECT_DIR / "test-artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        yield b
        b.close()


def open_page(browser: Browser | BrowserContext, url: str, width: int = 1366, height: int = 900) -> Page:
    """A new tab: in a browser profile of its own, or in ``browser`` when that is a context."""
    if isinstance(browser, BrowserContext):
        page = browser.new_page()
        page.set_viewport_size({"width": width, "height": height})
    else:
        page = browser.new_page(viewport={"width": width, "height": height})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    # What the page and the server said to each other, in order: ("sent" | "received", message).
    frames: list[tuple[str, dict]] = []

    def record(ws: WebSocket) -> None:
        ws.on("framesent", lambda text: frames.append(("sent", json.loads(text))))
        ws.on("framereceived", lambda text: frames.append(("received", json.loads(text))))

    page.on("websocket", record)
    page.frames_log = frames  # type: ignore[attr-defined]
    page.goto(url)
    expect(page.locator(".s-finetune .unit")).to_have_count(6)
    page.errors = errors  # type: ignore[attr-defined]
    return page


@contextmanager
def course_page(html: str, host: str = "localhost") -> Iterator[str]:
    """Serve one HTML page, by default from localhost: the app is on 127.0.0.1, another site,
    whose frames this browser refuses storage. From 127.0.0.1 (another port) they get it."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(html.encode())

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{host}:{server.server_address[1]}/lesson-4"
    finally:
        server.shutdown()


def broadcast(teacher: Page) -> str:
    """Train with Broadcast ticked, as a teacher does; the class code it shows."""
    teacher.locator("#broadcast").check()
    teacher.locator("#train").click()
    expect(teacher.locator("#code-text")).to_have_text(re.compile(r"^[A-Z]{4}$"))
    return teacher.locator("#code-text").inner_text()


def heard(page: Page) -> None:
    """From now on, ``window.said`` collects what a screen reader is given to read out."""
    announced = "document.getElementById('announce')"
    page.evaluate(
        f"window.said = []; new MutationObserver(() => window.said.push({announced}.textContent))"
        f".observe({announced}, {{ childList: true }})"
    )


def shot(page: Page, name: str) -> Path:
    path = ARTIFACTS / name
    page.screenshot(path=str(path), full_page=True)
    return path


def test_sliders_train_and_a_copied_link(browser: Browser, live_server: str) -> None:
    page = open_page(browser, f"{live_server}/?epochs=2&n=25")
    finetune_locked = page.locator(".s-finetune .unit.locked")
    expect(finetune_locked).to_have_count(2)
    expect(page.locator(".s-frozen .unit.locked")).to_have_count(5)
    pill = page.locator(".s-finetune .pill")
    before = pill.inner_text()

    page.locator("#locked").focus()
    page.keyboard.press("ArrowRight")
    expect(finetune_locked).to_have_count(3)
    assert pill.inner_text() != before and "trainable" in pill.inner_text()
    assert page.locator("#locked").get_attribute("aria-valuetext").startswith("3 units")

    page.locator("#n").focus()
    page.keyboard.press("End")
    expect(page.locator("#n-out")).to_contain_text("300 images · 60 per class")  # all the test data holds
    page.keyboard.press("Home")
    expect(page.locator("#n-out")).to_contain_text("25 images · 5 per class")
    assert "locked=3" in page.url and "n=25" in page.url

    page.keyboard.press("Tab")  # keyboard reaches the rest of the controls
    heard(page)
    page.locator("#train").focus()
    page.keyboard.press("Enter")
    expect(page.locator("#status")).to_have_attribute("data-kind", "done", timeout=120_000)
    said = page.evaluate("window.said")
    assert said[-1] == page.locator("#status").inner_text() and said[-1].startswith("Done in ")
    assert not [text for text in said if text.startswith("Epoch ")], said  # progress is shown, not read out
    current = page.evaluate("window.headstart.chart.current.map(e => [e.strategy, e.epoch])")
    assert sorted(current) == sorted([s, e] for s in ("scratch", "frozen", "finetune") for e in (1, 2))
    assert page.locator(".u-series").count() >= 4  # x plus three strategies in the legend
    final = page.evaluate("window.headstart.chart.current.filter(e => e.strategy === 'frozen').at(-1).test_acc")
    legend = page.locator("#chart .u-legend .u-series").nth(2)  # off the chart, it reads out the latest
    expect(legend).to_contain_text(f"{100 * final:.1f} %")
    # A screen reader hears what the picture shows, as the legend reads it.
    finals = page.evaluate("['scratch', 'frozen', 'finetune'].map(s => window.headstart.chart.latest(s).test_acc)")
    said = ", ".join(f"{name} {100 * acc:.1f} %" for name, acc in zip(("Scratch", "Frozen", "Fine-tune"), finals, strict=True))
    described = page.locator("#chart")
    expect(described).to_have_attribute("aria-label", f"Test accuracy of the three strategies after epoch 2 of 2: {said}.")
    page.locator("#metric").select_option("train_loss")
    loss = re.compile(r"^Train loss of the three strategies after epoch 2 of 2: Scratch \d\.\d{3}, ")
    expect(described).to_have_attribute("aria-label", loss)
    page.locator("#metric").select_option("test_acc")
    assert page.locator(".s-scratch .clock").inner_text() != "0.00 s"  # the compute counter ticked
    csv = page.request.get(f"{live_server}/{page.locator('#export-csv').get_attribute('href')}").text()
    assert csv.startswith("race_id,locked,n,epochs") and len(csv.splitlines()) == 7
    with page.expect_download() as download:
        page.locator("#export-png").click()
    picture = Image.open(download.value.path())
    assert picture.getpixel((0, 0)) == (255, 255, 255, 255)  # opaque: readable on a dark slide too
    plot = page.evaluate("[window.headstart.chart.plot.ctx.canvas.width, window.headstart.chart.plot.ctx.canvas.height]")
    assert picture.width > plot[0] and picture.height > plot[1] + 40  # room for the title and the legend
    shot(page, "desktop.png")
    assert not page.errors

    link = f"{live_server}/?{page.evaluate('new URLSearchParams(location.search).toString()')}"
    again = open_page(browser, link.split("&race=")[0])
    assert again.locator("#locked").input_value() == "3"
    expect(again.locator("#n-out")).to_contain_text("25 images")
    assert again.locator("#epochs").input_value() == "2"


def test_the_epoch_axis_spans_the_whole_race_from_its_first_epoch(browser: Browser, live_server: str) -> None:
    """The curves race across a fixed track rather than the axis rescaling every round."""
    page = open_page(browser, live_server + "/?epochs=12")
    # After the frames a redraw takes (a polled wait_for_function would need eval, which the CSP forbids).
    x_range = """async () => {
        await new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)));
        return [window.headstart.chart.plot.scales.x.min, window.headstart.chart.plot.scales.x.max];
    }"""
    assert page.evaluate(x_range) == [1, 12]  # before any race: the track the next one will run
    page.locator("#epochs").fill("7")
    page.locator("#epochs").dispatch_event("change")
    assert page.evaluate(x_range) == [1, 7]
    span = """async ([epochs, upTo]) => {
        const chart = window.headstart.chart;
        chart.startRace(epochs);
        for (let epoch = 1; epoch <= upTo; epoch++)
            for (const strategy of ["scratch", "frozen", "finetune"])
                chart.add({ strategy, epoch, test_acc: 0.5, train_acc: 0.5, train_loss: 1, compute_s: epoch });
        await new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)));
        return [chart.plot.scales.x.min, chart.plot.scales.x.max];
    }"""
    assert page.evaluate(span, [10, 1]) == [1, 10]
    assert page.evaluate(span, [10, 10]) == [1, 10]
    assert page.evaluate(span, [3, 2]) == [1, 10]  # the previous race's ghost lines stay whole
    assert page.evaluate(span, [3, 2]) == [1, 3]
    page.locator("#xaxis").select_option("compute_s")
    assert page.evaluate(span, [10, 2]) == [1, 2]  # compute time is not known ahead: it fits what there is
    assert not page.errors


def test_a_bad_link_or_field_is_named_with_what_is_allowed(browser: Browser, live_server: str) -> None:
    page = open_page(browser, f"{live_server}/?n=99999&locked=9&epochs=abc&seed=1.5")
    status = page.locator("#status")
    expect(status).to_have_attribute("data-kind", "error")
    for said in (
        "Target images must be 25–300, not 99,999; using 300.",
        "Fine-tune locks must be 0–4, not 9; using 4.",
        'Epochs needs a number from 1 to 50, not "abc"; using the default, 10.',
        "Seed must be a whole number, not 1.5; using 2.",
    ):
        expect(status).to_contain_text(said)
    expect(page.locator("#n-out")).to_contain_text("300 images")
    assert page.locator("#locked").input_value() == "4"

    page.locator("#epochs").fill("500")
    page.locator("#epochs").press("Tab")
    expect(status).to_have_text("Epochs must be 1–50, not 500; using 50.")
    assert page.locator("#epochs").input_value() == "50" and "epochs=50" in page.url
    page.locator("#epochs").fill("")
    page.locator("#epochs").press("Tab")
    expect(status).to_have_text("Epochs needs a number from 1 to 50; using the default, 10.")
    page.locator("#seed").fill("-4")
    page.locator("#seed").press("Tab")
    expect(status).to_have_text("Seed must be 0–2,147,483,647, not -4; using 0.")
    assert not page.errors

    stale = open_page(browser, f"{live_server}/?n=50&race=Gone1234")  # a watch link whose server restarted
    expect(stale.locator("#status")).to_contain_text("That race is not on this server")
    assert "race=" not in stale.url and "n=50" in stale.url
    assert not stale.locator("#train").is_disabled()


def test_phone_has_no_horizontal_scroll(browser: Browser, live_server: str) -> None:
    page = open_page(browser, live_server + "/", width=360, height=740)
    expect(page.locator("#sweep .u-over")).to_have_count(1)  # the last panel to draw, from its own fetch
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    assert page.locator("#sweep .uplot").bounding_box()["width"] <= 360
    shot(page, "phone.png")


@pytest.mark.parametrize(("width", "height"), [(1280, 720), (1366, 768)])
def test_on_a_projector_the_whole_chart_shows_without_scrolling(browser: Browser, live_server: str, width, height) -> None:
    page = open_page(browser, live_server + "/", width=width, height=height)
    expect(page.locator("#chart .u-legend")).to_have_count(1)
    legend = page.locator("#chart .u-legend").bounding_box()
    assert legend["y"] + legend["height"] <= height  # the x axis and the legend's final accuracies too
    assert page.locator("#chart .uplot").bounding_box()["height"] >= 220
    # A screen that grows gets its taller chart back.
    page.set_viewport_size({"width": width, "height": 1200})
    expect(page.locator("#chart canvas")).to_have_attribute("height", re.compile(r"^(3[4-9]\d|4\d\d)$"))
    shot(page, f"projector-{width}.png")
    assert not page.errors


def test_axis_text_grows_with_the_screen_as_the_page_text_does(browser: Browser, live_server: str) -> None:
    page = open_page(browser, live_server + "/", width=1920, height=1080)
    expect(page.locator("#sweep .u-over")).to_have_count(1)
    # uPlot keeps each axis's font as [font, device px, CSS px].
    sizes = "['chart', 'sweep'].flatMap((c) => window.headstart[c].plot.axes.map((a) => a.font[2]))"
    body = page.evaluate("parseFloat(getComputedStyle(document.body).fontSize)")
    assert page.evaluate(sizes) == [round(0.75 * body)] * 4 and body >= 19  # read from the back of a classroom
    page.set_viewport_size({"width": 800, "height": 900})  # the same page on a laptop's half screen
    page.wait_for_function(f"{sizes}.every((px) => px < {round(0.75 * body)})")
    smaller = page.evaluate("parseFloat(getComputedStyle(document.body).fontSize)")
    assert page.evaluate(sizes) == [round(0.75 * smaller)] * 4
    assert not page.errors


def test_links_written_with_the_former_name_of_the_locked_units_still_work(browser: Browser, live_server: str) -> None:
    """Course pages link with ``frozen=`` and hide it by that name: both still mean the locked units."""
    page = open_page(browser, f"{live_server}/embed?frozen=3&n=25&hide=frozen")
    expect(page.locator(".s-finetune .unit.locked")).to_have_count(3)
    assert page.locator("#locked").input_value() == "3"
    expect(page.locator("[data-control=locked]")).to_be_hidden()
    expect(page.locator("#status")).not_to_have_attribute("data-kind", "error")
    assert not page.errors


def test_embed_fits_an_iframe_and_hides_named_controls(browser: Browser, live_server: str) -> None:
    page = browser.new_page(viewport={"width": 800, "height": 600})
    src = f"{live_server}/embed?n=25&epochs=2&hide=seed,advanced,colour"
    html = f'<h1>Lesson 4</h1><iframe src="{src}" width="640" height="480" style="border:0"></iframe>'
    with course_page(html) as course:  # another origin, as an author's course site would be
        page.goto(course)
        frame = page.frame_locator("iframe")
        expect(frame.locator(".s-finetune .unit")).to_have_count(6)
        expect(frame.locator("[data-control=seed]")).to_be_hidden()
        expect(frame.locator("[data-control=advanced]")).to_be_hidden()
        expect(frame.locator("#n")).to_be_visible()
        named = 'hide= names nothing called "colour"; it can hide advanced, body, body_lr_ratio, broadcast'
        expect(frame.locator("#status")).to_contain_text(named)
        inner = page.frames[1]
        assert inner.evaluate("document.documentElement.scrollWidth") <= 640
        assert inner.evaluate("document.body.classList.contains('embed')")
        # A cross-site frame may be refused storage (this browser context blocks it): it still trains.
        expect(frame.locator("#status")).not_to_contain_text("Could not start")
        frame.locator("#train").click()
        expect(frame.locator("#status")).to_have_attribute("data-kind", "done", timeout=120_000)
        assert len(inner.evaluate("window.headstart.chart.current")) == 6
        shot(page, "embed.png")


def test_two_embeds_on_one_course_page_each_train_and_stop_their_own_race(browser: Browser, live_server: str) -> None:
    page = browser.new_page(viewport={"width": 1400, "height": 600})
    frames = [
        f'<iframe src="{live_server}/embed?n=300&epochs={e}&seed={s}" width="640" height="480"></iframe>'
        for e, s in ((50, 61), (2, 62))
    ]
    with course_page("".join(frames), host="127.0.0.1") as course:  # same site: the frames share sessionStorage
        page.goto(course)
        first, second = page.frame_locator("iframe").nth(0), page.frame_locator("iframe").nth(1)
        for frame in (first, second):
            expect(frame.locator(".s-finetune .unit")).to_have_count(6)
        first.locator("#train").click()
        expect(first.locator("#status")).to_contain_text("Epoch ")
        second.locator("#train").click()  # a second client, so it queues rather than being refused
        expect(second.locator("#status")).to_contain_text("Waiting in the queue")
        expect(second.locator("#stop")).to_be_enabled()
        first.locator("#stop").click()
        expect(first.locator("#status")).to_contain_text("Stopped after epoch")
        expect(second.locator("#status")).to_have_attribute("data-kind", "done", timeout=60_000)
        shot(page, "two-embeds.png")


def test_a_reloaded_page_keeps_its_race_and_a_duplicated_tab_is_another_client(browser: Browser, live_server: str) -> None:
    profile = browser.new_context()  # one browser profile: its tabs can hear each other
    page = open_page(profile, f"{live_server}/?epochs=50&n=300&seed=81")
    me = page.evaluate("sessionStorage.getItem('headstart-client')")
    assert me
    # A duplicated tab starts with a copy of its original's sessionStorage.
    profile.add_init_script(f"if (!sessionStorage.length) sessionStorage.setItem('headstart-client', '{me}')")
    twin = open_page(profile, f"{live_server}/?epochs=2&n=300&seed=82")
    page.locator("#train").click()
    expect(page.locator("#status")).to_contain_text("Epoch ")
    twin.locator("#train").click()  # its own client, so it queues rather than being refused
    expect(twin.locator("#status")).to_contain_text("Waiting in the queue")
    page.reload()
    expect(page.locator("#stop")).to_be_enabled()  # still the race's starter
    assert page.evaluate("sessionStorage.getItem('headstart-client')") == me
    page.locator("#stop").click()
    expect(page.locator("#status")).to_contain_text("Stopped after epoch")
    expect(twin.locator("#status")).to_have_attribute("data-kind", "done", timeout=60_000)
    assert not page.errors and not twin.errors
    profile.close()


def test_a_class_joins_a_broadcast_race_by_its_code(browser: Browser, live_server: str) -> None:
    teacher = open_page(browser, f"{live_server}/?epochs=2&n=30&seed=5")
    heard(teacher)
    code = broadcast(teacher)
    assert teacher.evaluate("window.headstart.race.mine") is True
    expect(teacher.locator("#code-viewers")).to_have_text("No one else is watching yet")
    # This server listens on 127.0.0.1 only: the teacher learns it before the class tries.
    expect(teacher.locator("#code-unreachable")).to_contain_text("--host 0.0.0.0")
    typo = open_page(browser, live_server + "/w/OOPS")  # never issued: codes leave out I and O
    expect(typo.locator("#status")).to_contain_text("No broadcast race with code 'OOPS'; a code is the 4 letters on the teacher")
    assert typo.locator("#join-code").input_value() == "OOPS" and "join=" not in typo.url
    student = open_page(browser, live_server + "/")
    student.locator("#join button").click()  # nothing typed yet
    expect(student.locator("#status")).to_contain_text("Type the 4-letter code")
    student.locator("#join-code").fill(code.lower())
    student.locator("#join button").click()
    expect(student.locator("#status")).to_have_attribute("data-kind", "done", timeout=120_000)
    assert student.locator("#n-out").inner_text().startswith("30 images")  # the teacher's settings came along
    assert student.evaluate("window.headstart.race.mine") is False  # so its Stop stays disabled: only the teacher stops it
    assert len(student.evaluate("window.headstart.chart.current")) == 6
    expect(teacher.locator("#code-viewers")).to_have_text("1 watching")  # the class arrives on the teacher's screen
    expect(student.locator("#code-viewers")).to_be_hidden()
    expect(student.locator("#code-unreachable")).to_be_hidden()  # the teacher's to act on, not the class's
    # On a phone the race sits under the controls: a student following the class is taken to it.
    phone = open_page(browser, f"{live_server}/w/{code}", width=360, height=740)
    expect(phone.locator("#status")).to_have_attribute("data-kind", "done")
    top = phone.locator(".race").bounding_box()["y"]
    assert phone.evaluate("window.scrollY") > 0 and -1 < top < 100, top  # at the top, to the subpixel
    expect(teacher.locator("#code-viewers")).to_have_text("2 watching")
    phone.close()
    # A screen reader spells the code out to the teacher once, and does not read out each arrival.
    said = teacher.evaluate("window.said")
    spelt = f"Class code {' '.join(code)}: the class opens 127.0.0.1:"
    assert [s for s in said if s.startswith(spelt)] and not [s for s in said if "watching" in s], said
    live = "[aria-live]:not([aria-live=off]), [role=status], [role=alert], [role=log], output"
    assert teacher.evaluate(f"document.getElementById('code-viewers').closest('{live}')") is None
    # The teacher's next race keeps the code on the board, and the class follows it by itself.
    teacher.locator("#seed").fill("6")
    teacher.locator("#train").click()
    expect(teacher.locator("#code-text")).to_have_text(code)
    expect(student.locator("#seed")).to_have_value("6")
    expect(student.locator("#status")).to_have_attribute("data-kind", "done", timeout=120_000)
    shown = student.evaluate("window.headstart.chart.current.map((e) => e.race_id)")
    assert len(shown) == 6 and set(shown) == {teacher.evaluate("window.headstart.race.id")}
    assert len([s for s in teacher.evaluate("window.said") if s.startswith(spelt)]) == 1  # the board did not change
    student.locator("#recent summary").click()
    expect(student.locator("#recent-list button").first).to_contain_text("n 30")


def test_links_handed_out_from_the_serving_laptop_name_its_network_address(browser: Browser, live_server: str) -> None:
    profile = browser.new_context(permissions=["clipboard-read", "clipboard-write"])

    def on_the_network(route: Route) -> None:  # as a server started with --host 0.0.0.0 answers
        route.fulfill(json=route.fetch().json() | {"class_address": "192.168.1.23:8000", "reachable_by_others": True})

    profile.route("**/api/config", on_the_network)
    page = open_page(profile, f"{live_server}/?epochs=2&n=25&seed=91")  # at 127.0.0.1, as the teacher opens it
    page.locator("#broadcast").check()
    page.locator("#train").click()
    expect(page.locator("#code-link")).to_have_text(re.compile(r"^192\.168\.1\.23:8000/w/[A-Z]{4}$"))
    expect(page.locator("#code-unreachable")).to_be_hidden()
    expect(page.locator("#status")).to_have_attribute("data-kind", "done", timeout=120_000)
    page.locator("#copy-watch").click()
    expect(page.locator("#status")).to_contain_text("Watch link copied")
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied.startswith("http://192.168.1.23:8000/?") and "seed=91" in copied and "race=" in copied
    assert not page.errors
    profile.close()


def test_a_server_that_cannot_train_says_why_as_the_page_opens(browser: Browser, live_server: str) -> None:
    profile = browser.new_context()
    why = "DataError: Fashion-MNIST not found (looked in: /srv/data). Set HEADSTART_DATA_DIR to a folder holding it."

    def without_data(route: Route) -> None:  # as a server whose worker found no dataset answers
        route.fulfill(json=route.fetch().json() | {"worker_error": why})

    profile.route("**/api/config", without_data)
    page = open_page(profile, live_server)
    status = page.locator("#status")
    expect(status).to_have_text(f"This server cannot train: {why} Races it finished before can still be watched.")
    expect(status).to_have_attribute("data-kind", "error")
    assert not page.errors
    profile.close()


def test_an_idle_page_learns_at_once_that_the_server_gave_up_on_its_worker(browser: Browser, live_server: str) -> None:
    why = "the training worker stopped 3 times in a row before it was ready (last exit code -9); the server's log may say why."
    sockets: list[WebSocketRoute] = []
    profile = browser.new_context()
    profile.route_web_socket(re.compile(r"/ws"), lambda ws: sockets.append(ws))  # a server whose worker is about to give up
    page = open_page(profile, live_server)
    status = page.locator("#status")
    expect(status).to_have_text("Ready.")
    sockets[-1].send(json.dumps({"type": "error", "code": "worker_unavailable", "message": f"this server cannot train: {why}"}))
    # In the words the page uses when it opens on such a server, not at the next press of Train.
    expect(status).to_have_text(f"This server cannot train: {why} Races it finished before can still be watched.")
    expect(status).to_have_attribute("data-kind", "error")
    expect(page.locator("#device")).to_have_text("")  # it trains on nothing now
    expect(page.locator("#train")).to_be_enabled()  # a press is answered with the same reason
    assert not page.errors
    profile.close()


@pytest.mark.parametrize("outcome", ["up", "cannot start"])
def test_a_page_opened_while_the_worker_loads_learns_what_it_can_train_once_it_knows(
    browser: Browser, live_server: str, outcome: str
) -> None:
    profile = browser.new_context()
    why = "DataError: Fashion-MNIST not found (looked in: /srv/data). Set HEADSTART_DATA_DIR to a folder holding it."
    asked: list[int] = []

    def loading_then(route: Route) -> None:  # as a server answers before its worker has said anything
        served = route.fetch().json()
        asked.append(1)
        if len(asked) < 3:
            fields = [f | {"max": 5000} if f["name"] == "n" else f for f in served["fields"]]
            served |= {
                "device": None,
                "fields": fields,
                "limits": served["limits"] | {"n": served["limits"]["n"] | {"max": 5000}},
            }
        elif outcome == "cannot start":
            served |= {"device": None, "worker_error": why}
        route.fulfill(json=served)

    profile.route("**/api/config", loading_then)
    page = open_page(profile, live_server + "/?n=2000")
    expect(page.locator("#n-out")).to_contain_text("2,000 images")  # the settings allow it, for all the page knows
    expect(page.locator("#device")).to_have_text("")
    status = page.locator("#status")
    if outcome == "up":
        expect(page.locator("#n-out")).to_contain_text("300 images · 60 per class")  # all the test data holds
        expect(page.locator("#device")).to_contain_text("Training on cpu")
        expect(status).to_have_text(
            "This server's dataset holds fewer images than the settings allow. Target images must be 25–300, "
            "not 2,000; using 300."
        )
        assert "n=300" in page.url
    else:
        expect(status).to_have_text(f"This server cannot train: {why} Races it finished before can still be watched.")
    expect(status).to_have_attribute("data-kind", "error")
    page.wait_for_timeout(1500)
    assert len(asked) == 3  # it stopped asking once it knew
    assert not page.errors
    profile.close()


@pytest.mark.parametrize(("outcome", "yours"), [("up", True), ("cannot start", True), ("up", False)])
def test_a_page_whose_race_lost_its_worker_learns_whether_the_fresh_one_started(
    browser: Browser, live_server: str, outcome: str, yours: bool
) -> None:
    why = "the training worker stopped 3 times in a row before it was ready (last exit code -9); the server's log may say why."
    died = False

    def scripted(ws: WebSocketRoute) -> None:  # a race whose worker is killed after its first epoch
        def answer(text: str | bytes) -> None:
            nonlocal died
            msg = json.loads(text)
            if msg["type"] != "start":
                return
            ws.send(json.dumps({"type": "accepted", "race_id": "R1", "yours": yours, "config": msg["config"]}))
            ws.send(json.dumps({"type": "plan", "race_id": "R1", "device": "cpu", "train_size": 50, "emitted_at": 1000.0}))
            died = True
            ws.send(
                json.dumps(
                    {
                        "type": "error",
                        "race_id": "R1",
                        "code": "worker_died",
                        "message": "the training worker stopped unexpectedly (exit code -9); a fresh worker "
                        "is starting, so start the race again",
                    }
                )
            )

        ws.on_message(answer)

    answers_since: list[int] = []

    def replacing(route: Route) -> None:  # as the server answers while it replaces its worker
        served = route.fetch().json()
        if died:
            answers_since.append(1)
            if len(answers_since) < 3:
                served |= {"device": None}
            elif outcome == "cannot start":
                served |= {"device": None, "worker_error": why}
        route.fulfill(json=served)

    profile = browser.new_context()
    profile.route_web_socket(re.compile(r"/ws"), scripted)
    profile.route("**/api/config", replacing)
    page = open_page(profile, live_server + "/?n=50")
    page.locator("#train").click()
    status = page.locator("#status")
    stopped = "Error: the training worker stopped unexpectedly"
    expect(status).to_contain_text(stopped)
    if not yours:  # a class following another's race waits for that page to start it again
        page.wait_for_timeout(4000)
        expect(status).to_contain_text(stopped)
    elif outcome == "up":
        expect(status).to_have_text("A fresh training worker is ready: press Train all three to run the race again.")
        expect(page.locator("#train")).to_be_enabled()
    else:
        expect(status).to_have_text(f"This server cannot train: {why} Races it finished before can still be watched.")
    page.wait_for_timeout(1500)
    assert len(answers_since) == 3  # it stopped asking once it knew
    assert not page.errors
    profile.close()


def test_recent_races_the_server_cannot_list_say_why(browser: Browser, live_server: str) -> None:
    profile = browser.new_context()
    why = "the finished races could not be listed in /srv/races.sqlite3: database is locked; try again shortly"
    refusal = {"type": "error", "code": "store_unavailable", "message": why}
    profile.route("**/api/races?*", lambda route: route.fulfill(status=503, json=refusal))
    page = open_page(profile, live_server)
    page.locator("#recent summary").click()
    expect(page.locator("#recent-list")).to_have_text(f"Could not list them: {why}.")
    assert not page.errors
    profile.close()


def test_a_long_race_says_about_how_long_it_has_left(browser: Browser, live_server: str) -> None:
    """Timed by the worker's clock (emitted_at): the server is scripted here, so the figure is exact."""
    config = {"locked": 2, "n": 200, "epochs": 10, "seed": 0, "lr_scratch": 0.002, "lr_head": 0.01, "body_lr_ratio": 0.1}

    def scripted(ws: WebSocketRoute) -> None:
        def answer(text: str | bytes) -> None:
            if json.loads(text)["type"] != "start":
                return
            ws.send(json.dumps({"type": "accepted", "race_id": "R1", "yours": True, "config": config}))
            ws.send(json.dumps({"type": "plan", "race_id": "R1", "device": "cpu", "train_size": 200, "emitted_at": 1000.0}))
            for strategy in ("scratch", "frozen", "finetune"):  # epoch 2 of 10, 12 s after the plan: 6 s an epoch
                ws.send(
                    json.dumps(
                        {
                            "type": "epoch",
                            "race_id": "R1",
                            "strategy": strategy,
                            "epoch": 2,
                            "train_loss": 1.0,
                            "train_acc": 0.5,
                            "test_acc": 0.5,
                            "trainable_params": 1,
                            "total_params": 1,
                            "compute_s": 1.0,
                            "images_per_s": 100.0,
                            "emitted_at": 1012.0,
                        }
                    )
                )

        ws.on_message(answer)

    profile = browser.new_context()
    profile.route_web_socket(re.compile(r"/ws"), scripted)
    page = open_page(profile, live_server + "/")
    page.locator("#train").click()
    expect(page.locator("#status")).to_have_text("Epoch 2 of 10: Fine-tune 50.0 %. About 50 s left.")
    said = page.evaluate("import('/static/js/format.js').then((f) => [4, 5, 33, 89, 95, 400].map(f.timeLeft))")
    assert said == ["", "About 5 s left", "About 35 s left", "About 90 s left", "About 2 min left", "About 7 min left"]
    assert not page.errors
    profile.close()


def test_stopping_a_race_tells_its_starter_and_its_class(browser: Browser, live_server: str) -> None:
    teacher = open_page(browser, f"{live_server}/?epochs=50&n=300&seed=21")
    student = open_page(browser, f"{live_server}/w/{broadcast(teacher)}")
    expect(student.locator("#status")).to_contain_text("Epoch ")  # the class is watching it train
    expect(student.locator("#stop")).to_be_disabled()
    teacher.locator("#stop").click()
    expect(teacher.locator("#status")).to_have_text(re.compile(r"^Stopped after epoch \d+ of 50\.$"))
    expect(student.locator("#status")).to_have_text(re.compile(r"^Stopped after epoch \d+ of 50: its starter pressed Stop\.$"))
    expect(teacher.locator("#train")).to_be_enabled()
    assert not teacher.errors and not student.errors


def test_a_class_keeps_its_code_and_follows_its_teacher_across_restarts(browser: Browser, tiny: Settings, tmp_path) -> None:
    settings, port = tiny.model_copy(update={"database": tmp_path / "lesson.sqlite3"}), free_port()
    with serving(settings, port) as base:
        teacher = open_page(browser, f"{base}/?epochs=50&n=300&seed=31")
        code = broadcast(teacher)
        student = open_page(browser, f"{base}/w/{code}")
        expect(student.locator("#status")).to_contain_text("Epoch ")
        expect(teacher.locator("#code-viewers")).to_have_text("1 watching")
    # Restarted mid-race (the teacher restarting with --host, say): that race is gone, its code is not.
    expect(student.locator("#status")).to_have_attribute("data-kind", "lost")
    expect(teacher.locator("#code-viewers")).to_be_empty()  # that count is no longer known
    with serving(settings, port):
        waiting = f"Waiting for the next race under code {code}: the last one did not finish before the server restarted."
        expect(student.locator("#status")).to_contain_text(waiting, timeout=30_000)
        gone = f"Train all three to run it again. Broadcast again: it keeps the code {code}, and the class's pages follow."
        expect(teacher.locator("#status")).to_contain_text(gone, timeout=30_000)
        teacher.locator("#epochs").fill("2")
        teacher.locator("#epochs").dispatch_event("change")
        teacher.locator("#train").click()
        expect(teacher.locator("#code-text")).to_have_text(code)
        expect(student.locator("#status")).to_have_attribute("data-kind", "done", timeout=60_000)
        assert student.evaluate("window.headstart.race.id") == teacher.evaluate("window.headstart.race.id")
    # Restarted between races, the class looking at the finished one: the next still reaches it.
    expect(student.locator("#status")).to_have_attribute("data-kind", "lost")
    with serving(settings, port):
        expect(student.locator("#status")).to_have_attribute("data-kind", "done", timeout=30_000)
        expect(teacher.locator("#status")).to_have_text("Reconnected.", timeout=30_000)
        teacher.locator("#seed").fill("32")
        teacher.locator("#train").click()
        expect(teacher.locator("#code-text")).to_have_text(code)
        expect(student.locator("#seed")).to_have_value("32")
        expect(student.locator("#status")).to_have_attribute("data-kind", "done", timeout=60_000)
    assert not teacher.errors and not student.errors


def test_leaving_a_class_race_for_a_recent_one_shows_only_that_one(browser: Browser, live_server: str) -> None:
    student = open_page(browser, f"{live_server}/?epochs=2&n=25&seed=23")
    student.locator("#train").click()
    expect(student.locator("#status")).to_have_attribute("data-kind", "done", timeout=120_000)
    teacher = open_page(browser, f"{live_server}/?epochs=50&n=300&seed=22")
    student.locator("#join-code").fill(broadcast(teacher))
    student.locator("#join button").click()
    expect(student.locator("#status")).to_contain_text("Epoch ")
    student.locator("#recent summary").click()
    student.locator("#recent-list button", has_text="seed 23").click()
    expect(student.locator("#status")).to_have_attribute("data-kind", "done")
    # The class race trains on meanwhile (here, for seconds); what was on its way still reaches the student.
    class_race = teacher.evaluate("window.headstart.race.id")
    log = student.frames_log
    left = log.index(("sent", {"type": "unwatch", "race_id": class_race}))
    heard = max(m.get("epoch", 0) for way, m in log[:left] if m.get("race_id") == class_race)
    reached = "Math.max(0, ...window.headstart.chart.current.map((e) => e.epoch))"
    for _ in range(1200):  # until the class race is 4 epochs past what the student heard of it
        if teacher.evaluate(reached) >= min(heard + 4, 50):
            break
        teacher.wait_for_timeout(50)
    shown = student.evaluate("window.headstart.chart.current.map((e) => [e.race_id, e.epoch])")
    assert len(shown) == 6 and len({race for race, _ in shown}) == 1 and max(epoch for _, epoch in shown) == 2
    assert student.locator("#seed").input_value() == "23"
    # Left, the class race stopped coming: at most what was already on its way when the student left.
    later = [m["epoch"] for way, m in log[left:] if m.get("race_id") == class_race and m["type"] == "epoch"]
    assert max(later, default=heard) <= heard + 1, later
    teacher.locator("#stop").click(force=True)  # frees the worker for the next test, if it still trains
    assert not student.errors and not teacher.errors


def test_the_sweep_panel_reads_out_a_size_and_loads_it_into_the_race(browser: Browser, live_server: str) -> None:
    page = open_page(browser, f"{live_server}/?epochs=2")
    page.locator(".advanced summary").click()
    expect(page.locator("#schedule-note")).to_contain_text("first 2 epochs")
    panel = page.locator("#sweep")
    expect(panel).to_be_visible()
    expect(page.locator("#sweep-readout")).to_contain_text("Hover a size")
    # For a screen reader, the picture in words: where the shipped sweep starts and ends.
    label = page.locator("#sweep-chart").get_attribute("aria-label")
    assert label.startswith("Final test accuracy after 10 epochs against the number of target images, mean of 3 seeds")
    assert re.search(r"With 25 images: Scratch \d+\.\d % \(\d+\.\d–\d+\.\d %\), Frozen .*With 5,000 images: ", label), label
    over = page.locator("#sweep .u-over")
    over.scroll_into_view_if_needed()
    box = over.bounding_box()
    x = page.evaluate("window.headstart.sweep.plot.valToPos(50, 'x')")
    page.mouse.move(box["x"] + x, box["y"] + box["height"] / 2)
    readout = page.locator("#sweep-readout")
    expect(readout).to_contain_text("n = 50:")
    assert all(label in readout.inner_text().lower() for label in ("scratch", "frozen", "fine-tune"))
    page.mouse.click(box["x"] + x, box["y"] + box["height"] / 2)
    expect(page.locator("#n-out")).to_contain_text("50 images")
    expect(page.locator("#status")).to_contain_text("Loaded 50 images from the sweep")
    assert "n=50" in page.url
    shot(page, "sweep.png")

    # The sweep reaches 5,000 images; the test data holds 300 of the target classes.
    x = page.evaluate("window.headstart.sweep.plot.valToPos(1000, 'x')")
    page.mouse.click(box["x"] + x, box["y"] + box["height"] / 2)
    expect(page.locator("#status")).to_contain_text("Loaded 300 images from the sweep. Target images must be 25–300, not 1,000")
    expect(page.locator("#n-out")).to_contain_text("300 images")
    assert "n=300" in page.url
    assert not page.errors


def test_a_hide_name_that_is_not_a_plain_word_still_opens_the_page(browser: Browser, live_server: str) -> None:
    page = open_page(browser, live_server + "/?hide=x%22%5D")  # x"]: once a selector that stopped the page loading
    expect(page.locator("#status")).to_contain_text('hide= names nothing called "x"]"')
    assert page.errors == []  # type: ignore[attr-defined]


def test_the_embed_shows_in_slides_opened_from_disk(browser: Browser, live_server: str, tmp_path: Path) -> None:
    slides = tmp_path / "slides.html"
    slides.write_text(f'<h1>Lecture 4</h1><iframe src="{live_server}/embed?n=25" width="640" height="480"></iframe>')
    page = browser.new_page()
    page.goto(slides.as_uri())
    expect(page.frame_locator("iframe").locator(".s-finetune .unit")).to_have_count(6)
    page.close()


def test_the_source_task_view_shows_what_fine_tuning_forgets(browser: Browser, live_server: str) -> None:
    page = open_page(browser, live_server + "/?n=25&epochs=2&locked=0&body_lr_ratio=1&seed=31")
    page.locator("#train").click()
    expect(page.locator("#status")).to_have_attribute("data-kind", "done", timeout=60_000)
    page.locator("#metric").select_option("source_acc")
    expect(page.locator("#chart-title")).to_have_text("Source-task accuracy (what fine-tuning forgets)")
    expect(page.locator(".s-finetune .source")).to_contain_text("→")  # from where the pretrained body started
    expect(page.locator(".s-frozen .source")).to_contain_text("source ")
    expect(page.locator(".s-scratch .source")).to_have_text("source –")  # no source head to measure with
    finals = page.evaluate("['scratch', 'frozen', 'finetune'].map(s => window.headstart.chart.latest(s).source_acc)")
    assert finals[0] is None and 0 <= finals[1] <= 1 and 0 <= finals[2] <= 1
    page.screenshot(path=ARTIFACTS / "source-task.png")


def test_a_race_asked_for_while_connecting_starts_when_the_socket_opens(browser: Browser, live_server: str) -> None:
    page = browser.new_page()
    reachable = {"yes": False}

    def server(ws: WebSocketRoute) -> None:
        # Until the test says so the server cannot be reached: each try closes, and the page tries again.
        if reachable["yes"]:
            ws.connect_to_server()
        else:
            ws.close()

    page.route_web_socket(re.compile(r"/ws\b"), server)
    page.goto(live_server + "/?n=25&epochs=2&seed=5")
    expect(page.locator(".s-finetune .unit")).to_have_count(6)
    page.locator("#train").click()
    expect(page.locator("#status")).to_contain_text("starts as soon as it answers")
    reachable["yes"] = True
    expect(page.locator("#status")).to_have_attribute("data-kind", "done", timeout=60_000)
    assert page.evaluate("window.headstart.chart.latest('scratch').epoch") == 2
    page.close()


def test_keeping_the_source_task_with_l2sp_trains_it_and_carries_it_in_the_link(browser: Browser, live_server: str) -> None:
    page = open_page(browser, live_server + "/?n=25&epochs=2&locked=0&body_lr_ratio=1&seed=31")
    strength = page.locator("#keep_strength")
    expect(strength).to_be_disabled()  # no regulariser chosen: its strength would change nothing
    expect(page.locator("#keep_strength-out")).to_contain_text("(no effect)")
    page.locator("#train").click()
    expect(page.locator("#status")).to_have_attribute("data-kind", "done", timeout=60_000)

    page.locator("#keep").select_option("l2sp")
    expect(strength).to_be_enabled()
    assert "keep=l2sp" in page.url and "keep_strength=0.03" in page.url
    strength.focus()
    page.keyboard.press("End")  # the strongest pull
    expect(page.locator("#keep_strength-out")).to_have_text("100")
    assert "keep_strength=100" in page.url
    page.locator("#train").click()
    expect(page.locator("#status")).to_have_attribute("data-kind", "done", timeout=60_000)
    accepted = [m for way, m in page.frames_log if way == "received" and m["type"] == "accepted"][-1]  # type: ignore[attr-defined]
    assert accepted["config"]["keep"] == "l2sp" and accepted["config"]["keep_strength"] == 100
    page.locator("#metric").select_option("source_acc")
    expect(page.locator("#ghost-note")).to_be_visible()  # the race without it stays, faint
    finals = page.evaluate("['scratch', 'frozen', 'finetune'].map(s => window.headstart.chart.latest(s).source_acc)")
    assert finals[0] is None and 0 <= finals[2] <= 1
    page.screenshot(path=ARTIFACTS / "keep-l2sp.png")
    assert not page.errors  # type: ignore[attr-defined]


def test_the_trade_off_panel_loads_a_regulariser_and_an_embed_can_hide_it(browser: Browser, live_server: str) -> None:
    page = open_page(browser, live_server + "/?n=25&epochs=2")
    panel = page.locator("#keep-sweep")
    expect(panel).to_be_visible()
    point = page.locator('#keep-sweep .point[data-keep="ewc"][data-strength="0.1"]')
    point.scroll_into_view_if_needed()
    point.hover()
    expect(page.locator("#keep-sweep-readout")).to_contain_text("EWC λ = 0.1: target")
    point.click()
    expect(page.locator("#status")).to_contain_text("Loaded EWC λ = 0.1")
    expect(page.locator("#keep")).to_have_value("ewc")
    assert all(part in page.url for part in ("keep=ewc", "keep_strength=0.1", "locked=0", "body_lr_ratio=1"))
    expect(point).to_have_class(re.compile("current"))
    shot(page, "keep-sweep.png")

    embed = open_page(browser, live_server + "/embed?hide=keep")
    expect(embed.locator("[data-control=keep]").first).to_be_hidden()
    expect(embed.locator("#keep-sweep")).to_be_hidden()
    expect(embed.locator("#status")).not_to_contain_text("hide=")
    assert not page.errors  # type: ignore[attr-defined]


def test_choosing_the_source_shows_in_the_strip_and_the_link_and_trains_from_it(browser: Browser, live_server: str) -> None:
    page = open_page(browser, live_server + "/?n=25&epochs=2")
    expect(page.locator(".s-frozen .origin")).to_have_text("pretrained: near")
    expect(page.locator(".s-scratch .origin")).to_be_hidden()  # scratch starts from nothing
    expect(page.locator("#source option:disabled")).to_have_count(0)  # a live server trains any of them
    page.locator("#source").select_option("far")
    expect(page.locator(".s-finetune .origin")).to_have_text("pretrained: far")
    assert "source=far" in page.url
    page.locator("#train").click()
    expect(page.locator("#status")).to_have_attribute("data-kind", "done", timeout=60_000)
    accepted = [m for way, m in page.frames_log if way == "received" and m["type"] == "accepted"][-1]  # type: ignore[attr-defined]
    assert accepted["config"]["source"] == "far"
    shot(page, "source-far.png")

    page.locator("#source").select_option("shuffled")
    page.locator("#train").click()
    expect(page.locator("#status")).to_have_attribute("data-kind", "done", timeout=60_000)
    page.locator("#metric").select_option("source_acc")
    expect(page.locator(".s-frozen .source")).to_have_text("source –")  # a body pretrained on noise: no task to measure
    hidden = open_page(browser, live_server + "/embed?hide=source")
    expect(hidden.locator("#source")).to_be_hidden()
    expect(hidden.locator("#depth-sweep")).to_be_hidden()
    assert not page.errors and not hidden.errors  # type: ignore[attr-defined]


def test_the_layer_by_layer_panel_loads_a_source_size_and_depth(browser: Browser, live_server: str) -> None:
    page = open_page(browser, live_server + "/?n=25&epochs=2")
    expect(page.locator("#depth-sweep")).to_be_visible()
    expect(page.locator(".depth-legend")).to_contain_text("Far: scrambled pixels")
    point = page.locator('#depth-sweep .point[data-source="far"][data-n="50"][data-locked="1"]')
    point.scroll_into_view_if_needed()
    point.hover()
    expect(page.locator("#depth-sweep-readout")).to_contain_text("Far: scrambled pixels, n = 50, fine-tune locking 1: ")
    point.click()
    expect(page.locator("#source")).to_have_value("far")
    expect(page.locator(".s-finetune .origin")).to_have_text("pretrained: far")
    assert all(part in page.url for part in ("source=far", "n=50", "locked=1"))
    expect(page.locator("#sweep-readout")).to_contain_text("the body pretrained far")  # the head start of that body
    assert not page.errors  # type: ignore[attr-defined]


def test_adding_both_lanes_races_five_strategies_and_an_embed_can_hide_them(browser: Browser, live_server: str) -> None:
    page = open_page(browser, f"{live_server}/?n=25&epochs=2&seed=41")
    expect(page.locator(".s-gradual.strip-row")).to_be_hidden()  # lanes not chosen are not drawn
    expect(page.locator("#lora_rank")).to_be_disabled()  # no effect until LoRA is added
    page.locator("#extra-gradual").check()
    page.locator("#extra-lora").check()
    expect(page.locator("#train")).to_have_text("Train all five")
    expect(page.locator("#lora_rank")).to_be_enabled()
    expect(page.locator(".s-lora .pill")).to_contain_text("trainable")
    assert "extra=gradual%2Clora" in page.url and "lora_rank=4" in page.url
    page.locator("#train").click()
    expect(page.locator("#status")).to_have_attribute("data-kind", "done", timeout=120_000)
    shown = page.evaluate("window.headstart.chart.current.map((e) => e.strategy)")
    assert sorted(set(shown)) == ["finetune", "frozen", "gradual", "lora", "scratch"] and len(shown) == 10
    assert page.locator("#chart .u-series").count() == 6  # x and five lines in the legend
    expect(page.locator(".s-lora .unit.adapted")).to_have_count(5)
    csv = page.request.get(f"{live_server}/{page.locator('#export-csv').get_attribute('href')}").text()
    assert ",gradual," in csv and ",lora," in csv and "gradual lora" in csv  # the lanes, and the race's own field
    shot(page, "lanes.png")
    # What each way of adapting costs: a point loads its race, every lane added.
    page.locator('#lanes-sweep circle[data-strategy="lora"][data-rank="8"]').click()
    expect(page.locator("#status")).to_contain_text("Loaded LoRA at rank 8, every lane added")
    assert page.evaluate("[window.headstart.ui.lora_rank, window.headstart.ui.extra.join()]") == [8, "gradual,lora"]
    embed = open_page(browser, f"{live_server}/embed?n=25&epochs=2&extra=lora&hide=extra")
    expect(embed.locator("fieldset[data-control=extra]")).to_be_hidden()
    expect(embed.locator("#lanes-sweep")).to_be_hidden()  # its panel goes with it
    expect(embed.locator(".s-lora.strip-row")).to_be_visible()  # hidden control, still raced
    assert not page.errors and not embed.errors  # type: ignore[attr-defined]


def test_a_queued_race_says_its_wait_and_why_it_paused(browser: Browser, live_server: str) -> None:
    """The server's estimate of the wait, and a race paused for a smaller one, in the page's words."""
    config = {"locked": 2, "n": 200, "epochs": 10, "seed": 0, "lr_scratch": 0.002, "lr_head": 0.01, "body_lr_ratio": 0.1}
    sockets: list[WebSocketRoute] = []

    def scripted(ws: WebSocketRoute) -> None:
        sockets.append(ws)
        ws.on_message(lambda text: answer(ws, text))

    def answer(ws: WebSocketRoute, text: str | bytes) -> None:
        if json.loads(text)["type"] == "start":
            ws.send(json.dumps({"type": "accepted", "race_id": "R1", "yours": True, "config": config}))
            ws.send(json.dumps({"type": "queued", "race_id": "R1", "position": 3, "wait_s": 42.0}))

    profile = browser.new_context()
    profile.route_web_socket(re.compile(r"/ws"), scripted)
    page = open_page(profile, live_server + "/")
    page.locator("#train").click()
    expect(page.locator("#status")).to_have_text("Waiting in the queue: position 3, about 40 s to wait.")
    sockets[-1].send(json.dumps({"type": "queued", "race_id": "R1", "position": 1, "wait_s": 3.0, "paused": True}))
    expect(page.locator("#status")).to_have_text(
        "Paused to let a smaller race from another address train; it resumes where it stopped (position 1, starting in a moment)."
    )
    page.screenshot(path=ARTIFACTS / "paused.png")
    waits = page.evaluate("import('/static/js/format.js').then((f) => [null, 3, 42, 400].map(f.waitFor))")
    assert waits == ["", "starting in a moment", "about 40 s to wait", "about 7 min to wait"]
    assert not page.errors
    profile.close()
