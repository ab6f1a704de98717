"""Fashion-MNIST from its IDX files, split into a source task and a target task.

The source task (five classes, all their training images) pretrains the body; the
target task (the other five) is what the race learns from n images. Target subsets
are class-balanced, seeded and nested, so moving the data slider changes only the
amount of data, never which images were drawn.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from headstart.race import fashion, sources
from headstart.race.fashion import DataError, FashionMNIST, balanced_index
from headstart.race.sources import Source
from headstart.settings import Settings

log = logging.getLogger(__name__)

# Pixel statistics of the Fashion-MNIST training set, so inputs are roughly N(0, 1).
MEAN, STD = 0.2860, 0.3530


@dataclass(frozen=True)
class Split:
    """Images as normalised float tensors (N, 1, 28, 28) and labels 0..4 in task order."""

    x: torch.Tensor
    y: torch.Tensor

    def __len__(self) -> int:
        return len(self.y)

    def to(self, device: torch.device | str) -> Split:
        return Split(self.x.to(device), self.y.to(device))


def locate(settings: Settings) -> dict[str, Path]:
    """Find the four IDX files: configured folder, Debian's folder, then opt-in download."""
    candidates = fashion.folders(settings)
    for folder in candidates:
        files = fashion.find_in(folder)
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
        files = fashion.find_in(candidates[-1])
        if files:
            return files
    looked = ", ".join(str(p) for p in candidates)
    raise DataError(
        f"Fashion-MNIST not found (looked in: {looked}). Either install it with "
        "`apt-get install dataset-fashion-mnist` or set HEADSTART_DATA_DIR to a folder holding "
        f"{', '.join(s + '[.gz]' for s in fashion.FILES.values())}; or set HEADSTART_ALLOW_DOWNLOAD=1 "
        "to fetch it with torchvision's downloader."
    )


def load(settings: Settings) -> FashionMNIST:
    return fashion.read(tuple(sorted(locate(settings).items())))


def to_tensor(images: np.ndarray) -> torch.Tensor:
    x = torch.from_numpy(np.ascontiguousarray(images)).float().div_(255.0)
    return x.sub_(MEAN).div_(STD).unsqueeze(1)


def _task(images: np.ndarray, labels: np.ndarray, classes: tuple[int, ...], index: np.ndarray) -> Split:
    remap = np.full(10, -1, dtype=np.int64)
    remap[list(classes)] = np.arange(len(classes))
    return Split(to_tensor(images[index]), torch.from_numpy(remap[labels[index]]))


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


def source_sample(data: FashionMNIST, settings: Settings, n: int, source: Source = sources.DEFAULT) -> Split:
    """A fixed, balanced subset of n source training images: the EWC Fisher's."""
    index = fashion.balanced_source(data.train_labels, settings, n)
    return _source_task(data.train_images, data.train_labels, index, settings, source)


def source_probe(data: FashionMNIST, settings: Settings, source: Source = sources.DEFAULT) -> Split:
    """The source test images each epoch's ``source_acc`` is measured on: a fixed, balanced subset
    of ``source_test_size``, as the source sees them."""
    index = fashion.balanced_source(data.test_labels, settings, settings.data.source_test_size)
    return _source_task(data.test_images, data.test_labels, index, settings, source)


def source_test(data: FashionMNIST, settings: Settings, source: Source = sources.DEFAULT) -> Split:
    index = np.flatnonzero(np.isin(data.test_labels, settings.data.source_classes))
    return _source_task(data.test_images, data.test_labels, index, settings, source)


def target_train(data: FashionMNIST, settings: Settings, n: int) -> Split:
    index = balanced_index(data.train_labels, settings.data.target_classes, n, settings.data.data_seed)
    return _task(data.train_images, data.train_labels, settings.data.target_classes, index)


def target_test(data: FashionMNIST, settings: Settings) -> Split:
    index = fashion.target_test_index(data, settings)
    return _task(data.test_images, data.test_labels, settings.data.target_classes, index)
