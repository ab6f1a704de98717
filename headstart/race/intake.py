"""Checking one upload: a zip with one folder per class, or each class's files, into a dataset folder.

What arrives is written under the upload's staging folder as it streams (``Intake.part``);
``Intake.check`` then reads it back, image by image, and writes each image it accepts to
``staging/dataset/<class>/<n>.<ext>``: torchvision's ``ImageFolder`` layout, which
``headstart.race.datasets.scan`` reads. Only the bytes of an accepted image are written, under
a name made here; nothing an upload names becomes a path.

Every limit comes from ``UploadSettings``. A limit the whole upload meets (too many files, a zip
bomb, too few classes) refuses it with ``Rejected``; a file that cannot be one of the images
(another format, a pixel bomb, a damaged file, a bad name) is skipped, and said, while the
rest go on.
"""

from __future__ import annotations

import io
import re
import shutil
import time
import unicodedata
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from PIL import Image, UnidentifiedImageError

from headstart.race.datasets import MIN_IMAGES
from headstart.settings import UploadSettings

MB = 1 << 20
ZIP_FIELD = "file"  # the multipart field of a zip; any other field's files are the class it names
# What Pillow calls each accepted format, and the suffix it is stored under (a phone's JPEG may open as MPO).
ACCEPTED = {"JPEG": ".jpg", "MPO": ".jpg", "PNG": ".png", "WEBP": ".webp"}
OPENED = ["JPEG", "PNG", "WEBP"]  # the formats Pillow is asked to open (it opens an MPO as a JPEG)
ACCEPTED_WORDS = "JPEG, PNG or WebP"
FORMAT_TYPES = ("image/jpeg", "image/png", "image/webp")  # as a browser names them
# Formats told apart by their first bytes, to name what was skipped without asking Pillow to parse it.
MAGIC = (
    (b"GIF8", "GIF"), (b"BM", "BMP"), (b"II*\0", "TIFF"), (b"MM\0*", "TIFF"), (b"%PDF", "PDF"),
    (b"PK\x03\x04", "a zip"), (b"\0\0\1\0", "ICO"), (b"8BPS", "Photoshop"),
)  # fmt: skip
BRANDS = {b"heic": "HEIC", b"heix": "HEIC", b"mif1": "HEIF", b"hevc": "HEIC", b"avif": "AVIF"}
MAX_CLASS_NAME = 40
BAD_CLASS_NAME = re.compile(r"[\x00-\x1f\x7f/\\:*?\"<>|]")
SKIPPED_KEPT = 200  # reasons an answer lists; past these it counts them
SMALLEST_RATIO_CHECKED = 1 * MB  # a small member's ratio says nothing: a blank PNG compresses 100 to 1


class Rejected(Exception):
    """An upload refused as a whole; ``code`` and ``message`` go to the client, with ``status``."""

    def __init__(self, code: str, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


class Unreadable(Exception):
    """One zip member that cannot be unpacked (a bad checksum, an unknown compression): skipped."""


@dataclass
class Checked:
    """What an upload became: each class's images, and what was skipped and why."""

    classes: dict[str, int] = field(default_factory=dict)
    skipped: list[dict[str, str]] = field(default_factory=list)  # the first SKIPPED_KEPT: {file, reason}
    skipped_count: int = 0
    bytes: int = 0  # of the images kept

    def skip(self, name: str, reason: str) -> None:
        self.skipped_count += 1
        if len(self.skipped) < SKIPPED_KEPT:
            self.skipped.append({"file": name, "reason": reason})


def ignored(path: PurePosixPath) -> bool:
    """A Mac's or an editor's leftovers (``__MACOSX/``, ``._photo.jpg``, ``.DS_Store``), passed over unsaid."""
    return any(part == "__MACOSX" or part.startswith(".") for part in path.parts)


def name_problem(name: str) -> str | None:
    """Why a name an upload gives is refused, or None: no absolute paths, ``..``, backslashes or control characters."""
    if "\\" in name:
        return "a backslash in its name (use / between folders)"
    if name.startswith("/") or re.match(r"[A-Za-z]:", name):
        return "an absolute path"
    if ".." in PurePosixPath(name).parts:
        return "'..' in its path"
    if BAD_CLASS_NAME.sub("", name.replace("/", "")) != name.replace("/", ""):
        return "a control character in its name"
    if len(name.encode()) > 1024:
        return "a name longer than 1,024 bytes"
    return None


def class_problem(name: str) -> str | None:
    """Why ``name`` cannot name a class, or None."""
    if not name or name != name.strip():
        return "a class name must not be empty or start or end with a space"
    if len(name) > MAX_CLASS_NAME:
        return f"a class name has at most {MAX_CLASS_NAME} characters"
    if name.startswith(".") or BAD_CLASS_NAME.search(name):
        return 'a class name must not start with "." or hold / \\ : * ? " < > | or control characters'
    return None


def sniff(head: bytes) -> str | None:
    """The format a file's first bytes name, for one that is not accepted; None where they name none."""
    for magic, kind in MAGIC:
        if head.startswith(magic):
            return kind
    if head[4:8] == b"ftyp":
        return BRANDS.get(head[8:12])
    return None


def image_problem(data: bytes, limits: UploadSettings) -> tuple[str | None, str]:
    """Why ``data`` is not an accepted image (None where it is one), and its suffix.

    The size is read from the header before any pixel is decoded, so a pixel bomb costs
    nothing; then the image is decoded (a JPEG at an eighth of its size), so a damaged
    file or another file renamed ``.png`` is found here rather than in a race."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=OPENED) as img:
                width, height = img.size
                if width * height > limits.max_pixels:
                    return f"{width:,}×{height:,} pixels, more than the {limits.max_pixels:,} allowed (max_pixels)", ""
                suffix = ACCEPTED[img.format or ""]
                img.draft("RGB", (64, 64))
                img.load()
                return None, suffix
    except UnidentifiedImageError:
        kind = sniff(data[:16])
        if kind:
            return f"a {kind} file; accepted: {ACCEPTED_WORDS}", ""
        return f"not a {ACCEPTED_WORDS} image", ""
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:  # Pillow's own, larger limit
        found = re.search(r"\((\d+) pixels\)", str(exc))
        pixels = f"{int(found[1]):,} pixels" if found else "more pixels"
        return f"{pixels}, more than the {limits.max_pixels:,} allowed (max_pixels)", ""
    except (OSError, ValueError, SyntaxError, EOFError, KeyError, IndexError) as exc:
        return f"damaged: it cannot be decoded ({type(exc).__name__}: {str(exc)[:120]})", ""


@dataclass
class _Entry:
    shown: str  # the name the upload gave, as the reasons say it
    label: str  # its class
    read: tuple[str, object]  # ("zip", ZipInfo) or ("part", Path)


class Intake:
    """One upload, from its first byte to its dataset folder.

    ``part`` gives a file to write each arriving part into; ``check`` (on a worker thread:
    it decodes) turns them into ``staging/dataset``. ``staging`` is the upload's own folder
    under the uploads folder, removed by whoever made it."""

    def __init__(self, limits: UploadSettings, staging: Path) -> None:
        self.limits, self.staging = limits, staging
        self.parts: list[tuple[str, str, Path]] = []  # field, file name, where it was written
        self.zip: Path | None = None
        (staging / "parts").mkdir(parents=True)

    def part(self, field_name: str, filename: str) -> BinaryIO:
        """Where the next part's bytes go: a zip (field ``file``) or one image of the class ``field_name``."""
        if len(self.parts) + (self.zip is not None) >= self.limits.max_upload_files:
            raise Rejected(
                "too_many_files",
                f"an upload holds at most {self.limits.max_upload_files:,} files (max_upload_files); send fewer",
                413,
            )
        if field_name == ZIP_FIELD:
            if self.zip is not None or self.parts:
                raise Rejected("one_zip", f"send one zip in the field {ZIP_FIELD!r}, or each class's files, not both")
            self.zip = self.staging / "upload.zip"
            return self.zip.open("wb")
        if self.zip is not None:
            raise Rejected("one_zip", f"send one zip in the field {ZIP_FIELD!r}, or each class's files, not both")
        path = self.staging / "parts" / f"{len(self.parts)}"
        self.parts.append((field_name, filename, path))
        return path.open("wb")

    def check(self, started: float | None = None) -> Checked:
        """Read every file back, keep the images, and write them as ``staging/dataset``."""
        deadline = (time.monotonic() if started is None else started) + self.limits.max_check_s
        checked = Checked()
        out = self.staging / "dataset"
        out.mkdir()
        archive = self._open_zip() if self.zip else None
        try:
            entries = self._zip_entries(archive, checked) if archive else self._part_entries(checked)
            labels = sorted({e.label for e in entries})
            if len(labels) > self.limits.max_upload_classes:
                raise Rejected(
                    "too_many_classes",
                    f"{len(labels)} classes ({', '.join(labels[:12])}{'…' if len(labels) > 12 else ''}); an upload has "
                    f"at most {self.limits.max_upload_classes} (max_upload_classes)",
                )
            folders = {label: f"{i:02d}" for i, label in enumerate(labels)}  # renamed below, once each is known good
            total = 0
            for entry in sorted(entries, key=lambda e: (e.label, e.shown)):
                if time.monotonic() > deadline:
                    raise Rejected(
                        "check_too_slow",
                        f"checking the images took longer than {self.limits.max_check_s:g} s (max_check_s); "
                        "upload fewer or smaller images",
                        413,
                    )
                count = checked.classes.get(entry.label, 0)
                if count >= self.limits.max_images_per_class:
                    checked.skip(
                        entry.shown,
                        f"past the {self.limits.max_images_per_class:,} images a class may hold (max_images_per_class)",
                    )
                    continue
                if total >= self.limits.max_images_per_dataset:
                    why = f"past the {self.limits.max_images_per_dataset:,} images a dataset may hold (max_images_per_dataset)"
                    checked.skip(entry.shown, why)
                    continue
                if (size := self._size(entry)) > self.limits.max_image_mb * MB:
                    why = f"{size / MB:,.1f} MB; an image file may be at most {self.limits.max_image_mb:g} MB (max_image_mb)"
                    checked.skip(entry.shown, why)
                    continue
                try:
                    data = self._read(archive, entry)
                except Unreadable as exc:
                    checked.skip(entry.shown, str(exc))
                    continue
                problem, suffix = image_problem(data, self.limits)
                if problem:
                    checked.skip(entry.shown, problem)
                    continue
                folder = out / folders[entry.label]
                folder.mkdir(exist_ok=True)
                (folder / f"{count:05d}{suffix}").write_bytes(data)
                checked.classes[entry.label] = count + 1
                checked.bytes += len(data)
                total += 1
        finally:
            if archive:
                archive.close()
        return self._finish(out, folders, checked)

    def _finish(self, out: Path, folders: dict[str, str], checked: Checked) -> Checked:
        """Classes too small to train left out and said; the rest under their own names."""
        for label, count in list(checked.classes.items()):
            if count < MIN_IMAGES:
                shutil.rmtree(out / folders[label])
                del checked.classes[label]
                images = f"{count} image{'s' * (count != 1)}"
                checked.skip(f"{label}/", f"{images}; a class needs at least {MIN_IMAGES} (two to test on, four to train on)")
        for label in checked.classes:
            (out / folders[label]).rename(out / unicodedata.normalize("NFC", label))
        if len(checked.classes) < 2:
            have = ", ".join(f"{k} ({v})" for k, v in checked.classes.items()) or "none"
            first = checked.skipped[0] if checked.skipped else None
            also = f", and skipped {checked.skipped_count:,} files (first: {first['file']}: {first['reason']})" if first else ""
            need = f"a dataset needs at least 2 classes of {MIN_IMAGES} or more images each"
            raise Rejected("too_few_classes", f"{need}; this upload has {have}{also}")
        return checked

    def _open_zip(self) -> zipfile.ZipFile:
        assert self.zip is not None
        try:
            return zipfile.ZipFile(self.zip)
        except (zipfile.BadZipFile, OSError) as exc:
            raise Rejected("bad_zip", f"the field {ZIP_FIELD!r} is not a zip archive ({exc})") from None

    def _zip_entries(self, archive: zipfile.ZipFile, checked: Checked) -> list[_Entry]:
        members = archive.infolist()
        if len(members) > self.limits.max_upload_files:
            raise Rejected(
                "too_many_files",
                f"the zip holds {len(members):,} members; an upload holds at most "
                f"{self.limits.max_upload_files:,} (max_upload_files)",
                413,
            )
        unpacked = sum(m.file_size for m in members)
        if unpacked > self.limits.max_unzipped_mb * MB:
            raise Rejected(
                "zip_too_large",
                f"the zip unpacks to {unpacked / MB:,.0f} MB; at most {self.limits.max_unzipped_mb:,g} MB (max_unzipped_mb)",
                413,
            )
        kept: list[tuple[zipfile.ZipInfo, PurePosixPath]] = []
        for member in members:
            if member.is_dir():
                continue
            if problem := name_problem(member.filename):
                checked.skip(member.filename, f"refused: {problem}")
                continue
            path = PurePosixPath(member.filename)
            if ignored(path):
                continue
            ratio = member.file_size / max(1, member.compress_size)
            if member.file_size > SMALLEST_RATIO_CHECKED and ratio > self.limits.max_zip_ratio:
                checked.skip(
                    member.filename,
                    f"refused: packed {ratio:,.0f} to 1, more than {self.limits.max_zip_ratio:g} (max_zip_ratio; a zip bomb?)",
                )
                continue
            if member.flag_bits & 0x1:
                checked.skip(member.filename, "encrypted")
                continue
            kept.append((member, path))
        # A zip of the dataset's folder holds that folder first (leaves/oak/1.jpg): its classes are one level down.
        tops = {p.parts[0] for _, p in kept}
        depth = 1 if len(tops) == 1 and all(len(p.parts) >= 3 for _, p in kept) else 0
        entries = []
        for member, path in kept:
            parts = path.parts[depth:]
            if len(parts) < 2:
                checked.skip(member.filename, "not in a class folder: put each class's images in a folder named after it")
            elif problem := class_problem(parts[0]):
                checked.skip(member.filename, problem)
            else:
                entries.append(_Entry(member.filename, parts[0], ("zip", member)))
        return entries

    def _part_entries(self, checked: Checked) -> list[_Entry]:
        entries = []
        for label, filename, path in self.parts:
            shown = f"{label}/{filename}"
            if ignored(PurePosixPath(filename.replace("\\", "/").rsplit("/", 1)[-1] or "_")):
                continue
            if problem := class_problem(label):
                checked.skip(shown, problem)
            else:
                entries.append(_Entry(shown, label, ("part", path)))
        return entries

    @staticmethod
    def _size(entry: _Entry) -> int:
        """What a file says it holds: a zip member's header, a part's size on disk."""
        where = entry.read[1]
        return where.file_size if isinstance(where, zipfile.ZipInfo) else where.stat().st_size  # type: ignore[attr-defined]

    def _read(self, archive: zipfile.ZipFile | None, entry: _Entry) -> bytes:
        kind, where = entry.read
        if kind == "part":
            assert isinstance(where, Path)
            return where.read_bytes()
        assert archive is not None and isinstance(where, zipfile.ZipInfo)
        try:
            with archive.open(where) as member:
                data = member.read(where.file_size + 1)  # never more than the header said, plus one to catch a lie
        except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError, RuntimeError, ValueError) as exc:
            raise Unreadable(f"cannot be unpacked ({exc})") from None
        if len(data) > where.file_size:
            raise Rejected("bad_zip", f"{entry.shown}: unpacks to more than the zip's header says (a zip bomb?)", 413)
        return data
