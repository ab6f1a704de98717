from __future__ import annotations

import re

import pytest

from headstart.race.events import Done, RaceConfig
from headstart.settings import Settings
from headstart.tools import bench
from headstart.training import engine


def test_the_reference_loop_learns_what_the_engine_learns(tiny: Settings) -> None:
    """The benchmark compares like with like: same init, batches, schedule and test set."""
    res = engine.Resources.load(tiny)
    config = RaceConfig(n=50, epochs=3, locked=2, seed=0)
    done = next(e for e in engine.run_race(config, res) if isinstance(e, Done))
    reference = bench.reference_race(config, res)
    for name, summary in done.summary.items():
        assert reference[name]["final_test_acc"] == pytest.approx(summary.final_test_acc, abs=0.021)
        assert reference[name]["seconds"] > 0


def test_the_race_arithmetic_counts_every_strategy_as_the_engine_runs_it(tiny: Settings) -> None:
    """The floor under the race's time counts all three strategies' work, and only what runs."""
    config = RaceConfig(n=50, epochs=2, locked=2, seed=0)
    res = engine.Resources.load(tiny)
    cached = bench.race_flops(config, res)
    scratch, locked = bench.scratch_flops(config, res), bench.locked_pass_flops(config, res)
    assert cached > scratch + locked  # fine-tune trains too
    # Without the cache the locked units run in every step and evaluation: more arithmetic.
    recomputed = bench.race_flops(config, engine.Resources.load(tiny.model_copy(update={"cache_features": False})))
    assert recomputed > cached + locked
    # Measuring the source task, and the extra lanes, each add arithmetic of their own.
    measured = bench.race_flops(config, res, measure_source=True)
    assert measured > cached
    assert bench.race_flops(config.model_copy(update={"extra": ("gradual", "lora")}), res, measure_source=True) > measured


def run_bench(args: list[str], tiny: Settings, monkeypatch, capsys) -> str:
    """``python -m headstart.tools.bench ARGS`` on the tiny data, what it printed."""
    from headstart.settings import get_settings
    from tests.conftest import tiny_env

    for key, value in tiny_env(tiny).items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    monkeypatch.setattr(bench, "matmul_ceiling", lambda device: 1e9)  # the real one multiplies 2048² matrices
    try:
        bench.main(args)
    finally:
        get_settings.cache_clear()
    return capsys.readouterr().out


def test_the_benchmark_reports_both_loops_and_records_itself(tiny: Settings, tmp_path, monkeypatch, capsys) -> None:
    printed = run_bench(["--n", "25", "--epochs", "2", "--out", str(tmp_path / "run.md")], tiny, monkeypatch, capsys)
    recorded = (tmp_path / "run.md").read_text()
    assert (
        recorded.startswith("# `python -m headstart.tools.bench --n 25 --epochs 2 --out ") and "cores" in recorded.splitlines()[0]
    )
    for needle in (
        "machine:",
        "reference wall:",
        "faster end to end",
        "peak resident memory:",
        "% of it",
        "locked pass",
        "at most",
        "with both extra lanes:",
        "the least the walls' ratio can be",
    ):
        assert needle in printed and needle in recorded
    assert all(f"\n{name} " in recorded for name in ("scratch", "frozen", "finetune"))


def test_repeated_runs_report_medians_and_ranges(tiny: Settings, monkeypatch, capsys) -> None:
    """Shared machines are noisy: --repeat gives each figure's median and range over the runs."""
    printed = run_bench(["--n", "25", "--epochs", "2", "--repeat", "2"], tiny, monkeypatch, capsys)
    assert "medians of 2 runs" in printed
    assert "final accuracies: the same in every run" in printed
    wall = next(line for line in printed.splitlines() if line.startswith("engine race wall:"))
    assert re.fullmatch(r"engine race wall: [\d.]+ \([\d.]+–[\d.]+\) s cold, [\d.]+ \([\d.]+–[\d.]+\) s warm", wall)
    assert re.search(r"frozen alone: [\d.]+ \([\d.]+–[\d.]+\)× cold", printed)


def test_a_repeat_below_one_is_refused(capsys) -> None:
    with pytest.raises(SystemExit) as exit_:
        bench.main(["--repeat", "0"])
    assert exit_.value.code == 2
    assert "--repeat must be at least 1, not 0" in capsys.readouterr().err


def test_a_figure_is_its_median_and_range() -> None:
    assert bench.spread([2.0]) == "2.00"
    assert bench.spread([3.0, 1.0, 2.5], ".1f") == "2.5 (1.0–3.0)"
