from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest
import torch

from headstart.settings import Settings, get_settings
from tests.conftest import free_port, tiny_env


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "headstart", *args], capture_output=True, text=True, timeout=300, env={**os.environ, **(env or {})}
    )


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--n", "3"], "python -m headstart race: error: argument --n: n must be between 25 and 5000, got 3"),
        (["--n", "999999"], "--n: n must be between 25 and 5000"),
        (["--locked", "5"], "--locked: locked must be between 0 and 4, got 5"),
        (["--frozen", "5"], "--locked: locked must be between 0 and 4, got 5"),  # the former name, still read
        (["--epochs", "0"], "--epochs: epochs must be between 1 and 50"),
        (["--n", "lots"], "argument --n: invalid int value: 'lots'"),
        (["--colour", "red"], "unrecognized arguments: --colour red"),
        (["sweep", "--n", "3"], "python -m headstart sweep: error: argument --n: every size must be between 25 and 5000"),
        (["sweep", "--seeds", "0"], "argument --seeds: need a whole number of at least 1, got '0'"),
        (["sweep", "--body", "efficientnet_lite0", "--source", "far"], "argument --source: an ImageNet body was pretrained"),
        (["sweep", "--body", "vgg"], "argument --body: invalid choice: 'vgg'"),
        (["pretrain", "--epochs", "x"], "argument --epochs: need a whole number of at least 1, got 'x'"),
        (
            ["serve", "--port", "70000"],
            "python -m headstart serve: error: argument --port: need a TCP port, a whole number from 1 to 65535, got '70000'",
        ),
        (["serve", "--port", "0"], "argument --port: need a TCP port, a whole number from 1 to 65535, got '0'"),
    ],
)
def test_bad_arguments_exit_2_naming_the_argument_and_range(args: list[str], needle: str) -> None:
    command = args.pop(0) if args[0] in ("sweep", "pretrain", "serve") else "race"
    result = run_cli(command, *args)
    assert result.returncode == 2
    assert needle in result.stderr
    assert result.stdout == ""


def test_help_shows_ranges_from_settings() -> None:
    limits = get_settings().limits
    result = run_cli("race", "--help")
    assert f"{limits.n.min}..{limits.n.max} (default {limits.n.default})" in result.stdout


def test_race_prints_json_lines_and_a_summary(tiny: Settings) -> None:
    result = run_cli("race", "--n", "25", "--epochs", "2", "--locked", "3", env=tiny_env(tiny))
    assert result.returncode == 0, result.stderr
    events = [json.loads(line) for line in result.stdout.splitlines()]
    assert [e["type"] for e in events] == ["plan"] + ["epoch"] * 6 + ["predictions", "done"]
    assert events[0]["config"]["locked"] == 3
    assert "finetune" in result.stderr and "wall" in result.stderr


def test_a_race_larger_than_the_dataset_exits_2_with_the_most_it_can_have(tiny: Settings) -> None:
    result = run_cli("race", "--n", "400", "--epochs", "1", env=tiny_env(tiny))  # the test data: 60 images a class
    assert result.returncode == 2 and result.stdout == ""
    said = "--n: the dataset holds 60 images of each target class, so a race can have at most 300 target images, not 400"
    assert said in result.stderr


def test_a_missing_dataset_is_a_clear_error(tiny: Settings, tmp_path) -> None:
    env = tiny_env(tiny) | {"HEADSTART_DATA_DIR": str(tmp_path / "nowhere")}
    result = run_cli("race", "--epochs", "1", env=env)
    assert result.returncode == 1
    assert "Fashion-MNIST not found" in result.stderr and "Traceback" not in result.stderr


def test_a_race_database_that_is_not_one_is_named_and_left_as_it_was(tiny: Settings, tmp_path) -> None:
    kept = tmp_path / "races.sqlite3"
    kept.write_bytes(b"a spreadsheet, saved over the races by mistake" * 40)
    result = run_cli("serve", "--port", str(free_port()), env=tiny_env(tiny) | {"HEADSTART_DATABASE": str(kept)})
    assert result.returncode == 1 and "Traceback" not in result.stderr
    said = f"error: the race database {kept} cannot be used (file is not a database); "
    assert said in result.stderr and "Set HEADSTART_DATABASE to another file" in result.stderr
    assert kept.read_bytes() == b"a spreadsheet, saved over the races by mistake" * 40


def test_a_port_in_use_is_named_before_the_worker_loads(tiny: Settings) -> None:
    with socket.socket() as other:  # another server, started first
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        result = run_cli("serve", "--port", str(port), env=tiny_env(tiny))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    said = f"error: cannot listen on 127.0.0.1:{port}: another program, perhaps another Headstart server, is listening there"
    assert said in result.stderr and "choose another port with --port" in result.stderr
    assert "training worker" not in result.stderr  # it said so at once, not after loading the model and data


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({"HEADSTART_DEVICE": "gpu"}, "HEADSTART_DEVICE: Input should be 'auto', 'cpu' or 'cuda' (got 'gpu')"),
        ({"HEADSTART_WIDTH": "2"}, "HEADSTART_WIDTH: Input should be greater than or equal to 4 (got '2')"),
        ({"HEADSTART_LIMITS__N__MAX": "10"}, "HEADSTART_LIMITS__N: need min <= default <= max, got 25, 200, 10"),
    ],
)
def test_a_bad_setting_in_the_environment_is_named_without_a_traceback(env: dict[str, str], needle: str) -> None:
    result = run_cli("race", "--epochs", "1", env=env)
    assert result.returncode == 2
    assert needle in result.stderr and "Traceback" not in result.stderr


def test_one_bound_of_a_limit_can_be_set_alone() -> None:
    result = run_cli("race", "--n", "3000", env={"HEADSTART_LIMITS__N__MAX": "2000"})
    assert result.returncode == 2
    assert "--n: n must be between 25 and 2000, got 3000" in result.stderr


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a CUDA GPU")
def test_asking_for_cuda_without_a_gpu_is_a_clear_error(tiny: Settings) -> None:
    result = run_cli("race", "--epochs", "1", env=tiny_env(tiny) | {"HEADSTART_DEVICE": "cuda"})
    assert result.returncode == 1
    assert "HEADSTART_DEVICE=cuda, but this PyTorch sees no CUDA GPU" in result.stderr and "Traceback" not in result.stderr


def test_an_unknown_regulariser_exits_2_naming_the_ones_there_are() -> None:
    result = run_cli("race", "--keep", "dropout")
    assert result.returncode == 2
    assert "argument --keep: invalid choice: 'dropout' (choose from 'none', 'l2sp', 'ewc')" in result.stderr
    result = run_cli("race", "--keep", "l2sp", "--keep-strength", "0")
    assert result.returncode == 2 and "--keep-strength: keep_strength must be between 0.001 and 100.0, got 0.0" in result.stderr
