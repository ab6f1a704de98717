"""Decoding a dataset folder's images, once per dataset and size, into arrays a body eats.

Each image is opened with Pillow, turned upright by its EXIF orientation, converted to RGB
(or grayscale for a one-channel body), its short side resized to the body's and its centre
cropped square, as torchvision's ``Resize`` then ``CenterCrop`` do. A file that will not
decode (corrupt, truncated, not an image under an image's name) is skipped and named; so is
a decompression bomb, past Pillow's pixel limit, which is an error here rather than a warning.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from headstart.race import pictures
from headstart.race.datasets import Folder

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Decoded:
    """A folder's images at one size: uint8 (N, side, side, channels), class indices, and what was skipped.

    ``test_ids``: each test image's place in the folder's test listing (``Folder.test``, class
    by class), which names it to the server's thumbnails whatever was skipped before it."""

    test_images: np.ndarray
    test_labels: np.ndarray
    test_ids: np.ndarray
    pool_images: np.ndarray
    pool_labels: np.ndarray
    skipped: tuple[str, ...]


def _decode_all(
    files: tuple[tuple[Path, ...], ...], folder: Folder, side: int, channels: int, skipped: list[str]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    images, labels, ids = [], [], []
    listed = ((label, path) for label, paths in enumerate(files) for path in paths)
    for place, (label, path) in enumerate(listed):
        try:
            images.append(pictures.decode(path, side, channels))
        except pictures.DECODE_ERRORS as exc:
            skipped.append(f"{path.relative_to(folder.root)}: {pictures.reason(exc)}")
            continue
        labels.append(label)
        ids.append(place)
    stacked = np.stack(images) if images else np.zeros((0, side, side, channels), np.uint8)
    return stacked, np.asarray(labels, dtype=np.int64), np.asarray(ids, dtype=np.int64)


def decode_folder(folder: Folder, side: int, channels: int) -> Decoded:
    """Every image of ``folder`` at ``side`` pixels and ``channels``, test images and pool apart."""
    skipped: list[str] = []
    test_images, test_labels, test_ids = _decode_all(folder.test, folder, side, channels, skipped)
    pool_images, pool_labels, _ = _decode_all(folder.pool, folder, side, channels, skipped)
    if skipped:
        log.warning("dataset %s: skipped %d file(s): %s", folder.name, len(skipped), "; ".join(skipped[:5]))
    return Decoded(test_images, test_labels, test_ids, pool_images, pool_labels, tuple(skipped))
