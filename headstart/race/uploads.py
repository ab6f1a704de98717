"""Uploaded datasets on disk: one folder each under the uploads folder, found by an unguessable id.

``<upload_dir>/<id>/`` holds the images, one folder per class (headstart/race/intake.py wrote
them), and ``dataset.json``, what the upload said of itself: its title, its classes, what was
skipped, when it was made and last used, whether it is kept. Uploads still arriving sit under
``.incoming/``; whatever is left there at start-up was cut off and is removed.

An upload nothing has used for ``upload_days`` is deleted unless kept, and when all of them
take more than ``max_upload_disk_mb`` the least recently used unkept ones go first. The
server, the workers and a bake all find an upload here, by id (``locate``).
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import shutil
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from headstart.race import datasets
from headstart.race.intake import MB, Checked
from headstart.settings import UPLOAD_ID, Settings

log = logging.getLogger(__name__)

MANIFEST = "dataset.json"
INCOMING = ".incoming"
TOUCH_EVERY_S = 3600.0  # a use is written to disk at most this often per upload


class UploadError(LookupError):
    """No upload by that id, or one that cannot be kept or stored; ``code`` names which."""

    def __init__(self, code: str, message: str, status: int = 404) -> None:
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


@dataclass
class Manifest:
    id: str
    title: str
    classes: list[dict[str, Any]]  # [{name, images}], in the dataset's class order
    skipped: list[dict[str, str]] = field(default_factory=list)
    skipped_count: int = 0
    bytes: int = 0
    created: float = 0.0
    used: float = 0.0
    kept: bool = False

    @classmethod
    def read(cls, folder: Path) -> Manifest:
        """The manifest an upload's folder holds."""
        return cls(**json.loads((folder / MANIFEST).read_text()))

    def public(self, expires_s: float) -> dict[str, Any]:
        """As ``GET /api/datasets/{id}`` answers."""
        out = asdict(self)
        out["images"] = sum(c["images"] for c in self.classes)
        out["expires"] = None if self.kept else self.used + expires_s
        return out


def locate(settings: Settings, name: str) -> Path | None:
    """The folder of dataset ``name``: one of the settings', or an upload's; None where there is none."""
    if name in settings.data.datasets:
        return settings.data.datasets[name]
    if UPLOAD_ID.fullmatch(name) and (settings.uploads.upload_dir / name / MANIFEST).is_file():
        return settings.uploads.upload_dir / name
    return None


class Folders(Mapping[str, datasets.Folder]):
    """The dataset folders a server offers, scanned once, and its uploads, scanned when first named.

    Iterating gives the offered ones only, as the page's menu lists them: an upload's id is
    its secret, found only by a link that carries it. Looking one up finds either.
    """

    KEEP = 32  # uploads held scanned at once

    def __init__(self, settings: Settings, uploads: Uploads | None = None, also: Iterable[str] = ()) -> None:
        self.settings, self.uploads = settings, uploads
        self.offered = datasets.scan_all(settings)
        self._scanned: OrderedDict[str, datasets.Folder] = OrderedDict()
        for name in also:  # uploads to list as offered (a bake of their races)
            self.offered[name] = self[name]

    def __getitem__(self, name: str) -> datasets.Folder:
        if name in self.offered:
            return self.offered[name]
        if name not in self._scanned:
            if self.uploads is not None:
                manifest, path = self.uploads.get(name), self.uploads.path(name)
            elif (found := locate(self.settings, name)) is not None:
                manifest, path = Manifest.read(found), found
            else:
                raise KeyError(name)
            self._scanned[name] = scan(manifest.title, path, self.settings)
            while len(self._scanned) > self.KEEP:
                self._scanned.popitem(last=False)
        self._scanned.move_to_end(name)
        return self._scanned[name]

    def get(self, name: str, default: Any = None) -> Any:
        try:
            return self[name]
        except (KeyError, UploadError):
            return default

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def __iter__(self) -> Iterator[str]:
        return iter(self.offered)

    def __len__(self) -> int:
        return len(self.offered)

    def forget(self, name: str) -> None:
        self._scanned.pop(name, None)


def named(names: Iterable[str]) -> list[str]:
    """The upload ids among dataset ``names``, once each, in order."""
    return sorted({name for name in names if UPLOAD_ID.fullmatch(name)})


def scan(title: str, path: Path, settings: Settings) -> datasets.Folder:
    """An upload's folder, split as any dataset folder is; ``title`` names it where messages do."""
    return datasets.scan(title, path, settings.data.data_seed, settings.limits.n.min)


def _size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


class Uploads:
    """The uploads folder: adding, finding, using, keeping and deleting uploads, within its limits."""

    def __init__(self, settings: Settings, clock: Any = time.time) -> None:
        self.settings, self.limits, self.clock = settings, settings.uploads, clock
        self.root = self.limits.upload_dir
        self._lock = threading.Lock()
        self._manifests: dict[str, Manifest] = {}
        self._sizes: dict[str, int] = {}
        self._touched: dict[str, float] = {}
        if self.root.is_dir():
            shutil.rmtree(self.root / INCOMING, ignore_errors=True)  # cut off by a stop: never finished
            for folder in sorted(self.root.iterdir()):
                if UPLOAD_ID.fullmatch(folder.name) and (folder / MANIFEST).is_file():
                    try:
                        self._manifests[folder.name] = Manifest.read(folder)
                        self._sizes[folder.name] = _size(folder)
                    except (OSError, ValueError, TypeError) as exc:
                        log.warning("uploaded dataset %s cannot be read (%s); left alone", folder.name, exc)
        self.sweep()

    @property
    def expires_s(self) -> float:
        return self.limits.upload_days * 86400

    def staging(self) -> Path:
        """A fresh folder for one upload while it arrives, inside the uploads folder."""
        path = self.root / INCOMING / secrets.token_hex(8)
        path.mkdir(parents=True)
        return path

    def add(self, dataset: Path, checked: Checked, title: str) -> Manifest:
        """Make the checked ``dataset`` folder an upload, under a new id; room is made by the disk cap."""
        upload_id = f"up-{secrets.token_hex(12)}"
        now = self.clock()
        classes = [{"name": name, "images": n} for name, n in sorted(checked.classes.items())]
        manifest = Manifest(upload_id, title, classes, checked.skipped, checked.skipped_count, checked.bytes, now, now)
        size = _size(dataset)
        with self._lock:
            self._make_room(size)
            self.root.mkdir(parents=True, exist_ok=True)
            dataset.rename(self.root / upload_id)
            self._manifests[upload_id], self._sizes[upload_id] = manifest, size
            self._write(manifest)
        images = sum(checked.classes.values())
        log.info("dataset %s uploaded: %d classes, %d images, %.1f MB", upload_id, len(classes), images, size / MB)
        return manifest

    def get(self, upload_id: str) -> Manifest:
        manifest = self._manifests.get(upload_id)
        if manifest is None:
            raise UploadError(
                "unknown_dataset",
                f"no uploaded dataset {upload_id!r}: it was deleted, expired after {self.limits.upload_days:g} days "
                "unused, or never existed; upload the images again",
            )
        return manifest

    def path(self, upload_id: str) -> Path:
        self.get(upload_id)
        return self.root / upload_id

    def touch(self, upload_id: str) -> None:
        """Count a use (a race, a visit): an upload in use does not expire."""
        manifest = self.get(upload_id)
        now = self.clock()
        manifest.used = now
        if now - self._touched.get(upload_id, 0.0) >= TOUCH_EVERY_S:
            self._touched[upload_id] = now
            with self._lock:
                self._write(manifest)

    def keep(self, upload_id: str, kept: bool) -> Manifest:
        manifest = self.get(upload_id)
        with self._lock:
            held = sum(1 for m in self._manifests.values() if m.kept and m.id != upload_id)
            if kept and held >= self.limits.max_kept_uploads:
                raise UploadError(
                    "too_many_kept",
                    f"{held} uploads are kept already, the most this server keeps (max_kept_uploads); "
                    "stop keeping one first, or ask whoever runs the server",
                    409,
                )
            manifest.kept = kept
            self._write(manifest)
        return manifest

    def delete(self, upload_id: str) -> None:
        self.get(upload_id)
        with self._lock:
            self._remove(upload_id)

    def disk_bytes(self) -> int:
        return sum(self._sizes.values())

    def sweep(self) -> list[str]:
        """Delete the expired uploads, then the least recently used unkept ones past the disk cap."""
        with self._lock:
            now = self.clock()
            gone = [m.id for m in self._manifests.values() if not m.kept and now - m.used > self.expires_s]
            for upload_id in gone:
                self._remove(upload_id)
            try:
                return gone + self._make_room(0)
            except UploadError:  # the kept ones alone fill the cap: nothing more to delete
                return gone

    def _make_room(self, size: int) -> list[str]:
        cap = self.limits.max_upload_disk_mb * MB
        gone = []
        for manifest in sorted((m for m in self._manifests.values() if not m.kept), key=lambda m: m.used):
            if self.disk_bytes() + size <= cap:
                break
            self._remove(manifest.id)
            gone.append(manifest.id)
        if self.disk_bytes() + size > cap:
            raise UploadError(
                "uploads_full",
                f"this upload takes {size / MB:,.1f} MB and the uploads kept use {self.disk_bytes() / MB:,.0f} MB of the "
                f"{self.limits.max_upload_disk_mb:,g} MB allowed (max_upload_disk_mb); ask whoever runs the server",
                507,
            )
        return gone

    def _remove(self, upload_id: str) -> None:
        self._manifests.pop(upload_id, None)
        self._sizes.pop(upload_id, None)
        self._touched.pop(upload_id, None)
        shutil.rmtree(self.root / upload_id, ignore_errors=True)
        log.info("uploaded dataset %s deleted", upload_id)

    def _write(self, manifest: Manifest) -> None:
        path = self.root / manifest.id / MANIFEST
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps(asdict(manifest)))
        os.replace(temporary, path)
