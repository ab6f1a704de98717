"""The project installs the Python way: a wheel built from it serves the page, apart from the checkout."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import httpx
import pytest

from headstart.lessons.panels import LESSONS, every_panel
from headstart.settings import PROJECT_DIR, Settings
from tests.conftest import free_port, tiny_env, wait_until_up


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel, built from this checkout."""
    root = tmp_path_factory.mktemp("wheel")
    build = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(root), str(PROJECT_DIR)]
    subprocess.run(build, check=True, capture_output=True, timeout=300)
    (built,) = root.glob("headstart-*.whl")
    return built


@pytest.fixture(scope="module")
def installed(wheel: Path) -> Path:
    """The wheel installed into a folder of its own."""
    site = wheel.parent / "site"
    install = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(site), str(wheel)]
    subprocess.run(install, check=True, capture_output=True, timeout=300)
    return site


def test_every_subpackage_is_listed_for_the_wheel() -> None:
    listed = set(tomllib.loads((PROJECT_DIR / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(PROJECT_DIR).parts) for p in (PROJECT_DIR / "headstart").rglob("__init__.py")}
    assert found <= listed, f"not in pyproject.toml's packages: {sorted(found - listed)}"


def test_the_wheel_installs_one_package_and_nothing_else_at_the_top(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as whl:
        tops = {name.split("/")[0] for name in whl.namelist()}
    assert {t for t in tops if not t.endswith(".dist-info")} == {"headstart"}, tops


def test_every_file_the_page_reads_comes_from_the_installed_package(installed: Path, tmp_path: Path) -> None:
    where = (
        "import headstart, headstart.settings as s; from headstart.lessons.panels import every_panel; "
        "settings = s.Settings(); "
        "print(headstart.__file__, s.STATIC_DIR, s.TEMPLATES_DIR, settings.network.checkpoint, "
        "*(p.csv(settings) for p in every_panel()))"
    )
    out = subprocess.run(
        [sys.executable, "-c", where],
        env={**os.environ, "PYTHONPATH": str(installed)},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert all(Path(p).is_relative_to(installed) for p in out), out
    assert all(Path(p).is_file() for p in out[3:])  # the checkpoint and every panel's sweep came along


def test_an_installed_wheel_serves_the_page_and_its_scripts(installed: Path, tiny: Settings, tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, **tiny_env(tiny), "PYTHONPATH": str(installed), "HEADSTART_DATABASE": str(tmp_path / "races.sqlite3")}
    command = [str(installed / "bin" / "headstart"), "serve", "--port", str(port)]
    proc = subprocess.Popen(command, env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_until_up(proc, base)
        page = httpx.get(base + "/")
        assert page.status_code == 200 and '<script type="module" src="static/js/main.js">' in page.text
        for path in (
            "/static/js/main.js",
            "/static/js/race.js",
            "/static/js/recorded.js",
            "/static/css/app.css",
            "/static/vendor/uplot-1.6.32/uPlot.esm.js",
        ):
            assert httpx.get(base + path).status_code == 200, path
        assert httpx.get(base + "/embed").status_code == 200
        for panel in every_panel():  # every panel's data: each source's head start, and each lesson's sweep
            path = "/api/sweep/" + panel.name if panel in LESSONS else f"/api/sweep?source={panel.name}"
            assert httpx.get(base + path).json()["points"], path
    finally:
        proc.terminate()
        proc.wait(timeout=20)
