from __future__ import annotations

import gc
import weakref

import pytest
import torch

from headstart.race.events import STRATEGIES, Done, Epoch, Plan, RaceConfig
from headstart.settings import Settings
from headstart.training import devices, engine, models


@pytest.fixture(scope="module")
def res(tiny: Settings) -> engine.Resources:
    return engine.Resources.load(tiny)


def config(**kw: object) -> RaceConfig:
    return RaceConfig(**({"n": 50, "epochs": 2, "locked": 2, "seed": 0} | kw))


def race(res: engine.Resources, **kw: object) -> list:
    return list(engine.run_race(config(**kw), res))


def test_a_tiny_race_emits_plan_epochs_and_done(res: engine.Resources) -> None:
    events = race(res, epochs=3)
    assert isinstance(events[0], Plan) and isinstance(events[-1], Done)
    epochs = [e for e in events if isinstance(e, Epoch)]
    assert [(e.epoch, e.strategy) for e in epochs] == [(i, s) for i in (1, 2, 3) for s in STRATEGIES]
    plan = events[0]
    assert plan.train_size == 50 and plan.test_size == res.settings.data.test_size
    assert [u.name for u in plan.units] == [*models.UNITS, "head"]
    assert plan.strategies["frozen"].trainable_units == ["head"]
    assert plan.strategies["finetune"].trainable_units == ["stage2", "stage3", "stage4", "head"]
    assert plan.strategies["scratch"].trainable_params == plan.strategies["scratch"].total_params
    for e in epochs:
        assert 0 <= e.test_acc <= 1 and 0 <= e.train_acc <= 1 and e.compute_s > 0 and e.images_per_s > 0
    for name in STRATEGIES:
        own = [e.compute_s for e in epochs if e.strategy == name]
        assert own == sorted(own)  # each strategy's own clock only moves forward
    assert events[-1].summary["frozen"].final_test_acc == epochs[-2].test_acc
    # Everything is JSON-serialisable, with the documented field names.
    assert set(epochs[0].model_dump()) >= {
        "type",
        "strategy",
        "epoch",
        "train_loss",
        "train_acc",
        "test_acc",
        "trainable_params",
        "total_params",
        "compute_s",
        "images_per_s",
    }


def test_same_config_and_seed_give_the_same_numbers(res: engine.Resources) -> None:
    def numbers(events: list) -> list:
        return [(e.train_loss, e.test_acc) for e in events if isinstance(e, Epoch)]

    assert numbers(race(res)) == numbers(race(res))
    assert numbers(race(res)) != numbers(race(res, seed=1))


def test_warming_up_keeps_the_default_locked_passes_timed_again_and_changes_no_race(tiny: Settings) -> None:
    """The warm-up's first-call features are dropped; the default race's are computed again and kept."""
    cold = engine.Resources.load(tiny)
    default = RaceConfig.validate_with({}, tiny.limits)
    expected = [e for e in engine.run_race(default, cold) if isinstance(e, Epoch)]
    warmed = engine.Resources.load(tiny)
    engine.warm_up(warmed)
    kept = {(k, images) for (_, k, images) in warmed.cache._store}
    train = f"train:{default.n}"
    assert kept == {(k, images) for k in (default.locked, len(models.UNITS)) for images in (train, "test", "source")}
    assert warmed.cache.misses == 2 * len(kept)  # each pass ran twice: at first-call prices, then timed warm
    events = list(engine.run_race(default, warmed))
    got = [e for e in events if isinstance(e, Epoch)]
    assert [(e.strategy, e.train_loss, e.test_acc) for e in got] == [(e.strategy, e.train_loss, e.test_acc) for e in expected]
    summary = events[-1].summary
    assert summary["finetune"].reused_s > 0 and summary["frozen"].reused_s > 0 and summary["scratch"].reused_s == 0


def test_epochs_are_handed_over_a_round_at_a_time(res: engine.Resources) -> None:
    """What a viewer does with an epoch (a browser redrawing) then lands on the next round, not on frozen's."""
    batches = 0

    def count() -> bool:
        nonlocal batches
        batches += 1
        return False

    seen = [batches for e in engine.run_race(config(epochs=3), res, should_stop=count) if isinstance(e, Epoch)]
    per_round = batches // 3
    assert seen == [per_round * r for r in (1, 2, 3) for _ in STRATEGIES]


def test_training_learns_the_tiny_task(res: engine.Resources) -> None:
    done = race(res, epochs=6, n=100)[-1]
    assert done.summary["finetune"].best_test_acc > 0.5  # chance is 0.2


def test_frozen_strategy_leaves_the_body_bit_for_bit_unchanged(res: engine.Resources, built_models: dict) -> None:
    race(res, locked=3)
    built = {name: model for (name, _), model in built_models.items()}
    pretrained = res.pretrained("near").state
    for name, k in (("frozen", 5), ("finetune", 3)):
        state = built[name].state_dict()
        for key, value in state.items():
            if key.split(".")[0] in models.UNITS[:k]:
                assert torch.equal(value.cpu(), pretrained[key]), (name, key)
    assert not torch.equal(built["finetune"].state_dict()["stage4.0.conv1.weight"].cpu(), pretrained["stage4.0.conv1.weight"])


def test_every_race_starts_from_fresh_weights(res: engine.Resources) -> None:
    a = engine.build_model("finetune", config(), res)[0]
    list(engine.run_race(config(), res))
    b = engine.build_model("finetune", config(), res)[0]
    for (key, va), vb in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(va, vb), key
    assert torch.equal(a.head[1].weight, engine.build_model("frozen", config(), res)[0].head[1].weight)


def test_cached_features_match_training_through_the_locked_layers(tiny: Settings) -> None:
    cached = engine.Resources.load(tiny)
    plain = engine.Resources.load(tiny.model_copy(update={"cache_features": False}))
    a = [e for e in engine.run_race(config(epochs=3), cached) if isinstance(e, Epoch)]
    b = [e for e in engine.run_race(config(epochs=3), plain) if isinstance(e, Epoch)]
    for x, y in zip(a, b, strict=True):
        assert x.strategy == y.strategy
        assert x.train_loss == pytest.approx(y.train_loss, rel=1e-3, abs=1e-4)
        assert x.test_acc == pytest.approx(y.test_acc, abs=0.021)  # at most one test image flips


def test_the_cpu_trains_channels_last_only_where_onednn_handles_it() -> None:
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert devices.memory_format(cpu, 4) == torch.contiguous_format  # stage 2's projection: 4 input channels
    assert devices.memory_format(cpu, 16) == torch.channels_last
    assert devices.memory_format(cuda, 4) == torch.channels_last


def test_the_cpu_is_described_by_its_vector_unit() -> None:
    """Part of a stored race's key: a race trained with AVX2 kernels never replays as AVX-512's."""
    described = devices.describe_device(torch.device("cpu"))
    assert described.startswith(f"cpu {torch.backends.cpu.get_cpu_capability()} (")
    assert f"({torch.get_num_threads()} thread" in described


@pytest.fixture(scope="module")
def wide(tiny: Settings, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """The tiny task at width 16, where the CPU trains channels_last."""
    from headstart.training.pretrain import pretrain

    settings = tiny.model_copy(update={"width": 16, "checkpoint": tmp_path_factory.mktemp("wide") / "wide.safetensors"})
    pretrain(settings, settings.network.checkpoint, epochs=1, seed=0, batch=64)
    return settings


def test_channels_last_training_matches_contiguous_training(wide: Settings, monkeypatch) -> None:
    fast = engine.Resources.load(wide)
    assert fast.layout == torch.channels_last
    a = [e for e in engine.run_race(config(epochs=3), fast) if isinstance(e, Epoch)]
    monkeypatch.setattr(devices, "CPU_CHANNELS_LAST_MIN_WIDTH", 10**6)
    plain = engine.Resources.load(wide)
    assert plain.layout == torch.contiguous_format
    b = [e for e in engine.run_race(config(epochs=3), plain) if isinstance(e, Epoch)]
    for x, y in zip(a, b, strict=True):
        assert (x.strategy, x.epoch) == (y.strategy, y.epoch)
        assert x.train_loss == pytest.approx(y.train_loss, rel=1e-3, abs=1e-4)
        assert x.test_acc == pytest.approx(y.test_acc, abs=0.021)  # at most one test image flips


def test_the_evaluation_batch_changes_no_result(wide: Settings) -> None:
    """It is left out of the recipe's fingerprint: stored races stay valid when it is tuned."""
    whole = [e for e in engine.run_race(config(epochs=2), engine.Resources.load(wide)) if isinstance(e, Epoch)]
    uneven = wide.model_copy(update={"eval_batch_size": 7})  # the last batch is a remainder
    parts = [e for e in engine.run_race(config(epochs=2), engine.Resources.load(uneven)) if isinstance(e, Epoch)]
    for x, y in zip(whole, parts, strict=True):
        assert (x.strategy, x.epoch) == (y.strategy, y.epoch)
        # kernels picked for another batch may sum in another order: rounding, no more
        assert x.train_loss == pytest.approx(y.train_loss, rel=1e-5)
        assert x.test_acc == y.test_acc  # every test image counted, the remainder batch's too


def test_a_race_can_be_cancelled_between_batches(res: engine.Resources) -> None:
    calls = 0

    def stop() -> bool:
        nonlocal calls
        calls += 1
        return calls > 3

    events = []
    with pytest.raises(engine.RaceCancelled):
        for event in engine.run_race(config(), res, should_stop=stop):
            events.append(event)
    assert calls == 4 and not any(isinstance(e, Done) for e in events)


def test_a_cancelled_race_keeps_the_epochs_its_last_round_finished(res: engine.Resources) -> None:
    """Epochs go out a round at a time; a cancel within a round still hands over those it finished."""
    n = config().n
    steps = [engine.steps_per_epoch(n, engine.batch_size(name, res.settings)) for name in STRATEGIES]
    # Stop on the first batch of the second round's last strategy: two of its epochs are done.
    stop_at = sum(steps) + steps[0] + steps[1] + 1
    calls = 0

    def stop() -> bool:
        nonlocal calls
        calls += 1
        return calls >= stop_at

    events = []
    with pytest.raises(engine.RaceCancelled):
        for event in engine.run_race(config(epochs=3), res, should_stop=stop):
            events.append(event)
    got = [(e.epoch, e.strategy) for e in events if isinstance(e, Epoch)]
    assert got == [(1, s) for s in STRATEGIES] + [(2, s) for s in STRATEGIES[:2]]


def rates(name: str, settings: Settings, epochs: int = 10, steps: int = 4) -> list[float]:
    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([param], lr=1.0)
    sched = engine.lr_schedule(name, opt, epochs, steps, settings)
    out = []
    for _ in range(epochs * steps):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out


def test_only_finetune_warms_up_and_every_rate_decays_towards_zero(tiny: Settings) -> None:
    settings = tiny.model_copy(update={"warmup_epochs": 2.0, "cosine_decay": True})
    ft, frozen, scratch = (rates(name, settings) for name in ("finetune", "frozen", "scratch"))
    assert frozen == scratch and frozen[0] == 1.0  # nothing pretrained is at risk: full rate at once
    warm = ft[:8]  # two epochs of four steps
    assert warm == sorted(warm) and warm[0] < 0.2 and max(ft) == ft[8] == 1.0
    for r in (ft, frozen):
        after_peak = r[r.index(max(r)) :]
        assert after_peak == sorted(after_peak, reverse=True) and 0 < r[-1] < 0.01
    assert rates("finetune", settings, epochs=2)[:4] != [1.0] * 4  # even a short race warms up, for at most half of it
    flat = rates("frozen", settings.model_copy(update={"cosine_decay": False}))
    assert set(flat) == {1.0}


def test_a_finished_race_frees_its_models_without_the_garbage_collector(res: engine.Resources, monkeypatch) -> None:
    """On a GPU a trainer's steps hold its CUDA graphs and their memory: a reference cycle
    would keep every race's until the collector happened by."""
    built: list[weakref.ref] = []
    original = engine.build_model

    def spy(name, cfg, r):
        model, locked = original(name, cfg, r)
        built.append(weakref.ref(model))
        return model, locked

    monkeypatch.setattr(engine, "build_model", spy)
    gc.disable()
    try:
        events = race(res)
        assert len(built) == 3 and isinstance(events[-1], Done)
        assert [ref() for ref in built] == [None, None, None]
    finally:
        gc.enable()


def test_source_accuracy_is_measured_each_epoch_and_frozen_keeps_the_checkpoints(res: engine.Resources) -> None:
    from headstart.training import pretrain

    epochs = [e for e in race(res, epochs=3) if isinstance(e, Epoch)]
    by = {s: [e.source_acc for e in epochs if e.strategy == s] for s in STRATEGIES}
    assert by["scratch"] == [None] * 3  # no source head to measure with
    # Frozen's body is locked: every epoch, exactly the checkpoint's own accuracy on the probe images.
    pretrained = models.build(
        res.settings.network.width, res.settings.network.blocks_per_stage, num_classes=len(res.settings.data.source_classes)
    )
    pretrained.load_state_dict(res.pretrained("near").state)
    assert by["frozen"] == [pretrain.accuracy(pretrained.to(res.device), res.pretrained("near").probe)] * 3
    assert all(a is not None and 0 <= a <= 1 for a in by["finetune"])


@pytest.fixture(scope="module")
def knowing(tiny: Settings, tmp_path_factory: pytest.TempPathFactory) -> engine.Resources:
    """Resources whose checkpoint knows its source task (the shared tiny one is at chance)."""
    from headstart.training.pretrain import pretrain

    settings = tiny.model_copy(update={"checkpoint": tmp_path_factory.mktemp("knowing") / "ckpt.safetensors"})
    card = pretrain(settings, settings.network.checkpoint, epochs=20, lr=1e-2, batch=32)
    assert card.source_test_acc > 0.9
    return engine.Resources.load(settings)


def test_full_rate_fine_tuning_forgets_the_source_task_and_gentle_forgets_less(knowing: engine.Resources) -> None:
    def forgot(**kw: object) -> tuple[float, float]:
        done = next(e for e in race(knowing, locked=0, lr_head=0.1, epochs=8, n=200, **kw) if isinstance(e, Done))
        kept, left = done.summary["frozen"].final_source_acc, done.summary["finetune"].final_source_acc
        assert kept is not None and left is not None
        return kept, left

    kept, naive = forgot(body_lr_ratio=1.0)
    _, gentle = forgot(body_lr_ratio=0.01)
    assert naive < kept - 0.1, (kept, naive)
    assert gentle > naive, (gentle, naive)


def test_measuring_the_source_task_changes_no_target_number(res: engine.Resources, monkeypatch: pytest.MonkeyPatch) -> None:
    measured = [e for e in race(res, epochs=2) if isinstance(e, Epoch)]
    monkeypatch.setattr(engine, "_source_accuracy", lambda t, res: None)
    unmeasured = [e for e in race(res, epochs=2) if isinstance(e, Epoch)]
    strip = lambda e: (e.strategy, e.epoch, e.train_loss, e.train_acc, e.test_acc)  # noqa: E731
    assert [strip(e) for e in measured] == [strip(e) for e in unmeasured]


def body_distance(model: models.ResNet, pretrained: dict[str, torch.Tensor]) -> float:
    return sum(
        float((p.detach().cpu() - pretrained[k]).square().sum()) for k, p in model.named_parameters() if not k.startswith("head.")
    )


def test_a_regulariser_changes_fine_tune_alone_and_a_strong_l2sp_keeps_the_body_close(
    knowing: engine.Resources, built_models: dict
) -> None:
    runs = {
        keep: [
            e
            for e in race(knowing, locked=0, body_lr_ratio=1.0, epochs=4, n=100, keep=keep, keep_strength=100.0)
            if isinstance(e, Epoch)
        ]
        for keep in ("none", "l2sp", "ewc")
    }
    numbers = lambda es, s: [(e.train_loss, e.test_acc, e.source_acc) for e in es if e.strategy == s]  # noqa: E731
    for keep in ("l2sp", "ewc"):
        for s in ("scratch", "frozen"):  # nothing of theirs is pulled: the same numbers, bit for bit
            assert numbers(runs[keep], s) == numbers(runs["none"], s)
    trained = {config.keep: model for (name, config), model in built_models.items() if name == "finetune"}
    free, pulled = (body_distance(trained[k], knowing.pretrained("near").state) for k in ("none", "l2sp"))
    assert pulled < free / 20, (pulled, free)
    last = {k: [e for e in runs[k] if e.strategy == "finetune"][-1].source_acc for k in runs}
    assert last["l2sp"] >= last["none"] and last["ewc"] >= last["none"], last


def test_ewc_without_a_fisher_is_named(res: engine.Resources, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(res.pretrained("near"), "fisher", None)
    with pytest.raises(engine.checkpoint.CheckpointError, match="pretrain --fisher-only"):
        race(res, keep="ewc")
    assert [e for e in race(res, keep="l2sp") if isinstance(e, Done)]  # L2-SP needs none
