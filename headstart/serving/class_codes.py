"""Class codes: four letters a teacher writes on the board, naming the latest race they broadcast.

A client's broadcasts share one code, so the board is written once a lesson. Codes live in the
store, so the one on the board outlives a restart of the server, and in memory as well, so it
keeps working while this process runs even when the store cannot take it (a full disk).
"""

from __future__ import annotations

import logging
import secrets
import time
from collections import OrderedDict

from headstart.serving.quotas import MAX_KEYS
from headstart.store import Store, StoreError

log = logging.getLogger(__name__)

# No I or O: a code read off a projector should not be mistaken for 1 or 0.
LETTERS, LENGTH = "ABCDEFGHJKLMNPQRSTUVWXYZ", 4
# Random draws before a nearly full table is called full: at 99 % taken, 64 draws all miss
# a free code about half the time; at 90 %, about once in a thousand.
DRAWS = 64


class CodesExhausted(Exception):
    """No free class code was found: nearly every code is held by a recent broadcast."""


class ClassCodes:
    def __init__(self, store: Store) -> None:
        self._store = store
        # Recent codes, kept in memory as well (bounded: the store holds them all).
        self._races_by_code: OrderedDict[str, str] = OrderedDict()
        self._codes_by_owner: OrderedDict[str, str] = OrderedDict()

    def forget_older_than(self, days: float) -> None:
        """Free the codes nothing was broadcast under for ``days``, for other teachers."""
        self._store.later(self._store.forget_codes, time.time() - days * 86400, failed=_not_cleared)

    def of(self, owner: str) -> str | None:
        """The code ``owner`` broadcast under last, if any."""
        return self._codes_by_owner.get(owner) or self._store.code_of(owner)

    def race_of(self, code: str) -> str | None:
        """The latest race broadcast under ``code``, or None for a code not in use."""
        return self._races_by_code.get(code) or self._store.race_of(code)

    def new(self) -> str:
        """A code no recent broadcast holds; CodesExhausted when ``DRAWS`` draws find none."""
        for _ in range(DRAWS):
            code = "".join(secrets.choice(LETTERS) for _ in range(LENGTH))
            if self.race_of(code) is None:
                return code
        raise CodesExhausted(f"no free class code: nearly all {len(LETTERS) ** LENGTH:,} are held by recent broadcasts")

    def keep(self, code: str, owner: str, race_id: str) -> None:
        """``race_id`` is now the latest race ``owner`` broadcast under ``code``."""
        for table, key, value in ((self._races_by_code, code, race_id), (self._codes_by_owner, owner, code)):
            table.pop(key, None)
            table[key] = value
            while len(table) > MAX_KEYS:
                table.popitem(last=False)
        self.settle(code, owner, race_id)

    def settle(self, code: str, owner: str, race_id: str) -> None:
        """What ``code`` names once this process is gone: ``race_id``, a race the store keeps."""
        self._store.later(self._store.save_code, code, owner, race_id, time.time(), failed=_unsaved)


def _not_cleared(exc: StoreError) -> None:
    log.warning("%s; they are cleared at the next start", exc)  # nothing is lost meanwhile


def _unsaved(exc: StoreError) -> None:
    log.error("%s; it works until the server restarts", exc)
