"""A teacher's own images: a folder with one subfolder per class, read and split without torch.

The layout is torchvision's ``ImageFolder``: ``leaves/oak/1.jpg``, ``leaves/maple/2.png``…,
classes in sorted order. Scanning lists the files; decoding them (``headstart.training.images``)
is the workers' job, once per dataset and image size.

The split, once per dataset, seeded: each class's files in a fixed order (sorted, then a
permutation seeded by ``data_seed``); the first ``TEST_SHARE`` of them, rounded up and at
least ``MIN_TEST``, are its test images, the rest its training pool. A class needs
``MIN_IMAGES``. A race's n training images are balanced across the classes, up to what the
smallest class's pool allows (each class giving the same number).

What is ignored, and said: hidden files and folders, ``__MACOSX/`` and ``._*`` (a Mac's zip
leftovers), files whose suffix is not an image's, and symlinks leading out of the folder.
"""

from __future__ import annotations

import hashlib
import math
import os
import random
from dataclasses import dataclass, field
from pathlib import Path

from headstart.errors import SetupError
from headstart.settings import Settings

MIN_CLASSES, MAX_CLASSES = 2, 20
TEST_SHARE = 0.2
MIN_TEST = 2
MIN_IMAGES = 6  # two to test on, four to train on
SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"})


class DatasetError(SetupError):
    """A folder that cannot be a dataset; the message says why and what is allowed."""


@dataclass(frozen=True)
class Folder:
    """A scanned dataset folder: its classes and, per class, its test files and training pool."""

    name: str
    root: Path
    classes: tuple[str, ...]
    test: tuple[tuple[Path, ...], ...]
    pool: tuple[tuple[Path, ...], ...]
    ignored: tuple[str, ...] = field(default=())  # what was passed over, and why
    fingerprint: str = ""  # changes when any file is added, removed or rewritten

    @property
    def capacity(self) -> int:
        """The most training images a balanced race can have: the smallest pool, each class."""
        return min(len(files) for files in self.pool) * len(self.classes)

    @property
    def test_size(self) -> int:
        return sum(len(files) for files in self.test)

    @property
    def images(self) -> int:
        return self.test_size + sum(len(files) for files in self.pool)

    def describe(self) -> tuple[str, str]:
        """A label and a one-line description, as the page's menu says them."""
        shown = ", ".join(self.classes[:6]) + (f" and {len(self.classes) - 6} more" if len(self.classes) > 6 else "")
        return self.name, f"{len(self.classes)} classes ({shown}), {self.images:,} images, {self.test_size:,} held out to test"


def _hidden(name: str) -> bool:
    return name.startswith(".") or name == "__MACOSX"


def _inside(path: Path, root: Path) -> bool:
    try:
        path.resolve().relative_to(root)
    except ValueError:
        return False
    return True


def _files(folder: Path, root: Path, ignored: list[str]) -> list[Path]:
    """The image files under one class folder, subfolders included, in sorted order."""
    found = []
    for here, dirs, names in os.walk(folder, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not _hidden(d) and _inside(Path(here) / d, root))
        for name in sorted(names):
            path = Path(here) / name
            shown = str(path.relative_to(root))
            if _hidden(name):
                continue
            if not _inside(path, root):
                ignored.append(f"{shown}: a link leading out of the folder, not followed")
            elif path.suffix.lower() not in SUFFIXES:
                ignored.append(f"{shown}: not an image file ({', '.join(sorted(SUFFIXES))})")
            else:
                found.append(path)
    return found


def split(files: list[Path], seed: int) -> tuple[tuple[Path, ...], tuple[Path, ...]]:
    """One class's files as (test, pool): the same for the same files and seed, whatever their order on disk."""
    order = sorted(files)
    random.Random(f"{seed}").shuffle(order)
    test = max(MIN_TEST, math.ceil(TEST_SHARE * len(order)))
    return tuple(order[:test]), tuple(order[test:])


def scan(name: str, root: Path, seed: int = 0, smallest_race: int = 1) -> Folder:
    """The dataset in ``root``, split; a folder that cannot be one raises ``DatasetError``
    saying why. ``smallest_race``: the fewest training images a race may ask for."""
    if not root.is_dir():
        raise DatasetError(f"dataset {name!r}: {root} is not a folder")
    root = root.resolve()
    ignored: list[str] = []
    classes, test, pool = [], [], []
    small = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not _hidden(p.name)):
        if not _inside(folder, root):
            ignored.append(f"{folder.name}/: a link leading out of the folder, not followed")
            continue
        files = _files(folder, root, ignored)
        if not files:
            ignored.append(f"{folder.name}/: no images, not a class")
            continue
        if len(files) < MIN_IMAGES:
            small.append(f"{folder.name} ({len(files)})")
            continue
        classes.append(folder.name)
        held_out, rest = split(files, seed)
        test.append(held_out)
        pool.append(rest)
    if small:
        ignored.append(f"classes with fewer than {MIN_IMAGES} images, left out: {', '.join(small)}")
    if not MIN_CLASSES <= len(classes) <= MAX_CLASSES:
        why = f"{len(classes)} usable" if classes else "no usable"
        raise DatasetError(
            f"dataset {name!r} ({root}): {why} class folder{'s' if len(classes) != 1 else ''}; a dataset needs "
            f"{MIN_CLASSES}–{MAX_CLASSES} subfolders, one per class, each with at least {MIN_IMAGES} images"
            + (f" ({'; '.join(ignored)})" if ignored else "")
        )
    found = Folder(name, root, tuple(classes), tuple(test), tuple(pool), tuple(ignored))
    if found.capacity < smallest_race:
        rarest = min(range(len(classes)), key=lambda i: len(pool[i]))
        raise DatasetError(
            f"dataset {name!r}: its smallest class, {classes[rarest]!r}, leaves {len(pool[rarest])} training images "
            f"after its test share, so a balanced race could have at most {found.capacity}, fewer than the smallest "
            f"race ({smallest_race}); give each class at least {_needed(smallest_race, len(classes))} images"
        )
    return Folder(name, root, found.classes, found.test, found.pool, found.ignored, _fingerprint(found))


def scan_all(settings: Settings) -> dict[str, Folder]:
    """Every dataset folder the settings offer, scanned and split."""
    return {
        name: scan(name, path, settings.data.data_seed, settings.limits.n.min) for name, path in settings.data.datasets.items()
    }


def _needed(n: int, classes: int) -> int:
    """Images a class needs for its pool to hold its share of n."""
    share = math.ceil(n / classes)
    total = share
    while total - max(MIN_TEST, math.ceil(TEST_SHARE * total)) < share:
        total += 1
    return max(total, MIN_IMAGES)


def _fingerprint(folder: Folder) -> str:
    digest = hashlib.sha256()
    for files in (*folder.test, *folder.pool):
        for path in files:
            stat = path.stat()
            digest.update(f"{path.relative_to(folder.root)}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]
