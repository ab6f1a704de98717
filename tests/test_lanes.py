"""The extra lanes: LoRA starts at the pretrained function and moves only its updates; gradual
unlocks on its schedule and keeps what is locked as pretrained; bad lanes are refused."""

from __future__ import annotations

import pytest
import torch
from fastapi.testclient import TestClient

from headstart.lessons import adapters
from headstart.race import architecture
from headstart.race.events import Done, Epoch, Plan, RaceConfig
from headstart.serving.app import create_app
from headstart.settings import Settings
from headstart.training import engine, lanes, models
from tests.conftest import tiny_env
from tests.test_cli import run_cli


@pytest.fixture(scope="module")
def res(tiny: Settings) -> engine.Resources:
    return engine.Resources.load(tiny)


def config(res: engine.Resources, **kw: object) -> RaceConfig:
    return RaceConfig.validate_with({"n": 50, "epochs": 4, "seed": 0} | kw, res.settings.limits)


def test_lora_starts_at_the_pretrained_function(res: engine.Resources) -> None:
    c = config(res, extra="lora")
    lora, prefix = engine.build_model("lora", c, res)
    frozen, _ = engine.build_model("frozen", c, res)
    assert prefix == 0  # every body unit learns an update: no locked prefix to keep
    lora.eval(), frozen.eval()
    x = res.test.x[:64]
    updates = [m for m in lora.modules() if isinstance(m, lanes.LoRAConv2d)]
    assert updates and all(torch.equal(m.delta(), torch.zeros_like(m.delta())) for m in updates)  # B = 0
    # The same pretrained body and new head: bit for bit on the CPU; a GPU's convolution may
    # pick another algorithm for the summed kernel, a new tensor, and round differently.
    if res.device.type == "cpu":
        assert torch.equal(lora(x), frozen(x))
    else:
        torch.testing.assert_close(lora(x), frozen(x), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("rank", [1, 4, 16])
def test_lora_trains_what_the_arithmetic_says(res: engine.Resources, rank: int) -> None:
    s = res.settings
    model, _ = engine.build_model("lora", config(res, extra="lora", lora_rank=rank), res)
    per_rank = sum(u.lora_per_rank for u in architecture.body(s.network.width, s.network.blocks_per_stage))
    head = architecture.head_params(s.network.width, len(s.data.target_classes))
    assert models.count_params(model, trainable_only=True) == rank * per_rank + head


def test_lora_at_rank_4_on_the_default_network_trains_17257_parameters() -> None:
    body = architecture.body(16, 1)  # the default width and depth, whatever the tests' network
    assert 4 * sum(u.lora_per_rank for u in body) + architecture.head_params(16, 5) == 17_257


def test_lora_moves_only_its_updates_and_the_head(res: engine.Resources, built_models: dict) -> None:
    c = config(res, extra="lora")
    events = list(engine.run_race(c, res))
    model = built_models[("lora", c)]
    pretrained = res.pretrained("near").state
    for name, module in model.named_modules():
        if isinstance(module, lanes.LoRAConv2d):
            key = f"{name}.weight"
            assert torch.equal(module.base.weight.cpu(), pretrained[key]), key  # the kernel itself, bit for bit
            assert module.lora_b.abs().sum() > 0, name  # the update did train
    for key, value in model.state_dict().items():  # BatchNorm's statistics and affine too
        if key.split(".")[0] in models.UNITS and "lora_" not in key and ".base." not in key:
            assert torch.equal(value.cpu(), pretrained[key]), key
    plan = next(e for e in events if isinstance(e, Plan))
    assert plan.strategies["lora"].trainable_units == ["head"]
    assert plan.strategies["lora"].trainable_params < plan.strategies["finetune"].trainable_params


@pytest.mark.parametrize("cache_features", [True, False])
def test_gradual_unlocks_on_its_schedule_and_keeps_the_locked_units(
    tiny: Settings, built_models: dict, cache_features: bool
) -> None:
    res = engine.Resources.load(tiny.model_copy(update={"cache_features": cache_features}))
    c = config(res, extra="gradual", epochs=6)
    events = list(engine.run_race(c, res))
    epochs = [e for e in events if isinstance(e, Epoch) and e.strategy == "gradual"]
    expected = [
        ["head"],
        ["head"],
        ["stage4", "head"],
        ["stage4", "head"],
        ["stage3", "stage4", "head"],
        ["stage3", "stage4", "head"],
    ]
    assert [e.trainable_units for e in epochs] == expected
    assert [lanes.gradual_locked(e.epoch) for e in epochs] == [5, 5, 4, 4, 3, 3]
    counts = [e.trainable_params for e in epochs]
    assert counts[0] < counts[2] < counts[4] and all(
        e.trainable_units is None for e in events if isinstance(e, Epoch) and e.strategy != "gradual"
    )
    model = built_models[("gradual", c)]
    pretrained = res.pretrained("near").state
    for key, value in model.state_dict().items():  # never unlocked: weights and BatchNorm statistics as pretrained
        if key.split(".")[0] in ("stem", "stage1", "stage2"):
            assert torch.equal(value.cpu(), pretrained[key]), key
    moved = "stage4.0.bn1.running_mean"
    assert not torch.equal(model.state_dict()[moved].cpu(), pretrained[moved])
    done = events[-1]
    assert isinstance(done, Done) and set(done.summary) == {"scratch", "frozen", "finetune", "gradual"}


def test_gradual_rates_fall_by_its_factor_from_the_top() -> None:
    assert lanes.gradual_rate("stage4", 1e-3) == 1e-3
    assert lanes.gradual_rate("stage3", 1e-3) == pytest.approx(1e-3 / lanes.DECAY)
    assert lanes.gradual_rate("stem", 1e-3) == pytest.approx(1e-3 / lanes.DECAY**4)


def test_lanes_not_chosen_cost_nothing_and_keep_the_default_key(res: engine.Resources) -> None:
    plain = config(res)
    assert plain.extra == () and "extra" not in plain.key() and "lora_rank" not in plain.key()
    assert "lora_rank" not in config(res, extra="gradual").key()  # the rank matters only to LoRA
    assert config(res, extra="lora,gradual").extra == ("gradual", "lora")  # one order, one key
    events = list(engine.run_race(plain, res))
    assert {e.strategy for e in events if isinstance(e, Epoch)} == {"scratch", "frozen", "finetune"}


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--extra", "lra"], "argument --extra: Input should be 'gradual' or 'lora'"),
        (["--extra", "lora", "--lora-rank", "17"], "argument --lora-rank: lora_rank must be between 1 and 16, got 17"),
    ],
)
def test_the_cli_refuses_unknown_lanes_and_ranks_naming_what_is_allowed(tiny: Settings, args: list[str], needle: str) -> None:
    result = run_cli("race", *args, env=tiny_env(tiny))
    assert result.returncode == 2 and needle in result.stderr, result.stderr


@pytest.mark.parametrize(
    ("change", "field", "needle"),
    [
        ({"extra": ["lra"]}, "config.extra.0", "Input should be 'gradual' or 'lora'"),
        ({"extra": ["lora"], "lora_rank": 0}, "config.lora_rank", "lora_rank must be between 1 and 16, got 0"),
    ],
)
def test_the_socket_refuses_unknown_lanes_and_ranks_naming_what_is_allowed(
    tiny: Settings, change: dict, field: str, needle: str
) -> None:
    with TestClient(create_app(tiny)) as client, client.websocket_connect("/ws") as ws:
        ws.send_json({"type": "start", "config": {"n": 50, "epochs": 1} | change})
        err = ws.receive_json()
        assert err["type"] == "error" and err["field"] == field and needle in err["message"], err


def test_the_lanes_sweep_writes_every_lane_and_measures_its_checks(tiny: Settings, tmp_path) -> None:
    base = RaceConfig.validate_with({"n": 50, "epochs": 2, "extra": "gradual,lora"}, tiny.limits)
    plan = adapters.Plan(base=base, seeds=(0,), locked_scan=(0, 2), ranks=(1, 4))
    results = adapters.run(plan, tiny, tmp_path / "lanes.csv")
    assert len(results.rows) == 2 * 5 * 2 + 4 * 2  # five lanes at two k, then the three and LoRA at rank 1
    points = adapters.summarise(results.rows, base.locked, base.lora_rank)
    shown = {
        (p.strategy, p.locked if p.strategy == "finetune" else None, p.lora_rank if p.strategy == "lora" else None)
        for p in points
    }
    assert shown == {
        ("scratch", None, None),
        ("frozen", None, None),
        ("finetune", 0, None),
        ("finetune", 2, None),
        ("gradual", None, None),
        ("lora", None, 1),
        ("lora", None, 4),
    }
    lora = {p.lora_rank: p.trainable_params for p in points if p.strategy == "lora"}
    assert lora[1] < lora[4]
    checks = adapters.evaluate(points, base.locked)
    assert [c.number for c in checks] == ["E1", "E2"] and all("not measured" not in c.measured for c in checks)
    payload = adapters.page_payload(tmp_path / "lanes.csv")
    assert payload is not None and len(payload["points"]) == 7 and payload["scenario"]["locked"] == base.locked
    assert (tmp_path / "lanes.png").is_file() and (tmp_path / "lanes.svg").is_file()
