"""A period written as text (``str(period)``, as a spread calibration records it) reads back."""

import datetime
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest

from pipeline.config_fields import settle_fields
from pipeline.errors import InputError
from pipeline.schema import Period


@pytest.mark.parametrize(
    "period",
    [Period("2019-03-18", "2019-03-21"), Period(None, "2019-03-21"), Period("2019-03-18T06")],
)
def test_a_period_written_as_text_reads_back_as_itself(period):
    assert Period.from_str(str(period)) == period


@pytest.mark.parametrize(
    "text", ["the held-out periods of 4 cross-validation folds (...)", "", "soon to later"]
)
def test_other_text_reads_as_no_period(text):
    assert Period.from_str(text) is None


@pytest.mark.parametrize(
    "start",
    [
        pd.Timestamp("2019-03-18T06"),
        np.datetime64("2019-03-18T06:00"),
        datetime.datetime(2019, 3, 18, 6),
    ],
)
def test_a_period_of_times_is_the_period_of_their_text(start):
    # a notebook's Period(pd.Timestamp(...), ...) was kept as given: the calibration then
    # pickled the Timestamp into the checkpoint, which load_checkpoint refuses to read
    period = Period(start, pd.Timestamp("2019-03-21"))
    assert period == Period("2019-03-18T06:00", "2019-03-21T00:00")
    assert all(type(side) is str for side in (period.start, period.end))


def test_a_period_of_something_else_is_refused_naming_it():
    with pytest.raises(InputError, match=r"period start 20190318 .*'2019-03-18'"):
        Period(20190318, "2019-03-21")


@dataclass(frozen=True)
class _Texts:
    """A config with a text field, settled as every config is (YAML reads a date as one)."""

    when: str = ""

    def __post_init__(self) -> None:
        settle_fields(self)


@pytest.mark.parametrize(
    ("time", "text"),
    [
        (pd.Timestamp("2019-03-18T06"), "2019-03-18T06:00"),
        (np.datetime64("2019-03-18T06:00"), "2019-03-18T06:00"),
        (datetime.datetime(2019, 3, 18, 6), "2019-03-18T06:00"),
        (datetime.datetime(2019, 3, 18, 6, 0, 30), "2019-03-18T06:00:30"),
        (datetime.date(2019, 3, 18), "2019-03-18"),  # the whole day, as Period reads it
    ],
)
def test_a_time_is_the_same_text_in_a_period_and_in_a_config_field(time, text):
    # a config field wrote a datetime as 2019-03-18T06:00:00 and refused a numpy time; a
    # Period refused a date, the value YAML gives for 2019-03-18
    assert Period(time).start == _Texts(time).when == text
