"""Fashion-MNIST from its IDX files, split into a source task and a target task.

The source task (five classes, all their training images) pretrains the body; the
target task (the other five) is what the race learns from n images. Target subsets
are class-balanced, seeded and nested, so moving the data slider changes only the
amount of data, never which images were drawn.
"""

from __future__ import annotations

import gzip
import logging
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from headstart.errors import SetupError
from headstart.race import sources
from headstart.race.sources import Source
from headstart.settings import Settings

log = logging.getLogger(__name__)

FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
# Pixel statistics of the Fashion-MNIST training set, so inputs are roughly N(0, 1).
MEAN, STD = 0.2860, 0.3530
_IDX_DTYPE = {0x08: np.uint8}


class DataError(SetupError):
    """The dataset is missing or unreadable; the message says what to do."""


@dataclass(frozen=True)
class FashionMNIST:
    train_images: np.ndarray  # (60000, 28, 28) uint8
    train_labels: np.ndarray  # (60000,) uint8
    test_images: np.ndarray  # (10000, 28, 28) uint8
    test_labels: np.ndarray  # (10000,) uint8


@dataclass(frozen=True)
class Split:
    """Images as normalised float tensors (N, 1, 28, 28) and labels 0..4 in task order."""

    x: torch.Tensor
    y: torch.Tensor

    def __len__(self) -> int:
        return len(self.y)

    def to(self, device: torch.device | str) -> Split:
        return Split(self.x.to(device), self.y.to(device))


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


def _find_in(folder: Path) -> dict[str, Path] | None:
    found = {}
    for key, stem in FILES.items():
        for name in (stem + ".gz", stem):
            if (folder / name).is_file():
                found[key] = folder / name
                break
        else:
            return None
    return found


def locate(settings: Settings) -> dict[str, Path]:
    """Find the four IDX files: configured folder, Debian's folder, then opt-in download."""
    candidates = [p for p in (settings.data.data_dir, settings.data.system_data_dir) if p is not None]
    download_raw = settings.data.download_dir / "FashionMNIST" / "raw"
    candidates.append(download_raw)
    for folder in candidates:
        files = _find_in(folder)
        if files:
            if settings.data.data_dir is not None and folder != settings.data.data_dir:
                # A configured folder is a choice: say when it was passed over, not just which data ran.
                log.warning("HEADSTART_DATA_DIR=%s holds no Fashion-MNIST IDX files; using %s", settings.data.data_dir, folder)
            return files
    if settings.data.allow_download:
        from torchvision.datasets import FashionMNIST as TorchvisionFashionMNIST

        log.info("downloading Fashion-MNIST into %s", settings.data.download_dir)
        TorchvisionFashionMNIST(str(settings.data.download_dir), train=True, download=True)
        TorchvisionFashionMNIST(str(settings.data.download_dir), train=False, download=True)
        files = _find_in(download_raw)
        if files:
            return files
    looked = ", ".join(str(p) for p in candidates)
    raise DataError(
        f"Fashion-MNIST not found (looked in: {looked}). Either install it with "
        "`apt-get install dataset-fashion-mnist` or set HEADSTART_DATA_DIR to a folder holding "
        f"{', '.join(s + '[.gz]' for s in FILES.values())}; or set HEADSTART_ALLOW_DOWNLOAD=1 "
        "to fetch it with torchvision's downloader."
    )


@lru_cache(maxsize=4)
def _load(files: tuple[tuple[str, Path], ...]) -> FashionMNIST:
    arrays = {key: read_idx(path) for key, path in files}
    data = FashionMNIST(**arrays)
    for part in ("train", "test"):
        images, labels = getattr(data, f"{part}_images"), getattr(data, f"{part}_labels")
        if images.shape[1:] != (28, 28) or len(images) != len(labels):
            raise DataError(f"{dict(files)[part + '_images']}: expected N×28×28 images matching the labels")
    return data


def load(settings: Settings) -> FashionMNIST:
    return _load(tuple(sorted(locate(settings).items())))


def to_tensor(images: np.ndarray) -> torch.Tensor:
    x = torch.from_numpy(np.ascontiguousarray(images)).float().div_(255.0)
    return x.sub_(MEAN).div_(STD).unsqueeze(1)


def _task(images: np.ndarray, labels: np.ndarray, classes: tuple[int, ...], index: np.ndarray) -> Split:
    remap = np.full(10, -1, dtype=np.int64)
    remap[list(classes)] = np.arange(len(classes))
    return Split(to_tensor(images[index]), torch.from_numpy(remap[labels[index]]))


def _class_orders(labels: np.ndarray, classes: tuple[int, ...], seed: int) -> list[np.ndarray]:
    """Per class, its indices in a fixed seeded order; prefixes of these are the subsets."""
    rng = np.random.default_rng(seed)
    return [rng.permutation(np.flatnonzero(labels == c)) for c in classes]


def balanced_index(labels: np.ndarray, classes: tuple[int, ...], n: int, seed: int) -> np.ndarray:
    """n indices, as even across classes as n allows, nested in n for a fixed seed."""
    orders = _class_orders(labels, classes, seed)
    per_class = [n // len(classes) + (i < n % len(classes)) for i in range(len(classes))]
    for c, k, order in zip(classes, per_class, orders, strict=True):
        if k > len(order):
            raise DataError(f"class {c} has only {len(order)} images, {k} requested")
    return np.sort(np.concatenate([order[:k] for order, k in zip(orders, per_class, strict=True)]))


def target_capacity(data: FashionMNIST, settings: Settings) -> int:
    """The most target images a race can ask for: as many of each class as the rarest has."""
    rarest = min(int(np.count_nonzero(data.train_labels == c)) for c in settings.data.target_classes)
    return rarest * len(settings.data.target_classes)


def _source_task(images: np.ndarray, labels: np.ndarray, index: np.ndarray, settings: Settings, source: Source) -> Split:
    """The source classes' images at ``index`` as ``source`` sees them (``headstart.race.sources``)."""
    return _task(sources.images(source, images[index]), labels[index], settings.data.source_classes, np.arange(len(index)))


def source_train(data: FashionMNIST, settings: Settings, source: Source = sources.DEFAULT) -> Split:
    """Every source training image, with the source's own labels (shuffled for ``shuffled``)."""
    index = np.flatnonzero(np.isin(data.train_labels, settings.data.source_classes))
    split = _source_task(data.train_images, data.train_labels, index, settings, source)
    return Split(split.x, torch.from_numpy(sources.labels(source, split.y.numpy())))


def _balanced_source(labels: np.ndarray, settings: Settings, n: int) -> np.ndarray:
    """A fixed, balanced subset of n source images, fewer where a smaller dataset holds fewer."""
    rarest = min(int(np.sum(labels == c)) for c in settings.data.source_classes)
    return balanced_index(
        labels, settings.data.source_classes, min(n, rarest * len(settings.data.source_classes)), settings.data.data_seed
    )


def source_sample(data: FashionMNIST, settings: Settings, n: int, source: Source = sources.DEFAULT) -> Split:
    """A fixed, balanced subset of n source training images: the EWC Fisher's."""
    index = _balanced_source(data.train_labels, settings, n)
    return _source_task(data.train_images, data.train_labels, index, settings, source)


def source_probe(data: FashionMNIST, settings: Settings, source: Source = sources.DEFAULT) -> Split:
    """The source test images each epoch's ``source_acc`` is measured on: a fixed, balanced subset
    of ``source_test_size``, as the source sees them."""
    index = _balanced_source(data.test_labels, settings, settings.data.source_test_size)
    return _source_task(data.test_images, data.test_labels, index, settings, source)


def source_test(data: FashionMNIST, settings: Settings, source: Source = sources.DEFAULT) -> Split:
    index = np.flatnonzero(np.isin(data.test_labels, settings.data.source_classes))
    return _source_task(data.test_images, data.test_labels, index, settings, source)


def target_train(data: FashionMNIST, settings: Settings, n: int) -> Split:
    index = balanced_index(data.train_labels, settings.data.target_classes, n, settings.data.data_seed)
    return _task(data.train_images, data.train_labels, settings.data.target_classes, index)


def target_test(data: FashionMNIST, settings: Settings) -> Split:
    index = balanced_index(data.test_labels, settings.data.target_classes, settings.data.test_size, settings.data.data_seed)
    return _task(data.test_images, data.test_labels, settings.data.target_classes, index)
