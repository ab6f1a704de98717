"""Fashion-MNIST's IDX files read as numpy arrays, and which images each task takes, without torch.

The workers turn these into tensors (``headstart.training.data``); the server and a bake read
the same arrays to show the images a race learned from and was tested on.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from headstart.errors import SetupError
from headstart.settings import Settings

FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
_IDX_DTYPE = {0x08: np.uint8}
# Names the images an index of the official sets points at: they never change.
VERSION = "fmnist"


class DataError(SetupError):
    """The dataset is missing or unreadable; the message says what to do."""


@dataclass(frozen=True)
class FashionMNIST:
    train_images: np.ndarray  # (60000, 28, 28) uint8
    train_labels: np.ndarray  # (60000,) uint8
    test_images: np.ndarray  # (10000, 28, 28) uint8
    test_labels: np.ndarray  # (10000,) uint8


def read_idx(path: Path) -> np.ndarray:
    """Read one IDX file (gzip or raw), checking its header against its length."""
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise DataError(f"{path}: cannot read this IDX file ({exc}); it may be truncated or corrupt") from exc
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPE:
        raise DataError(f"{path}: not an IDX file of unsigned bytes (bad magic number)")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path}: truncated IDX header")
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = header + int(np.prod(shape))
    if len(raw) != expected:
        raise DataError(f"{path}: truncated or corrupt: header promises {expected} bytes, file has {len(raw)}")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def find_in(folder: Path) -> dict[str, Path] | None:
    """The four IDX files in ``folder`` (gzip or raw), or None where one is missing."""
    found = {}
    for key, stem in FILES.items():
        for name in (stem + ".gz", stem):
            if (folder / name).is_file():
                found[key] = folder / name
                break
        else:
            return None
    return found


def folders(settings: Settings) -> list[Path]:
    """Where the files are looked for, in order: the configured folder, Debian's, the download folder."""
    candidates = [p for p in (settings.data.data_dir, settings.data.system_data_dir) if p is not None]
    return [*candidates, settings.data.download_dir / "FashionMNIST" / "raw"]


@lru_cache(maxsize=4)
def read(files: tuple[tuple[str, Path], ...]) -> FashionMNIST:
    arrays = {key: read_idx(path) for key, path in files}
    found = FashionMNIST(**arrays)
    for part in ("train", "test"):
        images, labels = getattr(found, f"{part}_images"), getattr(found, f"{part}_labels")
        if images.shape[1:] != (28, 28) or len(images) != len(labels):
            raise DataError(f"{dict(files)[part + '_images']}: expected N×28×28 images matching the labels")
    return found


def load(settings: Settings) -> FashionMNIST:
    """The files where they already lie (the workers' loader may also download them, when allowed)."""
    for folder in folders(settings):
        if files := find_in(folder):
            return read(tuple(sorted(files.items())))
    raise DataError(f"Fashion-MNIST not found (looked in: {', '.join(map(str, folders(settings)))})")


def class_orders(labels: np.ndarray, classes: tuple[int, ...], seed: int) -> list[np.ndarray]:
    """Per class, its indices in a fixed seeded order; prefixes of these are the subsets."""
    rng = np.random.default_rng(seed)
    return [rng.permutation(np.flatnonzero(labels == c)) for c in classes]


def balanced_index(labels: np.ndarray, classes: tuple[int, ...], n: int, seed: int) -> np.ndarray:
    """n indices, as even across classes as n allows, nested in n for a fixed seed."""
    orders = class_orders(labels, classes, seed)
    per_class = [n // len(classes) + (i < n % len(classes)) for i in range(len(classes))]
    for c, k, order in zip(classes, per_class, orders, strict=True):
        if k > len(order):
            raise DataError(f"class {c} has only {len(order)} images, {k} requested")
    return np.sort(np.concatenate([order[:k] for order, k in zip(orders, per_class, strict=True)]))


def target_test_index(data: FashionMNIST, settings: Settings) -> np.ndarray:
    """The target task's test images: indices into the official test set, in the order a race tests them."""
    return balanced_index(data.test_labels, settings.data.target_classes, settings.data.test_size, settings.data.data_seed)


def balanced_source(labels: np.ndarray, settings: Settings, n: int) -> np.ndarray:
    """A fixed, balanced subset of n source images, fewer where a smaller dataset holds fewer."""
    rarest = min(int(np.sum(labels == c)) for c in settings.data.source_classes)
    return balanced_index(
        labels, settings.data.source_classes, min(n, rarest * len(settings.data.source_classes)), settings.data.data_seed
    )
