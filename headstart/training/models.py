"""Every network a race trains: five body units and a head.

The body units (stem, stage 1…4) are what the page draws and what the locked-units slider
locks, counting from the input. ``Network`` holds any body cut into those five units (the
ImageNet bodies are cut in ``bodies``); ``ResNet`` is the small built-in one for 28×28
grayscale images, built from torchvision's ``BasicBlock`` to the plan in ``architecture``,
which also counts its parameters without torch.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import cast

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.resnet import BasicBlock

from headstart.race import architecture
from headstart.race.architecture import UNITS

__all__ = ["UNITS", "EpochAverageNorm", "Head", "Network", "ResNet", "build", "count_params", "unit_params"]


def _unit(u: architecture.Unit) -> nn.Sequential:
    if u.name == "stem":
        # A 3×3 stride-2 stem without max-pool: halving 28×28 once costs a point or two of
        # accuracy and makes every later layer four times cheaper, which is what keeps a race in seconds.
        conv = nn.Conv2d(u.in_ch, u.out_ch, 3, stride=u.stride, padding=1, bias=False)
        return nn.Sequential(conv, nn.BatchNorm2d(u.out_ch), nn.ReLU(inplace=True))
    downsample = None
    if u.stride != 1 or u.in_ch != u.out_ch:
        downsample = nn.Sequential(nn.Conv2d(u.in_ch, u.out_ch, 1, stride=u.stride, bias=False), nn.BatchNorm2d(u.out_ch))
    layers = [BasicBlock(u.in_ch, u.out_ch, u.stride, downsample)]
    layers += [BasicBlock(u.out_ch, u.out_ch) for _ in range(u.blocks - 1)]
    return nn.Sequential(*layers)


class EpochAverageNorm(nn.BatchNorm1d):
    """BatchNorm1d whose running statistics are plain averages over the batches since the last reset.

    That is ``momentum=None``, for which PyTorch reads the batch count on the host at every
    training step; a CUDA graph cannot, so while one is captured the same averages are
    updated on the device instead. Everywhere else PyTorch's own path runs, unchanged.
    """

    def __init__(self, features: int) -> None:
        super().__init__(features, affine=False, momentum=None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and x.is_cuda and torch.cuda.is_current_stream_capturing():
            return self.forward_without_host_reads(x)
        return super().forward(x)

    def forward_without_host_reads(self, x: torch.Tensor) -> torch.Tensor:
        out = F.batch_norm(x, None, None, training=True, eps=self.eps)
        assert self.num_batches_tracked is not None and self.running_mean is not None and self.running_var is not None
        with torch.no_grad():
            self.num_batches_tracked.add_(1)
            weight = 1.0 / self.num_batches_tracked
            self.running_mean.lerp_(x.mean(0), weight)
            self.running_var.lerp_(x.var(0), weight)  # unbiased, as BatchNorm keeps it
        return out


class Head(nn.Sequential):
    """The new classifier every strategy trains: a parameter-free standardiser, then a linear layer.

    The standardiser puts any body's features on one scale, so one head learning rate suits
    a pretrained body and a random one. Its statistics are exact averages over the current
    epoch (``restart_statistics`` at each epoch's start): for frozen's fixed features that
    is their true mean and variance from the first batch on, where an exponential average
    would spend the first epochs forgetting its initial zeros and ones.
    The linear layer keeps PyTorch's default random init, as any newly attached layer has:
    its first gradients are what fine-tune's warm-up protects the pretrained units from.
    """

    def __init__(self, features: int, classes: int) -> None:
        super().__init__(EpochAverageNorm(features), nn.Linear(features, classes))

    @property
    def norm(self) -> EpochAverageNorm:
        return cast(EpochAverageNorm, self[0])

    @property
    def linear(self) -> nn.Linear:
        return cast(nn.Linear, self[1])

    @property
    def in_features(self) -> int:
        return self.linear.in_features

    def restart_statistics(self) -> None:
        self.norm.reset_running_stats()


class Network(nn.Module):
    """Five body units in input-to-output order → pool → head.

    ``units`` are the body cut into the five the page draws (``UNITS``), whatever layers each holds.
    """

    def __init__(self, units: Sequence[nn.Module], feature_dim: int, num_classes: int) -> None:
        super().__init__()
        if len(units) != len(UNITS):
            raise ValueError(f"a body has {len(UNITS)} units, got {len(units)}")
        for name, unit in zip(UNITS, units, strict=True):
            self.add_module(name, unit)
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = Head(feature_dim, num_classes)
        self.locked: frozenset[str] = frozenset()

    @property
    def feature_dim(self) -> int:
        return self.head.in_features

    def units(self) -> Iterator[tuple[str, nn.Module]]:
        for name in UNITS:
            yield name, getattr(self, name)

    def _layers(self, j: int, k: int) -> list[nn.Module]:
        """Body units j…k-1, ending with the pooling when they reach the last unit.

        The pooling has no parameters, so with every unit locked it is locked too: frozen's
        head then learns from pooled features rather than pooling the same maps every step.
        """
        units = [m for _, m in list(self.units())[j:k]]
        return [*units, self.pool] if k == len(UNITS) and j < k else units

    def layers_from(self, k: int) -> nn.Sequential:
        """Everything after the first k body units: what sees the cached features."""
        return nn.Sequential(*self._layers(k, len(UNITS)), self.head)

    def layers_to(self, k: int) -> nn.Sequential:
        """The first k body units (and the pooling, for all five): what computes the cached features."""
        return self.layers_between(0, k)

    def layers_between(self, j: int, k: int) -> nn.Sequential:
        """Body units j…k-1: what continues a cached prefix of j units to k."""
        return nn.Sequential(*self._layers(j, k))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.layers_from(0)(x)
        return out

    def lock(self, k: int) -> None:
        """Lock the first k body units: no gradients, and BatchNorm keeps its running statistics.

        This is the one place that decides what "locked" means; ``train()`` honours it.
        """
        if not 0 <= k <= len(UNITS):
            raise ValueError(f"can lock 0..{len(UNITS)} body units, not {k}")
        self.locked = frozenset(UNITS[:k])
        for name, unit in self.units():
            unit.requires_grad_(name not in self.locked)
        self.train(self.training)

    def train(self, mode: bool = True) -> Network:
        super().train(mode)
        for name, unit in self.units():
            if name in self.locked:
                unit.eval()  # running statistics stay exactly as pretrained
        return self


class ResNet(Network):
    """The built-in body: stem → stage1 (14×14) → stage2 (7×7) → stage3 (4×4) → stage4 (2×2)."""

    def __init__(self, width: int = 16, blocks_per_stage: int = 1, num_classes: int = 5) -> None:
        super().__init__(
            [_unit(unit) for unit in architecture.body(width, blocks_per_stage)], architecture.feature_dim(width), num_classes
        )
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")


def count_params(module: nn.Module, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)


def unit_params(model: Network) -> dict[str, int]:
    """Parameters per body unit plus the head, in input-to-output order."""
    counts = {name: count_params(unit) for name, unit in model.units()}
    counts["head"] = count_params(model.head)
    return counts


def build(width: int, blocks_per_stage: int, num_classes: int = 5) -> ResNet:
    return ResNet(width=width, blocks_per_stage=blocks_per_stage, num_classes=num_classes)
