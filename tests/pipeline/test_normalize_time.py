"""The time axis of other producers' files: files of one time each (a GRIB message, a
NetCDF with a scalar ``time``), forecasts' (time, step) cells with no message, calendars
other than the standard one, steps and times in numbers, float times' rounding noise.
GRIB files are written with eccodes from the shipped sample's messages."""

from __future__ import annotations

import logging
from pathlib import Path

import eccodes
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from flows.cli import main
from pipeline.analysis_store import STATE_ATTR
from pipeline.errors import InputError
from pipeline.normalize import normalize
from pipeline.store import open_store

LAT = [50.0, 51.0]
LON = [0.0, 1.0]


def grib_messages(sample: Path, count: int) -> list[int]:
    """The first ``count`` messages of ``sample`` as eccodes handles (release them)."""
    with sample.open("rb") as f:
        return [eccodes.codes_grib_new_from_file(f) for _ in range(count)]


def write_grib(path: Path, messages: list[int], **keys: int | str) -> None:
    """``messages`` written to ``path``, each with ``keys`` set (in order) on a clone."""
    with path.open("wb") as out:
        for message in messages:
            clone = eccodes.codes_clone(message)
            for key, value in keys.items():
                eccodes.codes_set(clone, key, value)
            eccodes.codes_write(clone, out)
            eccodes.codes_release(clone)


def cli(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["ingest", *args, "--no-progress"])
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


def comparable(content: dict[str, tuple]) -> dict[str, tuple]:
    """A store's content without what names its inputs or the moment it was written."""
    (attrs,) = content["/"]
    kept = {k: v for k, v in attrs.items() if k not in ("source", "history")}
    kept[STATE_ATTR] = {k: v for k, v in kept[STATE_ATTR].items() if k != "statistics"}
    return {**content, "/": (kept,)}


# files of one time each


def test_one_grib_message_per_file(tmp_path, capsys, uk_sample, store_content):
    """ECMWF's open data and operational analyses come one message a file: cfgrib makes
    its time a scalar. One such file is a store of one time, and a glob of them is the
    store of the file that holds all their messages."""
    messages = grib_messages(uk_sample, 6)
    write_grib(tmp_path / "six.grib", messages)
    (tmp_path / "one").mkdir()
    for hour, message in enumerate(messages):
        write_grib(tmp_path / "one" / f"h{hour:02d}.grib", [message])
        eccodes.codes_release(message)
    code, _, err = cli(capsys, str(tmp_path / "one" / "h00.grib"), "--store", str(tmp_path / "s1"))
    assert code == 0, err  # was: no time dimension (dims are {'latitude': 33, ...})
    assert open_store(tmp_path / "s1").dataset.time.values.tolist() == [
        pd.Timestamp("2019-03-01T00").value
    ]
    code, _, err = cli(capsys, str(tmp_path / "one" / "*.grib"), "--store", str(tmp_path / "g"))
    assert code == 0, err  # was: the files ... do not combine into one dataset
    code, _, err = cli(capsys, str(tmp_path / "six.grib"), "--store", str(tmp_path / "six"))
    assert code == 0, err
    got, want = store_content(tmp_path / "g"), store_content(tmp_path / "six")
    assert comparable(got) == comparable(want)
    xr.testing.assert_identical(
        open_store(tmp_path / "g").statistics, open_store(tmp_path / "six").statistics
    )


def test_a_grib_of_variables_at_different_times_names_the_times_not_cfgribs_internals(
    tmp_path, uk_sample, monkeypatch, capsys, caplog
):
    """t2m at 1 March 00 UTC and d2m at 2 March 00 UTC in one file: cfgrib refuses to
    make one dataset of them, and ingest quoted its internals ("key present and new value
    is different: key='time' value=Variable(dimensions=(), data=np.int64(1551398400))")."""
    messages = grib_messages(uk_sample, 25)
    write_grib(tmp_path / "t2m.grib", messages[:1])
    write_grib(tmp_path / "d2m.grib", messages[24:], paramId=168)  # 2m dewpoint, a day on
    for message in messages:
        eccodes.codes_release(message)
    mixed = tmp_path / "mixed.grib"
    mixed.write_bytes((tmp_path / "t2m.grib").read_bytes() + (tmp_path / "d2m.grib").read_bytes())
    monkeypatch.chdir(tmp_path)
    code, _, err = cli(capsys, str(mixed), "--store", "s")
    assert code == 2 and "Traceback" not in caplog.text
    assert "messages differ in time: 2019-03-01T00:00 (t2m) and 2019-03-02T00:00 (d2m)" in err
    said = err + caplog.text  # cfgrib's own log records, if any, reach caplog here
    assert "Variable(" not in said and "key present" not in said
    assert "grib_copy mixed.grib 'part_[shortName].grib'" in err
    assert not (tmp_path / "s").exists()


def test_one_forecast_message_is_stored_at_its_valid_time(tmp_path, uk_sample):
    (message,) = grib_messages(uk_sample, 1)
    write_grib(tmp_path / "fc.grib", [message], type="fc", step=6)
    eccodes.codes_release(message)
    assert main(["ingest", str(tmp_path / "fc.grib"), "--store", str(tmp_path / "s")]) == 0
    times = open_store(tmp_path / "s").dataset.time.values
    np.testing.assert_array_equal(times, [np.datetime64("2019-03-01T06", "ns")])


def test_a_netcdf_of_one_scalar_time(tmp_path):
    ds = xr.Dataset(
        {"t2m": (("lat", "lon"), np.full((2, 2), 280.0), {"units": "K"})},
        coords={"time": pd.Timestamp("2021-05-01T12"), "lat": LAT, "lon": LON},
    )
    ds.to_netcdf(tmp_path / "one.nc")
    assert main(["ingest", str(tmp_path / "one.nc"), "--store", str(tmp_path / "s")]) == 0
    store = open_store(tmp_path / "s")  # was: no time dimension (dims are {'lat': 2, ...})
    np.testing.assert_array_equal(store.dataset.time.values, [np.datetime64("2021-05-01T12")])
    np.testing.assert_array_equal(store.dataset.t2m.values, [ds.t2m.values])


# forecasts' (time, step) cells


def test_forecast_cells_without_a_message_are_no_times(tmp_path, capsys, uk_sample):
    """ERA5's accumulations come as forecasts from 06 and 18 UTC: here the 06 UTC one's
    steps 7-12 and the 18 UTC one's steps 1-12, 18 messages. cfgrib lays them on (time: 2,
    step: 12), six cells without a message, all NaN; each was stored as a time."""
    (message,) = grib_messages(uk_sample, 1)
    path = tmp_path / "tp.grib"
    with path.open("wb") as out:
        for init, steps in ((600, range(7, 13)), (1800, range(1, 13))):
            for step in steps:
                clone = eccodes.codes_clone(message)
                for key, value in (("type", "fc"), ("paramId", 228), ("dataTime", init)):
                    eccodes.codes_set(clone, key, value)
                eccodes.codes_set(clone, "stepType", "accum")
                eccodes.codes_set(clone, "startStep", step - 1)
                eccodes.codes_set(clone, "endStep", step)
                values = eccodes.codes_get_values(clone)
                eccodes.codes_set_values(clone, np.full_like(values, init + step) * 1e-6)
                eccodes.codes_write(clone, out)
                eccodes.codes_release(clone)
    eccodes.codes_release(message)
    code, _, err = cli(capsys, str(path), "--store", str(tmp_path / "s"))
    assert code == 0, err  # was: 9702 NaN value(s) ... repair the input
    store = open_store(tmp_path / "s")
    times = pd.DatetimeIndex(store.dataset.time.values)
    assert times.equals(pd.date_range("2019-03-01T13", "2019-03-02T06", freq="h"))
    assert store.missing_times == ()
    first = store.dataset.tp.isel(time=0).values
    np.testing.assert_allclose(first, (600 + 7) * 1e-6, rtol=1e-6)
    assert not np.isnan(store.dataset.tp.values).any()
    code, _, err = cli(capsys, str(path), "--select", "step=1h", "--store", str(tmp_path / "1"))
    assert code == 0, err  # the 18 UTC forecast's first step; the 06 UTC one has none
    times = open_store(tmp_path / "1").dataset.time.values  # was: 18:00, the initial time
    np.testing.assert_array_equal(times, [np.datetime64("2019-03-01T19", "ns")])


# calendars, steps and times in numbers


def surface(times: np.ndarray | xr.DataArray, **coords) -> xr.Dataset:
    """A ``t2m`` field of 280 K at ``times`` on a 2 x 2 grid (its value at time i is 280 + i)."""
    values = 280.0 + np.arange(len(times))[:, None, None] + np.zeros((1, 2, 2))
    return xr.Dataset(
        {"t2m": (("time", "lat", "lon"), values, {"units": "K"})},
        coords={"time": times, "lat": LAT, "lon": LON, **coords},
    )


@pytest.mark.parametrize("calendar", ["noleap", "julian", "360_day", "all_leap"])
def test_a_calendar_whose_dates_are_standard_ones_is_read_by_date(calendar, caplog):
    caplog.set_level(logging.INFO)
    times = xr.date_range("2001-03-01", periods=3, freq="6h", calendar=calendar, use_cftime=True)
    out = normalize(surface(times), "model.nc")  # was: TypeError ... is not convertible
    want = pd.date_range("2001-03-01", periods=3, freq="6h")
    np.testing.assert_array_equal(out.time.values, want.values)
    assert f"in the {calendar!r} calendar" in caplog.text and "same date" in caplog.text
    assert out.t2m.dtype == np.float32


def test_a_noleap_year_reaches_a_leap_year_with_29_february_missing(tmp_path, capsys):
    """CMIP's daily means in the 'noleap' calendar, through the NetCDF decoder: Feb 29 of
    2004, a day that calendar has not, is counted missing."""
    times = xr.date_range("2004-02-27", periods=4, freq="D", calendar="noleap", use_cftime=True)
    surface(times).to_netcdf(tmp_path / "tas.nc")
    code, out, err = cli(capsys, str(tmp_path / "tas.nc"), "--store", str(tmp_path / "s"))
    assert code == 0, err  # was: a traceback, exit 1
    assert open_store(tmp_path / "s").missing_times == (pd.Timestamp("2004-02-29"),)


@pytest.mark.parametrize(
    ("calendar", "date"), [("360_day", "2001-02-30"), ("all_leap", "2001-02-29")]
)
def test_a_date_the_standard_calendar_lacks_is_refused(calendar, date):
    times = xr.date_range(date, periods=2, freq="D", calendar=calendar, use_cftime=True)
    with pytest.raises(
        InputError,
        match=rf"model\.nc: 1 of its 'time' values in the '{calendar}' calendar have no "
        rf"date in the standard calendar.*{date}.*convert_calendar\('standard'",
    ):
        normalize(surface(times), "model.nc")


def test_a_time_in_numbers_without_units_is_refused_before_a_store_is_made(tmp_path, capsys):
    surface(np.arange(4)).to_netcdf(tmp_path / "bare.nc")
    code, _, err = cli(capsys, str(tmp_path / "bare.nc"), "--store", str(tmp_path / "s"))
    assert code == 2 and "bare.nc: its 'time' holds numbers (int64), not times" in err
    assert "units such as 'hours since 2000-01-01'" in err
    assert not (tmp_path / "s").exists()  # was: an empty store that info said to rerun


def test_a_step_in_numbers_with_units_is_a_duration():
    init = pd.date_range("2020-01-01T00", periods=2, freq="12h")
    hours = {"units": "hours"}
    one = surface(init, step=((), 6.0, hours))  # was: UFuncBinaryResolutionError
    np.testing.assert_array_equal(normalize(one, "fc.nc").time.values, init + pd.Timedelta("6h"))
    grid = np.zeros((2, 3, 2, 2))
    several = xr.Dataset(
        {"t2m": (("time", "step", "lat", "lon"), grid + 280.0, {"units": "K"})},
        coords={"time": init, "step": ("step", [0, 3, 6], hours), "lat": LAT, "lon": LON},
    )
    out = normalize(several, "fc.nc")  # was: No variable named 'valid_time'
    want = init.values[:, None] + pd.to_timedelta([0, 3, 6], "h").values  # (time, step)
    np.testing.assert_array_equal(out.time.values, want.ravel())
    with pytest.raises(InputError, match=r"fc\.nc: its 'step' holds numbers in 'months'"):
        normalize(surface(init, step=((), 1, {"units": "months"})), "fc.nc")


def test_float_times_are_rounded_to_whole_seconds(tmp_path, capsys, caplog):
    """Hourly times as float32 days decode a few milliseconds off the hour."""
    caplog.set_level(logging.INFO)
    days = (np.arange(48) / 24).astype("float32")
    ds = surface(xr.Variable("time", days, {"units": "days since 2020-01-01"}))
    ds.to_netcdf(tmp_path / "f32.nc", encoding={"time": {"dtype": "float32"}})
    code, _, err = cli(capsys, str(tmp_path / "f32.nc"), "--store", str(tmp_path / "s"))
    assert code == 0, err
    store = open_store(tmp_path / "s")
    want = pd.date_range("2020-01-01", periods=48, freq="h")
    np.testing.assert_array_equal(store.dataset.time.values, want.values)  # was: 01:00:00.0001
    assert store.native_step == pd.Timedelta("1h") and store.missing_times == ()  # was: 47
    assert "rounded to whole seconds, by up to 3.4 ms" in caplog.text


def test_without_cfgribs_message_index_every_cell_is_taken_as_held(caplog):
    """Another cfgrib (or data not read by one): a warning, and the cells as before."""
    from pipeline.sources.grib import _cells_with_a_message

    ds = xr.Dataset({"t2m": (("time", "step", "latitude", "longitude"), np.zeros((2, 3, 2, 2)))})
    with caplog.at_level("WARNING", logger="pipeline.sources.grib"):
        assert _cells_with_a_message(ds) is None
    assert "message index not found" in caplog.text


def test_a_forecast_file_of_overlapping_starts_says_so_and_how_to_ingest_it(tmp_path, capsys):
    """Forecasts of 00 and 12 UTC with steps 0 and 12 h (the first's 12 h is the second's
    0 h), one member selected: the refusal said "duplicate time(s) ... are two input files
    covering the same period?" of a single file; it names the overlapping starts and the
    --select step=0 that ingests the states they start from."""
    starts = pd.to_datetime(["2021-01-01T00", "2021-01-01T12", "2021-01-02T00"])
    steps = pd.to_timedelta([0, 12], "h")
    values = np.arange(3 * 2 * 2 * 4, dtype="float32").reshape(3, 2, 2, 2, 2)
    ds = xr.Dataset(
        {"t2m": (("time", "step", "number", "latitude", "longitude"), values, {"units": "K"})},
        coords={"time": starts, "step": steps, "number": [0, 1], "latitude": LAT, "longitude": LON},
    )
    ds.to_netcdf(tmp_path / "ens.nc")
    store = tmp_path / "s.zarr"
    code, _, err = cli(
        capsys, str(tmp_path / "ens.nc"), "--select", "number=1", "--store", str(store)
    )
    assert code == 2 and "ens.nc" in err and "2021-01-01T12:00" in err
    assert "initial times overlap" in err and "--select step=0" in err
    assert "two input files" not in err and not store.exists()
    code, _, _ = cli(
        capsys,
        str(tmp_path / "ens.nc"),
        "--select",
        "number=1",
        "--select",
        "step=0",
        "--store",
        str(store),
    )
    kept = open_store(store).dataset
    assert code == 0 and (kept.time.values == starts.values).all()
    np.testing.assert_array_equal(kept.t2m.values, values[:, 0, 1])


@pytest.mark.parametrize(
    ("layout", "lead", "value"),
    [("weatherbench2", "prediction_timedelta", "12h"), ("cf", "forecast_period", "12")],
)
def test_one_lead_of_a_forecast_file_is_stored_at_its_valid_time(
    tmp_path, capsys, layout, lead, value
):
    """--select prediction_timedelta=12h of a WeatherBench 2 forecast stored its 12 h
    forecasts at their initial times, 12 h early, silently (the selection dropped the lead
    and WB2's time is the start); a CF file (forecast_reference_time, forecast_period) was
    refused for no time dimension. Both are stored at start + 12 h, as cfgrib's step is."""
    starts = pd.to_datetime(["2021-01-01T00", "2021-01-01T12", "2021-01-02T00"])
    values = np.arange(3 * 2 * 4, dtype="float32").reshape(3, 2, 2, 2) + 270
    dims = ("time", lead, "latitude", "longitude")
    leads = pd.to_timedelta([0, 12], "h")
    coords = {"time": starts, lead: leads, "latitude": LAT, "longitude": LON}
    if layout == "cf":
        dims = ("forecast_reference_time", *dims[1:])
        coords = {**coords, lead: ("forecast_period", [0.0, 12.0], {"units": "hours"})}
        coords["forecast_reference_time"] = coords.pop("time")
    path = tmp_path / ("f.zarr" if layout == "weatherbench2" else "f.nc")
    ds = xr.Dataset({"t2m": (dims, values, {"units": "K"})}, coords=coords)
    ds.to_zarr(path, zarr_format=2) if layout == "weatherbench2" else ds.to_netcdf(path)
    store = tmp_path / "s.zarr"
    code, _, err = cli(capsys, str(path), "--select", f"{lead}={value}", "--store", str(store))
    assert code == 0, err
    kept = open_store(store).dataset
    assert (kept.time.values == (starts + pd.Timedelta(hours=12)).values).all()
    np.testing.assert_array_equal(kept.t2m.values, values[:, 1])


@pytest.mark.parametrize(
    ("calendar", "start"),
    [("noleap", "0001-01-01"), ("standard", "0001-01-01"), ("noleap", "2290-01-01")],
)
def test_years_a_store_cannot_hold_are_refused_with_the_fix_that_helps(calendar, start):
    """A climate model's year 1 or 2290 is a date in the standard calendar, just outside what
    a store's times hold: converting the calendar (the old advice) changed nothing."""
    times = xr.date_range(start, periods=2, freq="D", calendar=calendar, use_cftime=True)
    with pytest.raises(
        InputError, match=r"model\.nc: 2 of its 'time' values lie outside the years"
    ) as info:
        normalize(surface(times), "model.nc")
    assert "relabel them" in str(info.value) and "convert_calendar" not in str(info.value)


def test_times_written_as_text_are_refused_with_a_fix_for_text(tmp_path, capsys):
    surface(np.array(["2020-01-01 00:00", "2020-01-01 06:00"])).to_netcdf(tmp_path / "text.nc")
    code, _, err = cli(capsys, str(tmp_path / "text.nc"), "--store", str(tmp_path / "s"))
    assert code == 2 and "text.nc: its 'time' holds text ('2020-01-01 00:00', ...)" in err
    assert "pd.to_datetime" in err and "units such as" not in err  # was: give it CF units
    assert not (tmp_path / "s").exists()


def test_a_file_of_years_a_store_cannot_hold_is_refused_without_xarrays_warning(tmp_path, capsys):
    """xarray's SerializationWarning (a traceback-like line about cftime) came before the
    refusal that names the file and the fix."""
    import warnings

    times = xr.date_range("2290-01-01", periods=2, freq="D", use_cftime=True)
    surface(times).to_netcdf(tmp_path / "ssp.nc")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        code, _, err = cli(capsys, str(tmp_path / "ssp.nc"), "--store", str(tmp_path / "s"))
    assert code == 2 and "ssp.nc: 2 of its 'time' values lie outside the years" in err
    assert not [w for w in caught if "Unable to decode time axis" in str(w.message)]
