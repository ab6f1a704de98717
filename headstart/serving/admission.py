"""Whether the server takes a race: the limit per client, and a fair share of the queue.

Joining an identical race in flight and replaying a stored one take no queue slot, so only a
race that would train meets the queue's limit. An address's share is bounded by sharing, not
by a small count: the queue takes any number of one address's races while it has room, trains
them in fair turns with every other address's (queue.py), and, once full, makes room for a
race that would train before the last one by dropping that last one (docs/reliability.md
says why that is enough).
"""

from __future__ import annotations

from collections.abc import Iterable

from headstart.race import bodies
from headstart.race.events import RaceConfig, beyond_data
from headstart.race.uploads import UploadError
from headstart.serving.queue import RaceQueue
from headstart.serving.quotas import NotFound, Refused, TooMany
from headstart.serving.races import Race
from headstart.serving.registry import Registry
from headstart.settings import UPLOAD_ID, Limits, Settings


def offered(limits: Limits, held: int | None) -> Limits:
    """``limits`` with n capped at the ``held`` target images the worker's dataset holds, once it
    has said: a page then offers only races this server can train. The worker trains the
    default race before it is ready, so a dataset it reports always holds the default n."""
    if held is None or held >= limits.n.max:
        return limits
    return limits.model_copy(update={"n": limits.n.model_copy(update={"max": held})})


def may_start(config: RaceConfig, owner: str, registry: Registry, held: int | None, settings: Settings) -> None:
    """Refuse a client's race past its limit in flight, or one larger than the dataset (``held``
    target images, once a worker has said)."""
    in_flight = sum(1 for r in registry if r.owner == owner and not r.finished)
    if in_flight >= settings.quotas.max_races_per_client:
        raise TooMany(
            "too_many_races",
            f"you already have {in_flight} race(s) in flight (limit "
            f"{settings.quotas.max_races_per_client}); cancel it or wait for it to finish",
        )
    missing = bodies.unavailable(config.body, settings)
    if missing:
        raise Refused("body_unavailable", f"config.body: {missing}", "config.body")
    classes = len(settings.data.target_classes)
    if UPLOAD_ID.fullmatch(config.dataset):
        try:
            registry.uploads.touch(config.dataset)  # a race is a use: the upload does not expire under it
        except UploadError as exc:
            raise NotFound(exc.code, f"config.dataset: {exc.message}", "config.dataset") from None
    if folder := registry.folders.get(config.dataset):
        held, classes = folder.capacity, len(folder.classes)
    if held is not None and config.n > held:
        why = beyond_data(config.n, held, classes)
        raise Refused("dataset_too_small", f"config.n: {why}", "config.n")


def make_room(race: Race, waiting: Iterable[Race], training: Iterable[Race], settings: Settings) -> Race | None:
    """Room in the queue for ``race``: None where there is some; where it is full, the waiting
    race that would train last in the queue's fair order (queue.py), to drop so ``race`` fits.
    Refused where ``race`` itself would be last: then no address holds more than its share."""
    waiting = list(waiting)
    queued = [r for r in waiting if not r.paused]  # a paused race holds a worker's memory, not a slot
    limit = settings.quotas.max_queue
    if len(queued) < limit:
        return None
    order = [r for r in RaceQueue([*waiting, race]).order(training) if not r.paused]
    if order[-1] is not race:
        return order[-1]
    raise TooMany(
        "queue_full",
        f"the queue is full ({limit} races waiting, max_queue), and this race would train after every one of "
        "them: this address already has its share; start it again once one has trained",
    )


def dropped_reason(settings: Settings, address_waiting: int) -> str:
    """What the viewers of a race dropped by ``make_room`` are told."""
    return (
        f"dropped from the queue to make room for another address's race: the queue holds {settings.quotas.max_queue} "
        f"waiting races (max_queue), and this one would have trained last, its address having "
        f"{address_waiting} waiting. Start it again when you like"
    )
