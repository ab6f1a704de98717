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
