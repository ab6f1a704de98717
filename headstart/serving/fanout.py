"""Fan-out: a race's messages to everyone watching it, and each connection's queue of them.

Every message about a race goes into its history (a late viewer gets it all first) and to each
viewer's outbox; an outbox that fills up because its client does not read is closed rather
than allowed to grow the server's memory.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Closing:
    """Last in an outbox: close the connection with this code and reason once what came before is sent."""

    code: int
    reason: str


class Outbox(asyncio.Queue[dict[str, Any] | Closing | None]):
    """One connection's messages on their way out, at most ``limit`` waiting.

    A client that reads slower than that (or not at all) would grow the server's memory
    without end: past the limit, what waits is dropped and a ``None`` tells the sender to
    close the connection.
    """

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit
        self.overflowed = False

    def put_nowait(self, item: dict[str, Any] | Closing | None) -> None:
        if self.overflowed:
            return
        if self.qsize() >= self.limit:
            self.overflowed = True
            while not self.empty():
                self.get_nowait()
            item = None
        super().put_nowait(item)


def tell(message: dict[str, Any], viewers: Iterable[Outbox]) -> None:
    """To each viewer, live only: news that would be stale in the history (a count, a position)."""
    for outbox in viewers:
        outbox.put_nowait(message)


def deliver(message: dict[str, Any], history: list[dict[str, Any]], viewers: Iterable[Outbox]) -> None:
    """Into the race's history, then to each viewer."""
    history.append(message)
    for outbox in viewers:
        outbox.put_nowait(message)
