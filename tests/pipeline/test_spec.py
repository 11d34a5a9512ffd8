"""The one typed ``key=value`` spec parser: tokenising, coercion to field types, round trip
through :func:`format_spec`, and errors that name the key, the value and the known keys."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import pandas as pd
import pytest

from pipeline.errors import InputError
from pipeline.spec import (
    coerce,
    format_spec,
    parse_fields,
    split_items,
    split_pair,
    split_scheme,
    to_timedelta,
)


@dataclass(frozen=True)
class Example:
    count: int = 1
    scale: float = 1.0
    fast: bool = False
    label: str = "a"
    start: pd.Timestamp = pd.Timestamp("2000-01-01")
    step: pd.Timedelta = pd.Timedelta(hours=6)
    levels: tuple[int, ...] = (500, 850)
    limit: float | None = None


def test_split_scheme_and_items():
    assert split_scheme("euler:nfe=8") == ("euler", "nfe=8")
    assert split_scheme("euler") == ("euler", "")
    assert split_items(" a = 1, ,b=x=y ", what="w") == {"a": "1", "b": "x=y"}
    assert split_items("", what="w") == {}
    assert split_pair("data.leads=[1, 6]", what="w") == ("data.leads", "[1, 6]")


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ("count", r"spec 'x': 'count' is not key=value; valid keys: count, scale, fast"),
        ("=3", "is not key=value"),
        ("count=1,count=2", "'count' is given twice"),
        ("cuont=1", r"unknown key 'cuont'; valid keys: count, scale, fast, label, start"),
        ("count=abc", r"count='abc' is not an integer"),
        ("count=2.5", r"count='2.5' is not an integer"),
        ("scale=big", r"scale='big' is not a number"),
        ("scale=nan", r"scale='nan' is not a number \('nan' is not a finite number\)"),
        ("scale=-inf", r"scale='-inf' is not a number"),
        ("fast=maybe", r"fast='maybe' is not true or false"),
        ("step=soon", r"step='soon' is not a duration such as 6h"),
        ("start=someday", r"start='someday' is not a date-time"),
        ("levels=500/high", r"levels='500/high' is not integers joined by '/'"),
    ],
)
def test_errors_name_the_key_the_value_and_the_known_keys(body, words):
    with pytest.raises(InputError, match=words):
        parse_fields(Example, body, what="spec 'x'")


def test_values_are_coerced_to_the_field_types():
    values = parse_fields(
        Example,
        "count=3,scale=2,fast=true,label=b,start=2001-02-03T06,step=12h,levels=850/500,limit=none",
        what="w",
    )
    assert values == {
        "count": 3,
        "scale": 2.0,
        "fast": True,
        "label": "b",
        "start": pd.Timestamp("2001-02-03T06"),
        "step": pd.Timedelta(hours=12),
        "levels": (850, 500),
        "limit": None,
    }
    assert type(values["scale"]) is float and type(values["count"]) is int
    assert parse_fields(Example, "limit=0.5", what="w") == {"limit": 0.5}


def test_python_values_are_coerced_too():
    assert coerce(int, 4.0) == 4 and type(coerce(int, 4.0)) is int
    assert coerce(float, 1) == 1.0 and type(coerce(float, 1)) is float
    assert coerce(tuple[int, ...], [850, 500.0]) == (850, 500)
    assert coerce(pd.Timedelta, "1D") == pd.Timedelta(days=1)
    with pytest.raises(ValueError):
        coerce(int, 2.5)
    with pytest.raises(TypeError):
        coerce(int, True)


def test_format_spec_round_trips():
    example = Example(count=7, scale=0.1 + 0.2, fast=True, label="x", step=pd.Timedelta(minutes=90))
    text = format_spec(example)
    assert text == (
        "count=7,scale=0.30000000000000004,fast=true,label=x,start=2000-01-01T00:00:00,"
        "step=5400s,levels=500/850,limit=None"
    )
    assert Example(**parse_fields(Example, text, what="w")) == example


def test_a_duration_in_days_is_read_as_people_write_it():
    """``5d`` is five days, with no deprecation warning from pandas (which wants ``5D``),
    in a spec and in the forecast command's leads."""
    from flows.commands.forecast import parse_leads

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert parse_fields(Example, "step=5d", what="spec 'x'")["step"] == pd.Timedelta(days=5)
        assert to_timedelta(" 2 d") == pd.Timedelta(days=2)
        assert to_timedelta("36h") == pd.Timedelta(hours=36)
        assert parse_leads("2d", "1d", 24.0) == [24.0, 48.0]
    with pytest.raises(ValueError):
        to_timedelta("soon")


@pytest.mark.parametrize("text", ["nan", "NaT", "", " "])
def test_a_duration_that_pandas_reads_as_nat_is_refused(text):
    """pandas reads ``nan``, ``NaT`` and an empty string as NaT, not as an error:
    ``wxens compact --keep nan`` (or ``--keep ''``) crashed with an AttributeError
    traceback and ``wxens forecast --lead nan`` with 'cannot convert float NaN'."""
    from flows.commands.forecast import parse_leads

    with pytest.raises(ValueError, match="not a duration"):
        to_timedelta(text)
    with pytest.raises(InputError, match="not durations such as 24h"):
        parse_leads(text, None, 6.0)
