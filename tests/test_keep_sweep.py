"""The trade-off sweep: its races, its CSV (resumable), its plot, the page's payload and the checks."""

from __future__ import annotations

from headstart.lessons import forgetting, keeping
from headstart.race.events import RaceConfig
from headstart.settings import Limits, Settings


def test_the_strength_grid_spans_the_range_in_steps_of_one_and_three() -> None:
    assert keeping.strengths(Limits())[:4] == (0.001, 0.003, 0.01, 0.03)
    assert keeping.strengths(Limits())[-1] == 100.0


def test_a_small_trade_off_sweep_writes_every_strategys_epochs_and_resumes(tiny: Settings, tmp_path) -> None:
    base = RaceConfig.validate_with({"locked": 0, "n": 50, "epochs": 2}, tiny.limits)
    plan = keeping.Plan(base=base, strengths=(1.0,), seeds=(0,), locked_scan=(0, 4))
    configs = plan.races()
    assert [(c.keep, c.body_lr_ratio, c.locked) for c in configs] == [
        ("none", 1.0, 0),
        ("none", 0.1, 0),
        ("none", 1.0, 4),
        ("l2sp", 1.0, 0),
        ("ewc", 1.0, 0),
    ]
    out = tmp_path / "keep.csv"
    results = keeping.run(plan, tiny, out)
    assert len(results.rows) == 5 * 3 * 2  # races × strategies × epochs
    assert all(r["source_acc"] is None for r in results.rows if r["strategy"] == "scratch")
    assert out.with_suffix(".png").stat().st_size > 0 and out.with_suffix(".svg").stat().st_size > 0

    ran: list[RaceConfig] = []
    again = keeping.run(plan, tiny, out, progress=lambda todo, total: ran.extend(todo) or todo)
    assert ran == [] and again.rows == results.rows  # everything was already there

    payload = keeping.page_payload(out)
    assert payload is not None
    assert {(p["keep"], p["body_lr_ratio"]) for p in payload["points"]} == {
        ("none", 1.0),
        ("none", 0.1),
        ("l2sp", 1.0),
        ("ewc", 1.0),
    }
    checks = forgetting.evaluate(results.rows, default_ratio=0.1, default_strength=1.0)
    assert [c.number for c in checks] == ["F1", "F2", "F3", "F4"]
    assert checks[2].passed  # frozen never moves, whatever the tiny data teaches
    assert all("not measured" not in c.measured for c in checks)
