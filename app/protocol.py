"""Websocket messages: what a client may send, and the server's own replies.

Race events (plan, epoch, done) are the engine's, from ``app.events``, with a
``race_id`` added. docs/protocol.md documents every message here with an example.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, model_validator

from app.events import RaceConfig
from app.settings import Limits


class _Message(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Start(_Message):
    type: Literal["start"]
    config: RaceConfig = Field(default_factory=dict, validate_default=True)  # type: ignore[arg-type]
    broadcast: bool = False  # give the race a short code a class can type to watch it


class Cancel(_Message):
    type: Literal["cancel"]
    race_id: str = Field(min_length=1, max_length=64)


class Watch(_Message):
    type: Literal["watch"]
    race_id: str | None = Field(default=None, min_length=1, max_length=64)
    code: str | None = Field(default=None, min_length=1, max_length=16)

    @model_validator(mode="after")
    def _one_target(self) -> Watch:
        if (self.race_id is None) == (self.code is None):
            raise ValueError("watch needs exactly one of race_id or code")
        return self


class Unwatch(_Message):
    """Stop hearing a race: a page that leaves one for another spares the server sending both."""

    type: Literal["unwatch"]
    race_id: str = Field(min_length=1, max_length=64)


CLIENT_MESSAGES = (Start, Cancel, Watch, Unwatch)
CLIENT_TYPES = tuple(get_args(m.model_fields["type"].annotation)[0] for m in CLIENT_MESSAGES)
ClientMessage = TypeAdapter(Annotated[Start | Cancel | Watch | Unwatch, Field(discriminator="type")])


class Accepted(BaseModel):
    type: Literal["accepted"] = "accepted"
    race_id: str
    config: RaceConfig
    replay_of: str | None = None  # the stored race this one replays, if it is a replay
    # Whether the receiving client started it, and so may cancel it: a student who joins a
    # teacher's race (same settings, a watch link or a code) gets false.
    yours: bool


class Broadcast(BaseModel):
    type: Literal["broadcast"] = "broadcast"
    race_id: str
    code: str  # four letters; students open /w/CODE or type it on the page


class Next(BaseModel):
    type: Literal["next"] = "next"
    race_id: str
    next_race_id: str  # the broadcasting client's next broadcast race, under the same code
    code: str


class Viewers(BaseModel):
    type: Literal["viewers"] = "viewers"
    race_id: str
    count: int  # connections following this broadcast race, its starter's included


class Queued(BaseModel):
    type: Literal["queued"] = "queued"
    race_id: str
    position: int  # 1 = next to train


class Cancelled(BaseModel):
    type: Literal["cancelled"] = "cancelled"
    race_id: str
    reason: str


class Error(BaseModel):
    type: Literal["error"] = "error"
    code: str
    message: str
    field: str | None = None
    race_id: str | None = None


def error(code: str, message: str, field: str | None = None, race_id: str | None = None) -> dict[str, Any]:
    return Error(code=code, message=message, field=field, race_id=race_id).model_dump(exclude_none=True)


def describe_validation_error(errors: Sequence[Any], limits: Limits | None = None) -> tuple[str | None, str]:
    """The first problem as (field, sentence): which field, what was wrong, what is allowed."""
    err = errors[0]
    loc = [str(p) for p in err["loc"]]
    if loc and loc[0] in (*CLIENT_TYPES, "query", "path"):
        loc = loc[1:]  # drop the union's tag or the request part: the client never wrote it as a path
    field = ".".join(loc) or None
    msg = err["msg"].removeprefix("Value error, ")
    if err["type"] == "union_tag_invalid" or err["type"] == "union_tag_not_found":
        field, msg = "type", f"{msg}. Allowed message types: {', '.join(CLIENT_TYPES)}"
    elif limits is not None and len(loc) == 2 and loc[0] == "config" and loc[1] in Limits.model_fields:
        allowed = getattr(limits, loc[1])
        if err["type"] != "value_error":  # the range check already names its range
            kind = "a whole number" if isinstance(allowed.default, int) else "a number"
            msg = f"{msg}; allowed: {kind} from {allowed.min} to {allowed.max}"
    return field, f"{field}: {msg}" if field else msg
