"""The images a page shows: any image file read safely at a size, small PNGs of a dataset's
images by index, and a few examples of each class, of the target task and of what the body
was pretrained on. Pillow and numpy, no torch: the server and a bake use it, and the workers
decode their training images with the same ``decode``.

An image is named by its dataset, the version of that dataset's images, a part and an index:
``fashion/fmnist/test/17`` is the official Fashion-MNIST test set's 18th image, which never
changes; ``leaves/<fingerprint>/test/3`` the fourth file of a folder's test listing while the
folder keeps that fingerprint. So a thumbnail, once served, may be cached for good.
"""

from __future__ import annotations

import io
import threading
import warnings
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from headstart.race import bodies, fashion, sources
from headstart.race.datasets import Folder
from headstart.settings import BUILT_IN_DATASET, FASHION_CLASSES, Settings

THUMBNAIL_SIDE = 96  # a folder's photos; Fashion-MNIST's are shown at their own 28 pixels
EXAMPLES_PER_CLASS = 6
CACHED = 4096  # thumbnails kept encoded: a gallery's worth many times over, a few megabytes
# Which images each part names. Fashion-MNIST: its two official sets, and the training set as
# the far source saw it; a folder: its test listing and its training pool, class by class.
FASHION_PARTS: dict[str, tuple[str, sources.Source]] = {
    "test": ("test", "near"),
    "train": ("train", "near"),
    "train-far": ("train", "far"),
}
FOLDER_PARTS = ("test", "pool")
DECODE_ERRORS = (OSError, ValueError, SyntaxError, Image.DecompressionBombError, Image.DecompressionBombWarning)


class NoSuchImage(LookupError):
    """A thumbnail asked for by a name no image has; the message says what there is."""


def decode(path: Path, side: int, channels: int) -> np.ndarray:
    """One image as uint8 (side, side, channels): upright by its EXIF orientation, its short side
    resized to ``side`` and its centre cropped square, as torchvision's ``Resize`` then
    ``CenterCrop`` do. Raises what Pillow raises for a bad file, and a decompression bomb
    (past Pillow's pixel limit) as an error rather than a warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        with Image.open(path) as file:
            file.draft("RGB" if channels == 3 else "L", (side, side))  # a JPEG decodes at a fraction of its size
            image = ImageOps.exif_transpose(file).convert("RGB" if channels == 3 else "L")
            w, h = image.size
            scale = side / min(w, h)
            size = (max(side, round(w * scale)), max(side, round(h * scale)))
            left, top = (size[0] - side) // 2, (size[1] - side) // 2
            square = image.resize(size, Image.Resampling.BILINEAR, reducing_gap=3.0).crop((left, top, left + side, top + side))
            out = np.asarray(square, dtype=np.uint8)
    return out.reshape(side, side, channels)


def reason(exc: Exception) -> str:
    """Why a file was skipped, in words."""
    if isinstance(exc, Image.DecompressionBombError | Image.DecompressionBombWarning):
        return f"refused: more pixels than Pillow's limit of {Image.MAX_IMAGE_PIXELS:,} (a decompression bomb?)"
    if isinstance(exc, UnidentifiedImageError):
        return "not an image Pillow can read"
    return f"cannot be decoded ({type(exc).__name__}: {exc})"


def png(pixels: np.ndarray) -> bytes:
    """uint8 (side, side) or (side, side, 3) as PNG bytes."""
    out = io.BytesIO()
    Image.fromarray(pixels.squeeze()).save(out, format="PNG", optimize=True)
    return out.getvalue()


@dataclass(frozen=True)
class Ref:
    """One image as a page names it; ``label`` is the class it is shown under."""

    part: str
    index: int
    label: str


class Pictures:
    """The images of the datasets ``settings`` offer (``folders``: those scanned), as thumbnails."""

    def __init__(self, settings: Settings, folders: Mapping[str, Folder]) -> None:
        self.settings, self.folders = settings, folders
        self._cache: OrderedDict[tuple[str, str, int], bytes] = OrderedDict()
        self._lock = threading.Lock()  # thumbnails are made on worker threads

    def version(self, dataset: str) -> str:
        if dataset == BUILT_IN_DATASET:
            return fashion.VERSION
        if dataset not in self.folders:
            raise NoSuchImage(f"no dataset {dataset!r}; there are {', '.join((BUILT_IN_DATASET, *self.folders))}")
        return self.folders[dataset].fingerprint

    def thumbnail(self, dataset: str, version: str, part: str, index: int) -> bytes:
        """The PNG of one image; NoSuchImage, saying what there is, for a name that is none."""
        if version != self.version(dataset):
            raise NoSuchImage(f"dataset {dataset!r} has changed since: its images are now version {self.version(dataset)}")
        key = (dataset, part, index)
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
        made = self._fashion(part, index) if dataset == BUILT_IN_DATASET else self._folder(self.folders[dataset], part, index)
        with self._lock:
            self._cache[key] = made
            while len(self._cache) > CACHED:
                self._cache.popitem(last=False)
        return made

    def _arrays(self) -> fashion.FashionMNIST:
        try:
            return fashion.load(self.settings)
        except fashion.DataError as exc:
            raise NoSuchImage(str(exc)) from None

    def _fashion(self, part: str, index: int) -> bytes:
        if part not in FASHION_PARTS:
            raise NoSuchImage(f"part {part!r}: Fashion-MNIST's are {', '.join(FASHION_PARTS)}")
        split, source = FASHION_PARTS[part]
        images = getattr(self._arrays(), f"{split}_images")
        if not 0 <= index < len(images):
            raise NoSuchImage(f"index {index}: Fashion-MNIST's {split} set has images 0 to {len(images) - 1}")
        return png(sources.images(source, images[index : index + 1])[0])

    def _folder(self, folder: Folder, part: str, index: int) -> bytes:
        if part not in FOLDER_PARTS:
            raise NoSuchImage(f"part {part!r}: a folder dataset's are {', '.join(FOLDER_PARTS)}")
        listing = [path for files in getattr(folder, part) for path in files]
        if not 0 <= index < len(listing):
            raise NoSuchImage(f"index {index}: {folder.name}'s {part} listing has images 0 to {len(listing) - 1}")
        try:
            return png(decode(listing[index], THUMBNAIL_SIDE, 3))
        except DECODE_ERRORS as exc:
            raise NoSuchImage(f"{listing[index].relative_to(folder.root)}: {reason(exc)}") from None

    def examples(self, dataset: str, body: str, source: str) -> dict[str, Any]:
        """A few images of each class: the target task's, then what the body was pretrained on."""
        version = self.version(dataset)
        if dataset == BUILT_IN_DATASET:
            target = self._fashion_rows(self.settings.data.target_classes, "train")
            target_title = "Your target task: five kinds of clothing, the first images a race learns from"
        else:
            folder = self.folders[dataset]
            target = {
                name: [Ref("pool", sum(map(len, folder.pool[:c])) + k, name) for k in range(min(EXAMPLES_PER_CLASS, len(files)))]
                for c, (name, files) in enumerate(zip(folder.classes, folder.pool, strict=True))
            }
            target_title = f"Your target task: the {len(folder.classes)} classes of {folder.name!r}"  # an upload's title
        rows: dict[str, Any] = {"target": _section(dataset, version, target_title, target)}
        spec = bodies.BODIES.get(body)  # type: ignore[call-overload]
        if spec is None or spec.has_source_task:
            rows["source"] = _section(BUILT_IN_DATASET, fashion.VERSION, *self._source(source))
        else:
            rows["source"] = {
                "title": f"{spec.label} was pretrained on ImageNet",
                "note": "1.28 million photos of 1,000 everyday things, animals and scenes; they are not on this "
                "machine, so none are shown",
                "classes": [],
            }
        return rows

    def _fashion_rows(self, classes: tuple[int, ...], part: str, per_class: int = EXAMPLES_PER_CLASS) -> dict[str, list[Ref]]:
        arrays = self._arrays()
        orders = fashion.class_orders(arrays.train_labels, classes, self.settings.data.data_seed)
        return {
            FASHION_CLASSES[c]: [Ref(part, int(i), FASHION_CLASSES[c]) for i in order[:per_class]]
            for c, order in zip(classes, orders, strict=True)
        }

    def _source(self, source: str) -> tuple[str, dict[str, list[Ref]]]:
        classes = self.settings.data.source_classes
        if source == "far":
            return "Pretrained on five other kinds of clothing, every image's pixels scrambled one fixed way", self._fashion_rows(
                classes, "train-far"
            )
        if source != "shuffled":
            return "Pretrained on five other kinds of clothing", self._fashion_rows(classes, "train")
        # The labels it learned: the source images' own, shuffled (sources.labels) as pretraining saw them.
        labels = self._arrays().train_labels
        index = np.flatnonzero(np.isin(labels, classes))
        shuffled = sources.labels("shuffled", labels[index])
        rows = {
            FASHION_CLASSES[c]: [Ref("train", int(i), FASHION_CLASSES[c]) for i in index[shuffled == c][:EXAMPLES_PER_CLASS]]
            for c in classes
        }
        return "Pretrained on the same clothes under random labels: each row is what it was told that class looks like", rows


def _section(dataset: str, version: str, title: str, rows: dict[str, list[Ref]]) -> dict[str, Any]:
    return {
        "title": title,
        "dataset": dataset,
        "images_version": version,
        "classes": [{"name": name, "images": [{"part": r.part, "index": r.index} for r in refs]} for name, refs in rows.items()],
    }
