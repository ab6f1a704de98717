"""Your images in the page: a 3-class, 90-image zip by the file chooser and by drag-and-drop,
each class's images dropped on its row, then a race on the upload, its gallery, and a link
that opens the same images."""

from __future__ import annotations

import base64
import io
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from headstart.settings import UPLOAD_ID, Settings
from headstart.tools import payloads
from tests.conftest import free_port, serving
from tests.e2e.test_outcome import check_outcome, images_loaded
from tests.e2e.test_page import ARTIFACTS, browser, open_page

__all__ = ["browser"]  # the module's browser fixture, shared
pytestmark = pytest.mark.browser

CLASSES = list(payloads.SHAPES)


@pytest.fixture(scope="module")
def server(tiny: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    root = tmp_path_factory.mktemp("upload")
    settings = tiny.model_copy(update={"database": root / "races.sqlite3", "upload_dir": root / "uploads"})
    with serving(settings, free_port()) as base:
        yield base, root / "uploads"


@pytest.fixture(scope="module")
def shapes_zip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("zip") / "shapes.zip"
    path.write_bytes(payloads.class_zip(per_class=30))
    return path


def uploaded(page: Page, title: str) -> str:
    """The id of the upload the page just made, once the server has taken it."""
    expect(page.locator("#upload-said")).to_contain_text(f'Uploaded "{title}"', timeout=60_000)
    upload_id = page.locator("#dataset").input_value()
    assert UPLOAD_ID.fullmatch(upload_id), upload_id
    return upload_id


def drop(page: Page, selector: str, files: dict[str, bytes]) -> None:
    """Drop ``files`` on ``selector`` as a person dragging them from their desktop would."""
    encoded = {name: base64.b64encode(data).decode() for name, data in files.items()}
    handle = page.evaluate_handle(
        """(files) => {
          const dt = new DataTransfer();
          for (const [name, b64] of Object.entries(files)) {
            const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
            const types = { zip: "application/zip", png: "image/png", jpg: "image/jpeg" };
            const type = types[name.split(".").pop()] ?? "text/plain";
            dt.items.add(new File([bytes], name, { type }));
          }
          return dt;
        }""",
        encoded,
    )
    page.dispatch_event(selector, "dragover", {"dataTransfer": handle})
    page.dispatch_event(selector, "drop", {"dataTransfer": handle})


def test_a_zip_chosen_in_the_page_uploads_races_and_shows_its_gallery(
    browser: Browser, server: tuple[str, Path], shapes_zip: Path
) -> None:
    base, folder = server
    page = open_page(browser, base + "/?epochs=2")
    page.locator("#your-images > summary").click()
    expect(page.locator("#upload-send")).to_be_disabled()
    with page.expect_file_chooser() as chosen:
        page.locator("#upload-choose-zip").click()
    chosen.value.set_files(str(shapes_zip))
    expect(page.locator("#upload-zip-said")).to_contain_text("shapes.zip")
    expect(page.locator("#upload-title")).to_have_value("shapes")
    page.locator("#upload-send").click()
    upload_id = uploaded(page, "shapes")
    expect(page.locator("#upload-said")).to_contain_text("90 images in 3 classes: circle (30), square (30), triangle (30)")
    assert (folder / upload_id / "circle").is_dir()
    # Chosen at once, the race sized to what it holds, its images shown before any race.
    expect(page.locator("#dataset-about")).to_contain_text("3 classes (circle, square, triangle)")
    expect(page.locator("#n-out")).to_contain_text("72 images · 24 per class")
    rows = page.locator("#data-row .example-row .example-class")
    expect(rows.first).to_have_text("circle")
    assert rows.all_text_contents()[:3] == CLASSES
    assert images_loaded(page, "#data-row img")
    page.screenshot(path=str(ARTIFACTS / "upload-done.png"), full_page=False)

    page.locator("#train").click()
    expect(page.locator("#status")).to_contain_text("Done", timeout=120_000)
    check_outcome(page, CLASSES)
    page.locator("#outcome").scroll_into_view_if_needed()
    page.screenshot(path=str(ARTIFACTS / "upload-gallery.png"), full_page=False)

    # The page's link carries the upload: opened elsewhere, it finds the same images.
    assert f"dataset={upload_id}" in page.url
    other = open_page(browser, page.url.split("&race=")[0])
    expect(other.locator("#dataset")).to_have_value(upload_id)
    expect(other.locator("#data-row .example-row .example-class").first).to_have_text("circle")
    assert page.errors == [] and other.errors == []  # type: ignore[attr-defined]

    # Deleted, the upload's race still replays from its link; its gallery says the images are gone.
    assert page.request.delete(f"{base}/api/datasets/{upload_id}", headers={"Origin": base}).ok
    replayed = open_page(browser, page.url)
    expect(replayed.locator("#gallery .thumb.gone").first).to_be_visible(timeout=60_000)
    expect(replayed.locator("#gallery img")).to_have_count(0)
    expect(replayed.locator("#outcome-said")).not_to_be_empty()
    expect(replayed.locator("#status")).to_contain_text(f"no uploaded dataset '{upload_id}': it was deleted")
    replayed.locator("#outcome").screenshot(path=str(ARTIFACTS / "upload-deleted.png"))
    assert replayed.errors == []  # type: ignore[attr-defined]


def test_a_zip_and_each_classs_images_dropped_in_the_page_upload(
    browser: Browser, server: tuple[str, Path], shapes_zip: Path
) -> None:
    base, folder = server
    page = open_page(browser, base + "/?epochs=1")
    page.locator("#your-images > summary").click()
    drop(page, "#upload-set", {"shapes.zip": shapes_zip.read_bytes()})
    expect(page.locator("#upload-zip-said")).to_contain_text("shapes.zip")
    page.locator("#upload-send").click()
    first = uploaded(page, "shapes")

    # Each class's images on its own row; what is not an image is said before anything is sent.
    expect(page.locator("#upload-zip-row")).to_be_hidden()  # the zip sent, nothing is staged
    archive = zipfile.ZipFile(io.BytesIO(payloads.class_zip(per_class=12, top=None, seed=3)))
    by_class = {c: {Path(n).name: archive.read(n) for n in archive.namelist() if n.startswith(f"{c}/")} for c in CLASSES}
    page.locator("#upload-add-class").click()
    names = page.locator(".upload-name")
    for i, name in enumerate(CLASSES):
        names.nth(i).fill(name)
        files = by_class[name] | ({"notes.txt": b"not an image"} if i == 0 else {})
        drop(page, f".upload-class:nth-child({i + 1}) .upload-drop", files)
    expect(page.locator(".upload-count").first).to_have_text("12 images")
    expect(page.locator(".upload-refused").first).to_contain_text("notes.txt")
    expect(page.locator("#upload-ready")).to_contain_text("Ready to upload 36 images in 3 classes")
    page.locator("#upload-title").fill("Shapes by hand")
    page.screenshot(path=str(ARTIFACTS / "upload-rows.png"), full_page=False)
    page.locator("#upload-send").click()
    second = uploaded(page, "Shapes by hand")
    assert second != first
    expect(page.locator("#dataset option[value='" + second + "']")).to_contain_text("Shapes by hand (uploaded)")
    expect(page.locator("#n-out")).to_contain_text("27 images · 9 per class")

    page.locator("#upload-keep").check()
    expect(page.locator("#upload-said")).to_contain_text('"Shapes by hand" is kept until it is deleted')
    assert '"kept": true' in (folder / second / "dataset.json").read_text()
    page.locator("#upload-delete").click()
    expect(page.locator("#upload-said")).to_contain_text("Deleted")
    expect(page.locator(f"#dataset option[value='{second}']")).to_have_count(0)
    expect(page.locator("#dataset")).to_have_value("fashion")
    assert not (folder / second).exists()
    assert page.errors == []  # type: ignore[attr-defined]
