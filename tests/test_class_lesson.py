"""The page's sentence on which classes transfer helps is what three seeds at n = 50 measure."""

from __future__ import annotations

import pytest

from headstart.lessons import classes
from headstart.page import CLASS_LESSON
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


@pytest.mark.slow
def test_the_classes_transfer_helps_are_the_ones_the_page_names(real: Settings) -> None:
    found = classes.measure(real)
    assert list(classes.holds(found, CLAIM)) == []
