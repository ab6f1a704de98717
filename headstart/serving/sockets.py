"""The open websockets, by the address each came from, and who gives way when they are too many.

Each address may hold ``max_connections_per_address``: room for a class behind one school
router, with a second tab each. Past the global ``max_connections``, a newcomer from an address
holding fewer than another still gets in: the address holding the most closes its oldest idle
connection (one following no race in flight), or its oldest, told why. So addresses that fill
the table together cannot lock out one that holds little.
"""

from __future__ import annotations

from typing import Generic, Protocol, TypeVar

from headstart.serving.quotas import TooMany
from headstart.settings import Settings


class Open(Protocol):
    @property
    def idle(self) -> bool:
        """Following no race in flight: what its page loses by closing is the least."""


C = TypeVar("C", bound=Open)


class Sockets(Generic[C]):
    """Open connections per address, oldest first."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._open: dict[str, list[C]] = {}

    def __len__(self) -> int:
        return sum(len(held) for held in self._open.values())

    def held(self, address: str) -> int:
        return len(self._open.get(address, ()))

    def make_room(self, address: str) -> C | None:
        """Room for one more from ``address``: None where there is some, or the connection to
        close to make it. Refused past the address's own limit, or where no address holds at
        least two more than ``address`` would."""
        per_address, limit = self.settings.quotas.max_connections_per_address, self.settings.quotas.max_connections
        if self.held(address) >= per_address:
            why = f"this address has {per_address} connections open (limit {per_address}); close a page and try again"
            raise TooMany("too_many_connections_from_address", why)
        if len(self) < limit:
            return None
        most = max(self._open, key=self.held)
        if self.held(most) >= self.held(address) + 2:
            return next((conn for conn in self._open[most] if conn.idle), self._open[most][0])
        why = f"the server is at its limit of {limit} connections, shared fairly among addresses; try again shortly"
        raise TooMany("too_many_connections", why)

    def add(self, address: str, conn: C) -> None:
        self._open.setdefault(address, []).append(conn)

    def remove(self, address: str, conn: C) -> None:
        """Forget ``conn``; nothing to do where it was forgotten already (closed to make room)."""
        held = self._open.get(address, [])
        if conn in held:
            held.remove(conn)
        if not held:
            self._open.pop(address, None)  # an address that holds nothing takes no room


def room_made_reason(settings: Settings, held: int) -> str:
    """What a connection closed by ``make_room`` is told."""
    return (
        f"closed to make room for another address: the server holds at most {settings.quotas.max_connections} connections "
        f"(max_connections), and this address held the most of them ({held})"
    )
