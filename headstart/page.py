"""The page's configuration and templates: the same for a live server and a static site.

The page never guesses a limit, a class name or a colour: it reads this configuration, from
``/api/config`` or from a bake's copy of it.
"""

from __future__ import annotations

from typing import Any

import jinja2

from headstart.race import sources, strategies
from headstart.race.architecture import describe_units
from headstart.race.events import race_fields
from headstart.settings import FASHION_CLASSES, TEMPLATES_DIR, Limits, Settings

PAGES = ("index.html", "embed.html")


def templates() -> jinja2.Environment:
    """The page and its embed, as the server renders them and a bake writes them."""
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES_DIR), autoescape=True)
    env.globals["strategy_colours"] = strategies.css_properties()
    env.globals["recorded"] = False
    return env


def page_config(
    settings: Settings,
    limits: Limits,
    device: str | None,
    worker_error: str | None = None,
    classroom: tuple[str | None, bool] = (None, False),
) -> dict[str, Any]:
    """The page's configuration for ``limits`` and a worker on ``device`` (a bake's too).

    ``classroom``: the address students open a class race at, and whether they can reach it;
    a bake has no server, so no class races.
    """
    units = describe_units(settings)
    address, reachable = classroom
    return {
        "fields": [spec.model_dump() for spec in race_fields(limits)],
        "limits": limits.model_dump(),
        "units": [u.model_dump() for u in units],
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
    }


def _source_accuracy(settings: Settings, source: sources.Source) -> float | None:
    card = sources.card(settings.network.checkpoint, source) or {}
    accuracy = card.get("source_test_acc")
    return accuracy if isinstance(accuracy, float) else None
