"""The race's fields are defined once: RaceConfig names them, Limits bounds them, and every
consumer (the CLI, /api/config, the page, the CSV) reads them from ``race_fields``."""

from __future__ import annotations

import re

import pytest
from pydantic import ValidationError

from headstart.race.events import RaceConfig, race_fields
from headstart.race.export import CSV_FIELDS
from headstart.settings import Choice, Choices, IntRange, Limits


def test_every_race_field_has_a_range_and_every_range_a_field() -> None:
    assert list(RaceConfig.model_fields) == list(Limits.model_fields)


def test_each_field_says_what_it_is_and_what_it_allows() -> None:
    limits = Limits()
    for spec in race_fields(limits):
        allowed = getattr(limits, spec.name)
        default = list(allowed.default) if isinstance(allowed.default, tuple) else allowed.default
        assert spec.label and spec.help and spec.default == default
        if isinstance(allowed, Choice):
            assert spec.kind == "choice" and spec.options and spec.default in [o.value for o in spec.options]
            continue
        if isinstance(allowed, Choices):
            assert spec.kind == "set" and spec.options and set(spec.default) <= {o.value for o in spec.options}
            continue
        assert (spec.min, spec.max) == (allowed.min, allowed.max)
        assert spec.kind == ("int" if isinstance(allowed, IntRange) else "float")
    assert [s.name for s in race_fields(limits)] == [c for c in CSV_FIELDS if c in RaceConfig.model_fields]


def test_a_narrower_limit_narrows_the_field_and_its_validation() -> None:
    limits = Limits(n=IntRange(min=25, max=300, default=200))
    (n,) = [s for s in race_fields(limits) if s.name == "n"]
    assert n.max == 300
    with pytest.raises(ValidationError, match="n must be between 25 and 300, got 400"):
        RaceConfig.validate_with({"n": 400}, limits)
    assert RaceConfig.validate_with({}, limits).n == 200


def test_an_unknown_regulariser_is_refused_naming_the_ones_there_are() -> None:
    with pytest.raises(ValidationError, match="Input should be 'none', 'l2sp' or 'ewc'"):
        RaceConfig.validate_with({"keep": "dropout"}, Limits())
    with pytest.raises(ValidationError, match=re.escape("keep_strength must be between 0.001 and 100.0, got 1000.0")):
        RaceConfig.validate_with({"keep": "l2sp", "keep_strength": 1000.0}, Limits())


def test_without_a_regulariser_the_race_keeps_the_identity_it_had_before_there_were_any() -> None:
    # The store's key for the default race, as written before keep and keep_strength existed.
    before = '{"frozen":2,"n":200,"epochs":10,"seed":0,"lr_scratch":0.002,"lr_head":0.01,"body_lr_ratio":0.1}'
    limits = Limits()
    assert RaceConfig.validate_with({}, limits).key() == before
    assert RaceConfig.validate_with({"keep_strength": 5.0}, limits).key() == before  # a strength of nothing is moot
    kept = RaceConfig.validate_with({"keep": "ewc", "keep_strength": 5.0}, limits)
    assert kept.key() != before and '"keep":"ewc","keep_strength":5.0' in kept.key()
