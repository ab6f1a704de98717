"""A target task as one body sees it: its classes, its test images and its training subsets.

The built-in task is the five Fashion-MNIST target classes (``data``), exactly as every lesson
was calibrated on; for an ImageNet body its 28-pixel images are resized to the body's side,
repeated to three channels and normalised as the body was trained. A folder dataset is
decoded once at the body's side and channels (``images``), then normalised the same way.
Training subsets are class-balanced, seeded and nested, as the built-in task's are.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from headstart.race import fashion
from headstart.race.bodies import BODIES, Body
from headstart.race.datasets import Folder
from headstart.settings import BUILT_IN_DATASET, FASHION_CLASSES, Settings
from headstart.training import data
from headstart.training.images import decode_folder


@dataclass(frozen=True)
class Inputs:
    """What a body eats: square images of ``side`` pixels, ``channels`` deep, normalised so."""

    side: int
    channels: int
    mean: tuple[float, ...]
    std: tuple[float, ...]

    @classmethod
    def of(cls, body: Body, side: int) -> Inputs:
        spec = BODIES[body]
        return cls(side, spec.channels, spec.mean, spec.std)

    def normalise(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, side, side) floats in [0, 1] → the body's normalised inputs, in place."""
        mean = torch.tensor(self.mean).view(1, -1, 1, 1)
        std = torch.tensor(self.std).view(1, -1, 1, 1)
        return x.sub_(mean).div_(std)

    def from_uint8(self, images: np.ndarray) -> torch.Tensor:
        """uint8 (N, side, side, channels) → normalised (N, channels, side, side) floats."""
        x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float().div_(255.0)
        return self.normalise(x.contiguous())

    def from_fashion(self, x: torch.Tensor) -> torch.Tensor:
        """Fashion-MNIST as ``data`` normalises it → this body's inputs: resized, repeated, renormalised."""
        pixels = x * data.STD + data.MEAN
        if pixels.shape[-1] != self.side:
            pixels = F.interpolate(pixels, size=(self.side, self.side), mode="bilinear", antialias=True, align_corners=False)
        return self.normalise(pixels.clamp_(0.0, 1.0).repeat(1, self.channels, 1, 1))


@dataclass
class Task:
    """One dataset at one body's inputs. ``key`` names its images in the feature cache."""

    key: str
    classes: list[str]
    test: data.Split
    settings: Settings
    inputs: Inputs
    # Each test image's index in its dataset (the official test set's, or the folder's test
    # listing) and the version of the images those indices name: how thumbnails are found.
    test_ids: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    images_version: str = ""
    fashion: fashion.FashionMNIST | None = None  # the built-in task's arrays
    pool_images: np.ndarray | None = None  # a folder's training pool, uint8 at the body's side
    pool_labels: np.ndarray | None = None
    skipped: tuple[str, ...] = ()
    _native: bool = field(default=False)  # the built-in task on the tiny body: data's own tensors, untouched

    @property
    def capacity(self) -> int:
        if self.fashion is not None:
            return data.target_capacity(self.fashion, self.settings)
        assert self.pool_labels is not None
        return int(np.bincount(self.pool_labels, minlength=len(self.classes)).min()) * len(self.classes)

    def train(self, n: int) -> data.Split:
        """n training images, balanced across the classes, nested in n."""
        if self.fashion is not None:
            split = data.target_train(self.fashion, self.settings, n)
            return split if self._native else data.Split(self.inputs.from_fashion(split.x), split.y)
        assert self.pool_images is not None and self.pool_labels is not None
        if n > self.capacity:
            counts = np.bincount(self.pool_labels, minlength=len(self.classes))
            rarest = int(counts.argmin())
            raise fashion.DataError(
                f"{self.key.split('@')[0]}: class {self.classes[rarest]!r} has {counts[rarest]} usable training images, "
                f"so a balanced race can have at most {self.capacity}, not {n}"
                + (f" ({len(self.skipped)} file(s) could not be decoded)" if self.skipped else "")
            )
        index = fashion.balanced_index(self.pool_labels, tuple(range(len(self.classes))), n, self.settings.data.data_seed)
        return data.Split(self.inputs.from_uint8(self.pool_images[index]), torch.from_numpy(self.pool_labels[index]))


def load(settings: Settings, dataset: str, body: Body, side: int, folder: Folder | None) -> Task:
    """The task of ``dataset`` (the built-in one, or ``folder``) as ``body`` sees it at ``side`` pixels."""
    inputs = Inputs.of(body, side)
    key = f"{dataset}@{side}x{inputs.channels}"
    if dataset == BUILT_IN_DATASET:
        arrays = data.load(settings)
        test = data.target_test(arrays, settings)
        native = body == "tiny"
        if not native:
            test = data.Split(inputs.from_fashion(test.x), test.y)
        classes = [FASHION_CLASSES[c] for c in settings.data.target_classes]
        ids = fashion.target_test_index(arrays, settings)
        return Task(key, classes, test, settings, inputs, ids, fashion.VERSION, fashion=arrays, _native=native)
    assert folder is not None
    decoded = decode_folder(folder, side, inputs.channels)
    test = data.Split(inputs.from_uint8(decoded.test_images), torch.from_numpy(decoded.test_labels))
    missing = [folder.classes[c] for c in range(len(folder.classes)) if not (decoded.pool_labels == c).any()]
    if missing or len(test) == 0:
        raise fashion.DataError(
            f"dataset {dataset!r}: no image could be decoded for {', '.join(missing) or 'the test share'}; "
            f"skipped: {'; '.join(decoded.skipped[:10])}"
        )
    return Task(
        key,
        list(folder.classes),
        test,
        settings,
        inputs,
        decoded.test_ids,
        folder.fingerprint,
        pool_images=decoded.pool_images,
        pool_labels=decoded.pool_labels,
        skipped=decoded.skipped,
    )
