"""The races waiting for a worker, and the order they train in: fair turns.

The hub adds a race when no worker is free and takes the first in order when one is; every
viewer of a waiting race is told its position. The order is decided here alone.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Iterable
from typing import Generic, Protocol, TypeVar


class Waiting(Protocol):
    id: str
    address: str  # where its starter's request came from
    code: str | None  # a broadcast race's class code


R = TypeVar("R", bound="Waiting")


class RaceQueue(deque[R], Generic[R]):
    """Waiting races in arrival order; ``order`` gives the order they will train in."""

    def order(self, training: Iterable[R] = ()) -> list[R]:
        """Round robin over the addresses that started them, each address's in arrival order.

        1) One address that queues many races delays another's by at most one of its own.
        2) An address's races already ``training`` count as its turns taken: with several
           workers, no address holds two while another's race waits.
        3) Within a turn, a broadcast race goes first: a class watching a teacher's race does
           not wait behind every student's own.
        """
        seen = Counter(race.address for race in training)
        ranked = []
        for arrival, race in enumerate(self):
            turn = seen[race.address]
            seen[race.address] += 1
            ranked.append((turn, race.code is None, arrival, race))
        return [race for *_, race in sorted(ranked, key=lambda r: r[:3])]

    def position(self, race: R, training: Iterable[R] = ()) -> int:
        """Where ``race`` stands: 1 trains next."""
        return self.order(training).index(race) + 1
