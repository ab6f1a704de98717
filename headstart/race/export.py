"""A finished race as tables: one CSV row per strategy per epoch, and one per test image."""

from __future__ import annotations

import csv
import io
from typing import Any

from headstart.race.events import Epoch, RaceConfig

# Each row also names its race and configuration, so files from several races concatenate
# into one table a class can compare (by n, by locked units) without losing which is which.
# A strategy's last epoch also carries its per-class accuracy and confusion matrix, in the
# plan's class order: "0.91 0.85 …", and the matrix's rows (true class) joined by " | ".
OUTCOME_FIELDS = ("per_class_acc", "confusion")
CSV_FIELDS = (
    "race_id",
    *RaceConfig.model_fields,
    "device",
    *(name for name in Epoch.model_fields if name != "type"),
    *OUTCOME_FIELDS,
)


def races_csv(race: dict[str, Any]) -> str:
    """``race`` as the store keeps it (its id, configuration, device and events), as CSV."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_FIELDS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    about = {"race_id": race["race_id"], **race["config"], "device": race["device"]}
    events = race["events"]
    done = next((e for e in events if e["type"] == "done"), None)
    last = max((e["epoch"] for e in events if e["type"] == "epoch"), default=0)
    for event in events:
        if event["type"] == "epoch":  # a list (the extra lanes, the units trained) as one cell: "gradual lora"
            row = {k: " ".join(map(str, v)) if isinstance(v, list | tuple) else v for k, v in (about | event).items()}
            summary = done["summary"].get(event["strategy"], {}) if done and event["epoch"] == last else {}
            if summary.get("confusion") is not None:
                row["per_class_acc"] = " ".join(f"{acc:.4f}" for acc in summary["per_class_acc"])
                row["confusion"] = " | ".join(" ".join(map(str, counts)) for counts in summary["confusion"])
            writer.writerow(row)
    return out.getvalue()


def predictions_csv(race: dict[str, Any]) -> str | None:
    """One row per test image: its index in its dataset, its true class and each strategy's
    prediction, by class name; None for a race without its predictions (unfinished, or stored
    before they were kept)."""
    predictions = next((e for e in race["events"] if e["type"] == "predictions"), None)
    plan = next((e for e in race["events"] if e["type"] == "plan"), None)
    if predictions is None or plan is None:
        return None
    classes, strategies = plan["classes"], list(predictions["predicted"])
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["race_id", "dataset", "images_version", "index", "true_class", *strategies])
    about = [race["race_id"], predictions["dataset"], predictions["images_version"]]
    for i, (index, truth) in enumerate(zip(predictions["index"], predictions["truth"], strict=True)):
        writer.writerow([*about, index, classes[truth], *(classes[predictions["predicted"][s][i]] for s in strategies)])
    return out.getvalue()
