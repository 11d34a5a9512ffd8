"""The time axis: fixed and calendar-month steps, missing times, tendency pairs."""

from __future__ import annotations

import calendar

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from pipeline.errors import InputError
from pipeline.timeaxis import (
    MEAN_MONTH,
    calendar_months,
    check_one_axis,
    consecutive_pairs,
    describe_step,
    missing_times,
    native_step,
)


def mid_months(year: int, months: list[int]) -> pd.DatetimeIndex:
    """CF mid-month stamps, written from the calendar: the start plus half the month's days."""
    return pd.DatetimeIndex(
        [
            pd.Timestamp(year, m, 1) + pd.Timedelta(days=calendar.monthrange(year, m)[1] / 2)
            for m in months
        ]
    )


def test_hourly_axis_with_a_gap_keeps_its_fixed_step():
    times = pd.date_range("2019-03-01", periods=48, freq="h").delete([5, 6, 30])
    assert native_step(times) == pd.Timedelta("1h")
    assert list(missing_times(times)) == [
        pd.Timestamp("2019-03-01 05:00"),
        pd.Timestamp("2019-03-01 06:00"),
        pd.Timestamp("2019-03-02 06:00"),
    ]


def test_month_starts_are_one_calendar_month_apart_with_nothing_missing():
    times = pd.date_range("2018-01-01", periods=24, freq="MS")
    step = native_step(times)
    assert calendar_months(step) == 1 and describe_step(step) == "1 calendar month"
    assert missing_times(times).empty  # was 21 "missing" times at a 31-day step


def test_missing_months_are_the_absent_months_stamped_like_their_neighbours():
    starts = pd.date_range("2018-01-01", periods=24, freq="MS")
    assert list(missing_times(starts.delete([3, 4, 13]))) == [
        pd.Timestamp("2018-04-01"),
        pd.Timestamp("2018-05-01"),
        pd.Timestamp("2019-02-01"),
    ]
    ends = pd.date_range("2019-01-31", periods=12, freq="ME")
    assert list(missing_times(ends.delete(1))) == [pd.Timestamp("2019-02-28")]
    middles = mid_months(2020, list(range(1, 13)))
    assert middles[1] == pd.Timestamp("2020-02-15 12:00")  # leap February
    assert native_step(middles) == MEAN_MONTH
    assert list(missing_times(middles.delete(5))) == [pd.Timestamp("2020-06-16")]


def test_seasonal_and_yearly_steps():
    seasons = pd.date_range("2019-12-01", periods=8, freq="3MS")
    assert describe_step(native_step(seasons)) == "3 calendar months"
    assert list(missing_times(seasons.delete(2))) == [pd.Timestamp("2020-06-01")]
    years = pd.date_range("2000-01-01", periods=5, freq="YS")
    assert calendar_months(native_step(years)) == 12


@pytest.mark.parametrize(
    "times",
    [
        pd.date_range("2019-01-01", periods=20, freq="30D"),  # drifts through the months
        pd.date_range("2019-01-01", periods=20, freq="D"),
        pd.DatetimeIndex(["2019-01-31", "2019-02-01"]),  # one day, across a month end
    ],
)
def test_fixed_steps_are_not_taken_for_months(times):
    step = native_step(times)
    assert calendar_months(step) is None
    assert step == pd.Timedelta(np.diff(times.values)[0])


def test_the_stored_step_reads_back_as_a_timedelta():
    """Stores keep the step as str(pd.Timedelta); readers parse it with pd.Timedelta."""
    for months in (1, 3, 12):
        text = str(months * MEAN_MONTH)
        assert calendar_months(pd.Timedelta(text)) == months
    assert str(MEAN_MONTH) == "30 days 10:29:06"  # 365.2425 / 12 days
    assert calendar_months(pd.Timedelta("1h")) is None
    assert describe_step(pd.Timedelta("6h")) == "6 h"
    assert (
        describe_step(pd.Timedelta("1D")) == "1 day"
        and describe_step(pd.Timedelta("2D")) == "2 days"
    )
    assert (
        describe_step(pd.Timedelta("30h")) == "30 h"
        and describe_step(pd.Timedelta("10min")) == "10 min"
    )
    assert describe_step(pd.Timedelta("90s")) == "90 s"


def test_consecutive_pairs_span_one_step():
    months = pd.date_range("2018-01-01", periods=12, freq="MS").delete(4)
    pairs = consecutive_pairs(months, native_step(months))
    assert pairs.tolist() == [0, 1, 2, 4, 5, 6, 7, 8, 9]  # not (3, 4): April to June
    hours = pd.date_range("2019-01-01", periods=6, freq="h").delete(2)
    assert consecutive_pairs(hours, pd.Timedelta("1h")).tolist() == [0, 2, 3]


def test_a_single_time_has_no_step_and_nothing_missing():
    one = pd.DatetimeIndex(["2019-03-01"])
    assert native_step(one) == pd.Timedelta(0) and missing_times(one).empty


def test_inputs_of_one_ingest_on_one_axis_of_calendar_months_and_of_hours():
    """Monthly files follow each other, or fill months the others miss; a file stamped
    mid-month after month starts is off their axis, named. Single-time hourly files (a long
    record) follow each other; one half an hour off is named."""

    def parts(**times: pd.DatetimeIndex) -> list[tuple[str, xr.Dataset]]:
        return [(label, xr.Dataset(coords={"time": t})) for label, t in times.items()]

    starts = pd.date_range("2018-01-01", periods=24, freq="MS")
    check_one_axis(parts(y2019=starts[12:], y2018=starts[:12].delete([5, 6])), "monthly")
    check_one_axis(parts(most=starts.delete([5, 6]), summer=starts[5:7]), "monthly")
    middles = mid_months(2020, [1, 2, 3])
    with pytest.raises(InputError, match=r"monthly: the inputs that start earlier than mid .*"):
        check_one_axis(parts(y2019=starts[12:], mid=middles), "monthly")
    hours = pd.date_range("2000-01-01", periods=48, freq="h")
    check_one_axis(
        [(f"h{i}", xr.Dataset(coords={"time": hours[i : i + 1]})) for i in range(48)], "hourly"
    )
    off = [*hours[:47], hours[47] - pd.Timedelta("30min")]
    with pytest.raises(
        InputError, match="up to 2000-01-02T22:00, but 1 of the 1 time.*first 2000-01-02T22:30"
    ):
        check_one_axis(
            [(f"h{i}", xr.Dataset(coords={"time": [t]})) for i, t in enumerate(off)], "x"
        )


def test_messages_show_times_in_one_form():
    """Messages mixed 2019-03-01 06:00:00 (str of a Timestamp) with 2019-03-01T06:00 (wxens
    info, --init); every time is now shown as info shows it, seconds only where there are."""
    from pipeline.errors import time_text, times_text
    from pipeline.forecast_times import span

    assert time_text(pd.Timestamp("2019-03-01 06:00")) == "2019-03-01T06:00"
    assert time_text(np.datetime64("2019-03-01T06:00:30")) == "2019-03-01T06:00:30"
    assert times_text(pd.DatetimeIndex(["2019-03-01", "2019-03-02 12:00"])) == (
        "2019-03-01T00:00, 2019-03-02T12:00"
    )
    inits = pd.DatetimeIndex(["2019-03-22 00:00", "2019-03-22 06:00"])
    assert span(inits) == "2 initial times 2019-03-22T00:00..2019-03-22T06:00"


def test_the_remaining_messages_show_times_as_info_does(caplog):
    """Messages left after the first sweep still printed ``['2000-01-01 00:00:00']``: a
    forecast lacking an asked initial time, the valid times the truth lacks."""
    from pipeline.alignment import warn_missing_valid_times
    from verification.run import select_init_times

    inits = pd.DatetimeIndex(["2000-01-01 00:00", "2000-01-01 06:00"])
    ensemble = xr.Dataset(coords={"init_time": inits})
    with pytest.raises(InputError) as refused:
        select_init_times(ensemble, ["2000-01-02T00"], "f.zarr")
    assert str(refused.value) == (
        "f.zarr has no initial time(s) 2000-01-02T00:00; it holds 2 initial times "
        "2000-01-01T00:00..2000-01-01T06:00: give initial times from those, init_times= (--init)"
    )
    with pytest.raises(InputError, match="00:00; it holds initial time 2000-01-01T00:00: give"):
        select_init_times(ensemble.isel(init_time=[0]), ["2000-01-02T00"], "f.zarr")
    with caplog.at_level("WARNING", logger="pipeline.alignment"):
        warn_missing_valid_times(inits, 4)
    assert "(first 2000-01-01T00:00, 2000-01-01T06:00)" in caplog.text


def test_a_block_with_scattered_nans_names_its_first_time_as_info_does():
    """The refusal of scattered NaNs said 'in the block starting 2021-01-01 06:00:00'."""
    from pipeline.ingest_blocks import _refuse_nans

    t2m = np.ones((2, 2, 2))
    t2m[1, 0, 0] = np.nan
    data = xr.Dataset(
        {"t2m": (("time", "latitude", "longitude"), t2m)},
        coords={"time": pd.date_range("2021-01-01T06", periods=2, freq="6h")},
    )
    with pytest.raises(InputError, match="in the block starting 2021-01-01T06:00; repair"):
        _refuse_nans({"t2m": 1}, False, "a.nc", data)
