"""Whether the server takes a race: the limit per client, and a fair share of the queue.

Joining an identical race in flight and replaying a stored one take no queue slot, so only a
race that would train meets the queue's limit. An address's share is bounded by sharing, not
by a small count: the queue takes any number of one address's races while it has room, trains
them in fair turns with every other address's (queue.py), and, once full, makes room for an
address holding fewer by dropping the newest waiting race of the address holding the most
(docs/reliability.md says why that is enough).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from headstart.race.events import RaceConfig, beyond_data
from headstart.serving.quotas import Refused, TooMany
from headstart.serving.races import Race
from headstart.serving.registry import Registry
from headstart.settings import Settings


def may_start(config: RaceConfig, owner: str, registry: Registry, held: int | None, settings: Settings) -> None:
    """Refuse a client's race past its limit in flight, or one larger than the dataset (``held``
    target images, once a worker has said)."""
    in_flight = sum(1 for r in registry if r.owner == owner and not r.finished)
    if in_flight >= settings.max_races_per_client:
        raise TooMany(
            "too_many_races",
            f"you already have {in_flight} race(s) in flight (limit "
            f"{settings.max_races_per_client}); cancel it or wait for it to finish",
        )
    if held is not None and config.n > held:
        why = beyond_data(config.n, held, len(settings.target_classes))
        raise Refused("dataset_too_small", f"config.n: {why}", "config.n")


def make_room(address: str, waiting: Iterable[Race], settings: Settings) -> Race | None:
    """Room in the queue for a race from ``address``: None where there is some, or the race to
    drop to make it, the newest of the address waiting with the most, where that address would
    still hold more than ``address`` does. Refused where every address holds its share."""
    queued = [race for race in waiting if not race.paused]  # a paused race holds a worker's memory, not a slot
    limit = settings.max_queue
    if len(queued) < limit:
        return None
    held = Counter(race.address for race in queued)
    most, count = max(held.items(), key=lambda item: (item[1], max(r.created for r in queued if r.address == item[0])))
    if count >= held[address] + 2:
        return max((race for race in queued if race.address == most), key=lambda race: race.created)
    raise TooMany(
        "queue_full",
        f"the queue is full ({limit} races waiting, max_queue) and this address already has "
        f"{held[address]} of them, as many as any other; start it again once one has trained",
    )


def dropped_reason(settings: Settings, count: int) -> str:
    """What the viewers of a race dropped by ``make_room`` are told."""
    return (
        f"dropped from the queue to make room for another address's race: the queue holds {settings.max_queue} "
        f"waiting races (max_queue), and this address had the most of them ({count}). Start it again when you like"
    )
