"""A bake as a static site: the page, its modules and the recorded races, for any static host.

The same templates and modules the live server serves, rendered with ``recorded`` set: the
page then reads its configuration and its panels from files beside it (``api/*.json``) and
replays races from ``races/`` instead of opening a websocket. Each field of its configuration
lists the values the bake recorded, so its controls offer only races it can replay. Nothing is
fetched from another origin, and no server is needed beyond one that serves files.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from headstart.lessons.panels import every_panel
from headstart.page import PAGES, page_config, templates
from headstart.race import pictures, sources, uploads
from headstart.race.export import predictions_csv, races_csv
from headstart.settings import BUILT_IN_DATASET, STATIC_DIR, Settings, offering


def write(settings: Settings, out: Path, races: Sequence[dict[str, Any]], device: str) -> None:
    """Write the site around a bake's races in ``out``: pages, modules, configuration, panels,
    CSVs, and the images its data rows and galleries show."""
    env = templates()
    for name in PAGES:
        (out / name).write_text(env.get_template(name).render(recorded=True))
    shutil.copytree(STATIC_DIR, out / "static", dirs_exist_ok=True)
    api = out / "api"
    api.mkdir(exist_ok=True)
    _dump(api / "config.json", config(settings, races, device))
    for panel in every_panel():
        found = panel.payload(panel.csv(settings))
        if found is not None:  # a sweep not shipped: its panel stays hidden, as on a live server
            _dump(api / f"sweep-{panel.name}.json", found)
    for race in races:
        (out / "races" / f"{race['race_id']}.csv").write_text(races_csv(race))
        if (table := predictions_csv(race)) is not None:  # where the live server has it: races/ID/predictions.csv
            (out / "races" / race["race_id"]).mkdir(exist_ok=True)
            (out / "races" / race["race_id"] / "predictions.csv").write_text(table)
    write_images(settings, out, races)


def write_images(settings: Settings, out: Path, races: Sequence[dict[str, Any]]) -> int:
    """Each recorded combination's examples (``api/examples-DATASET-BODY-SOURCE.json``) and every
    image they and the races' galleries name, under ``images/``, as the live server names them.
    Returns how many images were written."""
    shelf = pictures.Pictures(settings, folders(settings, races))
    wanted: set[tuple[str, str, str, int]] = set()
    combos = {
        (
            r["config"].get("dataset", BUILT_IN_DATASET),
            r["config"].get("body", "tiny"),
            r["config"].get("source", sources.DEFAULT),
        )
        for r in races
    }
    for dataset, body, source in sorted(combos):
        examples = shelf.examples(dataset, body, source)
        _dump(out / "api" / f"examples-{dataset}-{body}-{source}.json", examples)
        for section in examples.values():
            for row in section["classes"]:
                wanted |= {(section["dataset"], section["images_version"], i["part"], i["index"]) for i in row["images"]}
    for race in races:
        for event in race["events"]:
            if event["type"] == "predictions":
                wanted |= {(event["dataset"], event["images_version"], "test", i) for i in event["index"]}
    for dataset, version, part, index in sorted(wanted):
        path = out / "images" / dataset / version / part / f"{index}.png"
        if not path.is_file():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(shelf.thumbnail(dataset, version, part, index))
    return len(wanted)


def config(settings: Settings, races: Sequence[dict[str, Any]], device: str) -> dict[str, Any]:
    """The live page's configuration, with what was recorded: each field's values and each race."""
    shelf = folders(settings, races)
    found = page_config(settings, offering(settings.limits, shelf), device, folders=shelf)  # uploads baked in its menu
    for field in found["fields"]:  # a set-valued field's values are lists: told apart by their JSON
        # A race baked before a field existed was raced at its default.
        chosen = [race["config"].get(field["name"], field["default"]) for race in races]
        values = {json.dumps(value): value for value in chosen}
        field["recorded"] = sorted(values.values())

    # Only the lessons whose race was recorded: a baked page replays, it cannot train another.
    def recorded(preset: dict[str, Any]) -> bool:
        return any(all(_same(race["config"].get(name), value) for name, value in preset.items()) for race in races)

    found["lessons"] = [lesson for lesson in found["lessons"] if recorded(lesson["preset"])]
    days = sorted(time.strftime("%Y-%m-%d", time.gmtime(race["created"])) for race in races)
    found["recorded"] = {
        "device": device,
        "dates": sorted({days[0], days[-1]}) if days else [],
        "races": [{"id": race["race_id"], "config": race["config"]} for race in races],
    }
    return found


def _same(recorded: Any, preset: Any) -> bool:
    """A recorded race field against a lesson's preset (the extra lanes: a list in both, or none recorded)."""
    return bool((list(recorded or []) if isinstance(preset, list) else recorded) == preset)


def folders(settings: Settings, races: Sequence[dict[str, Any]]) -> uploads.Folders:
    """The dataset folders offered, and the uploads the baked races trained on: a bake lists them in its menu."""
    return uploads.Folders(settings, also=uploads.named(r["config"].get("dataset", BUILT_IN_DATASET) for r in races))


def _dump(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, separators=(",", ":")))
