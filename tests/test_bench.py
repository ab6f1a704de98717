from __future__ import annotations

import pytest

from app import bench, engine
from app.events import Done, RaceConfig
from app.settings import Settings


def test_the_reference_loop_learns_what_the_engine_learns(tiny: Settings) -> None:
    """The benchmark compares like with like: same init, batches, schedule and test set."""
    res = engine.Resources.load(tiny)
    config = RaceConfig(n=50, epochs=3, frozen=2, seed=0)
    done = next(e for e in engine.run_race(config, res) if isinstance(e, Done))
    reference = bench.reference_race(config, res)
    for name, summary in done.summary.items():
        assert reference[name]["final_test_acc"] == pytest.approx(summary.final_test_acc, abs=0.021)
        assert reference[name]["seconds"] > 0


def test_the_benchmark_reports_both_loops_and_records_itself(tiny: Settings, tmp_path, monkeypatch, capsys) -> None:
    from app.settings import get_settings
    from tests.conftest import tiny_env

    for key, value in tiny_env(tiny).items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    monkeypatch.setattr(bench, "matmul_ceiling", lambda device: 1e9)  # the real one multiplies 2048² matrices
    try:
        bench.main(["--n", "25", "--epochs", "2", "--out", str(tmp_path / "run.md")])
    finally:
        get_settings.cache_clear()
    printed = capsys.readouterr().out
    recorded = (tmp_path / "run.md").read_text()
    assert recorded.startswith("# `python -m app.bench --n 25 --epochs 2 --out ") and "cores" in recorded.splitlines()[0]
    for needle in ("machine:", "reference wall:", "faster end to end", "peak resident memory:", "% of it", "locked pass"):
        assert needle in printed and needle in recorded
    assert all(f"\n{name} " in recorded for name in ("scratch", "frozen", "finetune"))
