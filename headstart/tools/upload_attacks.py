"""Hostile uploads for ``python -m headstart.tools.hostile --uploads``: a zip bomb, a pixel bomb,
10,000 tiny files (in a zip and as parts), names that climb out of the folder, other files
renamed ``.png``, and quota exhaustion from one address and from many. Beside each, a teacher
on another address uploads a class's images and races on them; afterwards nothing may lie
outside the server's uploads folder, and nothing may be left half-arrived in it."""

from __future__ import annotations

import asyncio
import io
import json
import zipfile
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from headstart.tools import crowds, payloads
from headstart.tools.loadtest import Server

Scenario = Callable[[], Awaitable[tuple[bool, str]]]
LEGIT = "127.0.0.2"
QUOTA_MB = 20  # each address's hourly upload budget during the run (the server's is set to it)
ENV = {"HEADSTART_UPLOAD_MB_PER_ADDRESS_PER_HOUR": str(QUOTA_MB)}
ESCAPED = "escaped"  # what the traversal names call their files


def client(source: str, timeout: float = 120) -> httpx.AsyncClient:
    """HTTP from one loopback address, as a tool sends it (no Origin)."""
    return httpx.AsyncClient(transport=httpx.AsyncHTTPTransport(local_address=source), timeout=timeout)


async def post(base: str, source: str, files: list[tuple[str, tuple[str, bytes, str]]]) -> str:
    """One upload; what the server answered, as a code."""
    async with client(source) as http:
        try:
            answer = await http.post(base + "/api/datasets", files=files)
        except httpx.HTTPError as exc:
            return f"cut off ({type(exc).__name__})"
    return "created" if answer.status_code == 201 else f"{answer.status_code} {answer.json().get('code')}"


def zipped(data: bytes, name: str = "set.zip") -> list[tuple[str, tuple[str, bytes, str]]]:
    return [("file", (name, data, "application/zip"))]


async def teacher(server: Server, seed: int) -> str:
    """Another address uploads three classes and races on them to the end."""
    async with client(LEGIT) as http:
        answer = await http.post(server.base + "/api/datasets", files=zipped(payloads.class_zip(per_class=20, seed=seed)))
    if answer.status_code != 201:
        return f"upload failed: {answer.status_code} {answer.json().get('code')}"
    dataset = answer.json()["id"]
    async with crowds.socket(server, f"teacher{seed}", LEGIT) as ws:
        await ws.send(json.dumps({"type": "start", "config": {"dataset": dataset, "n": 30, "epochs": 2, "seed": seed}}))
        end = await asyncio.wait_for(crowds.ended(ws), timeout=240)
    return "uploaded and raced" if end["type"] == "done" else f"race failed: {end.get('code', end['type'])}"


def answers(said: list[str]) -> str:
    return ", ".join(f"{n} × {k}" for k, n in Counter(said).most_common())


async def zip_bomb(base: str) -> str:
    big = await asyncio.to_thread(payloads.zip_bomb, 1100)  # past max_unzipped_mb
    dense = await asyncio.to_thread(payloads.zip_bomb, 300)  # within it, at a ratio of a thousand to one
    with_images = io.BytesIO(payloads.class_zip(per_class=12))
    with zipfile.ZipFile(io.BytesIO(dense)) as bomb, zipfile.ZipFile(with_images, "a", zipfile.ZIP_DEFLATED) as zf:
        info = bomb.infolist()[0]
        with bomb.open(info) as src, zf.open(info.filename, "w", force_zip64=True) as dst:
            while chunk := src.read(1 << 20):
                dst.write(chunk)
    said = await asyncio.gather(
        *(post(base, "127.0.0.1", zipped(data)) for data in (big, big, with_images.getvalue(), with_images.getvalue()))
    )
    return f"{len(big) / 2**20:.1f} MB unpacking to 1,100 MB, and a 300 MB member beside good images → {answers(said)}"


async def pixel_bomb(base: str) -> str:
    out = io.BytesIO(payloads.class_zip(per_class=12))
    with zipfile.ZipFile(out, "a") as zf:
        for i in range(20):
            zf.writestr(f"shapes/circle/bomb{i}.png", payloads.pixel_bomb(60_000 if i % 2 else 8_000))
    said = await asyncio.gather(*(post(base, "127.0.0.1", zipped(out.getvalue())) for _ in range(3)))
    return f"20 PNGs claiming 8,000² and 60,000² pixels among good images, 3 at once → {answers(said)}"


async def tiny_files(base: str) -> str:
    many = payloads.many_files(10_000)
    parts = [(f"c{i % 3}", (f"{i}.png", b"x", "image/png")) for i in range(10_000)]
    said = [await post(base, "127.0.0.1", zipped(many)), await post(base, "127.0.0.1", parts)]
    return f"10,000 one-byte files as a zip, then as parts → {answers(said)}"


async def traversal(base: str) -> str:
    out = io.BytesIO(payloads.class_zip(per_class=12))
    escape = zipfile.ZipFile(io.BytesIO(payloads.traversal_zip()))
    with zipfile.ZipFile(out, "a") as zf:
        for info in escape.infolist():
            zf.writestr(info, escape.read(info))
    image = payloads.shape_image("circle", np.random.default_rng(0))
    parts = [(f"../../{ESCAPED}", (f"../{ESCAPED}.jpg", image, "image/jpeg")) for _ in range(6)]
    said = [await post(base, "127.0.0.1", zipped(out.getvalue())), await post(base, "127.0.0.1", parts)]
    return f"members named ../../, /etc/, C:/ and with backslashes; a class named ../../ → {answers(said)}"


async def renamed(base: str) -> str:
    said = await asyncio.gather(*(post(base, "127.0.0.1", zipped(payloads.renamed_zip())) for _ in range(3)))
    return f"text, an executable, a PDF and a GIF named .png, 3 at once → {answers(said)}"


async def quota(base: str, sources: list[str]) -> str:
    """Garbage sent as fast as each address may, until each is told its budget is spent."""
    junk = zipped(b"\0" * (1 << 20))
    said: list[str] = []

    async def one(source: str) -> None:
        for _ in range(QUOTA_MB + 5):
            said.append(await post(base, source, junk))

    await asyncio.gather(*(one(source) for source in sources))
    return f"{QUOTA_MB + 5} × 1 MB from each of {len(sources)} address(es) → {answers(said)}"


def outside(folder: Path, before: set[Path]) -> list[str]:
    """Files written during the run that are neither the server's log and database nor under its uploads folder."""
    allowed = {folder / "server.log"}
    written = [p for p in folder.rglob("*") if p.is_file() and p not in before and p not in allowed]
    found = [str(p) for p in written if not p.name.startswith("races.sqlite3") and folder / "uploads" not in p.parents]
    found += [str(p) for p in Path("/tmp").glob(f"{ESCAPED}*")]
    return found


async def run(server: Server, folder: Path, watched: Callable[[str, Scenario], Awaitable[bool]]) -> bool:
    base = server.base
    before = {p for p in folder.rglob("*") if p.is_file()}
    attacks: list[tuple[str, Callable[[], Coroutine[Any, Any, str]]]] = [
        ("zip bomb", lambda: zip_bomb(base)),
        ("pixel bomb", lambda: pixel_bomb(base)),
        ("10,000 tiny files", lambda: tiny_files(base)),
        ("names that climb out", lambda: traversal(base)),
        ("non-images renamed .png", lambda: renamed(base)),
        ("quota from one address", lambda: quota(base, ["127.0.0.1"])),
        ("quota from many addresses", lambda: quota(base, [f"127.0.0.{i}" for i in range(10, 30)])),
    ]
    ok = True
    for number, (name, attack) in enumerate(attacks):

        async def beside(attack: Callable[[], Coroutine[Any, Any, str]] = attack, number: int = number) -> tuple[bool, str]:
            running: asyncio.Task[Any] = asyncio.create_task(attack())
            await asyncio.sleep(0.5)
            legit = await teacher(server, 100 + number)
            said = await asyncio.wait_for(running, timeout=300)
            return legit == "uploaded and raced", f"{said}\n    a teacher on another address: {legit}"

        ok &= await watched(name, beside)
    stray = outside(folder, before)
    incoming = [str(p) for p in (folder / "uploads" / ".incoming").rglob("*") if p.is_file()]
    print(f"files outside the uploads folder: {len(stray)} {stray[:5]}; left half-arrived: {len(incoming)}", flush=True)
    return ok and not stray and not incoming
