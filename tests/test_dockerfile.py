"""The image installs the wheel, so it serves what an installed package serves (tests/test_wheel.py
checks that every file the page reads comes from the package); it has never been built here."""

from __future__ import annotations

import tomllib
from pathlib import Path

from headstart.settings import PROJECT_DIR


def stages() -> list[list[str]]:
    """The Dockerfile's stages, each as its instruction lines."""
    out: list[list[str]] = []
    for line in (PROJECT_DIR / "Dockerfile").read_text().splitlines():
        if line.startswith("FROM "):
            out.append([])
        if out and line and not line.startswith((" ", "#")):
            out[-1].append(line)
    return out


def test_the_build_stage_copies_everything_the_wheel_is_made_of() -> None:
    build, _ = stages()
    copied = {Path(src) for line in build if line.startswith("COPY ") for src in line.split()[1:-1]}
    project = tomllib.loads((PROJECT_DIR / "pyproject.toml").read_text())
    needed = {Path("pyproject.toml"), Path(project["project"]["readme"]), Path("headstart")}
    needed |= {Path(folder) for folder in project["tool"]["setuptools"]["package-dir"].values()}
    assert needed <= copied, f"not copied into the build stage: {sorted(map(str, needed - copied))}"
    assert any(line.startswith("RUN pip wheel") for line in build)


def test_the_image_installs_the_wheel_and_no_source() -> None:
    _, image = stages()
    assert not [line for line in image if line.startswith("COPY ") and "--from=build" not in line]
    assert any(line.startswith("RUN pip install") and ".whl" in line for line in image)
    assert image[-1] == 'CMD ["headstart", "serve", "--host", "0.0.0.0", "--port", "8000"]'
