from __future__ import annotations

from headstart.settings import Settings


def test_the_recipe_fingerprint_changes_with_anything_that_changes_the_numbers(tiny: Settings) -> None:
    base = tiny.recipe_fingerprint("a" * 64)
    assert base == tiny.model_copy().recipe_fingerprint("a" * 64)  # stable: stored races stay findable
    assert base != tiny.recipe_fingerprint("b" * 64)  # another checkpoint
    for change in ({"warmup_epochs": 0.0}, {"cosine_decay": False}, {"frozen_batch_size": 8}, {"width": 8}):
        assert base != tiny.model_copy(update=change).recipe_fingerprint("a" * 64), change
    # what only changes speed or serving leaves stored races valid
    for change in ({"cache_features": False}, {"feature_cache_mb": 0}, {"port": 9000}, {"eval_batch_size": 100}):
        assert base == tiny.model_copy(update=change).recipe_fingerprint("a" * 64), change


def test_the_number_of_workers_reads_from_either_name(monkeypatch) -> None:
    from headstart.settings import Settings

    monkeypatch.setenv("HEADSTART_WORKERS", "3")
    assert Settings().max_concurrent_races == 3
    monkeypatch.delenv("HEADSTART_WORKERS")
    monkeypatch.setenv("HEADSTART_MAX_CONCURRENT_RACES", "2")
    assert Settings().max_concurrent_races == 2
    assert Settings(**Settings().model_dump(mode="json")).max_concurrent_races == 2  # as a worker reads its copy
