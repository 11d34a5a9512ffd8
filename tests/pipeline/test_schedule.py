"""Which initial times a scheduled run forecasts (latest_init_times) and verifies
(truth_arrived): cycle, history window, missing times, half-written forecasts."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
import zarr

from pipeline.analysis_store import AnalysisStore
from pipeline.errors import InputError
from pipeline.forecast_store import ForecastProvenance, write_forecast
from pipeline.schedule import available_times, latest_init_times, skipped_cycles, truth_arrived
from pipeline.store import ingest
from pipeline.transaction import transaction

PROVENANCE = ForecastProvenance("flow_matching", "0123456789abcdef", "euler:nfe=2", 2, 0, None)


def analysis(times, missing=()) -> AnalysisStore:
    """An opened analysis store holding ``times`` (only its metadata matters here)."""
    index = pd.DatetimeIndex(times)
    return AnalysisStore(
        path=Path("analysis.zarr"),
        dataset=xr.Dataset(coords={"time": index}),
        statistics=xr.Dataset(),
        native_step=pd.Timedelta(hours=3),
        missing_times=tuple(pd.Timestamp(t) for t in missing),
    )


def hours(start: str, *offsets: int) -> pd.DatetimeIndex:
    return pd.Timestamp(start) + pd.to_timedelta(list(offsets), unit="h")


def test_latest_times_on_the_cycle_after_the_history_window():
    store = analysis(pd.date_range("2019-03-01T00", "2019-03-02T21", freq="3h"))
    chosen = latest_init_times(store, history=pd.Timedelta(hours=6), latest=3, cycle_hours=6)
    assert chosen.equals(pd.DatetimeIndex(["2019-03-02T06", "2019-03-02T12", "2019-03-02T18"]))
    # the first cycle time with a whole window: 00 has none, 06 has exactly 6 h
    every = latest_init_times(store, history=pd.Timedelta(hours=6), latest=100, cycle_hours=6)
    assert every[0] == pd.Timestamp("2019-03-01T06") and len(every) == 7
    daily = latest_init_times(store, history=pd.Timedelta(0), latest=5, cycle_hours=24)
    assert daily.equals(pd.DatetimeIndex(["2019-03-01T00", "2019-03-02T00"]))


def test_times_off_the_hour_and_missing_times_are_never_chosen():
    times = hours("2019-03-01", 0, 6, 12, 18, 24).append(pd.DatetimeIndex(["2019-03-02T06:30"]))
    store = analysis(times, missing=["2019-03-02T00"])
    assert available_times(store).equals(hours("2019-03-01", 0, 6, 12, 18).append(times[-1:]))
    chosen = latest_init_times(store, history=pd.Timedelta(0), latest=2, cycle_hours=6)
    assert chosen.equals(hours("2019-03-01", 12, 18))


def test_the_window_starts_at_the_first_time_with_data():
    store = analysis(hours("2019-03-01", 0, 6, 12, 18), missing=["2019-03-01T00"])
    chosen = latest_init_times(store, history=pd.Timedelta(hours=6), latest=9, cycle_hours=6)
    assert chosen.equals(hours("2019-03-01", 12, 18))


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"latest": 0}, r"latest \(0\) and cycle_hours \(6\) must be >= 1"),
        ({"cycle_hours": 0}, "must be >= 1"),
        ({"history": pd.Timedelta(hours=-6)}, "non-negative"),
        ({"history": pd.Timedelta(days=2)}, "no time on the 6-hourly cycle with 2 days"),
        ({"cycle_hours": 7}, "none of its times falls on the 7-hourly cycle"),
    ],
)
def test_impossible_requests_are_input_errors(kwargs, words):
    store = analysis(hours("2019-03-01", 1, 3, 6, 12, 18))
    args = {"history": pd.Timedelta(0), "latest": 1, "cycle_hours": 6} | kwargs
    with pytest.raises(InputError, match=words):
        latest_init_times(store, **args)


def test_a_store_off_the_hour_is_told_to_give_its_initial_times():
    """Times at 00:30: more data, the old advice, never gives a time on the cycle."""
    store = analysis(pd.date_range("2019-12-20T00:30", periods=40, freq="6h"))
    with pytest.raises(InputError, match=r"none of its times falls on the 6-hourly") as info:
        latest_init_times(store, history=pd.Timedelta(days=1), latest=1, cycle_hours=6)
    assert "at 18:30" in str(info.value) and "--init" in str(info.value)
    assert "ingest more data" not in str(info.value)


def forecast(inits, leads_hours) -> xr.Dataset:
    inits = pd.DatetimeIndex(inits)
    shape = (len(inits), 2, len(leads_hours), 3, 4)
    return xr.Dataset(
        {
            "t2m": (
                ("init_time", "member", "lead_time", "latitude", "longitude"),
                np.zeros(shape, "float32"),
            )
        },
        coords={
            "init_time": inits,
            "member": np.arange(2),
            "lead_time": pd.to_timedelta(list(leads_hours), unit="h"),
            "latitude": np.linspace(50, 54, 3),
            "longitude": np.linspace(-4, 2, 4),
        },
    )


def test_truth_arrived_only_for_complete_inits_whose_valid_times_are_all_in(tmp_path):
    store = ingest(
        "synthetic:n_lat=4,n_lon=4,n_times=8,step=6h,seed=1", tmp_path / "a.zarr", progress=False
    )  # 2000-01-01T00 .. 2000-01-02T18 every 6 h
    path = tmp_path / "f.zarr"
    assert truth_arrived(path, store).empty  # no forecast store yet
    inits = ["2000-01-01T00", "2000-01-01T12", "2000-01-02T06", "2000-01-02T12"]
    write_forecast(path, forecast(inits, (6, 12)), PROVENANCE)
    arrived = truth_arrived(path, store)
    assert arrived.equals(pd.DatetimeIndex(inits[:3]))  # 02T12 + 12 h is not in yet
    assert truth_arrived(str(path), str(store.path)).equals(arrived)  # paths work too
    with transaction(path, "test: flag 01T12 half-written") as writable:
        zarr.open_group(writable, mode="r+")["complete"][1] = False  # not verifiable
    assert truth_arrived(path, store).equals(pd.DatetimeIndex([inits[0], inits[2]]))
    # an analysis that never came (02T12, inside the store) does not hold 02T06 back for
    # good: it is verified, its 6 h truth missing; 01T00 has both its valid times, 02T12
    # still waits for 03T00
    gap = analysis(store.dataset.time.values, missing=["2000-01-02T12"])
    assert truth_arrived(path, gap).equals(pd.DatetimeIndex([inits[0], inits[2]]))
    # nor does one at the store's end: 02T18 is the last time, and missing
    end = analysis(store.dataset.time.values, missing=["2000-01-02T18"])
    assert truth_arrived(path, end).equals(pd.DatetimeIndex([inits[0]]))


def test_times_whose_window_has_a_missing_time_are_not_chosen():
    # the analyses of 06..11 never arrived: the cycles at 12 and 18 lack part of their
    # 12 h window (a forecast of them fails), so only the next day's are chosen
    times = pd.date_range("2019-03-01T00", "2019-03-02T18", freq="1h")
    store = analysis(times, missing=pd.date_range("2019-03-01T06", "2019-03-01T11", freq="1h"))
    chosen = latest_init_times(store, history=pd.Timedelta(hours=12), latest=6, cycle_hours=6)
    assert chosen.equals(hours("2019-03-02", 0, 6, 12, 18))


def test_cycles_between_the_last_forecast_and_the_latest_are_reported_skipped(tmp_path):
    # forecasts up to 00 UTC; analyses of two more days then arrived at once (late data, a
    # stopped server): a run of the latest cycle alone leaves 06 .. 12 of the next day out
    times = pd.date_range("2019-03-01T00", "2019-03-02T18", freq="1h")
    store = analysis(times)
    out = tmp_path / "f.zarr"
    write_forecast(out, forecast(["2019-03-01T00"], (6,)), PROVENANCE)
    latest = latest_init_times(store, history=pd.Timedelta(0), latest=1, cycle_hours=6)
    skipped = skipped_cycles(store, out, latest, history=pd.Timedelta(0), cycle_hours=6)
    assert skipped.equals(hours("2019-03-01", 6, 12, 18, 24, 30, 36))
    # a run that takes them in, or a store with no forecast yet, skips none
    every = latest_init_times(store, history=pd.Timedelta(0), latest=7, cycle_hours=6)
    assert skipped_cycles(store, out, every, history=pd.Timedelta(0), cycle_hours=6).empty
    assert skipped_cycles(
        store, tmp_path / "none.zarr", latest, history=pd.Timedelta(0), cycle_hours=6
    ).empty


def test_cycles_whose_window_lacks_an_analysis_are_named_once(tmp_path, caplog):
    """A served run silently forecast 2021-06-16T21 and 18T21 after a day of analyses
    (17 June) went missing: the cycles between, which no default run can ever forecast,
    were left out without a word. They are named with why, by the run that passes them."""
    logger = logging.getLogger("pipeline.schedule")
    logger.addHandler(caplog.handler)
    caplog.set_level(logging.WARNING, logger="pipeline.schedule")
    day = pd.date_range("2019-03-02T00", "2019-03-02T21", freq="3h")
    store = analysis(pd.date_range("2019-03-01T00", "2019-03-03T21", freq="3h"), missing=day)
    window = {"history": pd.Timedelta(hours=6), "cycle_hours": 6}
    try:
        chosen = latest_init_times(store, latest=4, **window)
        assert chosen.equals(hours("2019-03-01", 18, 54, 60, 66))  # 01T18, then 03T06 ..
        assert skipped_cycles(store, tmp_path / "none.zarr", chosen, **window).empty
        # caplog's handler may sit on the root logger too: a record can come twice
        (warning,) = {r.getMessage() for r in caplog.records}
        assert warning == (
            "analysis.zarr: 5 cycle(s) from 2019-03-02T00:00 to 2019-03-03T00:00 are not "
            "forecast: their 6 h conditioning window holds a missing analysis (first "
            "2019-03-02T00:00); the store only grows at its end, so no run of the latest "
            "cycles forecasts them (wxens info names its missing times)"
        )
        # the same from a store whose time axis leaves its missing times out (appended
        # past them): the missing cycles themselves are named too
        caplog.clear()
        times = pd.date_range("2019-03-01T00", "2019-03-03T21", freq="3h")
        jumped = analysis(times.difference(day), missing=day)
        assert skipped_cycles(jumped, tmp_path / "none.zarr", chosen, **window).empty
        assert {r.getMessage() for r in caplog.records} == {warning}
        # a run of the latest cycle after forecasts up to 01T18 names them too, beside the
        # cycles it could forecast; one after forecasts past them says nothing of them
        caplog.clear()
        before, after = tmp_path / "before.zarr", tmp_path / "after.zarr"
        write_forecast(before, forecast(chosen[:1], (6,)), PROVENANCE)
        write_forecast(after, forecast(chosen, (6,)), PROVENANCE)
        latest = latest_init_times(store, latest=1, **window)
        assert skipped_cycles(store, before, latest, **window).equals(hours("2019-03-03", 6, 12))
        assert {r.getMessage() for r in caplog.records} == {warning}
        caplog.clear()
        assert skipped_cycles(store, after, latest, **window).empty
        assert caplog.records == []
    finally:
        logger.removeHandler(caplog.handler)
