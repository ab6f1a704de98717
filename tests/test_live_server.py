"""A real uvicorn process on a loopback port, driven by the websockets client."""

from __future__ import annotations

import asyncio
import json

from websockets.asyncio.client import connect

TINY = {"n": 25, "epochs": 3, "frozen": 1, "seed": 0}


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
