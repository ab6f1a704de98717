"""Finished races and class codes in SQLite, so a restart loses neither.

Only races that reached ``done`` are written, in one transaction, so a crash mid-race
never leaves a partial race marked as finished. A class code is written when a race is
broadcast under it, so the code on the board outlives a restart of the server.

Reads and writes use a connection each. In WAL mode a read never waits for a write, so the
server's lookups go on while another program (a backup, an operator's sqlite3 shell) holds
the file's write lock; ``later`` runs a write on the store's own thread, waiting out such a
lock, so the server's event loop never does.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as Pending
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from headstart.errors import SetupError
from headstart.settings import UPLOAD_PREFIX, renamed

log = logging.getLogger(__name__)

BUSY_TIMEOUT_S = 5.0  # how long one statement waits for a lock another program holds
LOCKED_FOR_S = 600.0  # how long a write waits, in all, before it is given up

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
    """The race database cannot be opened, or the file is not one, or a call to it failed."""

    def __init__(self, message: str, locked: bool = False) -> None:
        super().__init__(message)
        self.locked = locked  # another connection holds the lock: the same call may work later


class Store:
    def __init__(self, path: Path) -> None:
        self._path = path
        self._lock, self._write_lock = threading.Lock(), threading.Lock()
        self._writes = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store-writes")  # in order
        self._closing = False
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db, self._write_db = self._connect(), self._connect()
            with self._write_lock:
                self._write_db.execute("PRAGMA journal_mode=WAL")
                self._write_db.executescript(SCHEMA)
        except (sqlite3.Error, OSError) as exc:
            self._writes.shutdown()
            # Left untouched: it may hold a term's races, and a file it does not recognise is the
            # operator's to inspect, not the server's to replace.
            raise StoreError(
                f"the race database {path} cannot be used ({exc}); it keeps the finished races and class "
                "codes. Set HEADSTART_DATABASE to another file (a new one is created), or move this one aside"
            ) from exc

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self._path, timeout=BUSY_TIMEOUT_S, check_same_thread=False, isolation_level=None)
        db.row_factory = sqlite3.Row
        return db

    # --- writes: on the calling thread, or on the store's own with ``later`` ------------
    def save(self, race: dict[str, Any], cache_key: str, finished: float) -> None:
        with self._writing(f"race {race['race_id']} could not be stored") as db:
            db.execute(
                "INSERT OR REPLACE INTO races VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    race["race_id"],
                    cache_key,
                    json.dumps(race["config"]),
                    race["device"],
                    race["created"],
                    finished,
                    json.dumps(race["events"]),
                ),
            )

    def save_code(self, code: str, owner: str, race_id: str, now: float) -> None:
        with self._writing(f"class code {code} could not be stored") as db:
            db.execute("INSERT OR REPLACE INTO codes VALUES (?, ?, ?, ?)", (code, owner, race_id, now))

    def forget_codes(self, before: float) -> int:
        """Free the codes nothing was broadcast under since ``before``; returns how many."""
        with self._writing("old class codes could not be cleared") as db:
            return db.execute("DELETE FROM codes WHERE updated < ?", (before,)).rowcount

    def later(self, write: Callable[..., object], *args: Any, failed: Callable[[StoreError], None]) -> None:
        """Run ``write(*args)`` on the store's thread, after the writes asked for before it.

        A file another program holds locked is waited for, up to LOCKED_FOR_S, and said once in
        the log; any other failure, or a lock held longer, goes to ``failed``, on that thread.
        Once the store is closed the write runs here and now, so nothing asked for is dropped.
        """
        if self._closing:
            self._write_until_unlocked(write, args, failed)  # closing: one try
            return
        self._writes.submit(self._write_until_unlocked, write, args, failed)

    def written(self, timeout: float) -> bool:
        """Wait up to ``timeout`` s for the writes asked for so far; whether they are done."""
        if self._closing:
            return True
        try:
            self._writes.submit(lambda: None).result(timeout)
        except Pending:
            return False
        return True

    def _write_until_unlocked(
        self, write: Callable[..., object], args: tuple[object, ...], failed: Callable[[StoreError], None]
    ) -> None:
        give_up, told = time.monotonic() + LOCKED_FOR_S, False
        while True:
            try:
                write(*args)
                return
            except StoreError as exc:
                if exc.locked and self._closing:
                    # The server is stopping: the writes behind this one try once, without waiting
                    # a busy timeout each for a lock that is not being let go.
                    with self._write_lock:
                        self._write_db.execute("PRAGMA busy_timeout = 0")
                if not exc.locked or self._closing or time.monotonic() > give_up:
                    failed(exc)
                    return
                if not told:
                    log.warning("%s; waiting for the lock (up to %.0f s), the server goes on meanwhile", exc, LOCKED_FOR_S)
                    told = True
            except Exception:  # a bug: said, not kept inside an unread future
                log.exception("a write to the race database failed")
                return

    # --- reads: never wait for a write (WAL) -----------------------------------------
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
            # A race on an upload is not listed: the upload's id in its config is the upload's secret.
            listed = "WHERE coalesce(json_extract(config, '$.dataset'), '') NOT LIKE ?"
            prefix = f"{UPLOAD_PREFIX}%"
            total = self._db.execute(f"SELECT COUNT(*) FROM races {listed}", (prefix,)).fetchone()[0]
            columns = "id, config, device, created, finished, events"
            rows = self._db.execute(
                f"SELECT {columns} FROM races {listed} ORDER BY finished DESC LIMIT ? OFFSET ?", (prefix, limit, offset)
            ).fetchall()
        return total, [_summary(row) for row in rows]

    def race_of(self, code: str) -> str | None:
        """The latest race broadcast under a class code, or None for a code not in use."""
        with self._using("the class codes could not be read"):
            row = self._db.execute("SELECT race_id FROM codes WHERE code = ?", (code,)).fetchone()
        return row["race_id"] if row else None

    def code_of(self, owner: str) -> str | None:
        with self._using("the class codes could not be read"):
            row = self._db.execute("SELECT code FROM codes WHERE owner = ? ORDER BY updated DESC LIMIT 1", (owner,)).fetchone()
        return row["code"] if row else None

    @contextmanager
    def _using(self, failure: str, lock: threading.Lock | None = None) -> Iterator[None]:
        """One call at a time per connection; an sqlite error (a full disk, a file locked by
        another program) as a StoreError that says what could not be done, for the caller to
        decide what that costs."""
        try:
            with lock or self._lock:
                yield
        except sqlite3.Error as exc:
            locked = getattr(exc, "sqlite_errorcode", None) in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
            raise StoreError(f"{failure} in {self._path}: {str(exc).rstrip('.')}", locked=locked) from exc

    @contextmanager
    def _writing(self, failure: str) -> Iterator[sqlite3.Connection]:
        """The write connection, in one transaction."""
        with self._using(failure, self._write_lock), self._write_db:
            yield self._write_db

    def close(self) -> None:
        """Finish the writes asked for (a write still waiting for a lock tries once more), then close."""
        self._closing = True
        self._writes.shutdown(wait=True)
        for db, lock in ((self._db, self._lock), (self._write_db, self._write_lock)):
            with lock:
                db.close()


def _race(row: sqlite3.Row) -> dict[str, Any]:
    return today(
        {
            "race_id": row["id"],
            "status": "done",
            "config": json.loads(row["config"]),
            "device": row["device"],
            "created": row["created"],
            "finished": row["finished"],
            "events": json.loads(row["events"]),
        }
    )


def today(race: Mapping[str, Any]) -> dict[str, Any]:
    """A race as stored (or baked) before a field was renamed, with its configuration, and
    every message's, under today's names."""

    def config_renamed(message: dict[str, Any]) -> dict[str, Any]:
        return message | {"config": renamed(message["config"])} if isinstance(message.get("config"), dict) else message

    return config_renamed(dict(race)) | {"events": [config_renamed(event) for event in race.get("events", [])]}


def _summary(row: sqlite3.Row) -> dict[str, Any]:
    done = json.loads(row["events"])[-1]
    return {
        "race_id": row["id"],
        "config": renamed(json.loads(row["config"])),
        "device": row["device"],
        "finished": row["finished"],
        "summary": done.get("summary"),
        "wall_s": done.get("wall_s"),
    }
