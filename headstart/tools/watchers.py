"""How many watchers one server process holds on one race: ``python -m headstart.tools.watchers``.

Starts the server (the embedded default, a fresh database; ``--backend ray`` for the Ray
backend) with room for the watchers, starts one long race, then has ``--watchers`` clients,
each from a loopback address of its own, watch it to the end. Reports how many streams came
through complete, and the latency of live epoch events (from the worker stamping one to a
watcher reading it): median, p95 and the slowest. Needs the ``loadtest`` extra.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from headstart.tools.loadtest import Server, follow

RACE = {"n": 1000, "epochs": 20, "seed": 7}


async def run(watchers: int, backend: str) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        env = {
            "HEADSTART_MAX_CONNECTIONS": str(watchers + 50),
            "HEADSTART_BACKEND": backend,
        }
        server = Server(Path(tmp) / "races.sqlite3", env=env, log=Path(tmp) / "server.log")
        await server.start()
        try:
            url = server.base.replace("http", "ws") + "/ws"
            latencies: list[float] = []
            accepted = asyncio.get_running_loop().create_future()

            def on_start(msg: dict[str, Any]) -> None:
                if msg["type"] == "accepted" and not accepted.done():
                    accepted.set_result(msg["race_id"])

            starter = asyncio.create_task(
                follow(f"{url}?client=starter", {"type": "start", "config": RACE}, [], on_message=on_start)
            )
            race_id = await accepted
            t0 = time.perf_counter()
            streams = await asyncio.gather(
                *(follow(f"{url}?client=w{i}", {"type": "watch", "race_id": race_id}, latencies) for i in range(watchers)),
                return_exceptions=True,
            )
            await starter
            joined_in = time.perf_counter() - t0
        finally:
            server.stop()
    complete = sum(1 for s in streams if isinstance(s, list) and s and s[-1]["type"] == "done")
    failed = [s for s in streams if isinstance(s, BaseException)]
    ms = sorted(1000 * x for x in latencies)
    p95 = ms[int(0.95 * (len(ms) - 1))] if ms else float("nan")
    print(f"{backend}: {complete} of {watchers} watchers saw the race to its end ({len(failed)} failed) in {joined_in:.1f} s")
    if failed:
        print(f"  first failure: {type(failed[0]).__name__}: {failed[0]}")
    if ms:
        spread = f"median {statistics.median(ms):.0f} ms, p95 {p95:.0f} ms, max {ms[-1]:.0f} ms"
        print(f"  live epoch latency over {len(ms)} deliveries: {spread}")
    return 0 if complete == watchers else 1


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m headstart.tools.watchers", description=__doc__.splitlines()[0])
    parser.add_argument("--watchers", type=int, default=2000)
    parser.add_argument("--backend", choices=["local", "ray"], default="local")
    args = parser.parse_args()
    sys.exit(asyncio.run(run(args.watchers, args.backend)))


if __name__ == "__main__":
    main()
