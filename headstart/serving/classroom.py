"""A teacher's broadcasts: the class code each race is shown under, found again by the class,
and how many follow it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from headstart.race import protocol
from headstart.serving import class_codes
from headstart.serving.fanout import tell
from headstart.serving.quotas import NotFound, Rate, Refused, TooMany
from headstart.serving.races import Race
from headstart.serving.registry import Registry
from headstart.settings import Settings

VIEWER_COUNT_DELAY_S = 0.25  # a broadcast race's viewers hear their number at most this often


class Classroom:
    def __init__(self, settings: Settings, registry: Registry) -> None:
        self.settings, self.registry = settings, registry
        self.codes = class_codes.ClassCodes(registry.store)
        self.broadcasts = Rate(settings.quotas.broadcasts_per_address_per_minute, 60)
        self.guesses = Rate(settings.quotas.code_guesses_per_address_per_minute, 60)
        self.loop: asyncio.AbstractEventLoop | None = None
        self.closing = False

    def forget_codes(self) -> None:
        """Free codes nothing was broadcast under for ``class_code_days``, now and every hour."""
        self.codes.forget_older_than(self.settings.server.class_code_days)
        if self.loop is not None and not self.closing:
            self.loop.call_later(3600, self.forget_codes)

    def code_for(self, owner: str, address: str) -> str:
        """The code ``owner``'s next broadcast goes under: theirs already, or a new one."""
        if not self.broadcasts.allow(address):
            allowed = self.broadcasts.describe("races")
            raise TooMany("too_many_broadcasts", f"this address may broadcast {allowed}; try again shortly")
        if code := self.codes.of(owner):
            return code
        try:
            return self.codes.new()
        except class_codes.CodesExhausted as exc:
            raise Refused("no_free_code", f"{exc}; try again later, or train without broadcasting") from None

    def broadcast(self, race: Race, code: str, publish: Callable[[Race, protocol.ServerMessage], None]) -> None:
        """Show ``race`` under ``code``; the class that followed the code's last race is told of it."""
        previous = self.registry.races.get(self.codes.race_of(code) or "")
        race.code = code
        self.codes.keep(code, race.owner, race.id)
        publish(race, protocol.Broadcast(race_id=race.id, code=code))
        if previous is not None and previous is not race:
            # To its viewers now, not into its history: a page that opens that race later,
            # from Recent races or its own link, wants that race.
            moved = protocol.wire(protocol.Next(race_id=previous.id, next_race_id=race.id, code=code))
            for outbox in previous.subscribers:
                outbox.put_nowait(moved)

    def find(self, code: str, address: str = "") -> Race:
        """The latest race broadcast under ``code``. Each address may miss only so many codes a
        minute: the whole space of codes could otherwise be tried in seconds."""
        typed, code = code, code.strip().upper()
        if self.guesses.exhausted(address):
            raise TooMany(
                "too_many_guesses",
                f"this address may try {self.guesses.describe('class codes')}; check the code on the board and try again shortly",
                "code",
            )
        race_id = self.codes.race_of(code) if len(code) == class_codes.LENGTH else None
        if race_id is None:
            self.guesses.allow(address)
            raise NotFound(
                "unknown_code",
                f"no broadcast race with code {typed!r}; a code is the {class_codes.LENGTH} letters on the teacher's screen",
                "code",
            )
        try:
            race = self.registry.get(race_id)
        except Refused:
            # Unfinished races live in memory only. The code is still its starter's, so a page can
            # wait for the next race broadcast under it rather than send the class away.
            raise NotFound(
                "race_lost",
                f"the last race broadcast under code {code} did not finish before the server restarted; "
                "the code will show the next race its starter broadcasts",
                "code",
            ) from None
        race.code = race.code or code  # a finished race read back from the store
        return race

    def replayed(self, race: Race) -> None:
        if race.code and race.replay_of:
            # A replay is not stored: after a restart its code names the race it replayed.
            self.codes.settle(race.code, race.owner, race.replay_of)

    def count_viewers(self, race: Race) -> None:
        """Tell a broadcast race's viewers how many they are, so a teacher sees the class arrive.

        Once per quarter second at most: a class of thirty joining at once is one message each,
        not thirty. Live only, like a queue position: a count in the history would be stale.
        """
        if race.code is None or race.viewers_due is not None or self.loop is None or self.closing:
            return

        def count() -> None:
            race.viewers_due = None
            tell(protocol.wire(protocol.Viewers(race_id=race.id, count=len(race.subscribers))), race.subscribers)

        race.viewers_due = self.loop.call_later(VIEWER_COUNT_DELAY_S, count)
