"""How long an upload takes: ``python -m headstart.tools.upload_speed``.

Starts the server (the embedded default, an uploads folder of its own), makes ``--images``
photo-sized JPEGs of about ``--kilobytes`` each in four classes, and times, from pressing
Upload to the server's answer:
- the page: Debian's Chromium (Playwright; the test extra) chooses the files class by class
  and presses Upload; the progress bar is sampled as it moves;
- a zip of the same images posted by a tool (``file``), and the files as parts, one class each.
The median and the slowest of ``--repeat`` runs of each.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import httpx
import numpy as np

from headstart.tools import payloads
from headstart.tools.loadtest import Server

CLASSES = 4
CHROMIUM = "/usr/bin/chromium"


def make_images(folder: Path, images: int, kilobytes: int) -> list[list[Path]]:
    """The images on disk, per class, as a person's folders would hold them."""
    rng = np.random.default_rng(0)
    classes: list[list[Path]] = [[] for _ in range(CLASSES)]
    for i in range(images):
        path = folder / f"class-{i % CLASSES}" / f"{i:05d}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(payloads.noise_jpeg(rng, kilobytes))
        classes[i % CLASSES].append(path)
    return classes


def in_page(base: str, classes: list[list[Path]]) -> tuple[float, int]:
    """Seconds from Upload to the page saying it is uploaded; distinct progress values seen."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM)
        page = browser.new_page(viewport={"width": 1366, "height": 900})
        page.goto(base + "/")
        page.locator("#your-images > summary").click()
        for _ in range(len(classes) - 2):
            page.locator("#upload-add-class").click()
        for i, files in enumerate(classes):
            page.locator(".upload-name").nth(i).fill(f"class-{i}")
            page.locator(".upload-class input[type=file]").nth(i).set_input_files([str(f) for f in files])
        page.locator(f"text=Ready to upload {sum(map(len, classes)):,} images").wait_for()
        seen: set[float] = set()
        t0 = time.perf_counter()
        page.locator("#upload-send").click()
        while not page.locator("#upload-said", has_text="Uploaded").count():
            value = page.evaluate("document.getElementById('upload-progress').value")
            seen.add(round(float(value), 2))
            page.wait_for_timeout(50)
        took = time.perf_counter() - t0
        browser.close()
    return took, len(seen)


async def by_tool(base: str, classes: list[list[Path]], as_zip: bytes | None) -> float:
    files = (
        [("file", ("photos.zip", as_zip, "application/zip"))]
        if as_zip is not None
        else [(f"class-{c}", (f.name, f.read_bytes(), "image/jpeg")) for c, paths in enumerate(classes) for f in paths]
    )
    async with httpx.AsyncClient(timeout=600) as http:
        t0 = time.perf_counter()
        answer = await http.post(base + "/api/datasets", files=files)
        took = time.perf_counter() - t0
    if answer.status_code != 201:
        raise SystemExit(f"the upload was refused: {answer.text}")
    return took


def summary(name: str, times: list[float]) -> str:
    return f"{name}: median {statistics.median(times):.1f} s, slowest {max(times):.1f} s of {len(times)}"


async def main_async(args: argparse.Namespace) -> int:
    folder = Path(tempfile.mkdtemp(prefix="headstart-upload-speed-"))
    classes = make_images(folder / "photos", args.images, args.kilobytes)
    megabytes = sum(p.stat().st_size for paths in classes for p in paths) / 2**20
    packed = folder / "photos.zip"
    with zipfile.ZipFile(packed, "w", zipfile.ZIP_STORED) as zf:
        for paths in classes:
            for path in paths:
                zf.write(path, f"{path.parent.name}/{path.name}")
    env = {"HEADSTART_UPLOAD_DIR": str(folder / "uploads"), "HEADSTART_MAX_UPLOAD_DISK_MB": "100000"}
    env |= {"HEADSTART_UPLOAD_MB_PER_ADDRESS_PER_HOUR": "100000", "HEADSTART_UPLOAD_MB_PER_HOUR": "100000"}
    server = Server(folder / "races.sqlite3", env=env)
    await server.start()
    print(f"{args.images:,} JPEGs, {megabytes:.0f} MB in {CLASSES} classes", flush=True)
    ok = True
    try:
        page, progress = [], []
        for _ in range(args.repeat if not args.no_browser else 0):
            took, steps = await asyncio.to_thread(in_page, server.base, classes)
            page.append(took)
            progress.append(steps)
        if page:
            bar = f"; the progress bar showed {min(progress)} or more values"
            print(summary("the page (Chromium, class rows)", page) + bar, flush=True)
            ok &= statistics.median(page) < args.target_s
        zipped = [await by_tool(server.base, classes, packed.read_bytes()) for _ in range(args.repeat)]
        print(summary("a tool, one zip", zipped), flush=True)
        parts = [await by_tool(server.base, classes, None) for _ in range(args.repeat)]
        print(summary("a tool, the files as parts", parts), flush=True)
    finally:
        server.stop()
    print(f"target: under {args.target_s:g} s: {'met' if ok else 'NOT met'}")
    return 0 if ok else 1


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m headstart.tools.upload_speed", description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--kilobytes", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--target-s", type=float, default=30.0)
    parser.add_argument("--no-browser", action="store_true", help="time only the tool's uploads")
    sys.exit(asyncio.run(main_async(parser.parse_args())))


if __name__ == "__main__":
    main()
