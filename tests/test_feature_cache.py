from __future__ import annotations

import pytest
import torch
from torch import nn

from app import engine, models
from app.events import Epoch, RaceConfig
from app.feature_cache import FeatureCache, run_prefix
from app.settings import Settings


def epochs(res: engine.Resources, **kw: object) -> list[Epoch]:
    config = RaceConfig(**({"n": 50, "epochs": 2, "frozen": 2, "seed": 0} | kw))
    return [e for e in engine.run_race(config, res) if isinstance(e, Epoch)]


def test_features_kept_from_earlier_races_train_exactly_like_fresh_ones(tiny: Settings) -> None:
    fresh = engine.Resources.load(tiny.model_copy(update={"feature_cache_mb": 0}))
    warm = engine.Resources.load(tiny)
    epochs(warm, seed=1, frozen=1)  # another seed and k fill the cache
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
    cache.features("sha", 2, "train:50", x, model.layers_between, 16)
    continued = cache.features("sha", 5, "train:50", x, model.layers_between, 16)
    whole = run_prefix(model.layers_to(5), x, 16)
    assert cache.misses == 2 and torch.allclose(continued, whole, atol=1e-5)
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
    assert cache.features("sha", 0, "test", x, models.build(16, 1).layers_between, 8) is x and cache.nbytes == 0
