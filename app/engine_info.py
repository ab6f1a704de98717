"""Static facts about the model for the page (units and parameter counts), with no data or training."""

from __future__ import annotations

from functools import lru_cache

from app import models
from app.events import UnitInfo
from app.settings import Settings


@lru_cache(maxsize=8)
def _units(width: int, blocks: int, classes: int) -> tuple[UnitInfo, ...]:
    counts = models.unit_params(models.build(width, blocks, classes))
    return tuple(
        UnitInfo(name=n, label=lbl, params=p) for (n, p), lbl in zip(counts.items(), (*models.UNIT_LABELS, "head"), strict=True)
    )


def describe_units(settings: Settings) -> list[UnitInfo]:
    """The five body units and the head, in input-to-output order, with parameter counts."""
    return list(_units(settings.width, settings.blocks_per_stage, len(settings.target_classes)))
