from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from headstart.training import models


def test_five_body_units_and_a_head_with_parameter_counts() -> None:
    model = models.build(width=8, blocks_per_stage=1)
    counts = models.unit_params(model)
    assert list(counts) == [*models.UNITS, "head"]
    assert sum(counts.values()) == models.count_params(model)
    assert counts["head"] == 8 * 8 * 5 + 5
    assert model(torch.randn(2, 1, 28, 28)).shape == (2, 5)


@pytest.mark.parametrize("k", range(6))
def test_locking_k_units_leaves_the_rest_trainable(k: int) -> None:
    model = models.build(width=4, blocks_per_stage=1)
    model.lock(k)
    counts = models.unit_params(model)
    expected = sum(counts[u] for u in models.UNITS[k:]) + counts["head"]
    assert models.count_params(model, trainable_only=True) == expected


def test_trainable_params_fall_as_more_units_lock() -> None:
    model = models.build(width=4, blocks_per_stage=1)
    trainable = []
    for k in range(6):
        model.lock(k)
        trainable.append(models.count_params(model, trainable_only=True))
    assert trainable == sorted(trainable, reverse=True) and len(set(trainable)) == 6


def test_lock_rejects_out_of_range() -> None:
    with pytest.raises(ValueError, match=r"0\.\.5"):
        models.build(4, 1).lock(6)


def test_locked_units_keep_parameters_and_batchnorm_statistics() -> None:
    torch.manual_seed(0)
    model = models.build(width=4, blocks_per_stage=1)
    model.lock(3)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=0.1)
    model.train()
    for _ in range(3):
        loss = F.cross_entropy(model(torch.randn(8, 1, 28, 28)), torch.randint(0, 5, (8,)))
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = model.state_dict()
    locked = [k for k in before if k.split(".")[0] in models.UNITS[:3]]
    assert locked and any("running_mean" in k for k in locked)
    for key in locked:
        assert torch.equal(before[key], after[key]), key
    assert not torch.equal(before["stage4.0.conv1.weight"], after["stage4.0.conv1.weight"])
    assert not torch.equal(before["stage4.0.bn1.running_mean"], after["stage4.0.bn1.running_mean"])


@pytest.mark.parametrize("k", range(6))
def test_the_locked_prefix_and_the_rest_compose_to_the_whole_model(k: int) -> None:
    torch.manual_seed(0)
    model = models.build(width=4, blocks_per_stage=1).eval()
    x = torch.randn(6, 1, 28, 28)
    with torch.no_grad():
        features = model.layers_to(k)(x)
        assert torch.allclose(model.layers_from(k)(features), model(x), atol=1e-6)
    # with every unit locked, the parameter-free pooling is part of the prefix: frozen's head sees flat features
    assert features.dim() == (2 if k == len(models.UNITS) else 4)
