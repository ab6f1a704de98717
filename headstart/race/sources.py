"""The bodies a race can start from: what each was pretrained on.

* near     – five other kinds of clothing (T-shirt/top, Trouser, Coat, Sandal, Bag): tops and
             footwear appear on both sides, so the shapes it learned transfer. The default.
* far      – the same images with their pixels scrambled by one fixed permutation: the local
             structure convolutions rely on is gone (chosen by measurement: docs/scenario.md).
* shuffled – the near images with their labels shuffled: its training memorised noise, so it
             shows whether what was learned helps, or pretraining as such.

Plain data and numpy: the server reads the names and descriptions, the data module applies
the transforms; every checkpoint is rebuilt by ``python -m headstart pretrain --source NAME``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

Source = Literal["near", "far", "shuffled"]
DEFAULT: Source = "near"
# Fixed seeds: the same scramble and the same shuffle every time a checkpoint is rebuilt.
SCRAMBLE_SEED = 1
SHUFFLE_SEED = 2


@dataclass(frozen=True)
class Look:
    label: str
    description: str  # one line, as the page's menu and /api/config say it
    colour: str  # its line where sources are compared (layer by layer), Okabe–Ito
    has_task: bool = True  # whether its source task can be measured on held-out images


SOURCES: dict[Source, Look] = {
    "near": Look("Near: other clothes", "five other kinds of clothing, the shapes the target needs", "#000000"),
    "far": Look("Far: scrambled pixels", "the same clothes with every image's pixels scrambled one fixed way", "#56b4e9"),
    "shuffled": Look(
        "Shuffled labels", "the same clothes with random labels: its training memorised noise", "#cc79a7", has_task=False
    ),
}


def checkpoint_path(near: Path, source: Source) -> Path:
    """Where a source's file lies (its checkpoint, its sweep): the near one's path, or beside it
    with the source's name (fmnist-source-far.safetensors, sweep-far.csv)."""
    return near if source == DEFAULT else near.with_name(f"{near.stem}-{source}{near.suffix}")


def card(near: Path, source: Source) -> dict[str, object] | None:
    """A source checkpoint's card, read as plain JSON (no torch), or None where there is none."""
    try:
        found = json.loads(checkpoint_path(near, source).with_suffix(".json").read_text())
    except (OSError, ValueError):
        return None
    return found if isinstance(found, dict) else None


def images(source: Source, x: np.ndarray) -> np.ndarray:
    """The source's view of (N, 28, 28) images: scrambled for ``far``, as they are otherwise."""
    if source != "far":
        return x
    order = np.random.default_rng(SCRAMBLE_SEED).permutation(28 * 28)
    return x.reshape(len(x), -1)[:, order].reshape(x.shape)


def labels(source: Source, y: np.ndarray) -> np.ndarray:
    """The source's training labels: shuffled across the images for ``shuffled`` (each class keeps its count)."""
    if source != "shuffled":
        return y
    return np.random.default_rng(SHUFFLE_SEED).permutation(y)
