"""The race's fields are defined once: RaceConfig names them, Limits bounds them, and every
consumer (the CLI, /api/config, the page, the CSV) reads them from ``race_fields``."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from app.events import RaceConfig, race_fields
from app.server import CSV_FIELDS
from app.settings import IntRange, Limits


def test_every_race_field_has_a_range_and_every_range_a_field() -> None:
    assert list(RaceConfig.model_fields) == list(Limits.model_fields)


def test_each_field_says_what_it_is_and_what_it_allows() -> None:
    limits = Limits()
    for spec in race_fields(limits):
        allowed = getattr(limits, spec.name)
        assert spec.label and spec.help and (spec.min, spec.max, spec.default) == (allowed.min, allowed.max, allowed.default)
        assert spec.kind == ("int" if isinstance(allowed, IntRange) else "float")
    assert [s.name for s in race_fields(limits)] == [c for c in CSV_FIELDS if c in RaceConfig.model_fields]


def test_a_narrower_limit_narrows_the_field_and_its_validation() -> None:
    limits = Limits(n=IntRange(min=25, max=300, default=200))
    (n,) = [s for s in race_fields(limits) if s.name == "n"]
    assert n.max == 300
    with pytest.raises(ValidationError, match="n must be between 25 and 300, got 400"):
        RaceConfig.validate_with({"n": 400}, limits)
    assert RaceConfig.validate_with({}, limits).n == 200
