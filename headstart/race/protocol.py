"""Websocket messages: what a client may send, and every message the server sends.

Race events (plan, epoch, done) are the engine's, from ``headstart.race.events``, stamped by
``race_event`` with their race; every other message the server sends is one of the models
here, turned into JSON by ``wire``. docs/protocol.md documents each with an example, and a
test checks what a running server really sends against these models.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, field_validator, model_validator

from headstart.race import lessons
from headstart.race.events import RaceConfig, RaceEvent
from headstart.settings import Choice, Choices, Limits


class _Message(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Start(_Message):
    type: Literal["start"]
    config: RaceConfig = Field(default_factory=dict, validate_default=True)
    broadcast: bool = False  # give the race a short code a class can type to watch it
    # The guided lesson it is raced in: a class following the race's code moves to that lesson.
    lesson: str | None = None

    @field_validator("lesson")
    @classmethod
    def _a_lesson(cls, value: str | None) -> str | None:
        if value is not None and value not in lessons.BY_ID:
            raise ValueError(f"lesson must be one of {', '.join(lessons.BY_ID)}, got {value!r}")
        return value


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


class Predict(_Message):
    """A page's prediction for a class race's lesson: which lane ends ahead. Counted, one per
    page and without names, for the race's viewers (``tally``)."""

    type: Literal["predict"]
    race_id: str = Field(min_length=1, max_length=64)
    answer: str = Field(min_length=1, max_length=16)


CLIENT_MESSAGES = (Start, Cancel, Watch, Unwatch, Predict)
CLIENT_TYPES = tuple(get_args(m.model_fields["type"].annotation)[0] for m in CLIENT_MESSAGES)
ClientMessage = TypeAdapter(Annotated[Start | Cancel | Watch | Unwatch | Predict, Field(discriminator="type")])


class _ServerMessage(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Accepted(_ServerMessage):
    type: Literal["accepted"] = "accepted"
    race_id: str
    config: RaceConfig
    replay_of: str | None = None  # the stored race this one replays, if it is a replay
    # Whether the receiving client started it, and so may cancel it: a student who joins a
    # teacher's race (same settings, a watch link or a code) gets false. Set per connection
    # as the message leaves, since every viewer shares the race's history.
    yours: bool = False
    lesson: str | None = None  # the guided lesson it was started in


class Broadcast(_ServerMessage):
    type: Literal["broadcast"] = "broadcast"
    race_id: str
    code: str  # four letters; students open /w/CODE or type it on the page


class Next(_ServerMessage):
    type: Literal["next"] = "next"
    race_id: str
    next_race_id: str  # the broadcasting client's next broadcast race, under the same code
    code: str


class Viewers(_ServerMessage):
    type: Literal["viewers"] = "viewers"
    race_id: str
    count: int  # connections following this broadcast race, its starter's included


class Queued(_ServerMessage):
    type: Literal["queued"] = "queued"
    race_id: str
    position: int  # 1 = next to train
    # Seconds until it starts, at the pace this server's workers have trained so far; None
    # until one race has finished here.
    wait_s: float | None = None
    # Set when the race trained some epochs, then gave its worker to a smaller race from
    # another address: it resumes where it stopped.
    paused: bool = False


class Tally(_ServerMessage):
    """How a class race's viewers predicted its lesson's answer, one prediction per page."""

    type: Literal["tally"] = "tally"
    race_id: str
    counts: dict[str, int]  # per lane, every lane of the race named


class Cancelled(_ServerMessage):
    type: Literal["cancelled"] = "cancelled"
    race_id: str
    reason: str


class Error(_ServerMessage):
    type: Literal["error"] = "error"
    code: str
    message: str
    field: str | None = None
    race_id: str | None = None


ServerMessage = Accepted | Broadcast | Next | Viewers | Queued | Tally | Cancelled | Error


class RaceEventStamp(_ServerMessage):
    """What the server adds to each of the engine's race events it sends."""

    race_id: str
    emitted_at: float | None = None  # the worker's clock as it made the event (Unix seconds)
    replay: bool | None = None  # true when the race replays a stored one


def wire(message: ServerMessage) -> dict[str, Any]:
    """A server message as it goes on the wire: JSON types, unset optional fields left out."""
    return message.model_dump(mode="json", exclude_none=True)


def race_event(event: RaceEvent, race_id: str, emitted_at: float | None = None, replay: bool = False) -> dict[str, Any]:
    """One of the engine's events as the server sends it: stamped with its race."""
    stamp = RaceEventStamp(race_id=race_id, emitted_at=emitted_at, replay=replay or None)
    return stamp.model_dump(exclude_none=True) | event.model_dump(mode="json")


def error(code: str, message: str, field: str | None = None, race_id: str | None = None) -> dict[str, Any]:
    return wire(Error(code=code, message=message, field=field, race_id=race_id))


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
        # The range check already names its range, and a choice's own error its options.
        if err["type"] != "value_error" and not isinstance(allowed, Choice | Choices):
            kind = "a whole number" if isinstance(allowed.default, int) else "a number"
            msg = f"{msg}; allowed: {kind} from {allowed.min} to {allowed.max}"
    return field, f"{field}: {msg}" if field else msg
