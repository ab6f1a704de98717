"""The race database: what another program holding its lock costs, and what it does not."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from headstart import store as store_module
from headstart.store import Store, StoreError

RACE = {"race_id": "r1", "config": {"n": 25}, "device": "cpu", "created": 1.0, "events": [{"type": "done"}]}


@contextmanager
def held(path: Path) -> Iterator[sqlite3.Connection]:
    """Another program's write transaction on the file (a backup, an operator's sqlite3 shell)."""
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        yield other
    finally:
        other.execute("COMMIT")
        other.close()


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Store]:
    monkeypatch.setattr(store_module, "BUSY_TIMEOUT_S", 0.05)  # each try waits this long for the lock
    kept = Store(tmp_path / "races.sqlite3")
    yield kept
    kept.close()


def test_a_write_asked_for_while_the_file_is_locked_lands_when_it_is_released(
    store: Store, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    failures: list[StoreError] = []
    store.save_code("QXRT", "teacher", "r0", 1.0)
    with held(tmp_path / "races.sqlite3"):
        store.later(store.save, RACE, "key", 2.0, failed=failures.append)
        store.later(store.save_code, "QXRT", "teacher", "r1", 3.0, failed=failures.append)
        assert not store.written(timeout=0.3)  # waiting for the lock, not given up
        # Reads go on meanwhile, and see what was there before.
        assert store.get("r1") is None and store.race_of("QXRT") == "r0"
    assert store.written(timeout=10) and not failures
    assert store.get("r1")["events"] == RACE["events"] and store.race_of("QXRT") == "r1"  # in the order asked
    waited = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert waited == [
        f"race r1 could not be stored in {tmp_path / 'races.sqlite3'}: database is locked; "
        "waiting for the lock (up to 600 s), the server goes on meanwhile"
    ]


def test_a_write_that_waiting_cannot_mend_fails_at_once_and_says_why(store: Store, tmp_path: Path) -> None:
    failures: list[StoreError] = []
    full = Store(tmp_path / "full.sqlite3")
    full.close()  # every write fails, as on a full disk
    store.later(full.save, RACE, "key", 2.0, failed=failures.append)
    assert store.written(timeout=10)
    assert [(str(f), f.locked) for f in failures] == [
        (f"race r1 could not be stored in {tmp_path / 'full.sqlite3'}: Cannot operate on a closed database", False)
    ]


def test_a_write_that_raises_something_else_is_logged_not_lost_in_the_thread(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    store.later(store.save, {**RACE, "config": object()}, "key", 2.0, failed=pytest.fail)  # not JSON: a bug
    store.later(store.save, RACE, "key", 3.0, failed=pytest.fail)
    assert store.written(timeout=10) and store.get("r1") is not None  # the writes after it still run
    assert [r.getMessage() for r in caplog.records if r.levelname == "ERROR"] == ["a write to the race database failed"]


def test_closing_gives_up_a_write_still_locked_out_and_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store_module, "BUSY_TIMEOUT_S", 0.05)
    store = Store(tmp_path / "races.sqlite3")
    failures: list[StoreError] = []
    with held(tmp_path / "races.sqlite3"):
        store.later(store.save, RACE, "key", 2.0, failed=failures.append)
        store.later(store.save_code, "QXRT", "teacher", "r1", 3.0, failed=failures.append)
        assert not store.written(timeout=0.2)
        store.close()  # a server stopping: it does not wait for the other program for ever
    assert [(str(f).split(" in ")[0], f.locked) for f in failures] == [
        ("race r1 could not be stored", True),
        ("class code QXRT could not be stored", True),
    ]
