"""Distinct races per minute, by backend and number of workers: ``python -m headstart.tools.throughput``.

For each backend and worker count asked for, starts the server in this process (the embedded
default: Fashion-MNIST and the shipped checkpoint, a fresh database), waits until every
worker is ready, then starts ``--races`` distinct default races (seeds 1, 2, …) at once from
as many clients and times them until the last is done: races per minute, and each race's wall
time from its start to its end. The Ray backend starts a local Ray instance on this machine.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from headstart.serving.app import create_app
from headstart.settings import get_settings


def measure(backend: str, workers: int, races: int, database: Path) -> dict[str, Any]:
    update: dict[str, Any] = {"backend": backend, "max_concurrent_races": workers, "database": database}
    update |= {"max_queue": races, "allowed_hosts": ("testserver",)}  # the in-process client
    settings = get_settings().model_copy(update=update)
    walls: list[float] = []
    with TestClient(create_app(settings)) as client:
        deadline = time.monotonic() + 600
        while (h := client.get("/healthz").json())["worker"] != "up" or h["workers"] < workers:
            if time.monotonic() > deadline:
                raise SystemExit(f"{backend}: {workers} workers not up after 10 min: {h}")
            time.sleep(0.5)

        def race(seed: int) -> None:
            with client.websocket_connect(f"/ws?client=t{seed}") as ws:
                t0 = time.perf_counter()
                ws.send_json({"type": "start", "config": {"seed": seed}})
                while (m := ws.receive_json())["type"] not in ("done", "error", "cancelled"):
                    pass
                if m["type"] != "done":
                    raise SystemExit(f"race {seed} ended with {m}")
                walls.append(time.perf_counter() - t0)

        t0 = time.perf_counter()
        threads = [threading.Thread(target=race, args=(seed,)) for seed in range(1, races + 1)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        total = time.perf_counter() - t0
    if backend == "ray":
        import ray

        ray.shutdown()
    return {"backend": backend, "workers": workers, "races": races, "total_s": total, "walls": sorted(walls)}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m headstart.tools.throughput", description=__doc__.splitlines()[0])
    parser.add_argument("--backend", nargs="+", choices=["local", "ray"], default=["local"])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--races", type=int, default=6, help="distinct default races started at once (default 6)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for backend in args.backend:
            for workers in args.workers:
                r = measure(backend, workers, args.races, Path(tmp) / f"{backend}-{workers}.sqlite3")
                walls = r["walls"]
                print(
                    f"{backend}, {workers} worker(s): {r['races']} distinct default races in {r['total_s']:.1f} s = "
                    f"{60 * r['races'] / r['total_s']:.0f} races/min; a race's wall from start to done: median "
                    f"{statistics.median(walls):.1f} s, {walls[0]:.1f}–{walls[-1]:.1f} s",
                    flush=True,
                )


if __name__ == "__main__":
    main()
