"""How fast a bake's static site opens: ``python -m headstart.tools.first_paint DIR``.

Serves DIR with Python's own static file server on loopback, opens its page in Debian's
Chromium (Playwright; the test extra) in a fresh profile each time, so nothing is cached, and
reports the first contentful paint and the moment the controls and the strip are drawn (the
page's configuration read and its modules run), the median and the slowest of ``--repeat``.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
FCP = "performance.getEntriesByName('first-contentful-paint')[0]?.startTime"


def serve(folder: Path, port: int) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1", "--directory", str(folder)]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(100):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/bake.json", timeout=1).close()
            return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit(f"http.server did not start on port {port}")


def measure(url: str, repeat: int) -> list[tuple[float, float]]:
    """(first contentful paint, controls drawn) in ms after navigation, per cold load."""
    from playwright.sync_api import sync_playwright

    found = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        for _ in range(repeat):
            page = browser.new_context(viewport={"width": 1366, "height": 900}).new_page()
            page.goto(url)
            page.wait_for_selector(".s-finetune .unit")
            drawn = page.evaluate("performance.now()")
            found.append((float(page.evaluate(FCP)), float(drawn)))
            page.context.close()
        browser.close()
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="a bake's folder (python -m headstart bake --out DIR)")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args()
    if not (args.folder / "index.html").is_file():
        parser.error(f"{args.folder} holds no static site (no index.html); bake one with `python -m headstart bake --out DIR`")
    proc = serve(args.folder, args.port)
    try:
        found = measure(f"http://127.0.0.1:{args.port}/index.html", args.repeat)
    finally:
        proc.kill()
    for name, values in (("first contentful paint", [f for f, _ in found]), ("controls drawn", [d for _, d in found])):
        print(f"{name}: median {statistics.median(values):.0f} ms, slowest {max(values):.0f} ms ({args.repeat} cold loads)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
