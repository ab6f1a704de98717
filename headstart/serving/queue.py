"""The races waiting for a worker, and the order they train in: fair shares of the work.

The hub adds a race when no worker is free (or when one pauses to let another train) and takes
the first in order when one is; every viewer of a waiting race is told its position. The order
is decided here alone, from what each race has left to do (headstart/race/cost.py).
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Iterable
from typing import Generic, Protocol, TypeVar


class Waiting(Protocol):
    id: str
    address: str  # where its starter's request came from
    code: str | None  # a broadcast race's class code
    created: float  # when it was asked for: its place among equals
    paused: bool  # started, then paused to let another train: it resumes before its address's next

    @property
    def left(self) -> float:
        """The work it has still to do, in multiply-accumulates."""


R = TypeVar("R", bound="Waiting")


class RaceQueue(deque[R], Generic[R]):
    """Waiting races; ``order`` gives the order they will train in."""

    def ranked(self, training: Iterable[R] = ()) -> list[tuple[float, R]]:
        """Each waiting race with its address's work up to and including it, least first.

        1) An address's work is what its races have left: those training first, then a paused
           one, then its waiting ones, a broadcast first, then in the order they came.
        2) A race stands at its address's work through it; the least goes first, and among
           equals a broadcast, then the earliest.
        So a small race from an address with nothing running goes before another address's
        hour of large races; equal races from several addresses take turns, as round robin
        would; and splitting work into many small races gains an address nothing, since they
        add up. ``training`` counts as work its address holds.
        """
        held: defaultdict[str, float] = defaultdict(float)
        for race in training:
            held[race.address] += race.left
        ranked = []
        for race in sorted(self, key=lambda r: (not r.paused, r.code is None, r.created)):
            held[race.address] += race.left
            ranked.append((held[race.address], race))
        ranked.sort(key=lambda pair: (pair[0], pair[1].code is None, pair[1].created))
        return ranked

    def order(self, training: Iterable[R] = ()) -> list[R]:
        return [race for _, race in self.ranked(training)]

    def position(self, race: R, training: Iterable[R] = ()) -> int:
        """Where ``race`` stands: 1 trains next."""
        return self.order(training).index(race) + 1
