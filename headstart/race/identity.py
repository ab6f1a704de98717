"""What makes two races the same race: the key a finished race is stored, found and replayed under."""

from __future__ import annotations

from headstart.race.events import RaceConfig

# Bumped when what a stored race's compute clocks mean changes while its accuracies stay the
# same (so the recipe, and the shipped sweep, stay valid): older races retrain, not replay.
CLOCKS = 2  # 2: each strategy is charged its whole locked pass, shared or kept (done's reused_s)
# Bumped when what a stored race's events carry grows: older races retrain rather than replay without it.
EVENTS = 2  # 2: each epoch carries source_acc


def cache_key(
    config: RaceConfig, device: str | None, recipe: str | None, source_sha: str | None = None, dataset: str | None = None
) -> str:
    """Races are deterministic per configuration, seed, device and recipe: the key of a stored result.

    The recipe names the default source's checkpoint; a race from another source names its own
    too (``source_sha``), so a rebuilt checkpoint's races retrain rather than replay; and a race on
    a folder dataset names its files' fingerprint (``dataset``), so a changed folder's races retrain.
    """
    source = f"|source {source_sha}" if source_sha else ""
    folder = f"|dataset {dataset}" if dataset else ""
    return f"{config.key()}|{device}|{recipe}|clocks {CLOCKS}|events {EVENTS}{source}{folder}"
