"""The sweep: resumable CSV of real races, a plot, the scenario checks and the page's payload."""

from __future__ import annotations

import csv

import pytest

from headstart.lessons import scenario, sweep
from headstart.race.events import RaceConfig
from headstart.settings import Settings


def small_plan(settings: Settings, ns=(25, 50), seeds=2, scan=False) -> sweep.Plan:
    base = RaceConfig.validate_with({"epochs": 2, "n": 50}, settings.limits)
    return sweep.Plan(ns=tuple(ns), seeds=tuple(range(seeds)), base=base, locked_scan=(0, 4) if scan else ())


def test_log_spaced_sizes_cover_the_range_in_round_steps() -> None:
    assert sweep.log_spaced(25, 5000) == [25, 50, 100, 200, 500, 1000, 2000, 5000]
    assert sweep.log_spaced(30, 700) == [30, 50, 100, 200, 500, 700]


def test_a_sweep_writes_every_epoch_of_every_race_and_a_plot(tiny: Settings, tmp_path) -> None:
    plan = small_plan(tiny)
    results = sweep.run(plan, tiny, tmp_path / "s.csv")
    assert len(results.rows) == 2 * 2 * 3 * 2  # sizes × seeds × strategies × epochs
    assert {(r["n"], r["seed"]) for r in results.rows} == {(25, 0), (25, 1), (50, 0), (50, 1)}
    assert all(0.0 <= r["test_acc"] <= 1.0 for r in results.rows)
    with (tmp_path / "s.csv").open() as f:
        assert tuple(next(csv.reader(f))) == sweep.COLUMNS
    for suffix in (".png", ".svg"):
        assert (tmp_path / f"s{suffix}").stat().st_size > 5000
    assert b"<svg" in (tmp_path / "s.svg").read_bytes()[:500]
    # Regenerated, the committed pictures stay byte for byte as they were.
    points = sweep.summarise(results.rows, locked=plan.base.locked)
    sweep.plot(points, tmp_path / "s.csv", "title")
    sweep.plot(points, tmp_path / "again.csv", "title")
    assert (tmp_path / "again.svg").read_bytes() == (tmp_path / "s.svg").read_bytes()
    assert (tmp_path / "again.png").read_bytes() == (tmp_path / "s.png").read_bytes()


def test_an_interrupted_sweep_resumes_without_rerunning_finished_races(tiny: Settings, tmp_path, monkeypatch) -> None:
    out = tmp_path / "s.csv"
    plan = small_plan(tiny)
    calls: list[tuple[int, int]] = []

    def stop_after_two(todo, total):
        for i, config in enumerate(todo):
            if i == 2:
                raise KeyboardInterrupt
            calls.append((config.n, config.seed))
            yield config

    with pytest.raises(KeyboardInterrupt):
        sweep.run(plan, tiny, out, progress=stop_after_two)
    assert len(sweep.read_rows(out)) == 2 * 3 * 2  # two whole races, nothing half-written

    def record(todo, total):
        todo = list(todo)
        assert total == 4 and len(todo) == 2
        yield from todo

    results = sweep.run(plan, tiny, out, progress=record)
    assert len(results.rows) == 4 * 3 * 2
    assert len({(r["n"], r["seed"], r["strategy"], r["epoch"]) for r in results.rows}) == len(results.rows)


def test_a_sweep_of_another_scenario_is_refused_not_mixed(tiny: Settings, tmp_path) -> None:
    out = tmp_path / "s.csv"
    sweep.run(small_plan(tiny, ns=(25,), seeds=1), tiny, out)
    other = sweep.Plan(ns=(25,), seeds=(0,), base=RaceConfig.validate_with({"epochs": 3}, tiny.limits))
    with pytest.raises(sweep.SweepError, match=r"race differ.*--fresh"):
        sweep.run(other, tiny, out)
    assert len(sweep.run(other, tiny, out, fresh=True).rows) == 3 * 3


def test_a_sweep_on_an_imagenet_body_keeps_its_body_and_image_side_in_its_scenario(tiny: Settings, tmp_path) -> None:
    import json

    settings = tiny.model_copy(update={"image_size": 32})
    plan = sweep.default_plan(settings.limits, seeds=1, ns=(25,), scan=False, body="efficientnet_lite0")
    plan = sweep.Plan(ns=plan.ns, seeds=plan.seeds, base=plan.base.model_copy(update={"epochs": 1}))
    results = sweep.run(plan, settings, tmp_path / "body.csv")
    frozen = next(r for r in results.rows if r["strategy"] == "frozen")
    scratch = next(r for r in results.rows if r["strategy"] == "scratch")
    assert frozen["trainable_params"] < 10_000 < 3_000_000 < scratch["trainable_params"]  # a head, and all 3.4 M
    meta = json.loads((tmp_path / "body.json").read_text())
    assert meta["race"]["body"] == "efficientnet_lite0" and meta["image_size"] == 32
    # Another side is another scenario: its races are not mixed in.
    with pytest.raises(sweep.SweepError, match="--fresh"):
        sweep.run(plan, tiny.model_copy(update={"image_size": 48}), tmp_path / "body.csv")


def test_damaged_results_are_named_with_their_line_and_not_written_over(tiny: Settings, tmp_path) -> None:
    out = tmp_path / "s.csv"
    plan = small_plan(tiny, ns=(25,), seeds=1)
    sweep.run(plan, tiny, out)
    whole = out.read_text()
    out.write_text(whole + "50,0,2,10,scratch,1,0.4\n")  # a row cut short, as a full disk leaves it
    cut = len(whole.splitlines()) + 1
    fields = len(sweep.COLUMNS)
    said = rf"cannot read line {cut} of {out} \(not the {fields} fields of its header\); run `python -m headstart sweep --fresh`"
    with pytest.raises(sweep.SweepError, match=said):
        sweep.page_payload(out)
    with pytest.raises(sweep.SweepError, match=said):  # a resumed sweep neither mixes it in nor wipes it
        sweep.run(plan, tiny, out)
    assert out.read_text().startswith(whole)
    out.write_text(whole)
    out.with_suffix(".json").write_text("{")
    with pytest.raises(sweep.SweepError, match=r"cannot read \S+/s\.json \("):
        sweep.page_payload(out)


def test_the_scenario_checks_read_real_results(tiny: Settings, tmp_path) -> None:
    plan = small_plan(tiny, scan=True)
    results = sweep.run(plan, tiny, tmp_path / "s.csv")
    checks = scenario.evaluate(results.rows, plan.base.locked, plan.base.n)
    assert [c.number for c in checks] == [1, 2, 3, 4, 5]
    assert all(c.measured for c in checks)
    table = scenario.table(checks)
    assert table.count("\n") == 6 and "| 4 |" in table


def test_the_page_payload_summarises_the_default_k_only(tiny: Settings, tmp_path) -> None:
    plan = small_plan(tiny, scan=True)
    sweep.run(plan, tiny, tmp_path / "s.csv")
    payload = sweep.page_payload(tmp_path / "s.csv")
    assert payload is not None and payload["locked"] == plan.base.locked and payload["seeds"] == 2
    expected = {(s, n) for s in ("scratch", "frozen", "finetune") for n in (25, 50)}
    assert {(p["strategy"], p["n"]) for p in payload["points"]} == expected
    for p in payload["points"]:
        assert p["lo"] <= p["mean"] <= p["hi"]
    assert payload["scenario"]["race"]["epochs"] == 2
    assert sweep.page_payload(tmp_path / "missing.csv") is None


def test_the_accuracy_table_gives_mean_and_spread_after_the_first_and_last_epoch() -> None:
    rows = [
        {"n": n, "seed": seed, "locked": 2, "epochs": 3, "strategy": s, "epoch": e, "test_acc": acc}
        for n in (25, 50)
        for seed, acc in ((0, 0.5), (1, 0.7))
        for s in ("scratch", "frozen", "finetune")
        for e in (1, 2, 3)
    ] + [{"n": 25, "seed": 0, "locked": 0, "epochs": 3, "strategy": "finetune", "epoch": 3, "test_acc": 0.0}]  # another k
    lines = sweep.accuracy_table(rows, locked=2).splitlines()
    assert lines[0] == "| n | fine-tune @1 | frozen @1 | scratch @1 | fine-tune @3 | frozen @3 | scratch @3 |"
    assert lines[2] == "| 25 | " + " | ".join(["60.0 ± 20.0"] * 6) + " |"
    assert [line.split(" |")[0] for line in lines[2:]] == ["| 25", "| 50"]


def cost_row(strategy: str, k: int, compute_s: float, params: int, seed: int = 0) -> dict:
    """One epoch row of a sweep, as the cost check reads it."""
    return {
        "n": 200,
        "seed": seed,
        "locked": k,
        "epochs": 1,
        "epoch": 1,
        "strategy": strategy,
        "test_acc": 0.5,
        "compute_s": compute_s,
        "trainable_params": params,
    }


@pytest.mark.parametrize(
    ("finetune_s", "holds"),
    [
        ((3.0, 2.5, 2.0, 1.5, 1.0), True),
        ((3.0, 3.05, 2.0, 1.5, 1.0), True),  # locking the stem saved less than the noise
        ((3.0, 3.3, 2.0, 1.5, 1.0), False),  # locking more cost more
        ((3.0, 3.1, 3.2, 3.3, 3.4), False),
    ],
)
def test_the_cost_check_lets_a_step_tie_but_not_rise(finetune_s: tuple[float, ...], holds: bool) -> None:
    rows = [cost_row("finetune", k, s, 1000 - 100 * k) for k, s in enumerate(finetune_s)]
    rows += [cost_row("scratch", 2, 9.0, 1000), cost_row("frozen", 2, 0.1, 10)]
    grid = sweep.summarise(rows, locked=2)
    assert scenario._cost(rows, grid, default_locked=2, default_n=200)[1] is holds


def test_one_seed_slowed_by_another_program_does_not_reorder_the_cost_scan() -> None:
    def row(strategy: str, k: int, seed: int, compute_s: float) -> dict:
        return cost_row(strategy, k, compute_s, 1000 - 100 * k, seed)

    rows = [row("finetune", k, seed, 3.0 - 0.5 * k) for k in range(5) for seed in range(3)]
    rows[3] = row("finetune", 1, 0, 6.0)  # k = 1, seed 0: twice as long as its other seeds
    rows += [row("scratch", 2, seed, 9.0) for seed in range(3)] + [row("frozen", 2, seed, 0.1) for seed in range(3)]
    scan = [p.compute_s_per_epoch for p in sweep.summarise(rows) if p.strategy == "finetune"]
    assert scan == [3.0, 2.5, 2.0, 1.5, 1.0]
    assert scenario._cost(rows, sweep.summarise(rows, locked=2), default_locked=2, default_n=200)[1] is True
