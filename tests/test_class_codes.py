from __future__ import annotations

import logging

import pytest

from headstart.serving import class_codes
from headstart.serving.class_codes import ClassCodes
from headstart.store import Store


def test_a_new_code_reads_plainly_off_a_projector_and_is_not_one_in_use(tmp_path, monkeypatch) -> None:
    codes = ClassCodes(Store(tmp_path / "races.sqlite3"))
    codes.keep("ABCD", "teacher", "r1")
    drawn = iter("ABCDWXYZ")  # the first draw is a code in use: it draws again
    monkeypatch.setattr(class_codes.secrets, "choice", lambda letters: next(drawn))
    assert codes.new() == "WXYZ"
    assert class_codes.LENGTH == 4 and not {"I", "O"} & set(class_codes.LETTERS)  # not read as 1 or 0


def test_a_code_names_its_teachers_latest_race_and_outlives_a_restart(tmp_path) -> None:
    store = Store(tmp_path / "races.sqlite3")
    codes = ClassCodes(store)
    codes.keep("QXRT", "teacher", "r1")
    codes.keep("QXRT", "teacher", "r2")
    assert (codes.of("teacher"), codes.race_of("QXRT"), codes.of("student"), codes.race_of("ZZZZ")) == ("QXRT", "r2", None, None)
    store.close()
    restarted = ClassCodes(Store(tmp_path / "races.sqlite3"))
    assert (restarted.of("teacher"), restarted.race_of("QXRT")) == ("QXRT", "r2")


def test_a_code_the_store_cannot_take_works_until_the_process_ends(tmp_path, caplog: pytest.LogCaptureFixture) -> None:
    store = Store(tmp_path / "races.sqlite3")
    codes = ClassCodes(store)
    codes.keep("QXRT", "teacher", "r1")
    store.close()  # every write now fails, as on a full disk
    with caplog.at_level(logging.ERROR):
        codes.keep("QXRT", "teacher", "r2")
    assert codes.race_of("QXRT") == "r2"
    assert caplog.messages == [
        f"class code QXRT could not be stored in {tmp_path / 'races.sqlite3'}: "
        "Cannot operate on a closed database; it works until the server restarts"
    ]
