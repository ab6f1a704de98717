"""Outputs of the locked pretrained units, kept across races.

Locked units are the checkpoint's, unchanged, in eval mode, and no augmentation touches
their inputs, so their output on a given image set is the same in every race: computed
once, it serves frozen and fine-tune alike, at every seed. A deeper prefix continues
from the deepest one already held (frozen's five units start from fine-tune's k), so
within a race the shared units run once too. Keys name the checkpoint, the number of
units and the image set; a byte budget evicts the least recently used.

Each kept output remembers what it cost to compute from the images, continuation and all:
a strategy is charged its whole locked pass whether it ran it, continued another's, or
found it kept, so its compute clock does not depend on which other strategies or races
ran first.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

from headstart.training.devices import sync

Key = tuple[str, int, str]  # checkpoint sha256, locked units, image set ("train:200", "test")


@torch.no_grad()
def run_prefix(
    prefix: nn.Sequential, x: torch.Tensor, batch: int, out_format: torch.memory_format = torch.contiguous_format
) -> torch.Tensor:
    """Outputs of locked units, in eval mode so BatchNorm uses its running statistics.

    Inference convolutions run about a quarter faster channels_last, on the CPU too; the
    result is handed back in ``out_format``, the layout the trainable layers train in.
    """
    if len(prefix) == 0:
        return x
    prefix.eval().to(memory_format=torch.channels_last)
    out = torch.cat([prefix(chunk.contiguous(memory_format=torch.channels_last)) for chunk in x.split(batch)])
    return out.contiguous(memory_format=out_format) if out.dim() == 4 else out  # pooled features are flat


@dataclass(frozen=True)
class Features:
    """The locked units' outputs, and the compute seconds they cost from the images."""

    x: torch.Tensor
    seconds: float = 0.0


@dataclass
class FeatureCache:
    budget_bytes: int
    out_format: torch.memory_format = torch.contiguous_format
    hits: int = 0
    misses: int = 0
    nbytes: int = 0  # what the kept features take, kept up to date rather than summed on every eviction
    _store: OrderedDict[Key, Features] = field(default_factory=OrderedDict)

    def features(
        self, sha: str, k: int, images: str, x: torch.Tensor, units: Callable[[int, int], nn.Sequential], batch: int
    ) -> Features:
        """The first k units' output on ``x``; ``units(j, k)`` gives units j…k-1 of a locked model."""
        if k == 0:
            return Features(x)
        key = (sha, k, images)
        if key in self._store:
            self.hits += 1
            self._store.move_to_end(key)
            return self._store[key]
        self.misses += 1
        start = max((j for (s, j, i) in self._store if s == sha and i == images and j < k), default=0)
        base = self._store[(sha, start, images)] if start else Features(x)
        t0 = time.perf_counter()
        out = run_prefix(units(start, k), base.x, batch, self.out_format)
        sync(out.device)  # so the clock counts the queued work
        kept = Features(out, base.seconds + time.perf_counter() - t0)
        self._put(key, kept)
        return kept

    def _put(self, key: Key, value: Features) -> None:
        size = _size(value.x)
        if size > self.budget_bytes:
            return  # larger than the whole budget: used for this race, not kept
        self._store[key] = value
        self.nbytes += size
        while self.nbytes > self.budget_bytes:
            _, evicted = self._store.popitem(last=False)
            self.nbytes -= _size(evicted.x)

    def clear(self) -> None:
        self._store.clear()
        self.nbytes = 0


def _size(t: torch.Tensor) -> int:
    return t.numel() * t.element_size()
