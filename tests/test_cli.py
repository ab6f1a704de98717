from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from app.settings import Settings, get_settings
from tests.conftest import tiny_env


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "app", *args], capture_output=True, text=True, timeout=300, env={**os.environ, **(env or {})}
    )


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--n", "3"], "--n: n must be between 25 and 5000, got 3"),
        (["--n", "999999"], "--n: n must be between 25 and 5000"),
        (["--frozen", "5"], "--frozen: frozen must be between 0 and 4, got 5"),
        (["--epochs", "0"], "--epochs: epochs must be between 1 and 50"),
        (["--n", "lots"], "argument --n: invalid int value: 'lots'"),
        (["--colour", "red"], "unrecognized arguments: --colour red"),
    ],
)
def test_bad_arguments_exit_2_naming_the_argument_and_range(args: list[str], needle: str) -> None:
    result = run_cli("race", *args)
    assert result.returncode == 2
    assert needle in result.stderr
    assert result.stdout == ""


def test_help_shows_ranges_from_settings() -> None:
    limits = get_settings().limits
    result = run_cli("race", "--help")
    assert f"{limits.n.min}..{limits.n.max} (default {limits.n.default})" in result.stdout


def test_race_prints_json_lines_and_a_summary(tiny: Settings) -> None:
    result = run_cli("race", "--n", "25", "--epochs", "2", "--frozen", "3", env=tiny_env(tiny))
    assert result.returncode == 0, result.stderr
    events = [json.loads(line) for line in result.stdout.splitlines()]
    assert [e["type"] for e in events] == ["plan"] + ["epoch"] * 6 + ["done"]
    assert events[0]["config"]["frozen"] == 3
    assert "finetune" in result.stderr and "wall" in result.stderr


def test_a_missing_dataset_is_a_clear_error(tiny: Settings, tmp_path) -> None:
    env = tiny_env(tiny) | {"HEADSTART_DATA_DIR": str(tmp_path / "nowhere")}
    result = run_cli("race", "--epochs", "1", env=env)
    assert result.returncode == 1
    assert "Fashion-MNIST not found" in result.stderr and "Traceback" not in result.stderr
