"""Receiving an upload (``POST /api/datasets``): its body counted as it streams, written under the
uploads folder part by part, then checked off the event loop (headstart/race/intake.py).

What bounds it: the request's bytes (413 as soon as they pass the limit, before reading more),
the bytes one address and all addresses may send an hour (429), and how many uploads are
checked at once (the rest wait their turn).
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import time
from collections.abc import AsyncIterator
from typing import IO, Any

from python_multipart.multipart import MultipartParser, parse_options_header

from headstart.race import datasets, intake, uploads
from headstart.serving.quotas import Budget
from headstart.settings import Settings

HOUR_S = 3600.0


class Receiving:
    """The uploads desk: takes uploads into ``library`` within the settings' limits."""

    def __init__(self, settings: Settings, library: uploads.Uploads, folders: uploads.Folders) -> None:
        self.settings, self.limits, self.library, self.folders = settings, settings.uploads, library, folders
        self.per_address = Budget(self.limits.upload_mb_per_address_per_hour * intake.MB, HOUR_S)
        self.everyone = Budget(self.limits.upload_mb_per_hour * intake.MB, HOUR_S)
        self.checking = asyncio.Semaphore(self.limits.max_uploads_at_once)

    def _too_large(self, seen: int) -> intake.Rejected:
        return intake.Rejected(
            "upload_too_large",
            f"the upload is {seen / intake.MB:,.1f} MB or more; one upload holds at most {self.limits.max_upload_mb:,g} MB "
            "(max_upload_mb): send fewer or smaller images",
            413,
        )

    def _over_budget(self, address: str) -> intake.Rejected:
        if self.per_address.left(address) < self.everyone.left(""):
            left = self.per_address.left(address) / intake.MB
            return intake.Rejected(
                "upload_quota",
                f"this address may upload {self.limits.upload_mb_per_address_per_hour:,g} MB an hour "
                f"(upload_mb_per_address_per_hour) and has {left:,.1f} MB left; try again later",
                429,
            )
        return intake.Rejected(
            "upload_quota",
            f"this server takes {self.limits.upload_mb_per_hour:,g} MB of uploads an hour from everyone together "
            "(upload_mb_per_hour), and has taken them; try again later",
            429,
        )

    def refuse_early(self, address: str, length: int | None) -> None:
        """Refuse before reading a byte what the headers already say is too much."""
        if length is not None and length > self.limits.max_upload_mb * intake.MB:
            raise self._too_large(length)
        if self.per_address.left(address) <= 0 or self.everyone.left("") <= 0:
            raise self._over_budget(address)

    async def receive(self, address: str, content_type: str, body: AsyncIterator[bytes], title: str | None) -> dict[str, Any]:
        """Take one upload: its answer, as ``GET /api/datasets/{id}`` gives it, with what was skipped."""
        kind, params = parse_options_header(content_type)
        boundary = params.get(b"boundary")
        if kind != b"multipart/form-data" or not boundary:
            raise intake.Rejected(
                "not_multipart",
                f"send multipart/form-data: a zip in the field {intake.ZIP_FIELD!r}, or each class's images in a field "
                "named after the class",
                415,
            )
        staging = self.library.staging()
        try:
            taking = intake.Intake(self.limits, staging)
            names = await self._stream(address, boundary, body, taking)
            started = time.monotonic()
            async with self.checking:
                checked = await asyncio.to_thread(taking.check, started)
                title = title or names or ", ".join(sorted(checked.classes))
                manifest = await asyncio.to_thread(self._store, staging, checked, title)
        finally:
            await asyncio.to_thread(shutil.rmtree, staging, True)
        return self.describe(manifest.id)

    def _store(self, staging: Any, checked: intake.Checked, title: str) -> uploads.Manifest:
        try:  # split as any dataset folder is, before it is kept: one too small to race is refused here
            uploads.scan(title, staging / "dataset", self.settings)
        except datasets.DatasetError as exc:
            raise intake.Rejected("dataset_too_small", str(exc)) from None
        return self.library.add(staging / "dataset", checked, title[:80])

    async def _stream(self, address: str, boundary: bytes, body: AsyncIterator[bytes], taking: intake.Intake) -> str:
        """Write the body's parts as they arrive; returns a title the zip's name suggests, or ''."""
        limit = self.limits.max_upload_mb * intake.MB
        header: dict[str, bytes] = {}
        current: dict[str, Any] = {"file": None, "field": b"", "value": b""}
        title = ""

        def on_header_field(data: bytes, start: int, end: int) -> None:
            current["field"] += data[start:end]

        def on_header_value(data: bytes, start: int, end: int) -> None:
            current["value"] += data[start:end]

        def on_header_end() -> None:
            header[current["field"].decode("latin-1").lower()] = current["value"]
            current["field"], current["value"] = b"", b""

        def on_headers_finished() -> None:
            nonlocal title
            _, options = parse_options_header(header.get("content-disposition", b""))
            name = options.get(b"name", b"").decode("utf-8", "replace")
            filename = options.get(b"filename")
            header.clear()
            if filename is None:
                current["file"] = None  # a plain form field: nothing an upload needs
                return
            shown = filename.decode("utf-8", "replace")
            if name == intake.ZIP_FIELD and shown.lower().endswith(".zip"):
                title = shown.replace("\\", "/").rsplit("/", 1)[-1][:-4]
            current["file"] = taking.part(name, shown)

        def on_part_data(data: bytes, start: int, end: int) -> None:
            if current["file"] is not None:
                current["file"].write(data[start:end])

        def on_part_end() -> None:
            file: IO[bytes] | None = current["file"]
            if file is not None:
                file.close()
            current["file"] = None

        parser = MultipartParser(
            boundary,
            {
                "on_header_field": on_header_field,
                "on_header_value": on_header_value,
                "on_header_end": on_header_end,
                "on_headers_finished": on_headers_finished,
                "on_part_data": on_part_data,
                "on_part_end": on_part_end,
            },
        )
        seen = 0
        try:
            async for chunk in body:
                seen += len(chunk)
                if seen > limit:
                    raise self._too_large(seen)
                if not self.everyone.spend("", len(chunk)):
                    raise self._over_budget(address)
                if not self.per_address.spend(address, len(chunk)):
                    raise self._over_budget(address)
                try:
                    parser.write(chunk)
                except intake.Rejected:
                    raise
                except Exception as exc:  # python-multipart's own parse errors
                    raise intake.Rejected("bad_multipart", f"the upload's form data cannot be read ({exc})") from None
            with contextlib.suppress(Exception):
                parser.finalize()
        finally:
            if current["file"] is not None:
                current["file"].close()
        if not taking.parts and taking.zip is None:
            raise intake.Rejected(
                "no_files", f"the upload holds no files: send a zip in the field {intake.ZIP_FIELD!r}, or each class's images"
            )
        return title

    def describe(self, upload_id: str) -> dict[str, Any]:
        """An upload as the page shows it: its classes and counts, what was skipped, how big a race it allows."""
        manifest = self.library.get(upload_id)
        folder = self.folders[upload_id]
        label, description = folder.describe()
        return {
            **manifest.public(self.library.expires_s),
            "label": label,
            "description": description,
            "capacity": folder.capacity,
            "test_size": folder.test_size,
            "class_order": list(folder.classes),
            "images_version": folder.fingerprint,
        }
