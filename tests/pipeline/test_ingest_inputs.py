"""Several inputs of one ingest (files named apart, or the files of a glob), and an append:
one grid, within GRID_TOLERANCE_DEG, or a refusal naming both inputs and both grids."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from flows.cli import main
from pipeline import canonical
from pipeline import store as stores
from pipeline.canonical import checked_period
from pipeline.errors import InputError
from pipeline.grid import combine_on_one_grid
from pipeline.store import ingest, open_store

SIX_HOURLY = pd.date_range("2021-01-01", periods=4, freq="6h")
LON = (-2.0, -1.0, 0.0, 1.0)
TENTHS = np.arange(500, 521) / 10  # 50.0 .. 52.0 every 0.1 degree, as written


def write(
    path: Path,
    times,
    lat=(50.0, 51.0),
    lon=LON,
    *,
    name: str = "t2m",
    units: str = "K",
    coord_dtype: str = "float64",
    seed: int = 0,
) -> xr.Dataset:
    """A NetCDF file of ``name`` at ``times`` on the grid ``lat`` x ``lon`` (stored in
    ``coord_dtype``), values around 280 (101300 for Pa)."""
    times = pd.DatetimeIndex(times)
    mean = 101300.0 if units == "Pa" else 280.0
    rng = np.random.default_rng(seed)
    ds = xr.Dataset(
        {
            name: (
                ("time", "lat", "lon"),
                rng.normal(mean, 3.0, (times.size, len(lat), len(lon))).astype("float32"),
                {"units": units},
            )
        },
        coords={
            "time": times,
            "lat": np.asarray(lat, coord_dtype),
            "lon": np.asarray(lon, coord_dtype),
        },
    )
    ds.to_netcdf(path)
    return ds


def cli(capsys, *args: str) -> tuple[int, str]:
    code = main(["ingest", *args, "--no-progress"])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return code, err


def test_inputs_on_two_grids_are_refused_naming_both(tmp_path, capsys):
    """Two files on the same box, one every 2 degrees, one every degree: the outer join made
    a 21-row grid half NaN, refused as '440 NaN value(s) ... repair the input' (neither file
    has one), and written with --allow-nan."""
    write(tmp_path / "base.nc", SIX_HOURLY, lat=np.arange(40.0, 60.1, 2))
    write(tmp_path / "finer2.nc", SIX_HOURLY + pd.Timedelta("1D"), lat=np.arange(40.0, 60.1, 1))
    store = str(tmp_path / "s.zarr")
    for inputs, lat, lon in (
        ([str(tmp_path / "base.nc"), str(tmp_path / "finer2.nc")], "latitude", "longitude"),
        ([str(tmp_path / "*.nc")], "lat", "lon"),  # a glob's files, in their own names
    ):
        for allow in ([], ["--allow-nan"]):
            code, err = cli(capsys, *inputs, "--store", store, *allow)
            assert code == 2, err
            assert f"finer2.nc is on the 21x4 grid ({lat} 40..60 step 1, {lon} -2..1 step 1)" in err
            assert f"base.nc on the 11x4 grid ({lat} 40..60 step 2, {lon} -2..1 step 1)" in err
            assert "regrid one onto the other's grid" in err
            assert "NaN" not in err
            assert not (tmp_path / "s.zarr").exists()


def test_a_grid_in_float32_and_in_float64_is_one_grid(tmp_path):
    """0.1-degree latitudes stored in float32 (50.09999847) and in float64 (50.1): one ingest
    made a grid of both, NaN at every other row ('1920 NaN value(s)'); now the later input
    takes the first's points, and a second variable merges onto them."""
    first = write(tmp_path / "f32.nc", SIX_HOURLY, lat=TENTHS, coord_dtype="float32")
    later = write(tmp_path / "f64.nc", SIX_HOURLY + pd.Timedelta("1D"), lat=TENTHS, seed=1)
    msl = write(tmp_path / "m64.nc", SIX_HOURLY, lat=TENTHS, name="msl", units="Pa", seed=2)
    as_stored = TENTHS.astype("float32").astype("float64")
    for inputs, path in (
        ([tmp_path / "f32.nc", tmp_path / "f64.nc"], "named.zarr"),
        (str(tmp_path / "f*.nc"), "glob.zarr"),
    ):
        store = ingest(inputs, tmp_path / path, progress=False)
        np.testing.assert_array_equal(store.dataset.latitude.values, as_stored)
        np.testing.assert_array_equal(
            store.dataset.t2m.values, np.concatenate([first.t2m.values, later.t2m.values])
        )
    both = ingest(
        [tmp_path / "f32.nc", tmp_path / "m64.nc"], tmp_path / "both.zarr", progress=False
    )
    assert both.dataset.sizes["latitude"] == 21
    np.testing.assert_array_equal(both.dataset.msl.values, msl.msl.values)


@pytest.mark.parametrize(("first", "then"), [("f32.nc", "f64.nc"), ("f64.nc", "f32.nc")])
def test_an_append_keeps_the_stores_grid(tmp_path, first, then):
    """Appending the float64 spelling of a float32 grid replaced the store's latitudes
    (50.09999847 became 50.1: xarray writes again every variable without a time dim);
    the store's own coordinates now stay as they are."""
    dtypes = {"f32.nc": "float32", "f64.nc": "float64"}
    written = [
        write(tmp_path / name, times, lat=TENTHS, coord_dtype=dtypes[name], seed=seed)
        for seed, (name, times) in enumerate(
            ((first, SIX_HOURLY), (then, SIX_HOURLY + pd.Timedelta("1D")))
        )
    ]
    ingest(tmp_path / first, path := tmp_path / "s.zarr", progress=False)
    before = open_store(path).dataset.latitude.values
    appended = ingest(tmp_path / then, path, progress=False).dataset
    np.testing.assert_array_equal(appended.latitude.values, before)
    assert before[1] == (50.1 if first == "f64.nc" else np.float32(50.1))
    np.testing.assert_array_equal(
        appended.t2m.values, np.concatenate([ds.t2m.values for ds in written])
    )


def test_a_box_written_in_either_longitude_convention_is_one_grid(tmp_path):
    """358..359.9, 0..2 and -2..2 were two grids of float-error longitudes (-1.8999999999999773
    against -1.9000000000000057), joined into one of both, NaN wherever either lacks a point."""
    as_written = np.arange(-20, 21) / 10
    write(tmp_path / "e.nc", SIX_HOURLY, lon=np.r_[np.arange(3580, 3600) / 10, as_written[20:]])
    write(tmp_path / "w.nc", SIX_HOURLY + pd.Timedelta("1D"), lon=as_written)
    store = ingest([tmp_path / "e.nc", tmp_path / "w.nc"], tmp_path / "s.zarr", progress=False)
    np.testing.assert_array_equal(store.dataset.longitude.values, as_written)
    assert store.dataset.t2m.sel(longitude=-1.9).notnull().all()


# one time axis


def test_inputs_off_one_time_axis_are_refused_as_an_append_is(tmp_path, capsys):
    """With 6-hourly s6.nc, s6off.nc (03 and 09 UTC, later) gave a 6-hourly store with 2
    'missing' times, and hourly s1.nc (later) an hourly store with 20; an append of either to
    a store of s6.nc is refused. One ingest of them is now refused the same way, naming the
    file; later times on the axis, a gap or a finer input first are taken as an append takes
    them."""
    write(tmp_path / "s6.nc", pd.date_range("2021-01-01", periods=5, freq="6h"))
    write(tmp_path / "s6off.nc", pd.DatetimeIndex(["2021-01-02 03:00", "2021-01-02 09:00"]))
    write(tmp_path / "s1.nc", pd.date_range("2021-01-02 01:00", periods=8, freq="h"))
    write(tmp_path / "s6gap.nc", pd.date_range("2021-01-03", periods=2, freq="6h"))
    store = str(tmp_path / "s.zarr")
    for later, first in (("s6off.nc", "2021-01-02T03:00"), ("s1.nc", "2021-01-02T01:00")):
        for inputs in ([tmp_path / "s6.nc", tmp_path / later], [tmp_path / "s6*.nc"]):
            if later == "s1.nc" and len(inputs) == 1:
                inputs = [tmp_path / "s[61].nc"]
            code, err = cli(capsys, *map(str, inputs), "--store", store)
            assert code == 2, err
            assert f"the inputs that start earlier than {tmp_path / later}" in err.replace(
                "netcdf:", ""
            )
            assert "give times every 6 h up to 2021-01-02T00:00, but" in err
            assert f"{later} are not a whole number of steps from those, first {first}" in err
            assert "select or resample the inputs to one step" in err
            assert not (tmp_path / "s.zarr").exists()
    code, err = cli(capsys, str(tmp_path / "s6.nc"), str(tmp_path / "s6gap.nc"), "--store", store)
    assert code == 0, err
    assert open_store(store).missing_times == tuple(
        pd.date_range("2021-01-02 06:00", periods=3, freq="6h")
    )
    finer_first = ingest(
        [tmp_path / "s1.nc", tmp_path / "s6gap.nc"], tmp_path / "h.zarr", progress=False
    )
    assert finer_first.native_step == pd.Timedelta("1h") and len(finer_first.missing_times) == 20


def test_an_input_between_the_times_of_another_is_on_their_axis(tmp_path):
    """An input may give times between those of another (here a variable of its own: the
    files of one variable must follow each other): where the other misses times of its
    axis, they are on it; off it (another hour), refused."""
    days = pd.date_range("2021-01-01", periods=8, freq="6h")
    write(tmp_path / "t2m.nc", days.delete([3, 4]))
    write(tmp_path / "msl.nc", days[3:5], name="msl", units="Pa")
    write(tmp_path / "off.nc", days[3:5] + pd.Timedelta("1h"), name="msl", units="Pa")
    store = ingest([tmp_path / "t2m.nc", tmp_path / "msl.nc"], tmp_path / "s.zarr", allow_nan=True)
    assert store.native_step == pd.Timedelta("6h") and store.missing_times == ()
    with pytest.raises(InputError, match=r"off\.nc are not a whole number of steps from those, "):
        ingest([tmp_path / "t2m.nc", tmp_path / "off.nc"], tmp_path / "t.zarr", allow_nan=True)


# every variable at every time


def test_a_variable_the_inputs_lack_at_some_times_is_named(tmp_path, capsys):
    """t2m at 00, 06, 12 and 18 UTC with msl lacking 12 UTC was refused as '8 NaN value(s)
    ... repair the input' (no file holds a NaN); now the message names the variable, the
    time, the file it comes from and the fix. --allow-nan keeps the NaNs, and a period
    without the gap takes both."""
    write(tmp_path / "a1.nc", SIX_HOURLY)
    write(tmp_path / "m1_gap.nc", SIX_HOURLY.delete(2), name="msl", units="Pa")
    inputs, store = [str(tmp_path / "a1.nc"), str(tmp_path / "m1_gap.nc")], tmp_path / "s.zarr"
    code, err = cli(capsys, *inputs, "--store", str(store))
    assert code == 2 and "NaN value" not in err, err
    assert f"'msl' (from netcdf:{tmp_path / 'm1_gap.nc'}) lacks 1 of the 4 time(s)" in err
    assert f"first 2021-01-01T12:00 (given by netcdf:{tmp_path / 'a1.nc'})" in err
    assert "of 'msl', or pass allow_nan=True (--allow-nan) to keep it NaN there" in err
    assert not store.exists()
    code, err = cli(capsys, *inputs, "--store", str(store), "--allow-nan")
    assert code == 0, err
    assert np.isnan(open_store(store).dataset.msl.sel(time="2021-01-01 12:00")).all()
    code, err = cli(capsys, *inputs, "--end", "2021-01-01T06", "--store", str(tmp_path / "b"))
    assert code == 0, err


def test_a_variable_one_file_of_a_glob_lacks_is_named(tmp_path, capsys):
    """Monthly files of t2m and msl, the second without msl: the glob combines into msl NaN
    at its times, refused as '8 NaN value(s) ... repair the input' (no file holds a NaN);
    now the variable and its missing times are named, with the fix; and without xarray's
    FutureWarning on the combination's default compat."""
    both = xr.merge(
        [
            write(tmp_path / "x.nc", SIX_HOURLY),
            write(tmp_path / "y.nc", SIX_HOURLY, name="msl", units="Pa"),
        ]
    )
    both.to_netcdf(tmp_path / "d1.nc")
    write(tmp_path / "d2.nc", SIX_HOURLY + pd.Timedelta("1D"))
    store = tmp_path / "s.zarr"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        code, err = cli(capsys, str(tmp_path / "d*.nc"), "--store", str(store))
    assert not [w for w in caught if "combine_kwarg" in str(w.message)]  # xarray's defaults
    assert code == 2 and "NaN value" not in err, err
    assert "'msl' is missing (NaN everywhere) at 4 time(s), first 2021-01-02T00:00, " in err
    assert "of 'msl', or pass allow_nan=True (--allow-nan) to keep it NaN there" in err
    assert not store.exists()


def test_a_glob_of_forecast_files_is_not_held_to_one_time_axis(tmp_path):
    """Sub-seasonal starts on Mondays and Thursdays, one file each, as `wxens verify` opens
    a glob of them: initial times 3 and 4 days apart are no time axis, and need not be."""
    from pipeline.sources import resolve_source

    starts = pd.DatetimeIndex(["2021-01-04", "2021-01-07", "2021-01-11"])  # Mon, Thu, Mon
    for start in starts:
        xr.Dataset(
            {"t2m": (("time", "step", "latitude", "longitude"), np.full((1, 2, 3, 4), 280.0))},
            coords={
                "time": [start],
                "step": pd.to_timedelta([1, 2], unit="D"),
                "latitude": [50.0, 51.0, 52.0],
                "longitude": [-2.0, -1.0, 0.0, 1.0],
            },
        ).to_netcdf(tmp_path / f"ens-{start:%Y%m%d}.nc")
    opened = resolve_source(str(tmp_path / "ens-*.nc")).open()
    assert pd.DatetimeIndex(opened.time.values).equals(starts)


def test_files_of_one_level_each_ingest_as_their_levels(tmp_path, capsys):
    """The CDS gives z at 500 and at 850 hPa in two files (a scalar level each): refused as
    "'z' has 4 duplicate time(s)", the duplicate check keying by variable alone."""
    for level in (500, 850):
        ds = write(tmp_path / "plain.nc", SIX_HOURLY, name="z", units="m2 s-2", seed=level)
        ds.assign_coords(pressure_level=float(level)).to_netcdf(tmp_path / f"z{level}.nc")
    paths = [str(tmp_path / "z500.nc"), str(tmp_path / "z850.nc")]
    code, err = cli(capsys, *paths, "--store", str(tmp_path / "z.zarr"))
    assert code == 0, err
    store = open_store(tmp_path / "z.zarr")
    assert store.dataset.level.values.tolist() == [500, 850]
    code, err = cli(capsys, paths[0], paths[0], "--store", str(tmp_path / "twice.zarr"))
    assert code == 2 and "'z' at level 500 has 4 duplicate time(s)" in err  # still refused


def test_a_glob_of_files_of_one_scalar_time_each_ingests(tmp_path):
    """One time per NetCDF file with a scalar time (no time dim): the glob did not combine,
    while listing the files one by one worked."""
    for i, time in enumerate(SIX_HOURLY):
        ds = write(tmp_path / "one.nc", [time], seed=i).isel(time=0)  # time now a scalar
        ds.to_netcdf(tmp_path / f"a{i}.nc")
    globbed = ingest(str(tmp_path / "a*.nc"), tmp_path / "g.zarr", progress=False)
    listed = ingest(sorted(tmp_path.glob("a*.nc")), tmp_path / "l.zarr", progress=False)
    xr.testing.assert_equal(globbed.dataset.load(), listed.dataset.load())  # attrs: sources
    assert globbed.dataset.sizes["time"] == 4


def test_time_units_in_months_are_named_not_taken_for_a_corrupt_file(tmp_path, capsys):
    ds = write(tmp_path / "plain.nc", SIX_HOURLY[:3])
    months = ds.assign_coords(time=("time", [0, 1, 2], {"units": "months since 2000-01-01"}))
    months.to_netcdf(tmp_path / "m.nc")
    code, err = cli(capsys, str(tmp_path / "m.nc"), "--store", str(tmp_path / "m.zarr"))
    assert code == 2 and "its times cannot be decoded" in err
    assert "months and years since a date are no fixed durations" in err
    assert "corrupt" not in err and not (tmp_path / "m.zarr").exists()


def test_values_beyond_physical_bounds_are_warned_about(tmp_path, caplog):
    """A field in K labelled degC went in as t2m of about 553 K without a word."""
    write(tmp_path / "k_as_c.nc", SIX_HOURLY, units="degC")
    with caplog.at_level("WARNING", logger="pipeline.store"):
        store = ingest(tmp_path / "k_as_c.nc", tmp_path / "c.zarr", progress=False)
    assert float(store.dataset.t2m.min()) > 500  # ingested as given
    assert "t2m ranges" in caplog.text and "beyond its physical bounds 150..350" in caplog.text
    caplog.clear()
    write(tmp_path / "k.nc", SIX_HOURLY, units="K")
    with caplog.at_level("WARNING", logger="pipeline.store"):
        ingest(tmp_path / "k.nc", tmp_path / "k.zarr", progress=False)
    assert "physical bounds" not in caplog.text


def test_combining_keeps_xarray_s_tested_behaviour_without_its_future_warning():
    """Scalar coordinates that differ (one GRIB message a file) are combined along time; a
    variable one input lacks is NaN there; a conflicting value is refused. xarray 2026.9
    warned that its defaults for all three are changing (and 'override' would keep the
    first input's value in silence)."""
    grid = {"latitude": [50.0, 51.0], "longitude": [0.0, 1.0]}

    def one(time: str, value: float, **extra) -> xr.Dataset:
        ds = xr.Dataset({"t2m": (("latitude", "longitude"), np.full((2, 2), value))}, grid)
        ds = ds.assign(extra).assign_coords(valid_time=pd.Timestamp(time))
        return ds.expand_dims(time=[pd.Timestamp(time)])

    def combine(datasets: list[xr.Dataset]) -> xr.Dataset:
        parts = [(f"input {i}", ds) for i, ds in enumerate(datasets)]
        return combine_on_one_grid(parts, ["latitude", "longitude"], "test")

    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        both = combine([one("2021-01-01", 1.0), one("2021-01-02", 2.0)])
        assert both.valid_time.dims == ("time",) and (both.t2m.isel(time=1) == 2.0).all()
        lacking = [one("2021-01-01", 1.0, msl=1e5), one("2021-01-02", 2.0)]
        both = combine([ds.drop_vars("valid_time") for ds in lacking])
        assert np.isnan(both.msl.isel(time=1)).all() and (both.msl.isel(time=0) == 1e5).all()
        with pytest.raises(ValueError):
            combine([one("2021-01-01", 1.0), one("2021-01-01", 3.0)])


def test_start_and_end_that_are_no_times_or_carry_a_zone_are_read_or_named(tmp_path, capsys):
    """``--start banana`` ended in pandas' TypeError traceback (exit 1), and so did a time
    with a zone (``2021-01-01T06Z``); a period the file lacks said ``2021-02-01..None``."""
    write(tmp_path / "a.nc", SIX_HOURLY)
    store = str(tmp_path / "s.zarr")
    for flag in ("--start", "--end"):
        code, err = cli(capsys, str(tmp_path / "a.nc"), "--store", store, flag, "banana")
        assert code == 2 and f"time= ({flag} banana): 'banana' is not a time" in err, err
    assert not (tmp_path / "s.zarr").exists()
    code, err = cli(capsys, str(tmp_path / "a.nc"), "--store", store, "--start", "2021-02-01")
    assert code == 2, err
    assert "no time in 2021-02-01..; it holds 2021-01-01T00:00..2021-01-01T18:00" in err, err
    args = ["--start", "2021-01-01T07+01:00", "--end", "2021-01-01T12Z"]  # 06 and 12 UTC
    assert cli(capsys, str(tmp_path / "a.nc"), "--store", store, *args)[0] == 0
    assert list(open_store(store).dataset["time"].values) == list(SIX_HOURLY[1:3].values)


def test_the_period_is_checked_once_per_ingest(tmp_path, monkeypatch):
    """``checked_period`` ran twice per ingest: ingest checked ``time`` (before anything is
    written, and for the resent-copy warning), then open_canonical checked it again. The
    real check is counted, not replaced; an append and an --overwrite each check it once."""
    calls = []

    def counted(time):
        calls.append(time)
        return checked_period(time)

    for module in (stores, canonical):  # ingest's name for it, and open_canonical's
        monkeypatch.setattr(module, "checked_period", counted)
    write(tmp_path / "a.nc", SIX_HOURLY)
    period = slice("2021-01-01T07+01:00", "2021-01-01T12Z")  # 06 and 12 UTC
    for overwrite in (False, True):
        calls.clear()
        store = ingest(
            tmp_path / "a.nc", tmp_path / "s.zarr", time=period, overwrite=overwrite, progress=False
        )
        assert calls == [period], calls
        assert list(store.dataset["time"].values) == list(SIX_HOURLY[1:3].values)
    calls.clear()
    with pytest.raises(InputError, match=r"time= \(--start banana\): 'banana' is not a time"):
        ingest(tmp_path / "a.nc", tmp_path / "s.zarr", time=slice("banana", None))
    assert calls == [slice("banana", None)], calls
