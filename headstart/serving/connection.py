"""One websocket: its client identity, its outbox, the races it watches and what it may ask."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Mapping
from contextlib import ExitStack
from typing import Any

from fastapi import WebSocket
from pydantic import ValidationError

from headstart.race import protocol
from headstart.race.events import RaceConfig
from headstart.serving.fanout import Closing, Outbox
from headstart.serving.hub import Hub
from headstart.serving.quotas import Rate, Refused, TooMany
from headstart.settings import Settings
from headstart.store import StoreError

log = logging.getLogger(__name__)


def store_unavailable(exc: StoreError, race_id: str | None = None) -> dict[str, Any]:
    """The error a request gets when the race database fails it: nothing is lost, so it may be tried again."""
    return protocol.error("store_unavailable", f"{exc}; try again shortly", race_id=race_id)


class Connection:
    """One websocket: its client identity, its outbox and the races it watches."""

    def __init__(self, websocket: WebSocket, hub: Hub, settings: Settings, address: str) -> None:
        self.ws, self.hub, self.settings, self.address = websocket, hub, settings, address
        # The page sends a stable id so a reconnecting tab still owns the race it started.
        self.client = (websocket.query_params.get("client") or secrets.token_hex(8))[:64]
        self.outbox = Outbox(settings.quotas.max_outbox_messages)
        self.watching: dict[str, ExitStack] = {}
        self.rate = Rate(settings.quotas.messages_per_connection_per_10s, 10)
        self.told_too_fast = False  # one error per flood, not one per message

    @property
    def idle(self) -> bool:
        """Following no race in flight."""
        races = (self.hub.races.get(race_id) for race_id in self.watching)
        return not any(race is not None and not race.finished for race in races)

    def close_for(self, code: str, message: str) -> None:
        """Tell the page why, then close: 1013, so it may try again later."""
        self.send_error(code, message)
        self.outbox.put_nowait(Closing(1013, code))

    def send_error(self, code: str, message: str, field: str | None = None, race_id: str | None = None) -> None:
        self.outbox.put_nowait(protocol.error(code, message, field, race_id))

    async def pump(self) -> None:
        while True:
            message = await self.outbox.get()
            if message is None:  # the outbox overflowed: this client does not keep up
                limit = self.settings.quotas.max_outbox_messages
                log.warning("closing a connection from %s: %d messages waited for it", self.address, limit)
                await self.ws.close(code=1008, reason=f"too slow: {limit} messages waited (max_outbox_messages)")
                return
            if isinstance(message, Closing):
                await self.ws.close(code=message.code, reason=message.reason)
                return
            if message.get("type") == "accepted":  # shared by every viewer; personalised on the way out
                message = {**message, "yours": self.hub.owner_of(message["race_id"]) == self.client}
            await self.ws.send_json(message)

    def watch(self, race_id: str) -> None:
        """Its history, then its live messages. Already followed: its history again, since a
        page that comes back to a race redraws it from its start."""
        if race_id in self.watching:
            for message in self.hub.get(race_id).messages:
                self.outbox.put_nowait(message)
            return
        self._room_to_watch()
        stack = ExitStack()
        stack.enter_context(self.hub.subscribe(race_id, self.outbox))
        self.watching[race_id] = stack

    def _room_to_watch(self) -> None:
        limit = self.settings.quotas.max_watched_per_connection
        if len(self.watching) >= limit:
            why = f"this connection already follows {limit} races, its limit; unwatch one first"
            raise TooMany("too_many_watched", why, "race_id")

    def _follows_in_flight(self, config: RaceConfig) -> bool:
        """Whether a start of ``config`` would join a race this connection follows already,
        which takes no more room: the hub joins an identical race still training."""
        races = (self.hub.races.get(race_id) for race_id in self.watching)
        return any(r is not None and r.config == config and r.trains for r in races)

    def unwatch(self, race_id: str) -> None:
        """Nothing more from that race. A race left with no viewers is cancelled after the grace
        period, as when its last viewer disconnects. Not followed: nothing to do."""
        stack = self.watching.pop(race_id, None)
        if stack is not None:
            stack.close()

    def handle(self, raw: Mapping[str, Any]) -> None:
        if not self.rate.allow(""):
            if not self.told_too_fast:
                allowed = self.rate.describe("messages")
                self.send_error("too_many_messages", f"this connection may send {allowed}; later messages were not read")
            self.told_too_fast = True
            return
        self.told_too_fast = False
        if raw.get("bytes") is not None:
            self.send_error("binary_frame", "binary frames are not accepted; send JSON objects as text frames")
            return
        text = raw.get("text") or ""
        size = len(text.encode())
        if size > self.settings.quotas.max_message_bytes:
            self.send_error("too_large", f"message is {size} bytes; the limit is {self.settings.quotas.max_message_bytes} bytes")
            return
        try:
            msg = protocol.ClientMessage.validate_json(text, context={"limits": self.settings.limits})
        except ValidationError as exc:
            field, message = protocol.describe_validation_error(exc.errors(), self.settings.limits)
            self.send_error("invalid_message", message, field)
            return
        try:
            if isinstance(msg, protocol.Start):
                # Checked first: a race this connection could not follow is not started.
                if msg.broadcast or not self._follows_in_flight(msg.config):
                    self._room_to_watch()
                race = self.hub.submit(msg.config, self.client, msg.broadcast, self.address, msg.lesson)
                self.watch(race.id)
            elif isinstance(msg, protocol.Predict):
                self.hub.predict(msg.race_id, self.client, msg.answer)
            elif isinstance(msg, protocol.Watch):
                self.watch(msg.race_id or self.hub.by_code(msg.code or "", self.address).id)
            elif isinstance(msg, protocol.Unwatch):
                self.unwatch(msg.race_id)
            elif isinstance(msg, protocol.Cancel):
                race = self.hub.get(msg.race_id)
                if race.owner != self.client:
                    raise Refused("not_owner", "only the client that started a race can cancel it", "race_id")
                self.hub.cancel(msg.race_id)
        except Refused as exc:
            self.send_error(exc.code, exc.message, exc.field, getattr(msg, "race_id", None))
        except StoreError as exc:
            self.outbox.put_nowait(store_unavailable(exc, getattr(msg, "race_id", None)))

    def close(self) -> None:
        for stack in self.watching.values():
            stack.close()
        self.watching.clear()
