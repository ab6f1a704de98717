"""Many addresses at once, and a class on one: ``python -m headstart.tools.hostile --addresses N``.

What a newcomer on an address of its own experiences while N loopback addresses (127.0.1.x;
each client socket is bound to its address) hold what the server shares: 60 websockets
each, 6 of the largest races each, 60 half-open requests each; and while 30 students on one
address each start a race of their own. Run by hostile.py, which watches ``/healthz`` and the
web process's memory throughout. Traffic goes to 127.0.0.0/8 only.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

from headstart.tools.loadtest import Server

try:
    from websockets.asyncio.client import ClientConnection, connect
    from websockets.exceptions import ConnectionClosed
except ImportError as exc:  # a tool's own dependencies, not the server's
    raise SystemExit(f"the hostile load test needs its extra: pip install -e '.[loadtest]' ({exc})") from None

NEWCOMER = "127.0.2.1"
CLASSROOM = "127.0.3.1"
LARGEST = {"n": 5000, "epochs": 50, "extra": ["gradual", "lora"]}
SMALL = {"n": 25, "epochs": 1}
SMALL_WITHIN_S = 60.0  # a newcomer's small race, from pressing Train to its last epoch
Release = Callable[[], Awaitable[None]]


def source(i: int) -> str:
    """The i-th attacking address."""
    return f"127.0.1.{i + 1}"


def socket(server: Server, client: str, address: str) -> Any:
    url = f"ws://127.0.0.1:{server.port}/ws?client={client}"
    return connect(url, origin=server.base, local_addr=(address, 0), open_timeout=10, ping_interval=None)  # type: ignore[arg-type]


async def ended(ws: ClientConnection, race_id: str | None = None) -> dict[str, Any]:
    """The message that ends a race (or refuses it): done, cancelled or error."""
    while True:
        message: dict[str, Any] = json.loads(await ws.recv())
        if message["type"] in ("done", "cancelled", "error") and (race_id is None or message.get("race_id") in (race_id, None)):
            return message


async def newcomer(server: Server, config: dict[str, Any], seed: int) -> tuple[bool, str]:
    """A page on an address of its own connects, starts a race and follows it to its end."""
    t0 = time.perf_counter()
    try:
        async with socket(server, f"newcomer{seed}", NEWCOMER) as ws:
            connected = time.perf_counter() - t0
            await ws.send(json.dumps({"type": "start", "config": config | {"seed": seed}}))
            end = await asyncio.wait_for(ended(ws), timeout=300)
    except (OSError, TimeoutError, ConnectionClosed) as exc:
        return False, f"failed: {type(exc).__name__}"
    took = time.perf_counter() - t0
    if end["type"] != "done":
        return False, f"connected in {connected:.2f} s; its race ended {end.get('code', end['type'])}"
    return True, f"connected in {connected:.2f} s; its race (n {config['n']}) finished {took:.1f} s after Train"


async def class_on_one_address(server: Server, students: int = 30) -> tuple[bool, str]:
    """Each student's page, all behind one address, starts a race with settings of its own."""
    t0 = time.perf_counter()

    async def student(i: int) -> str:
        async with socket(server, f"student{i}", CLASSROOM) as ws:
            await ws.send(json.dumps({"type": "start", "config": {"n": 50, "epochs": 2, "seed": 500 + i}}))
            end = await asyncio.wait_for(ended(ws), timeout=900)
            return str(end["type"] if end["type"] != "error" else end["code"])

    outcomes = Counter(await asyncio.gather(*(student(i) for i in range(students))))
    said = ", ".join(f"{n} {k}" for k, n in outcomes.most_common())
    return outcomes["done"] == students, f"{students} students on one address → {said} in {time.perf_counter() - t0:.0f} s"


async def held_sockets(server: Server, addresses: int, each: int = 60) -> tuple[str, Release]:
    """``each`` websockets from every address, held open saying nothing."""
    outcomes: Counter[str] = Counter()
    held: list[ClientConnection] = []

    async def hold(address: str, i: int) -> None:
        try:
            ws = await socket(server, f"idle{address}-{i}", address)
        except (OSError, TimeoutError) as exc:
            outcomes[type(exc).__name__] += 1
            return
        try:
            first = json.loads(await asyncio.wait_for(ws.recv(), timeout=0.5))
            outcomes[first.get("code", first["type"])] += 1
        except TimeoutError:
            held.append(ws)
        except ConnectionClosed:
            outcomes["closed"] += 1

    for a in range(addresses):
        await asyncio.gather(*(hold(source(a), i) for i in range(each)))
    open_now = sum(1 for ws in held if ws.close_code is None)
    outcomes["still open"] = open_now
    outcomes["closed to make room"] = len(held) - open_now

    async def release() -> None:
        await asyncio.gather(*(ws.close() for ws in held), return_exceptions=True)

    said = ", ".join(f"{n} {k}" for k, n in outcomes.most_common() if n)
    return f"{addresses * each} sockets from {addresses} addresses → {said}", release


async def queued_largest(server: Server, addresses: int, each: int = 6) -> tuple[str, Release]:
    """``each`` of the largest races from every address, each from a page of its own."""
    outcomes: Counter[str] = Counter()
    pages: list[tuple[ClientConnection, str]] = []
    for a in range(addresses):
        for i in range(each):
            ws = await socket(server, f"large{a}-{i}", source(a))
            try:
                await ws.send(json.dumps({"type": "start", "config": LARGEST | {"seed": 9000 + a * each + i}}))
                while (reply := json.loads(await ws.recv()))["type"] not in ("accepted", "error"):
                    pass
            except ConnectionClosed:  # the socket itself was refused: the table of sockets is shared too
                outcomes["socket refused"] += 1
                continue
            outcomes[reply["type"] if reply["type"] == "accepted" else reply["code"]] += 1
            if reply["type"] == "accepted":
                pages.append((ws, reply["race_id"]))

    async def release() -> None:
        dropped = 0
        for ws, race_id in pages:
            with contextlib.suppress(ConnectionClosed, TimeoutError):
                await ws.send(json.dumps({"type": "cancel", "race_id": race_id}))
                dropped += "max_queue" in (await asyncio.wait_for(ended(ws, race_id), timeout=60)).get("reason", "")
            await ws.close()
        print(f"    of the accepted large races, {dropped} had been dropped to make room", flush=True)

    said = ", ".join(f"{n} {k}" for k, n in outcomes.most_common())
    return f"{addresses * each} races (n 5,000, 50 epochs, all five lanes) from {addresses} addresses → {said}", release


async def half_open(server: Server, addresses: int, each: int = 60) -> tuple[str, Release]:
    """``each`` HTTP requests from every address whose headers never finish."""
    writers = []
    for a in range(addresses):
        for _ in range(each):
            _, writer = await asyncio.open_connection("127.0.0.1", server.port, local_addr=(source(a), 0))
            writer.write(f"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\nX-Slow: ".encode())
            writers.append(writer)
    await asyncio.gather(*(w.drain() for w in writers), return_exceptions=True)

    async def release() -> None:
        for writer in writers:
            writer.close()

    return f"{len(writers)} half-open requests from {addresses} addresses", release


Watched = Callable[[str, Callable[[], Awaitable[tuple[bool, str]]]], Awaitable[bool]]


async def beside_newcomer(
    server: Server, crowd: Callable[[], Awaitable[Any]], config: dict[str, Any], within_s: float, seed: int
) -> tuple[bool, str]:
    """The crowd arrives and holds what it took; a newcomer races; then the crowd lets go."""
    said, release = await crowd()
    t0 = time.perf_counter()
    fine, experienced = await newcomer(server, config, seed)
    fine &= time.perf_counter() - t0 <= within_s
    await release()
    return fine, f"{said}\n    newcomer on another address: {experienced}"


async def run(server: Server, addresses: int, watched: Watched) -> bool:
    """Every scenario under ``watched`` (hostile.py's health and memory watch); True if all held."""
    ok = await watched("a class on one address", lambda: class_on_one_address(server))
    crowds: list[tuple[str, Callable[[], Awaitable[Any]], dict[str, Any], float]] = [
        ("sockets from many addresses", lambda: held_sockets(server, addresses), {"n": 50, "epochs": 2}, 300.0),
        ("largest races from many addresses", lambda: queued_largest(server, addresses), SMALL, SMALL_WITHIN_S),
        ("half-open requests from many addresses", lambda: half_open(server, addresses), {"n": 50, "epochs": 2}, 300.0),
    ]
    for number, (name, crowd, config, within_s) in enumerate(crowds):
        ok &= await watched(name, functools.partial(beside_newcomer, server, crowd, config, within_s, 8000 + number))
    return ok
