"""Whether the server takes a race: the limits per client, per address and in all.

Joining an identical race in flight and replaying a stored one take no queue slot, so only a
race that would train meets the queue's limits (docs/reliability.md says why each is enough).
"""

from __future__ import annotations

from headstart.race.events import RaceConfig, beyond_data
from headstart.serving.quotas import Refused, TooMany
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


def may_queue(address: str, registry: Registry, waiting: int, settings: Settings) -> None:
    """Refuse a race that would take a queue slot past the queue's or this address's limit."""
    limit = settings.max_races_per_address
    held = sum(1 for r in registry if r.address == address and r.trains)
    if held >= limit:
        raise TooMany(
            "too_many_races_from_address",
            f"{held} races from this address are queued or training (limit {limit}); wait for one to finish",
        )
    if waiting >= settings.max_queue:
        raise Refused("queue_full", f"the queue is full ({settings.max_queue} races waiting); try again shortly")
