from __future__ import annotations

from collections import OrderedDict
from dataclasses import replace

import pytest
import torch
from torch import nn

from headstart.race.events import Epoch, RaceConfig, StrategySummary
from headstart.settings import Settings
from headstart.training import engine, models
from headstart.training.feature_cache import FeatureCache, run_prefix


def epochs(res: engine.Resources, **kw: object) -> list[Epoch]:
    config = RaceConfig(**({"n": 50, "epochs": 2, "locked": 2, "seed": 0} | kw))
    return [e for e in engine.run_race(config, res) if isinstance(e, Epoch)]


def test_features_kept_from_earlier_races_train_exactly_like_fresh_ones(tiny: Settings) -> None:
    fresh = engine.Resources.load(tiny.model_copy(update={"feature_cache_mb": 0}))
    warm = engine.Resources.load(tiny)
    epochs(warm, seed=1, locked=1)  # another seed and k fill the cache
    misses = warm.cache.misses
    a, b = epochs(fresh), epochs(warm)
    assert warm.cache.hits >= 2  # the test set's features at least
    assert warm.cache.misses < misses + 4  # not everything was recomputed
    for x, y in zip(a, b, strict=True):
        assert (x.strategy, x.epoch) == (y.strategy, y.epoch)
        assert x.train_loss == pytest.approx(y.train_loss, rel=1e-4, abs=1e-5)
        assert x.test_acc == pytest.approx(y.test_acc, abs=0.021)


def test_a_deeper_prefix_continued_from_a_shallower_one_equals_computing_it_whole(tiny: Settings) -> None:
    res = engine.Resources.load(tiny)
    model, _ = engine.build_model("frozen", RaceConfig(), res)
    x = res.train_split(50).x
    cache = FeatureCache(budget_bytes=2**30)
    shallow = cache.features("sha", 2, "train:50", x, model.layers_between, 16)
    continued = cache.features("sha", 5, "train:50", x, model.layers_between, 16)
    whole = run_prefix(model.layers_to(5), x, 16)
    assert cache.misses == 2 and torch.allclose(continued.x, whole, atol=1e-5)
    # what it cost counts the shallower part too: whoever asks is charged the whole pass
    assert continued.seconds > shallow.seconds > 0
    assert cache.features("sha", 5, "train:50", x, model.layers_between, 16) is continued
    assert cache.features("other", 5, "train:50", x, model.layers_between, 16) is not continued  # another checkpoint


def test_the_cache_stays_within_its_budget_evicting_the_least_recently_used() -> None:
    identity = lambda j, k: nn.Sequential(nn.Identity())  # noqa: E731
    x = torch.zeros(4, 1, 16, 16)  # 4 KiB of feature maps
    cache = FeatureCache(budget_bytes=10 * 1024)
    for images in ("a", "b"):
        cache.features("sha", 1, images, x, identity, 4)
    cache.features("sha", 1, "a", x, identity, 4)  # "a" is now the most recent
    cache.features("sha", 1, "c", x, identity, 4)
    assert cache.nbytes <= 10 * 1024
    assert {key[2] for key in cache._store} == {"a", "c"}
    cache.features("sha", 1, "huge", torch.zeros(4, 16, 16, 16), identity, 4)  # over budget on its own: used, not kept
    assert {key[2] for key in cache._store} == {"a", "c"}


def test_scratch_and_unlocked_finetune_see_the_images_themselves() -> None:
    x = torch.randn(3, 1, 28, 28)
    cache = FeatureCache(budget_bytes=2**20)
    seen = cache.features("sha", 0, "test", x, models.build(16, 1).layers_between, 8)
    assert seen.x is x and seen.seconds == 0 and cache.nbytes == 0


def test_each_strategy_is_charged_its_whole_locked_pass_whatever_ran_before(tiny: Settings) -> None:
    """Frozen continues fine-tune's k units, and a later race finds both kept: neither may make
    frozen's clock shrink. Kept outputs are marked as costing 100 s each, to see who pays."""
    res = engine.Resources.load(tiny)

    def summary(locked: int) -> dict[str, StrategySummary]:
        return list(engine.run_race(RaceConfig(n=50, epochs=1, locked=locked, seed=0), res))[-1].summary

    def mark_kept_as_costing_100_s() -> None:
        for key, kept in res.cache._store.items():
            res.cache._store[key] = replace(kept, seconds=100.0)

    summary(4)
    mark_kept_as_costing_100_s()
    again = summary(4)  # everything kept: fine-tune's four units and frozen's five, train and test
    for name in ("frozen", "finetune"):
        assert 200 <= again[name].compute_s < 201 and 199 < again[name].reused_s <= 200, again[name]
    assert again["scratch"].compute_s < 100 and again["scratch"].reused_s == 0

    res.cache.clear()
    summary(4)
    res.cache._store = OrderedDict((key, kept) for key, kept in res.cache._store.items() if key[1] == 4)
    mark_kept_as_costing_100_s()
    continued = summary(2)  # frozen continues the kept four units: it pays for them and its fifth
    assert 200 < continued["frozen"].compute_s < 201 and 199 < continued["frozen"].reused_s <= 200
    assert continued["finetune"].compute_s < 100 and continued["finetune"].reused_s == 0  # ran its two units itself
