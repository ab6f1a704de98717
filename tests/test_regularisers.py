"""The penalties that keep the source task, against hand computation and a direct Fisher."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from headstart.settings import Settings
from headstart.training import checkpoint, data, models, regularisers


def test_the_fisher_matches_a_direct_per_example_computation(tiny: Settings) -> None:
    _, state = checkpoint.load(
        tiny.network.checkpoint, tiny.network.width, tiny.network.blocks_per_stage, tiny.data.source_classes
    )
    model = models.build(tiny.network.width, tiny.network.blocks_per_stage)
    model.load_state_dict(state)
    images = data.source_sample(data.load(tiny), tiny, 5).x
    fisher = regularisers.fisher_diagonal(model, images, batch=2)

    # One image and one class at a time: p(c|x) · (∂ log p(c|x) / ∂θ)², averaged over the images.
    model.eval()
    body = {k: p for k, p in model.named_parameters() if not k.startswith("head.")}
    direct = {k: torch.zeros_like(p) for k, p in body.items()}
    for x in images:
        log_p = model(x[None]).log_softmax(1)[0]
        for c in range(len(log_p)):
            grads = torch.autograd.grad(log_p[c], list(body.values()), retain_graph=True)
            for (k, _), g in zip(body.items(), grads, strict=True):
                direct[k] += log_p[c].exp().detach() * g.square() / len(images)
    assert set(fisher) == set(direct)
    for k in direct:
        torch.testing.assert_close(fisher[k], direct[k], rtol=1e-4, atol=1e-9)


def test_the_shipped_fisher_is_the_one_its_card_names_and_averages_one_once_normalised() -> None:
    settings = Settings()
    card = checkpoint.read_card(settings.network.checkpoint)
    fisher = checkpoint.load_fisher(settings.network.checkpoint, card)
    assert card.fisher_images == 1000 and card.fisher_estimate
    scaled = regularisers.normalised(fisher)
    count = sum(v.numel() for v in scaled.values())
    assert sum(float(v.sum()) for v in scaled.values()) / count == pytest.approx(1.0)
    assert all(not k.startswith("head.") for k in fisher)  # the head is replaced: nothing of it to keep


def test_a_fisher_that_is_not_its_cards_is_refused(tiny: Settings, tmp_path) -> None:
    weights = tmp_path / "w.safetensors"
    for suffix in (".safetensors", ".json", ".fisher.safetensors"):
        weights.with_suffix(suffix).write_bytes(tiny.network.checkpoint.with_suffix(suffix).read_bytes())
    card = checkpoint.read_card(weights)
    checkpoint.fisher_path(weights).write_bytes(b"not the Fisher")
    with pytest.raises(checkpoint.CheckpointError, match="does not match its card's fisher_sha256"):
        checkpoint.load_fisher(weights, card)


def small() -> tuple[nn.Module, dict[str, torch.Tensor]]:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 2), nn.Linear(2, 1))
    anchors = {k: v.detach().clone() for k, v in net.named_parameters()}
    with torch.no_grad():
        for p in net.parameters():
            p.add_(torch.randn_like(p))
    return net, anchors


def test_l2sp_is_half_alpha_times_the_squared_distance_to_the_anchors() -> None:
    net, anchors = small()
    by_hand = sum(((p - anchors[k]) ** 2).sum() for k, p in net.named_parameters())
    torch.testing.assert_close(regularisers.pull(net, anchors, 0.3)(), 0.5 * 0.3 * by_hand)


def test_ewc_weights_each_distance_and_skips_what_does_not_train_or_has_no_anchor() -> None:
    net, anchors = small()
    weights = {k: torch.rand_like(v) for k, v in anchors.items()}
    net[1].requires_grad_(False)  # locked: no pull
    del anchors["0.bias"]  # a new layer: nothing to keep
    w, a = net[0].weight, anchors["0.weight"]
    by_hand = 0.5 * 2.0 * (weights["0.weight"] * (w - a) ** 2).sum()
    torch.testing.assert_close(regularisers.pull(net, anchors, 2.0, weights)(), by_hand)
