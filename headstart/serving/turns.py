"""Whose turn it is: which waiting race a free worker takes, when a training race pauses for a
smaller one, and how long each waiting race is told it will wait.

The order itself is queue.py's. A race pauses only at the end of an epoch's round, only for a
waiting race from another address whose whole share of the work is less than what it has
left, and only while its worker holds fewer than ``max_paused_per_worker`` paused races: a
paused race keeps its models in the worker's memory and resumes there, where it stopped.
"""

from __future__ import annotations

from headstart.race import protocol
from headstart.serving.pool import Pool, Slot
from headstart.serving.queue import RaceQueue
from headstart.serving.races import Race
from headstart.settings import Settings

PACE_WEIGHT = 0.3  # how much the latest race moves the learned pace: a few races, not one, set it


class Turns:
    def __init__(self, settings: Settings, pool: Pool) -> None:
        self.settings, self.pool = settings, pool
        self.waiting: RaceQueue[Race] = RaceQueue()
        self.pace: float | None = None  # seconds per multiply-accumulate, as races trained here

    def order(self) -> list[Race]:
        """The waiting races in the order they will train."""
        return self.waiting.order(self.pool.busy())

    def next_for(self, slot: Slot) -> Race | None:
        """The first race in order this slot's worker can train: any not started, or one it holds paused."""
        return next((race for race in self.order() if not race.paused or race in slot.parked), None)

    def to_pause(self) -> list[Slot]:
        """Slots whose race should give way at its round's end: the first race in order that the
        slot could take instead comes from another address and its address's work through it
        is less than what the training race has left."""
        ranked, due = self.waiting.ranked(self.pool.busy()), []
        for slot in self.pool.slots:
            race = slot.race
            if race is None or race.yielding or len(slot.parked) >= self.settings.quotas.max_paused_per_worker:
                continue
            first = next(((work, r) for work, r in ranked if not r.paused or r in slot.parked), None)
            if first is not None and first[1].address != race.address and first[0] < race.left:
                due.append(slot)
        return due

    def pause_due(self) -> None:
        """Ask each race that should give way (``to_pause``) to pause at its round's end."""
        for slot in self.to_pause():
            if slot.race:
                slot.race.yielding = True
                slot.worker.pause_race()

    def unqueue(self, race: Race) -> None:
        """Out of the queue; a paused race is dropped from its worker's memory too."""
        self.waiting.remove(race)
        for slot in self.pool.slots:
            if race in slot.parked:
                slot.parked.remove(race)
                slot.worker.drop_race(race.id)

    def learn(self, race: Race, wall_s: float) -> None:
        """A race trained here to its end in ``wall_s``: the pace waits are told in."""
        if race.cost is None or race.cost.total <= 0 or wall_s <= 0:
            return
        pace = wall_s / race.cost.total
        self.pace = pace if self.pace is None else (1 - PACE_WEIGHT) * self.pace + PACE_WEIGHT * pace

    def positions(self) -> list[tuple[Race, protocol.Queued]]:
        """What each waiting race's viewers are told: its position, and its wait where the pace is known.

        A race waits for the work ahead of it in order, and for a worker to come free: the
        soonest a training race ends, or, where the first race in order makes one pause, the
        end of that race's round. Spread over the workers, as they share it.
        """
        busy = [slot.race for slot in self.pool.slots if slot.race]
        pausing = [r for r in busy if r.yielding] or [slot.race for slot in self.to_pause() if slot.race]
        soonest = min((r.cost.next_round(r.rounds_done) if r in pausing else r.left for r in busy if r.cost), default=0.0)
        workers = max(1, sum(1 for slot in self.pool.slots if slot.worker.alive))
        told, ahead = [], 0.0
        for position, race in enumerate(self.order(), 1):
            wait = None if self.pace is None else round((soonest + ahead) * self.pace / workers, 1)
            told.append((race, protocol.Queued(race_id=race.id, position=position, wait_s=wait, paused=race.paused)))
            ahead += race.left
        return told

    def told(self, race: Race) -> protocol.Queued:
        """What ``race``'s viewers are told of where it stands (``positions``)."""
        return next(queued for r, queued in self.positions() if r is race)
