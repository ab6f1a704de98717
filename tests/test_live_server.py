"""A real uvicorn process on a loopback port, driven by the websockets client."""

from __future__ import annotations

import asyncio
import json
import os
import re
import select
import signal

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from headstart.settings import Settings
from tests.conftest import free_port, start_server

TINY = {"n": 25, "epochs": 3, "locked": 1, "seed": 0}


async def collect(ws, until: str) -> list[dict]:
    out = []
    while True:
        msg = json.loads(await asyncio.wait_for(ws.recv(), timeout=120))
        out.append(msg)
        if msg["type"] == until:
            return out


def test_two_viewers_one_late_and_a_third_client_cancels(live_server: str) -> None:
    url = live_server.replace("http", "ws") + "/ws"

    async def scenario() -> None:
        async with connect(url) as teacher, connect(url) as student, connect(url) as other:
            await teacher.send(json.dumps({"type": "start", "config": TINY}))
            accepted = json.loads(await teacher.recv())
            race_id = accepted["race_id"]
            first = await collect(teacher, "epoch")  # the race is under way
            await student.send(json.dumps({"type": "watch", "race_id": race_id}))
            # A third client starts its own race, which queues behind, and cancels it.
            await other.send(json.dumps({"type": "start", "config": TINY | {"seed": 1}}))
            other_id = json.loads(await other.recv())["race_id"]
            await other.send(json.dumps({"type": "cancel", "race_id": other_id}))
            teacher_msgs = [accepted, *first, *await collect(teacher, "done")]
            student_msgs = await collect(student, "done")
            other_msgs = await collect(other, "cancelled")
            epochs = lambda msgs: [(m["strategy"], m["epoch"], m["test_acc"]) for m in msgs if m["type"] == "epoch"]  # noqa: E731
            assert len(epochs(teacher_msgs)) == 9
            assert epochs(student_msgs) == epochs(teacher_msgs)
            assert other_msgs[-1]["race_id"] == other_id

    asyncio.run(scenario())


async def training(port: int) -> ClientConnection:
    """Start a slow race on the server at ``port``; return once it has trained an epoch."""
    ws = await connect(f"ws://127.0.0.1:{port}/ws")
    await ws.send(json.dumps({"type": "start", "config": TINY | {"epochs": 50, "n": 200}}))
    await collect(ws, "epoch")
    return ws


def ended(pid: int, timeout: float) -> bool:
    """Whether process ``pid`` (not a child of this one) ends within ``timeout`` seconds."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        return bool(select.select([fd], [], [], timeout)[0])  # readable once it has exited
    finally:
        os.close(fd)


STOPS = {
    "docker stop": lambda proc: proc.send_signal(signal.SIGTERM),  # to the server alone
    "systemctl stop": lambda proc: os.killpg(proc.pid, signal.SIGTERM),  # to every process of the service
    "Ctrl-C": lambda proc: os.killpg(proc.pid, signal.SIGINT),  # to the terminal's foreground group
}


@pytest.mark.parametrize("stop", STOPS)
def test_a_server_told_to_stop_mid_race_shuts_down_cleanly(stop: str, tiny: Settings, tmp_path) -> None:
    """However it is asked, the server ends the race, its worker and itself, and says nothing alarming."""
    settings, port = tiny.model_copy(update={"database": tmp_path / "races.sqlite3"}), free_port()
    log = tmp_path / "server.log"
    with log.open("w") as err:
        proc = start_server(settings, port, err)
        try:

            async def stop_mid_race() -> None:
                ws = await training(port)
                STOPS[stop](proc)
                # Told to come back later (1012), as a page is, which then finds the race gone.
                with pytest.raises(ConnectionClosed) as closed:
                    await collect(ws, "never")
                assert closed.value.rcvd.code == 1012

            asyncio.run(stop_mid_race())
            status = proc.wait(timeout=30)
        finally:
            proc.kill()
    said = log.read_text()
    assert f"Headstart is serving: open http://127.0.0.1:{port} in a browser on this computer; only this" in said
    assert status == 0 and "Finished server process" in said, said  # a stop asked for and done
    assert not any(alarm in said for alarm in ("leaked", "Traceback", "died", "ERROR")), said


def test_a_killed_server_takes_its_training_worker_with_it(tiny: Settings, tmp_path) -> None:
    """kill -9, the OOM killer or a crash leave no orphaned worker holding the device and its memory."""
    settings, port = tiny.model_copy(update={"database": tmp_path / "races.sqlite3"}), free_port()
    log = tmp_path / "server.log"
    with log.open("w") as err:
        proc = start_server(settings, port, err)
        worker = int(re.search(r"training worker started \(pid (\d+)\)", log.read_text())[1])
        try:

            async def kill_mid_race() -> None:
                ws = await training(port)
                proc.kill()
                with pytest.raises(ConnectionClosed):
                    await collect(ws, "never")

            asyncio.run(kill_mid_race())
            assert proc.wait(timeout=30) == -signal.SIGKILL
            assert ended(worker, timeout=30), f"worker {worker} outlived its server"
        finally:
            proc.kill()
            if not ended(worker, timeout=0):
                os.kill(worker, signal.SIGKILL)
