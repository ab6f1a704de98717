"""docs/protocol.md and the code must agree: every example validates against its model, and
every message a running server sends is one of those models, field for field."""

from __future__ import annotations

import json
import re
import typing
from typing import Any

from fastapi.testclient import TestClient
from pydantic import BaseModel

from headstart.race import events, protocol
from headstart.race.strategies import EXTRAS
from headstart.serving.app import create_app
from headstart.settings import PROJECT_DIR, Settings

DOC = (PROJECT_DIR / "docs" / "protocol.md").read_text()
EXAMPLES = [json.loads(block) for block in re.findall(r"```json\n(.*?)\n```", DOC, re.S)]
SERVER = {
    "accepted": protocol.Accepted,
    "broadcast": protocol.Broadcast,
    "next": protocol.Next,
    "viewers": protocol.Viewers,
    "queued": protocol.Queued,
    "tally": protocol.Tally,
    "cancelled": protocol.Cancelled,
    "error": protocol.Error,
    "plan": events.Plan,
    "epoch": events.Epoch,
    "predictions": events.Predictions,
    "done": events.Done,
}
RACE_EVENTS = (events.Plan, events.Epoch, events.Predictions, events.Done)
CLIENT = protocol.CLIENT_TYPES


def test_every_message_type_has_an_example() -> None:
    assert sorted({e["type"] for e in EXAMPLES}) == sorted([*CLIENT, *SERVER])


def test_client_examples_validate() -> None:
    for example in (e for e in EXAMPLES if e["type"] in CLIENT):
        protocol.ClientMessage.validate_python(example)


def test_server_examples_validate_and_carry_a_race_id() -> None:
    for example in (e for e in EXAMPLES if e["type"] in SERVER):
        model = SERVER[example["type"]]
        if model in RACE_EVENTS:
            assert example.pop("race_id")
        model.model_validate(example)


def test_every_error_code_the_code_emits_is_documented() -> None:
    sources = "".join(p.read_text() for p in (PROJECT_DIR / "headstart").rglob("*.py"))
    codes = set(re.findall(r'"code": "(\w+)"', sources)) | set(re.findall(r'(?:Refused|NotFound|TooMany)\(\s*"(\w+)"', sources))
    codes |= set(re.findall(r'send_error\(\s*"(\w+)"', sources)) | set(re.findall(r'protocol\.error\(\s*"(\w+)"', sources))
    codes |= set(re.findall(r'Error\(code="(\w+)"', sources)) | set(re.findall(r'refuse\(ws, "(\w+)"', sources))
    codes |= set(re.findall(r'"code": "(\w+)", "message"', sources))
    codes |= set(re.findall(r'(?:Rejected|UploadError)\(\s*"(\w+)"', sources))
    assert codes and all(f"`{code}`" in DOC for code in codes), codes
    assert typing.get_args(events.Strategy) == (*events.STRATEGIES, *EXTRAS)


def conforms(message: dict[str, Any]) -> str:
    """The message's type, once it is checked to be exactly its documented model: no field the
    model lacks, every field it requires. Race events may carry the server's stamp besides."""
    model: type[BaseModel] = SERVER[message["type"]]
    body = dict(message)
    if model in RACE_EVENTS:
        stamp = {k: body.pop(k) for k in list(body) if k in protocol.RaceEventStamp.model_fields}
        protocol.RaceEventStamp.model_validate(stamp)
    assert set(body) <= set(model.model_fields), (message["type"], set(body) - set(model.model_fields))
    model.model_validate(body)
    return str(message["type"])


def test_what_a_running_server_sends_is_what_the_page_documents(tiny: Settings, tmp_path) -> None:  # type: ignore[no-untyped-def]
    settings = tiny.model_copy(update={"database": tmp_path / "races.sqlite3", "replay_interval_s": 0.0})
    race = {"n": 25, "epochs": 1, "locked": 2, "seed": 7}
    sent: list[dict[str, Any]] = []

    def until(ws, kind: str) -> None:  # type: ignore[no-untyped-def]
        while (message := ws.receive_json())["type"] != kind:
            sent.append(message)
        sent.append(message)

    with TestClient(create_app(settings)) as client, client.websocket_connect("/ws?client=t") as teacher:
        teacher.send_json({"type": "start", "config": race, "broadcast": True, "lesson": "data"})
        until(teacher, "broadcast")
        code = sent[-1]["code"]
        with client.websocket_connect("/ws?client=s") as student:
            student.send_json({"type": "watch", "code": code})
            until(student, "viewers")
            assert next(m for m in sent if m["type"] == "accepted")["lesson"] == "data"
            student.send_json({"type": "predict", "race_id": sent[-1]["race_id"], "answer": "finetune"})
            until(student, "tally")
            assert sent[-1]["counts"] == {"scratch": 0, "frozen": 0, "finetune": 1}
            until(teacher, "done")
            teacher.send_json({"type": "start", "config": race, "broadcast": True})  # a replay, under the same code
            until(student, "next")
        until(teacher, "done")
        teacher.send_json({"type": "start", "config": race | {"epochs": 5}})
        until(teacher, "plan")
        teacher.send_json({"type": "cancel", "race_id": sent[-1]["race_id"]})
        until(teacher, "cancelled")
        teacher.send_json({"type": "start", "config": {"n": 3}})
        until(teacher, "error")
    kinds = {conforms(message) for message in sent}
    assert kinds >= set(SERVER) - {"queued"}, set(SERVER) - kinds  # a lone race never waits in the queue
    assert any(m.get("replay") for m in sent if m["type"] == "epoch") and any(m.get("emitted_at") for m in sent)
