"""Bake a grid of real races into files, to replay them without training.

``python -m headstart bake --out DIR`` trains every race of a grid (or takes it from the store,
where this machine already trained it) and writes each to ``DIR/races/ID.json`` in the form
the store keeps a finished race: its configuration, the device that trained it and its events
as the server sent them, stamped with when each was emitted, so a replay can keep their real
pacing. ``DIR/bake.json`` lists the grid. A race already in DIR is not trained again, so an
interrupted bake resumes.

Around the races it writes a static site (headstart/site/pages.py): the page, replaying them with no
server behind it, for any static host or course page.

``python -m headstart serve --preload DIR`` copies a bake into the store: every baked race this
server's worker would train the same way (same device, same recipe) replays from the first
minute of a lesson instead of training.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from headstart.errors import SetupError
from headstart.lessons.sweep import Progress, log_spaced
from headstart.race import bodies, lessons, protocol, sources, uploads
from headstart.race.events import RACE_EVENT_TYPES, RaceConfig
from headstart.race.identity import cache_key
from headstart.settings import BUILT_IN_DATASET, Settings
from headstart.site import pages
from headstart.store import Store, today

FORMAT = "headstart-bake/1"


class BakeError(SetupError):
    """A bake that cannot be read or written; the message says which file and why."""


@dataclass(frozen=True)
class Grid:
    """Which races a bake holds: every combination of these values, the rest at their defaults."""

    n: tuple[int, ...]
    locked: tuple[int, ...]
    seeds: tuple[int, ...]
    epochs: int
    sources: tuple[str, ...] = (sources.DEFAULT,)
    keeps: tuple[str, ...] = ("none",)
    extras: tuple[tuple[str, ...], ...] = ((),)  # sets of extra lanes: none, or gradual and LoRA, …
    datasets: tuple[str, ...] = (BUILT_IN_DATASET,)
    bodies: tuple[str, ...] = (bodies.DEFAULT,)
    lessons: tuple[str, ...] = ()  # guided lessons whose preset races it holds too, at each seed

    def races(self, settings: Settings) -> list[RaceConfig]:
        """Every combination, once: an ImageNet body has one source (a source menu's others are
        moot for it), and no EWC (its source task is not here). Then each lesson's race."""
        combos = itertools.product(
            self.datasets, self.bodies, self.sources, self.keeps, self.extras, self.n, self.locked, self.seeds
        )
        found: dict[str, RaceConfig] = {}
        for dataset, body, source, keep, extra, n, k, s in combos:
            if keep == "ewc" and not bodies.BODIES[body].has_source_task:  # type: ignore[index]
                continue
            fields = {"n": n, "locked": k, "seed": s, "epochs": self.epochs, "source": source, "keep": keep, "extra": extra}
            config = RaceConfig.validate_with({**fields, "dataset": dataset, "body": body}, settings.limits)
            found.setdefault(config.key(), config)
        for lesson, s in itertools.product(self.lessons, self.seeds):
            config = RaceConfig.validate_with({**lessons.BY_ID[lesson].preset, "seed": s}, settings.limits)
            found.setdefault(config.key(), config)
        return list(found.values())


def default_grid(settings: Settings) -> Grid:
    """The data slider's round stops × every k fine-tune may lock × seeds 0–2, at the default epochs."""
    limits = settings.limits
    return Grid(
        n=tuple(log_spaced(limits.n.min, limits.n.max)),
        locked=tuple(range(limits.locked.min, limits.locked.max + 1)),
        seeds=(0, 1, 2),
        epochs=limits.epochs.default,
    )


def race_id(key: str) -> str:
    """A baked race's file name: the same configuration on the same device and recipe, the same name."""
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def _source_sha(settings: Settings, config: RaceConfig) -> str | None:
    if config.source == sources.DEFAULT or "source" not in config.identity():
        return None
    return str((sources.card(settings.network.checkpoint, config.source) or {}).get("sha256"))


def bake(settings: Settings, grid: Grid, out: Path, progress: Progress | None = None) -> list[Path]:
    """Write every race of the grid to ``out`` (those already there are kept), and the grid's index."""
    import torch

    from headstart.training.devices import describe_device
    from headstart.training.engine import Resources

    if settings.training.threads:  # as the server's worker trains: the thread count decides the bits, and names the device
        torch.set_num_threads(settings.training.threads)
    (out / "races").mkdir(parents=True, exist_ok=True)
    res = Resources.load(settings)
    device, recipe = describe_device(res.device), settings.recipe_fingerprint(res.card.sha256)
    store = Store(settings.paths.database) if settings.paths.database.is_file() else None
    try:
        return _bake(settings, grid, out, res, device, recipe, store, progress)
    finally:
        if store is not None:
            store.close()


def _bake(
    settings: Settings, grid: Grid, out: Path, res: Any, device: str, recipe: str, store: Store | None, progress: Progress | None
) -> list[Path]:
    from headstart.training.engine import run_race, warm_up

    races = grid.races(settings)
    folders = uploads.Folders(settings, also=uploads.named(c.dataset for c in races))

    def fingerprint(dataset: str) -> str | None:
        folder = folders.get(dataset)
        return folder.fingerprint if folder else None

    keyed = [(c, cache_key(c, device, recipe, _source_sha(settings, c), fingerprint(c.dataset))) for c in races]
    todo = [c for c, key in keyed if not (out / "races" / f"{race_id(key)}.json").is_file()]
    if todo:
        warm_up(res, todo[0])  # so no baked race's clocks pay the process's first-call costs
    keys = dict((c.key(), key) for c, key in keyed)
    for config in progress(todo, len(races)) if progress else todo:
        key = keys[config.key()]
        stored = store.find(key) if store else None
        rid = race_id(key)
        if stored is not None:
            events = [e for e in stored["events"] if e["type"] in RACE_EVENT_TYPES]
            created = stored["created"]
        else:
            created = time.time()
            events = [protocol.race_event(e, rid, time.time()) for e in run_race(config, res)]
        _write(out / "races" / f"{rid}.json", _race(rid, key, config, device, created, events))
    index = {
        "format": FORMAT,
        "device": device,
        "recipe": recipe,
        "grid": asdict(grid),
        "races": {c.key(): race_id(key) for c, key in keyed},
    }
    written = [out / "races" / f"{race_id(key)}.json" for _, key in keyed]
    pages.write(settings, out, [today(json.loads(p.read_text())) for p in written], device)
    _write(out / "bake.json", index)  # last: a folder with a bake.json holds a whole bake
    return written


def _race(rid: str, key: str, config: RaceConfig, device: str, created: float, events: list[dict[str, Any]]) -> dict[str, Any]:
    """A baked race, in the store's own shape plus its key."""
    return {
        "race_id": rid,
        "key": key,
        "status": "done",
        "config": config.model_dump(),
        "device": device,
        "created": created,
        "events": events,
    }


def _write(path: Path, data: dict[str, Any]) -> None:
    """Whole or not at all: a bake interrupted mid-write leaves no half a race to resume from."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, separators=(",", ":")))
    tmp.replace(path)


def read(out: Path) -> Iterable[dict[str, Any]]:
    """Every race of a bake, as written."""
    if not (out / "bake.json").is_file():
        raise BakeError(f"{out} holds no bake (no bake.json); make one with `python -m headstart bake --out {out}`")
    for path in sorted((out / "races").glob("*.json")):
        try:
            yield today(json.loads(path.read_text()))
        except ValueError as exc:
            raise BakeError(f"cannot read {path} ({exc}); bake it again: delete it and re-run the bake") from exc


def preload(out: Path, store: Store, races: Sequence[dict[str, Any]] | None = None) -> int:
    """Copy a bake's races into the store, under the keys their configurations are found by.

    A race is found only by a worker on the device and recipe that baked it: a bake from
    another machine is kept but never replayed as this one's training.
    """
    count = 0
    for race in races if races is not None else read(out):
        if store.find(race["key"]) is None:
            store.save(race, race["key"], race["created"])
            count += 1
    return count
