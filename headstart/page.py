"""The page's configuration and templates: the same for a live server and a static site.

The page never guesses a limit, a class name or a colour: it reads this configuration, from
``/api/config`` or from a bake's copy of it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jinja2

from headstart.race import bodies, datasets, intake, lessons, sources, strategies
from headstart.race.architecture import describe_units
from headstart.race.events import race_fields
from headstart.settings import BUILT_IN_DATASET, FASHION_CLASSES, TEMPLATES_DIR, UPLOAD_ID, Limits, Settings

PAGES = ("index.html", "embed.html")
# What the built-in task's classes show at n = 50, over three seeds (docs/scenario.md, "Which
# classes transfer helps"); tests/test_class_lesson.py checks its claims against a fresh measurement.
CLASS_LESSON = (
    "On the built-in task at 50 images (3 seeds), scratch calls most pictures a dress or a shirt; "
    "fine-tune, from a body pretrained on other tops and footwear, gains most on pullovers (+80 points), "
    "ankle boots (+65) and sneakers (+48), and calls 32 of 200 pullovers shirts where scratch calls 118."
)


def templates() -> jinja2.Environment:
    """The page and its embed, as the server renders them and a bake writes them."""
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES_DIR), autoescape=True)
    env.globals["strategy_colours"] = strategies.css_properties()
    env.globals["recorded"] = False
    env.globals["class_lesson"] = CLASS_LESSON
    return env


def page_config(
    settings: Settings,
    limits: Limits,
    device: str | None,
    worker_error: str | None = None,
    classroom: tuple[str | None, bool] = (None, False),
    folders: Mapping[str, datasets.Folder] | None = None,
) -> dict[str, Any]:
    """The page's configuration for ``limits`` and a worker on ``device`` (a bake's too).

    ``classroom``: the address students open a class race at, and whether they can reach it;
    a bake has no server, so no class races. ``folders``: the dataset folders offered, scanned
    (scanned here when not given).
    """
    folders = datasets.scan_all(settings) if folders is None else folders
    units = describe_units(settings)
    address, reachable = classroom
    described = {"dataset": {name: folder.describe() for name, folder in folders.items()}}
    unavailable: dict[str, dict[str, str]] = {"body": {}}
    for body in bodies.BODIES:
        if why := bodies.unavailable(body, settings):
            unavailable["body"][body] = why
    return {
        "fields": [spec.model_dump() for spec in race_fields(limits, described, unavailable)],
        "limits": limits.model_dump(),
        "units": [u.model_dump() for u in units],
        # Per dataset: its classes and the most training images a race can have (null: as n allows).
        "datasets": {
            BUILT_IN_DATASET: {"classes": [FASHION_CLASSES[c] for c in settings.data.target_classes], "capacity": None},
            **{name: {"classes": list(f.classes), "capacity": f.capacity} for name, f in folders.items()},
        },
        # Per body: its units (counted for the built-in task's classes; the head grows with a
        # dataset's), the side of its images here, and whether its source task can be measured.
        "bodies": {
            body: {
                "units": [u.model_dump() for u in describe_units(settings, body)],
                "feature_dim": bodies.feature_dim(body, settings),
                "image_size": bodies.image_size(body, settings, "cuda" if device and device.startswith("cuda") else "cpu"),
                "has_source_task": spec.has_source_task,
            }
            for body, spec in bodies.BODIES.items()
        },
        "strategies": strategies.public(),
        "classes": [FASHION_CLASSES[c] for c in settings.data.target_classes],
        "source_classes": [FASHION_CLASSES[c] for c in settings.data.source_classes],
        # Each pretrained body: its source accuracy on its own source task, from its card (None
        # where no card is installed: a race from it then fails, naming the command that makes it).
        "sources": {name: _source_accuracy(settings, name) for name in sources.SOURCES},
        "test_size": settings.data.test_size,
        "batch_size": settings.training.batch_size,
        "schedule": {"warmup_epochs": settings.training.warmup_epochs, "cosine_decay": settings.training.cosine_decay},
        "device": device,
        "worker_error": worker_error,  # why this server cannot train (no dataset, say), or null
        "max_message_bytes": settings.quotas.max_message_bytes,
        # For the class code's link: a page opened at 127.0.0.1 shows students this instead.
        "class_address": address,
        "reachable_by_others": reachable,
        # The guided lessons (?lesson=ID): each one's question, preset race, free controls and
        # panel; those whose body cannot train here are left out.
        "lessons": [lessons.public(one) for one in lessons.LESSONS if one.body not in unavailable["body"]],
        # What the page's "Your images" may send (POST /api/datasets), and how an upload's id looks.
        "uploads": {
            "max_upload_mb": settings.uploads.max_upload_mb,
            "max_classes": settings.uploads.max_upload_classes,
            "max_images_per_class": settings.uploads.max_images_per_class,
            "max_images": settings.uploads.max_images_per_dataset,
            "max_files": settings.uploads.max_upload_files,
            "min_images_per_class": datasets.MIN_IMAGES,
            "formats": list(intake.FORMAT_TYPES),
            "days": settings.uploads.upload_days,
            "id_pattern": UPLOAD_ID.pattern,
        },
    }


def _source_accuracy(settings: Settings, source: sources.Source) -> float | None:
    card = sources.card(settings.network.checkpoint, source) or {}
    accuracy = card.get("source_test_acc")
    return accuracy if isinstance(accuracy, float) else None
