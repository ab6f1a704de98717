"""The server joins a Ray cluster started outside it, as docs/deploy.md says: `ray start --head`,
then ``HEADSTART_RAY_ADDRESS=auto``; a race trains on the cluster's actor.

Marked ``ray``: the cluster's start and an actor loading its resources take about a minute.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from headstart.serving.app import create_app
from headstart.settings import Settings
from tests.conftest import free_port, tiny_env
from tests.test_ray_backend import receive_until, wait_until_up

ray = pytest.importorskip("ray")
pytestmark = [pytest.mark.ray, pytest.mark.timeout(600)]


def test_a_server_joins_a_cluster_started_outside_it(tiny: Settings, tmp_path: Path) -> None:
    ray_cli = str(Path(sys.executable).with_name("ray"))
    port = free_port()
    # As docs/deploy.md's step 2, on loopback; the dashboard and usage report are not needed here.
    head = [ray_cli, "start", "--head", f"--port={port}", "--num-cpus=2", "--include-dashboard=false", "--disable-usage-stats"]
    started = subprocess.run(head, env={**os.environ, **tiny_env(tiny)}, capture_output=True, text=True, timeout=300)
    assert started.returncode == 0, started.stderr
    ray.shutdown()  # a Ray of this test process's own, left by another test, would be joined instead
    settings = tiny.model_copy(
        update={"backend": "ray", "ray_address": "auto", "max_concurrent_races": 1, "database": tmp_path / "races.sqlite3"}
    )
    try:
        with TestClient(create_app(settings)) as client:
            assert ray.get_runtime_context().gcs_address.endswith(f":{port}")  # the cluster started above
            wait_until_up(client, 1)
            with client.websocket_connect("/ws") as ws:
                ws.send_json({"type": "start", "config": {"n": 50, "epochs": 2, "seed": 5}})
                got = receive_until(ws, {"done", "error"})
        assert got[-1]["type"] == "done", got[-1]
        assert sum(m["type"] == "epoch" for m in got) == 6
    finally:
        ray.shutdown()
        subprocess.run([ray_cli, "stop", "--force"], capture_output=True, timeout=120)
