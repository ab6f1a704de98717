"""Hostile clients against a real server on loopback: ``python -m headstart.tools.hostile``.

Starts the server (the embedded default, a fresh database), then replays, one at a time, what
one client with no special access once did to stop it for everyone: code-table flooding,
repeated watches, a reader that never reads, huge frames, a flood of races, idle sockets,
another site's page, code guessing. During each it polls ``/healthz``, samples the web
process's memory, and has a legitimate client on another loopback address (127.0.0.2) start,
watch and finish a race of its own. Bounded in time; traffic goes to 127.0.0.0/8 only.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import random
import re
import socket as socketlib
import string
import struct
import sys
import tempfile
import time
import zlib
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from headstart.tools import crowds, upload_attacks
from headstart.tools.loadtest import Server, rss_mb

try:
    import httpx
    from websockets.asyncio.client import ClientConnection, connect
    from websockets.exceptions import ConnectionClosed
except ImportError as exc:  # a tool's own dependencies, not the server's
    raise SystemExit(f"the hostile load test needs its extra: pip install -e '.[loadtest]' ({exc})") from None

ATTACKER, LEGIT = "127.0.0.1", "127.0.0.2"
STORED = {"n": 25, "epochs": 50, "locked": 2, "seed": 999}  # trained once; replayed by the attacks
HEALTH_LIMIT_S = 1.0
RSS_LIMIT_MB = 300.0
UPLOAD_RSS_LIMIT_MB = 400.0  # uploads are checked in the web process: an image decoded at a time per check


@dataclass
class Watch:
    """What the server looked like while an attack ran."""

    health_max_s: float = 0.0
    health_failures: int = 0
    rss_peak_mb: float = 0.0
    samples: list[float] = field(default_factory=list)


async def monitor(server: Server, seen: Watch, stop: asyncio.Event) -> None:
    async with httpx.AsyncClient(timeout=5) as http:
        while not stop.is_set():
            t0 = time.perf_counter()
            try:
                (await http.get(server.base + "/healthz")).raise_for_status()
            except httpx.HTTPError:
                seen.health_failures += 1
            took = time.perf_counter() - t0
            seen.samples.append(took)
            seen.health_max_s = max(seen.health_max_s, took)
            seen.rss_peak_mb = max(seen.rss_peak_mb, rss_mb(server.pid))
            await asyncio.sleep(0.2)


def socket(server: Server, client: str, source: str = ATTACKER, **options: Any) -> Any:
    """A websocket from ``source``, sent as a page the server served would send it."""
    url = f"ws://127.0.0.1:{server.port}/ws?client={client}"
    return connect(url, origin=server.base, local_addr=(source, 0), open_timeout=10, **options)  # type: ignore[arg-type]


async def until(ws: ClientConnection, kinds: tuple[str, ...]) -> dict[str, Any]:
    while True:
        message: dict[str, Any] = json.loads(await ws.recv())
        if message["type"] in kinds:
            return message


async def legit_race(server: Server, seed: int) -> str:
    """A page on another address starts a race of its own and follows it to the end."""
    t0 = time.perf_counter()
    try:
        async with socket(server, f"legit{seed}", LEGIT) as ws:
            await ws.send(json.dumps({"type": "start", "config": {"n": 50, "epochs": 2, "seed": seed}}))
            end = await asyncio.wait_for(until(ws, ("done", "error", "cancelled")), timeout=240)
    except (OSError, TimeoutError, ConnectionClosed) as exc:
        return f"failed: {type(exc).__name__}"
    if end["type"] != "done":
        return f"failed: {end.get('code', end['type'])}"
    return f"finished in {time.perf_counter() - t0:.1f} s"


async def codes(server: Server) -> str:
    """Broadcast a stored configuration from fresh client ids, as fast as the server answers, 10 s."""
    answers: Counter[str] = Counter()
    deadline = time.monotonic() + 10
    i = 0
    while time.monotonic() < deadline:
        i += 1
        async with socket(server, f"codes{i}") as ws:
            await ws.send(json.dumps({"type": "start", "config": STORED, "broadcast": True}))
            reply = await until(ws, ("broadcast", "error"))
            answers[str(reply["code"]) if reply["type"] == "error" else "broadcast"] += 1
    return f"{i} broadcasts from fresh ids: " + ", ".join(f"{n} {k}" for k, n in answers.most_common())


async def repeat_watch(server: Server, race_id: str) -> str:
    """Send `watch` for one race 20,000 times on one socket, reading what comes back."""
    received: Counter[str] = Counter()
    async with socket(server, "repeat") as ws:

        async def read() -> None:
            with contextlib.suppress(ConnectionClosed, TimeoutError):
                while True:  # until the server closes it, or says nothing for 3 s
                    message = json.loads(await asyncio.wait_for(ws.recv(), timeout=3))
                    received[message["code"] if message["type"] == "error" else "race messages"] += 1

        reader = asyncio.create_task(read())
        watch = json.dumps({"type": "watch", "race_id": race_id})
        with contextlib.suppress(ConnectionClosed):
            for _ in range(20_000):
                await ws.send(watch)
        await reader
        closed = f"; closed {ws.close_code}: {ws.close_reason!r}" if ws.close_code else ""
    return "20,000 watches (0.9 MB) → " + ", ".join(f"{n:,} {k}" for k, n in received.most_common()) + closed


async def slow_reader(server: Server, race_id: str) -> str:
    """Watch a race's history again and again at the allowed pace and never read, up to 60 s."""
    # A small receive buffer, as a phone on a poor network has: the kernel would otherwise hold
    # megabytes on the reader's behalf before the server saw it fall behind.
    raw = socketlib.socket()
    raw.setsockopt(socketlib.SOL_SOCKET, socketlib.SO_RCVBUF, 4096)
    raw.bind((ATTACKER, 0))
    raw.connect(("127.0.0.1", server.port))
    raw.setblocking(False)
    url = f"ws://127.0.0.1:{server.port}/ws?client=slow"
    sent, t0 = 0, time.monotonic()
    logged = len(server.log.read_text()) if server.log else 0
    # No keepalive of its own: the reader stays until the server drops it.
    async with connect(url, origin=server.base, sock=raw, max_queue=1, ping_interval=None) as ws:  # type: ignore[arg-type]
        watch = json.dumps({"type": "watch", "race_id": race_id})
        try:
            while time.monotonic() - t0 < 60:
                await ws.send(watch)
                sent += 1
                await asyncio.sleep(0.26)  # inside 40 messages per 10 s
        except (ConnectionClosed, OSError):
            pass
        took = time.monotonic() - t0
    said = server.log.read_text()[logged:] if server.log else ""
    why = "its outbox was full" if "messages waited for it" in said else "it answered no keepalive ping"
    return f"{sent} watches, never reading → dropped by the server after {took:.0f} s: {why}"


def _deflate_bomb(size: int) -> bytes:
    """A permessage-deflate payload of ``size`` bytes of "x": about a thousandth of that on the wire."""
    squeeze = zlib.compressobj(wbits=-15)
    chunk, data = b"x" * (1 << 20), b""
    for _ in range(size >> 20):
        data += squeeze.compress(chunk)
    return (data + squeeze.flush(zlib.Z_SYNC_FLUSH)).removesuffix(b"\x00\x00\xff\xff")


async def _raw_frame(server: Server, payload: bytes) -> str:
    """One compressed text frame written by hand, compressed once for all: the attacker's CPU
    should not be what slows the server down on a machine they share."""
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port, local_addr=(ATTACKER, 0))
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(
        f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nOrigin: {server.base}\r\n"
        "Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n".encode()
    )
    await reader.readuntil(b"\r\n\r\n")
    mask = os.urandom(4)
    head = bytes([0xC1, 0x80 | 127]) + struct.pack("!Q", len(payload)) + mask  # FIN, RSV1 (compressed), text
    writer.write(head + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))
    await writer.drain()
    answer = b""
    try:
        while chunk := await asyncio.wait_for(reader.read(65536), timeout=10):
            answer += chunk
    except (TimeoutError, ConnectionError):
        pass
    writer.close()
    # A close frame from the server: 0x88, a length, then the close code.
    at = answer.find(b"\x88")
    return str(struct.unpack("!H", answer[at + 2 : at + 4])[0]) if at >= 0 and len(answer) >= at + 4 else "no close frame"


async def big_frames(server: Server) -> str:
    """16 MB text frames (deflate-compressed to ~16 KB on the wire) on 50 sockets at once."""
    payload = _deflate_bomb(16 << 20)
    codes = Counter(await asyncio.gather(*(_raw_frame(server, payload) for _ in range(50))))
    return f"50 × 16 MB frames ({len(payload) / 1024:.0f} KB each on the wire) → closed with " + ", ".join(
        f"{n} × {k}" for k, n in codes.items()
    )


async def race_flood(server: Server) -> tuple[str, Callable[[], Awaitable[None]]]:
    """33 large races from fresh client ids in half a second; returns how to cancel them."""
    sockets, answers = [], Counter[str]()
    for i in range(33):
        ws = await socket(server, f"flood{i}")
        sockets.append(ws)
        await ws.send(json.dumps({"type": "start", "config": {"n": 1000, "epochs": 5, "seed": 1000 + i}}))
    ids = []
    for ws in sockets:
        reply = await until(ws, ("accepted", "error"))
        answers[reply["type"] if reply["type"] == "accepted" else reply["code"]] += 1
        if reply["type"] == "accepted":
            ids.append((ws, reply["race_id"]))

    async def cancel() -> None:
        for ws, race_id in ids:
            await ws.send(json.dumps({"type": "cancel", "race_id": race_id}))
        for ws in sockets:
            await ws.close()

    return "33 races (n 1,000, 5 epochs) → " + ", ".join(f"{n} {k}" for k, n in answers.items()), cancel


async def idle_sockets(server: Server) -> tuple[str, Callable[[], Awaitable[None]]]:
    """200 websockets opened and held, saying nothing."""
    held, answers = [], Counter[str]()
    for i in range(200):
        ws = await socket(server, f"idle{i}")
        try:
            first = json.loads(await asyncio.wait_for(ws.recv(), timeout=0.3))
            answers[first.get("code", first["type"])] += 1
        except TimeoutError:
            answers["held open"] += 1
            held.append(ws)
        except ConnectionClosed:
            answers["closed"] += 1

    async def close() -> None:
        for ws in held:
            await ws.close()

    return "200 idle sockets → " + ", ".join(f"{n} {k}" for k, n in answers.items()), close


async def foreign(server: Server) -> str:
    """A page on another site opens the websocket; a request names a host that rebinds here."""
    async with connect(f"ws://127.0.0.1:{server.port}/ws", origin="http://evil.example") as ws:  # type: ignore[arg-type]
        refused = json.loads(await ws.recv())
    async with httpx.AsyncClient() as http:
        rebound = await http.get(server.base + "/", headers={"host": "evil.example"})
    return f"Origin http://evil.example → {refused['code']}; Host evil.example → HTTP {rebound.status_code}"


async def guesses(server: Server) -> str:
    """Class codes guessed on one socket as fast as it may send, 10 s."""
    answers: Counter[str] = Counter()
    async with socket(server, "guess") as ws:
        deadline, sent = time.monotonic() + 10, 0
        while time.monotonic() < deadline:
            code = "".join(random.choice(string.ascii_uppercase) for _ in range(4))
            await ws.send(json.dumps({"type": "watch", "code": code}))
            sent += 1
            try:
                reply = json.loads(await asyncio.wait_for(ws.recv(), timeout=0.05))
                answers[reply.get("code", reply["type"])] += 1
            except TimeoutError:
                pass  # not read: past the message limit
    return f"{sent:,} guesses → " + ", ".join(f"{n:,} {k}" for k, n in answers.most_common())


async def watched(
    server: Server, name: str, scenario: Callable[[], Awaitable[tuple[bool, str]]], rss_limit_mb: float = RSS_LIMIT_MB
) -> bool:
    """Run one scenario while watching ``/healthz`` and the web process's memory; print what happened."""
    seen, stop = Watch(), asyncio.Event()
    watching = asyncio.create_task(monitor(server, seen, stop))
    fine, said = await scenario()
    stop.set()
    await watching
    held = seen.health_max_s <= HEALTH_LIMIT_S and not seen.health_failures and seen.rss_peak_mb <= rss_limit_mb
    print(
        f"{name}: {said}\n    /healthz max {seen.health_max_s:.3f} s ({seen.health_failures} failed), "
        f"web RSS peak {seen.rss_peak_mb:.0f} MB",
        flush=True,
    )
    return fine and held


async def attacks_from_one_address(server: Server, args: argparse.Namespace) -> bool:
    """Each attack of one client, with a legitimate race on another address beside it."""
    async with socket(server, "setup", LEGIT) as ws:  # the stored race the attacks replay and watch
        await ws.send(json.dumps({"type": "start", "config": STORED}))
        stored = (await until(ws, ("done",)))["race_id"]
    attacks: list[tuple[str, Callable[[], Coroutine[Any, Any, Any]]]] = [
        ("class-code flood", lambda: codes(server)),
        ("repeated watch", lambda: repeat_watch(server, stored)),
        ("reader that never reads", lambda: slow_reader(server, stored)),
        ("16 MB frames", lambda: big_frames(server)),
        ("race flood", lambda: race_flood(server)),
        ("200 idle sockets", lambda: idle_sockets(server)),
        ("another site's page", lambda: foreign(server)),
        ("code guessing", lambda: guesses(server)),
    ]
    if args.only:
        attacks = [(name, attack) for name, attack in attacks if any(word in name for word in args.only)]
    ok = True
    for number, (name, attack) in enumerate(attacks):

        async def beside(attack: Callable[[], Coroutine[Any, Any, Any]] = attack, number: int = number) -> tuple[bool, str]:
            running: asyncio.Task[Any] = asyncio.create_task(attack())
            await asyncio.sleep(1)  # the attack under way
            legit = await legit_race(server, 7000 + number)
            said = await asyncio.wait_for(running, timeout=120)
            if isinstance(said, tuple):  # an attack that holds something until the legitimate race is done
                said, release = said
                await release()
            return legit.startswith("finished"), f"{said}\n    legitimate race {legit}"

        ok &= await watched(server, name, beside)
    return ok


async def main_async(args: argparse.Namespace) -> int:
    random.seed(args.seed)
    folder = Path(tempfile.mkdtemp(prefix="headstart-hostile-"))
    log = folder / "server.log"
    env = {"HEADSTART_MAX_QUEUE": "32", "HEADSTART_UPLOAD_DIR": str(folder / "uploads"), **upload_attacks.ENV}
    server = Server(folder / "races.sqlite3", env=env, log=log)
    t0 = time.perf_counter()
    await server.start()
    async with httpx.AsyncClient() as http:
        before = (await http.get(server.base + "/api/races?limit=100")).json()["total"]
    if args.uploads:
        ok = await upload_attacks.run(server, folder, lambda name, scenario: watched(server, name, scenario, UPLOAD_RSS_LIMIT_MB))
        finished = 0  # a race on an upload is not listed: the attacks check the teacher's races themselves
    elif args.addresses:
        ok = await crowds.run(server, args.addresses, lambda name, scenario: watched(server, name, scenario))
        finished = 30 + 3  # the class's races and the newcomers'
    else:
        ok = await attacks_from_one_address(server, args)
        finished = 1 + (len(args.only) if args.only else 8)  # the stored race, then one legitimate race each
    async with httpx.AsyncClient() as http:
        after = (await http.get(server.base + "/api/races?limit=100")).json()["total"]
    server.stop()
    leaked = re.findall(r"client=(?!…)[0-9A-Za-z]", log.read_text())
    print(f"\nfinished races before {before}, after {after} (each finished race here adds one)")
    print(f"client ids in the server's log: {len(leaked)}")
    ok &= after >= before + finished and not leaked
    print(f"total {time.perf_counter() - t0:.0f} s")
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m headstart.tools.hostile", description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", nargs="+", metavar="WORD", help="run only the attacks whose names hold one of these words")
    parser.add_argument(
        "--addresses",
        type=int,
        metavar="N",
        help="instead, crowds from N loopback addresses (60 sockets, 6 of the largest races and 60 half-open "
        "requests each) and a class of 30 on one address, each beside a newcomer on an address of its own",
    )
    parser.add_argument(
        "--uploads",
        action="store_true",
        help="instead, hostile uploads (zip and pixel bombs, 10,000 files, traversal names, renamed files, quotas), "
        "each beside a teacher on another address uploading and racing",
    )
    args = parser.parse_args()
    sys.exit(asyncio.run(asyncio.wait_for(main_async(args), timeout=1500)))


if __name__ == "__main__":
    main()
