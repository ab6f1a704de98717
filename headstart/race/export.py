"""A finished race as a table: one CSV row per strategy per epoch."""

from __future__ import annotations

import csv
import io
from typing import Any

from headstart.race.events import Epoch, RaceConfig

# Each row also names its race and configuration, so files from several races concatenate
# into one table a class can compare (by n, by locked units) without losing which is which.
CSV_FIELDS = ("race_id", *RaceConfig.model_fields, "device", *(name for name in Epoch.model_fields if name != "type"))


def races_csv(race: dict[str, Any]) -> str:
    """``race`` as the store keeps it (its id, configuration, device and events), as CSV."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_FIELDS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    about = {"race_id": race["race_id"], **race["config"], "device": race["device"]}
    for event in race["events"]:
        if event["type"] == "epoch":  # a list (the extra lanes, the units trained) as one cell: "gradual lora"
            writer.writerow({k: " ".join(v) if isinstance(v, list | tuple) else v for k, v in (about | event).items()})
    return out.getvalue()
