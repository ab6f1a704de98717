"""The layers are a contract (pyproject.toml, [tool.importlinter]): the package keeps them, and an
import that crosses one is caught."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from headstart.settings import PROJECT_DIR

LINT = str(Path(sys.executable).with_name("lint-imports"))


def lint(root: Path) -> subprocess.CompletedProcess[str]:
    command = [LINT, str(root / "pyproject.toml"), "--no-cache", "--no-logo"]
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run(command, cwd=root, env=env, capture_output=True, text=True, timeout=120)


def test_the_package_keeps_its_layers() -> None:
    checked = lint(PROJECT_DIR)
    assert checked.returncode == 0, checked.stdout


@pytest.mark.parametrize(
    ("module", "line", "contract"),
    [
        ("headstart/serving/hub.py", "import torch", "Serving imports no torch"),
        ("headstart/site/pages.py", "from headstart.serving import hub", "A static site needs no server"),
        ("headstart/race/events.py", "from headstart.training import engine", "The layers"),
        ("headstart/page.py", "import torch", "The vocabulary imports no torch"),
    ],
)
def test_an_import_across_a_layer_is_caught(tmp_path: Path, module: str, line: str, contract: str) -> None:
    shutil.copytree(PROJECT_DIR / "headstart", tmp_path / "headstart", ignore=shutil.ignore_patterns("__pycache__", "weights"))
    shutil.copy(PROJECT_DIR / "pyproject.toml", tmp_path)
    with (tmp_path / module).open("a") as f:
        f.write(f"\n{line}  # noqa\n")
    checked = lint(tmp_path)
    assert checked.returncode != 0 and f"{contract} BROKEN" in checked.stdout, checked.stdout
