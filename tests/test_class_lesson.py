"""The page's sentence on which classes transfer helps is what three seeds at n = 50 measure."""

from __future__ import annotations

from pathlib import Path

import pytest

from headstart.lessons import classes
from headstart.page import CLASS_LESSON
from headstart.race.events import Done, RaceConfig, StrategySummary
from headstart.race.lessons import BY_ID, Measured
from headstart.settings import Settings

# What CLASS_LESSON says, as data the measurement is checked against.
CLAIM = classes.Claim(helped=("Pullover", "Ankle boot", "Sneaker"), removed=("Pullover", "Shirt"))


def test_the_sentence_names_what_the_claim_checks() -> None:
    for name in (*CLAIM.helped, *CLAIM.removed):
        assert name.lower() in CLASS_LESSON.lower()


def test_the_check_fails_a_claim_the_numbers_do_not_bear(tiny: Settings) -> None:
    import numpy as np

    found = classes.Classes(
        ["a", "b", "c"],
        3,
        {"scratch": np.array([0.5, 0.5, 0.5]), "finetune": np.array([0.9, 0.4, 0.6])},
        {"scratch": np.array([[5, 5, 0], [0, 5, 5], [0, 0, 10]]), "finetune": np.array([[9, 1, 0], [0, 4, 6], [0, 0, 10]])},
    )
    assert list(classes.holds(found, classes.Claim(helped=("a",), removed=("a", "b")))) == []
    assert list(classes.holds(found, classes.Claim(helped=("b",), removed=("b", "c"))))


def _done(per_class: dict[str, list[float]], confusion: dict[str, list[list[int]]]) -> Done:
    summary = {
        s: StrategySummary(final_test_acc=0.5, best_test_acc=0.5, compute_s=1.0, per_class_acc=acc, confusion=confusion[s])
        for s, acc in per_class.items()
    }
    return Done(summary=summary, wall_s=1.0)  # type: ignore[arg-type]


def test_the_csv_holds_each_seeds_numbers_and_a_lesson_reads_their_mean(tiny: Settings, tmp_path: Path) -> None:
    eye, half = [[2, 0], [0, 2]], [0.5, 0.5]
    first = {"scratch": [[0, 2], [0, 2]], "frozen": eye, "finetune": eye}
    second = {"scratch": [[1, 1], [1, 1]], "frozen": eye, "finetune": eye}
    dones = [
        _done({"scratch": [0.0, 1.0], "frozen": half, "finetune": [1.0, 0.5]}, first),
        _done({"scratch": half, "frozen": half, "finetune": half}, second),
    ]
    configs = [RaceConfig.validate_with({"n": 25, "seed": seed}, tiny.limits) for seed in (0, 1)]
    found = classes.summarise(["a", "b"], dones, configs)
    classes.write_csv(found, tmp_path / "classes.csv")
    assert len(found.rows) == 2 * 3 * 2 and found.rows[0]["seed"] == "0"
    scratch = Measured(sweep="classes", where={"class": "a"}, strategy="scratch", metric="per_class_acc", value=0)
    assert scratch.read(tmp_path) == 25.0
    # Scratch called all 4 test images "b", then 2 of them: 3 on average.
    said = scratch.model_copy(update={"where": {"class": "b"}, "metric": "said"})
    assert said.read(tmp_path) == 3


@pytest.mark.slow
def test_the_classes_transfer_helps_are_the_ones_the_page_names(real: Settings, tmp_path: Path) -> None:
    found = classes.measure(real)
    assert list(classes.holds(found, CLAIM)) == []
    # The guided lesson's answer holds in a fresh measurement too: its lane leads on its class.
    lesson = BY_ID["classes"]
    classes.write_csv(found, tmp_path / "classes.csv")
    lanes = ("scratch", "frozen", "finetune")
    where = {"class": lesson.focus or ""}
    scores = {s: Measured(sweep="classes", where=where, strategy=s, metric="per_class_acc", value=0) for s in lanes}
    assert max(lanes, key=lambda s: scores[s].read(tmp_path)) == lesson.answer
