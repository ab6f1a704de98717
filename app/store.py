"""Finished races and class codes in SQLite, so a restart loses neither.

Only races that reached ``done`` are written, in one transaction, so a crash mid-race
never leaves a partial race marked as finished. A class code is written when a race is
broadcast under it, so the code on the board outlives a restart of the server.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from app.errors import SetupError

SCHEMA = """
CREATE TABLE IF NOT EXISTS races (
    id TEXT PRIMARY KEY,
    cache_key TEXT NOT NULL,      -- configuration and device: races are deterministic per both
    config TEXT NOT NULL,
    device TEXT,
    created REAL NOT NULL,
    finished REAL NOT NULL,
    events TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS races_by_key ON races (cache_key, finished);
CREATE INDEX IF NOT EXISTS races_by_time ON races (finished);
CREATE TABLE IF NOT EXISTS codes (
    code TEXT PRIMARY KEY,
    owner TEXT NOT NULL,          -- the client that broadcasts under it
    race_id TEXT NOT NULL,        -- the latest race broadcast under it
    updated REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS codes_by_owner ON codes (owner);
"""


class StoreError(SetupError):
    """The race database cannot be opened, or the file is not one."""


class Store:
    def __init__(self, path: Path) -> None:
        self._lock, self._path = threading.Lock(), path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            self._db.row_factory = sqlite3.Row
            with self._lock:
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.executescript(SCHEMA)
        except (sqlite3.Error, OSError) as exc:
            # Left untouched: it may hold a term's races, and a file it does not recognise is the
            # operator's to inspect, not the server's to replace.
            raise StoreError(
                f"the race database {path} cannot be used ({exc}); it keeps the finished races and class "
                "codes. Set HEADSTART_DATABASE to another file (a new one is created), or move this one aside"
            ) from exc

    def save(self, race: dict[str, Any], cache_key: str, finished: float) -> None:
        with self._using(f"race {race['race_id']} could not be stored"), self._db:
            self._db.execute(
                "INSERT OR REPLACE INTO races VALUES (?, ?, ?, ?, ?, ?, ?)",
                (race["race_id"], cache_key, json.dumps(race["config"]), race["device"], race["created"],
                 finished, json.dumps(race["events"])),
            )  # fmt: skip

    def get(self, race_id: str) -> dict[str, Any] | None:
        with self._using(f"race {race_id} could not be read"):
            row = self._db.execute("SELECT * FROM races WHERE id = ?", (race_id,)).fetchone()
        return _race(row) if row else None

    def find(self, cache_key: str) -> dict[str, Any] | None:
        """The latest finished race of this configuration on this device."""
        with self._using("the finished races could not be searched"):
            row = self._db.execute(
                "SELECT * FROM races WHERE cache_key = ? ORDER BY finished DESC LIMIT 1", (cache_key,)
            ).fetchone()
        return _race(row) if row else None

    def recent(self, limit: int, offset: int) -> tuple[int, list[dict[str, Any]]]:
        with self._using("the finished races could not be listed"):
            total = self._db.execute("SELECT COUNT(*) FROM races").fetchone()[0]
            rows = self._db.execute(
                "SELECT id, config, device, created, finished, events FROM races ORDER BY finished DESC LIMIT ? OFFSET ?",
                (limit, offset),
            ).fetchall()
        return total, [_summary(row) for row in rows]

    def save_code(self, code: str, owner: str, race_id: str, now: float) -> None:
        with self._using(f"class code {code} could not be stored"), self._db:
            self._db.execute("INSERT OR REPLACE INTO codes VALUES (?, ?, ?, ?)", (code, owner, race_id, now))

    def race_of(self, code: str) -> str | None:
        """The latest race broadcast under a class code, or None for a code not in use."""
        with self._using("the class codes could not be read"):
            row = self._db.execute("SELECT race_id FROM codes WHERE code = ?", (code,)).fetchone()
        return row["race_id"] if row else None

    def code_of(self, owner: str) -> str | None:
        with self._using("the class codes could not be read"):
            row = self._db.execute("SELECT code FROM codes WHERE owner = ? ORDER BY updated DESC LIMIT 1", (owner,)).fetchone()
        return row["code"] if row else None

    def forget_codes(self, before: float) -> int:
        """Free the codes nothing was broadcast under since ``before``; returns how many."""
        with self._using("old class codes could not be cleared"), self._db:
            return self._db.execute("DELETE FROM codes WHERE updated < ?", (before,)).rowcount

    @contextmanager
    def _using(self, failure: str) -> Iterator[None]:
        """One call at a time; an sqlite error (a full disk, a file locked by another program) as a
        StoreError that says what could not be done, for the caller to decide what that costs."""
        try:
            with self._lock:
                yield
        except sqlite3.Error as exc:
            raise StoreError(f"{failure} in {self._path}: {str(exc).rstrip('.')}") from exc

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _race(row: sqlite3.Row) -> dict[str, Any]:
    return {"race_id": row["id"], "status": "done", "config": json.loads(row["config"]), "device": row["device"],
            "created": row["created"], "finished": row["finished"], "events": json.loads(row["events"])}  # fmt: skip


def _summary(row: sqlite3.Row) -> dict[str, Any]:
    done = json.loads(row["events"])[-1]
    return {"race_id": row["id"], "config": json.loads(row["config"]), "device": row["device"],
            "finished": row["finished"], "summary": done.get("summary"), "wall_s": done.get("wall_s")}  # fmt: skip
