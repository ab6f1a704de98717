"""Every race this server knows: recent ones in memory, finished ones in the store as well.

A finished race is found again by its key (headstart/race/identity.py), so a repeat of it
replays rather than trains.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import Any

from headstart.race import pictures, sources, uploads
from headstart.race.events import RaceConfig
from headstart.race.identity import cache_key
from headstart.serving.quotas import NotFound
from headstart.serving.races import Race
from headstart.settings import Settings
from headstart.store import Store, StoreError

log = logging.getLogger(__name__)

KEEP = 500  # races held in memory; a finished race past these is still in the store
LISTING_WAIT_S = 1.0  # how long a listing of finished races waits for one being written
SAVE_RETRY_S = 60.0  # a finished race the store refused (a full or read-only disk) is tried again so often


class Registry:
    def __init__(self, settings: Settings, store: Store) -> None:
        self.settings, self.store = settings, store
        # Every dataset folder offered, scanned and split once (a folder that cannot be one stops the
        # server here), and the uploads, each scanned when a race or a page first names it.
        self.uploads = uploads.Uploads(settings)
        self.folders = uploads.Folders(settings, self.uploads)
        self.pictures = pictures.Pictures(settings, self.folders)  # their images, as the page shows them
        self.races: OrderedDict[str, Race] = OrderedDict()
        self.loop: asyncio.AbstractEventLoop | None = None  # set once serving: where retries are scheduled
        self.closing = False

    def __iter__(self) -> Iterator[Race]:
        return iter(self.races.values())

    def add(self, race: Race) -> None:
        self.races[race.id] = race
        self._forget_old()

    def get(self, race_id: str) -> Race:
        """A race in memory, or a finished one read back from the store."""
        race = self.races.get(race_id)
        if race is None and (stored := self.store.get(race_id)):
            race = Race(
                id=race_id,
                config=RaceConfig.as_stored(stored["config"]),
                owner="",
                status="done",
                messages=stored["events"],
                created=stored["created"],
                device=stored["device"],
            )
            self.add(race)
        if race is None:
            raise NotFound("unknown_race", f"no race with id {race_id!r}", field="race_id")
        return race

    def owner_of(self, race_id: str) -> str | None:
        race = self.races.get(race_id)
        return race.owner if race else None

    def joinable(self, config: RaceConfig, may_join: Callable[[Race], bool]) -> Race | None:
        """An identical race still training: a second training would give the same curves."""
        return next((r for r in self if r.config == config and r.trains and may_join(r)), None)

    async def recent(self, limit: int, offset: int) -> dict[str, Any]:
        # A race that has just finished is listed, unless the database is held locked: then the
        # list comes without it rather than keeping the page waiting.
        await asyncio.to_thread(self.store.written, timeout=LISTING_WAIT_S)
        total, races = self.store.recent(limit, offset)
        return {"total": total, "limit": limit, "offset": offset, "races": races}

    def key(self, config: RaceConfig, device: str | None, recipe: str | None) -> str:
        sha = None
        if config.source != sources.DEFAULT and "source" in config.identity():
            card = sources.card(self.settings.network.checkpoint, config.source) or {}
            sha = str(card.get("sha256"))
        folder = self.folders.get(config.dataset)
        return cache_key(config, device, recipe, sha, folder.fingerprint if folder else None)

    def trained_here(self, key: str) -> dict[str, Any] | None:
        """A race of ``key`` this process trained to the end.

        Found whether or not the store has it yet (its write may be waiting for a lock, or have
        failed on a full disk), and without a read that could wait.
        """
        race = next((r for r in reversed(self.races.values()) if r.key == key), None)
        return race.snapshot() if race else None

    def stored(self, config: RaceConfig, device: str, recipe: str | None) -> dict[str, Any] | None:
        """A finished race of ``config`` on this device and recipe, to replay."""
        key = self.key(config, device, recipe)
        if trained := self.trained_here(key):
            return trained
        try:
            return self.store.find(key)
        except StoreError as exc:
            log.error("%s; training the race rather than replaying it", exc)
            return None

    def save(self, snapshot: dict[str, Any], key: str, finished: float) -> None:
        """Store a finished race; one the store refuses is tried again until it takes it, so it is
        listed once the disk has room again. Meanwhile memory keeps it for repeats."""

        def failed(exc: StoreError) -> None:  # on the store's thread
            log.error("%s; it replays from memory meanwhile, and is tried again in %g s", exc, SAVE_RETRY_S)
            if self.loop is not None and not self.closing:
                with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: the server stopped
                    self.loop.call_soon_threadsafe(self.loop.call_later, SAVE_RETRY_S, self.save, snapshot, key, finished)

        self.store.later(self.store.save, snapshot, key, finished, failed=failed)

    def _forget_old(self) -> None:
        while len(self.races) > KEEP:
            oldest_id = next((rid for rid, r in self.races.items() if r.finished), None)
            if oldest_id is None:
                return
            self.races.pop(oldest_id)  # a finished race is still in the store, where its code finds it
