"""Layer by layer: every source at each depth, its CSV, the plot and the page's payload."""

from __future__ import annotations

from headstart.lessons import depth, distance, sweep
from headstart.race.sources import SOURCES
from headstart.settings import Settings


def test_a_small_depth_sweep_races_every_source_at_each_depth_and_summarises_frozen_and_scratch_once(
    tiny: Settings, tmp_path
) -> None:
    plan = depth.default_plan(tiny.limits, seeds=1, ns=[50])
    plan = depth.Plan(plan.base.model_copy(update={"epochs": 2}), plan.sources, plan.ns, (0, 4), plan.seeds)
    out = tmp_path / "depth.csv"
    results = depth.run(plan, tiny, out)
    assert len(results.rows) == len(SOURCES) * 2 * 3 * 2  # sources × depths × strategies × epochs
    depths = depth.summarise(results.rows)
    # Fine-tune at k = 0 and 4, frozen at 5 and scratch at -1, for each source; frozen and
    # scratch raced twice per source (once per k) but counted once per seed.
    assert {(d.source, d.locked) for d in depths} == {(s, k) for s in SOURCES for k in (-1, 0, 4, 5)}
    assert all(d.seeds == 1 for d in depths)
    assert out.with_suffix(".png").stat().st_size > 0
    payload = depth.page_payload(out)
    assert payload is not None and set(payload["sources"]) == set(SOURCES)
    assert "| near | 50 |" in depth.table(depths)


def test_the_distance_checks_read_each_sources_sweep(tiny: Settings, tmp_path) -> None:
    rows = {}
    for source in SOURCES:
        plan = sweep.default_plan(tiny.limits, seeds=1, ns=[50, 300], scan=False, source=source)
        plan = sweep.Plan(plan.ns, plan.seeds, plan.base.model_copy(update={"epochs": 2}))
        rows[source] = sweep.run(plan, tiny, tmp_path / f"{source}.csv").rows
    checks = distance.evaluate(rows, tiny.limits.locked.default)
    assert [c.number for c in checks] == ["D1a", "D1", "D2", "D3"]
    assert "near" in checks[0].measured and "near − far" in checks[1].measured and "far" in checks[3].measured
    assert checks[2].measured.startswith("not measured")  # no n ≥ 1,000 in the tiny data
