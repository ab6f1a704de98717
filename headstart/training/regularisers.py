"""Keeping the source task: penalties that pull fine-tune's body back toward its pretrained weights.

* L2-SP (Li, Grandvalet & Davoine, 2018): α/2 · Σᵢ (θᵢ − θᵢ*)², every weight pulled alike.
* EWC (Kirkpatrick et al., 2017): λ/2 · Σᵢ F̂ᵢ (θᵢ − θᵢ*)², each weight pulled by how much the
  source task's predictions depend on it: F̂ is the diagonal Fisher information of the source
  task at the pretrained weights, scaled to average 1 over the body. With that scale one
  strength means the same total pull for both: L2-SP spreads it evenly, EWC where it matters.

Both cover only the body units fine-tune trains; the new head has nothing pretrained to keep.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torch.func import functional_call, jacrev, vmap

from headstart.training import models

Penalty = Callable[[], torch.Tensor]


def fisher_diagonal(model: models.ResNet, images: torch.Tensor, batch: int = 50) -> dict[str, torch.Tensor]:
    """The diagonal Fisher of the model's own predictive distribution, per body parameter.

    Fᵢ = mean over images x of Σ_c p(c|x) · (∂ log p(c|x) / ∂θᵢ)²: the expectation over the
    model's predictions taken exactly (five classes) rather than sampled, so the same
    checkpoint always gives the same Fisher. BatchNorm uses its running statistics.
    """
    model = model.eval()
    params = {k: v.detach() for k, v in model.named_parameters() if not k.startswith("head.")}
    fixed = {k: v.detach() for k, v in model.named_parameters() if k.startswith("head.")}
    fixed |= dict(model.named_buffers())

    def log_probs(p: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = functional_call(model, p | fixed, (x.unsqueeze(0),))
        return out.log_softmax(1).squeeze(0)  # (C,)

    per_example = vmap(jacrev(log_probs), in_dims=(None, 0))  # name -> (B, C, *shape)
    total = {k: torch.zeros_like(v) for k, v in params.items()}
    for xb in images.split(batch):
        with torch.no_grad():
            probs = model(xb).softmax(1)  # (B, C)
        grads = per_example(params, xb)
        for name, g in grads.items():
            weight = probs.reshape(*probs.shape, *([1] * (g.dim() - 2)))
            total[name] += (weight * g.square()).sum((0, 1))
    return {k: v / len(images) for k, v in total.items()}


def normalised(fisher: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The Fisher scaled to average 1 over every body parameter, so λ compares with L2-SP's α."""
    count = sum(v.numel() for v in fisher.values())
    mean = sum(float(v.sum()) for v in fisher.values()) / count
    return {k: v / mean for k, v in fisher.items()}


def pull(
    model: nn.Module,
    anchors: dict[str, torch.Tensor],
    strength: float,
    weights: dict[str, torch.Tensor] | None = None,
) -> Penalty:
    """strength/2 · Σᵢ wᵢ (θᵢ − θᵢ*)² over the model's trainable parameters that have an anchor.

    ``weights`` None pulls every parameter alike (L2-SP); the normalised Fisher gives EWC.
    """

    def like(p: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
        return torch.empty_like(p).copy_(value)  # the parameter's device, dtype and memory layout

    terms = [
        (p, like(p, anchors[k]), None if weights is None else like(p, weights[k]))
        for k, p in model.named_parameters()
        if p.requires_grad and k in anchors
    ]

    def penalty() -> torch.Tensor:
        total = torch.zeros((), device=terms[0][0].device)
        for p, a, w in terms:
            d2 = (p - a).square()
            total = total + (d2 if w is None else w * d2).sum()
        return 0.5 * strength * total

    return penalty
