"""docs/protocol.md and the code must agree: every example validates against its model."""

from __future__ import annotations

import json
import re
import typing

from app import events, protocol
from app.settings import PROJECT_DIR

DOC = (PROJECT_DIR / "docs" / "protocol.md").read_text()
EXAMPLES = [json.loads(block) for block in re.findall(r"```json\n(.*?)\n```", DOC, re.S)]
SERVER = {
    "accepted": protocol.Accepted,
    "broadcast": protocol.Broadcast,
    "next": protocol.Next,
    "viewers": protocol.Viewers,
    "queued": protocol.Queued,
    "cancelled": protocol.Cancelled,
    "error": protocol.Error,
    "plan": events.Plan,
    "epoch": events.Epoch,
    "done": events.Done,
}
CLIENT = protocol.CLIENT_TYPES


def test_every_message_type_has_an_example() -> None:
    assert sorted({e["type"] for e in EXAMPLES}) == sorted([*CLIENT, *SERVER])


def test_client_examples_validate() -> None:
    for example in (e for e in EXAMPLES if e["type"] in CLIENT):
        protocol.ClientMessage.validate_python(example)


def test_server_examples_validate_and_carry_a_race_id() -> None:
    for example in (e for e in EXAMPLES if e["type"] in SERVER):
        model = SERVER[example["type"]]
        if model in (events.Plan, events.Epoch, events.Done):
            assert example.pop("race_id")
        model.model_validate(example)


def test_every_error_code_the_code_emits_is_documented() -> None:
    sources = "".join(p.read_text() for p in (PROJECT_DIR / "app").glob("*.py"))
    codes = set(re.findall(r'"code": "(\w+)"', sources)) | set(re.findall(r'Refused\(\s*"(\w+)"', sources))
    codes |= set(re.findall(r'send_error\(\s*"(\w+)"', sources)) | set(re.findall(r'protocol\.error\(\s*"(\w+)"', sources))
    assert codes and all(f"`{code}`" in DOC for code in codes), codes
    assert typing.get_args(events.Strategy) == events.STRATEGIES
