from __future__ import annotations

import pytest

from headstart.settings import Settings, SettingsError, get_settings


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
    assert Settings().server.workers == 3
    monkeypatch.delenv("HEADSTART_WORKERS")
    monkeypatch.setenv("HEADSTART_MAX_CONCURRENT_RACES", "2")
    assert Settings().server.workers == 2
    assert Settings(**Settings().model_dump(mode="json")).server.workers == 2  # as a worker reads its copy


def test_settings_come_in_sections_and_today_s_flat_names_still_set_them(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("HEADSTART_WIDTH", "8")  # flat, as the docs and deployments write it
    monkeypatch.setenv("HEADSTART_RAY_ADDRESS", "auto")
    monkeypatch.setenv("HEADSTART_ALLOWED_HOSTS", '["class.example"]')
    monkeypatch.setenv("HEADSTART_NETWORK__BLOCKS_PER_STAGE", "2")  # by section
    monkeypatch.setenv("HEADSTART_QUOTAS__MAX_QUEUE", "7")
    monkeypatch.setenv("HEADSTART_MAX_QUEUE", "9")  # the section's own name wins
    settings = Settings()
    assert (settings.network.width, settings.network.blocks_per_stage) == (8, 2)
    assert settings.ray.address == "auto" and settings.server.allowed_hosts == ("class.example",)
    assert settings.quotas.max_queue == 7
    built = Settings(width=4, database=tmp_path / "r.sqlite3")  # flat names in the constructor
    assert built.network.width == 4 and built.paths.database == tmp_path / "r.sqlite3"
    copied = built.model_copy(update={"port": 9000, "network": {"width": 32}})
    assert (copied.server.port, copied.server.host, copied.network.width) == (9000, "127.0.0.1", 32)
    assert built.server.port == 8000  # the original is unchanged


def test_a_bad_setting_is_named_as_the_environment_spells_it(monkeypatch) -> None:
    monkeypatch.setenv("HEADSTART_WIDTH", "2")
    get_settings.cache_clear()
    with pytest.raises(SettingsError, match=r"HEADSTART_WIDTH: Input should be greater than or equal to 4 \(got '2'\)"):
        get_settings()
    get_settings.cache_clear()
