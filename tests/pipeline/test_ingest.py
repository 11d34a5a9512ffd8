"""Ingest into analysis stores: the shipped GRIB sample, NetCDF/Zarr sources, appends,
resumption after a failed write, and every kind of bad input."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import dask
import dask.array
import numpy as np
import pandas as pd
import pytest
import xarray as xr

import pipeline.ingest_blocks as blocks_module
import pipeline.store as store_module
from flows.cli import main
from pipeline.analysis_store import STATE_ATTR, statistics_pass
from pipeline.duplicate_times import store_holds
from pipeline.errors import InputError, StoreError, times_text
from pipeline.sources import AdjustedSource, Adjustments, resolve_source
from pipeline.sources.files import ZarrSource
from pipeline.store import held_times, ingest, open_canonical, open_store
from pipeline.timeaxis import off_axis
from pipeline.transaction import lock_path, reader


def without_history(content: dict[str, tuple]) -> dict[str, tuple]:
    """A store's content without its history attribute (creation times) and statistics
    (their float64 sums depend on the order of blocks); compared apart."""
    (attrs,) = content["/"]
    kept = {k: v for k, v in attrs.items() if k != "history"}
    kept[STATE_ATTR] = {k: v for k, v in kept[STATE_ATTR].items() if k != "statistics"}
    return {**content, "/": (kept,)}


def make_netcdf(
    path: Path,
    times: pd.DatetimeIndex,
    *,
    seed: int = 0,
    units: str = "degC",
    lat=(50.0, 51.0, 52.0),
    lon=(-2.0, -1.0, 0.0, 1.0),
) -> xr.Dataset:
    rng = np.random.default_rng(seed)
    data = rng.normal(10.0, 3.0, (len(times), len(lat), len(lon)))
    ds = xr.Dataset(
        {"tas": (("time", "lat", "lon"), data, {"units": units})},
        coords={"time": times, "lat": list(lat), "lon": list(lon)},
    )
    ds.to_netcdf(path)
    return ds


def store_of_the_first_five(tmp_path: Path) -> tuple[xr.Dataset, Path]:
    """``all.nc`` of 8 six-hourly times (returned) and the store ``s.zarr`` of its first 5,
    to which ``all.nc`` appends 3."""
    full = make_netcdf(tmp_path / "all.nc", pd.date_range("2021-01-01", periods=8, freq="6h"))
    full.isel(time=slice(0, 5)).to_netcdf(tmp_path / "first.nc")
    store = tmp_path / "s.zarr"
    ingest(tmp_path / "first.nc", store, progress=False)
    return full, store


@pytest.fixture(scope="module")
def uk_store(tmp_path_factory, uk_sample) -> Path:
    workdir = tmp_path_factory.mktemp("uk")
    sample = workdir / uk_sample.name
    shutil.copy(uk_sample, sample)
    path = workdir / "uk.zarr"
    ingest(sample, path, progress=False)
    expected = [sample.name, "uk.zarr", lock_path(path).name]  # the writers' lock file
    assert sorted(p.name for p in workdir.iterdir()) == sorted(expected), (
        "cfgrib must not write an index beside the input"
    )
    return path


def test_uk_sample_matches_cfgrib_and_numpy(uk_store, uk_sample):
    store = open_store(uk_store)
    t2m = store.dataset["t2m"]
    assert t2m.shape == (744, 33, 49) and t2m.dtype == np.float32
    direct = xr.open_dataset(uk_sample, engine="cfgrib", backend_kwargs={"indexpath": ""})["t2m"]
    when, lat, lon = "2019-03-17T13:00", 55.25, -3.5
    assert float(t2m.sel(time=when, latitude=lat, longitude=lon)) == float(
        direct.sel(time=when, latitude=lat, longitude=lon)
    )
    values = direct.values.astype("float64")
    stats = store.statistics["t2m"]
    assert float(stats.sel(statistic="mean")) == pytest.approx(values.mean(), rel=1e-6)
    assert float(stats.sel(statistic="std")) == pytest.approx(values.std(), rel=1e-5)
    assert float(stats.sel(statistic="min")) == values.min()
    assert float(stats.sel(statistic="max")) == values.max()
    tendency = np.diff(values, axis=0)
    assert float(stats.sel(statistic="tendency_std")) == pytest.approx(tendency.std(), rel=1e-5)
    assert store.native_step == pd.Timedelta("1h") and store.missing_times == ()
    assert store.dataset.latitude.values[0] == 50.0, "latitudes ascending"


def test_repeated_ingest_is_a_no_op(uk_store, uk_sample):
    before = {p: p.stat().st_mtime_ns for p in uk_store.rglob("*") if p.is_file()}
    ingest(uk_sample, uk_store, progress=False)
    after = {p: p.stat().st_mtime_ns for p in uk_store.rglob("*") if p.is_file()}
    assert before == after, "no commit, no file written"


def ingest_stopped_after_one_block(tmp_path: Path, monkeypatch) -> tuple[Path, Path]:
    """An ingest of 8 six-hourly times, two a block, into a new store, stopped after its
    first block (as a kill would, or another ingest still writing the rest): the time axis
    grown to every time, two written. Returns the input file and the store."""
    make_netcdf(tmp_path / "all.nc", pd.date_range("2021-01-01", periods=8, freq="6h"))
    store = tmp_path / "s.zarr"
    monkeypatch.setattr(store_module, "MIN_CHUNK_BYTES", 1)  # one time a chunk
    monkeypatch.setattr(blocks_module, "BLOCK_BYTES", 2 * 3 * 4 * 4)  # two times a block
    real, calls = blocks_module.write_region, []

    def write_then_fail(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise OSError("simulated interruption")
        return real(*args, **kwargs)

    monkeypatch.setattr(blocks_module, "write_region", write_then_fail)
    with pytest.raises(OSError, match="simulated"):
        ingest(tmp_path / "all.nc", store, progress=False)
    monkeypatch.setattr(blocks_module, "write_region", real)
    return tmp_path / "all.nc", store


def test_resumed_ingest_counts_only_the_times_written(tmp_path, monkeypatch, caplog):
    # an ingest interrupted after its first block grew the time axis to every time but
    # wrote only that block: its rerun must not say every time is in the store already
    source, store = ingest_stopped_after_one_block(tmp_path, monkeypatch)
    with caplog.at_level("INFO", logger="pipeline.ingest_report"):
        ingest(source, store, progress=False)
    assert "8 of the input's 8 time(s) are in the store already" not in caplog.text
    assert "2 of the input's 8 time(s) are in the store already: kept as written" in caplog.text
    assert "6 time(s) of the store not yet written (an ingest was interrupted" in caplog.text
    assert open_store(store).dataset.sizes["time"] == 8


def test_an_ingest_done_before_the_other_one_writing_the_store_does_not_fail(
    tmp_path, monkeypatch, capsys, caplog
):
    """`wxens ingest --end` and `wxens ingest --start` of the two halves of one period,
    into a new store at once: the one that finished first, its times all written, said
    "error: the store is incomplete ... nothing to read yet" and exited 2 (the other then
    finalised the store). Here the other ingest is one that wrote the first 2 of 8 times
    and is taken to be writing the rest."""
    source, store = ingest_stopped_after_one_block(tmp_path, monkeypatch)
    capsys.readouterr()
    assert main(["ingest", str(source), "--store", str(store), "--end", "2021-01-01T18"]) == 0
    err, out = capsys.readouterr()[::-1]
    assert "error" not in err and "Traceback" not in err
    assert "4 time(s) are not written yet (another ingest is writing" in caplog.text
    assert f"{store}: this ingest's writes are done" in out and "wxens info" in out
    assert main(["ingest", str(source), "--store", str(store)]) == 0  # the rest
    assert open_store(store).dataset.sizes["time"] == 8


def test_later_times_append_and_statistics_follow(tmp_path, caplog):
    full, store = store_of_the_first_five(tmp_path)
    assert open_store(store).dataset.sizes["time"] == 5
    with caplog.at_level("INFO", logger="pipeline.ingest_report"):
        appended = ingest(tmp_path / "all.nc", store, progress=False)
    # the overlap is said to be kept as stored (revised values in it went unmentioned)
    assert "5 of the input's 8 time(s) are in the store already: kept as written" in caplog.text
    np.testing.assert_allclose(
        appended.dataset["t2m"].values, full["tas"].values + 273.15, rtol=1e-6
    )
    mean = float(appended.statistics["t2m"].sel(statistic="mean"))
    assert mean == pytest.approx(float((full["tas"] + 273.15).mean()), rel=1e-6)
    # the history names the input of each ingest that grew the store, not only the first
    history = appended.dataset.attrs["history"].splitlines()
    assert "created by wxens ingest from" in history[0] and "first" in history[0]
    extended = [h for h in history if "extended by wxens ingest from" in h]
    assert len(extended) == 1 and extended[0].endswith("all.nc")


def test_glob_of_netcdf_files_and_gaps(tmp_path):
    times = pd.date_range("2021-01-01", periods=12, freq="6h")
    make_netcdf(tmp_path / "a.nc", times[:4], seed=1)
    make_netcdf(tmp_path / "b.nc", times[6:], seed=2)  # 2 missing times between the files
    store = ingest(str(tmp_path / "*.nc"), tmp_path / "s.zarr", progress=False)
    assert store.dataset.sizes["time"] == 10
    assert store.missing_times == tuple(times[4:6])


def test_the_missing_times_warning_names_the_first_of_them(tmp_path, caplog):
    """Finalising said "5 missing time(s) at the native step (6 h)" and named none: the
    user could not find the gap without reading the store's times."""
    times = pd.date_range("2021-01-01", periods=12, freq="6h")
    make_netcdf(tmp_path / "a.nc", times[:2], seed=1)
    make_netcdf(tmp_path / "b.nc", times[9:], seed=2)  # 7 missing times between the files
    with caplog.at_level("WARNING", logger="pipeline.analysis_store"):
        store = ingest(str(tmp_path / "*.nc"), tmp_path / "s.zarr", progress=False)
    gap = times[2:9]
    assert store.missing_times == tuple(gap)
    assert (
        f"7 missing time(s) at the native step (6 h): {times_text(gap[:3])} ... "
        f"{times_text(gap[-1:])} (7 in all)" in caplog.text
    )
    named = "2021-01-01T12:00, 2021-01-01T18:00, 2021-01-02T00:00 ... 2021-01-03T00:00"
    assert named in caplog.text


def test_late_analyses_in_a_gap_do_not_stop_the_later_ones(tmp_path, caplog):
    # an operational store: 06..11 of a day never came, the next day's ingest of every
    # file (incoming/*.grib) holds them late beside the new times: the new times append,
    # the late ones stay missing, said so (refusing all of them stopped every later ingest)
    times = pd.date_range("2021-01-01", periods=12, freq="6h")
    full = make_netcdf(tmp_path / "all.nc", times)
    full.isel(time=[0, 1, 2, 3, 6, 7]).to_netcdf(tmp_path / "first.nc")
    store = tmp_path / "s.zarr"
    ingest(tmp_path / "first.nc", store, progress=False)
    assert open_store(store).missing_times == tuple(times[4:6])
    with caplog.at_level("WARNING", logger="pipeline.ingest_report"):
        grown = ingest(tmp_path / "all.nc", store, progress=False)
    # the late time as wxens info shows it, not as a Timestamp prints (2021-01-02 00:00:00)
    assert "stay missing, in a gap of the store, first 2021-01-02T00:00;" in caplog.text
    assert "00:00:00" not in caplog.text
    assert grown.dataset.sizes["time"] == 10 and grown.missing_times == tuple(times[4:6])
    np.testing.assert_allclose(
        grown.dataset["t2m"].values[-4:], full["tas"].values[-4:] + 273.15, rtol=1e-6
    )


def test_zarr_sources_from_path_and_fsspec_url(tmp_path):
    times = pd.date_range("2022-06-01", periods=4, freq="12h")
    wb2 = xr.Dataset(
        {
            "2m_temperature": (
                ("time", "latitude", "longitude"),
                np.full((4, 3, 8), 290.0),
                {"units": "K"},
            ),
            "temperature": (
                ("time", "level", "latitude", "longitude"),
                np.full((4, 2, 3, 8), 250.0),
                {"units": "K"},
            ),
        },
        coords={
            "time": times,
            "level": [500, 850],
            "latitude": [60.0, 0.0, -60.0],
            "longitude": np.arange(-180, 180, 45.0),
        },
    )
    wb2.to_zarr(tmp_path / "wb2.zarr", zarr_format=3, consolidated=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # no consolidated-metadata fallback noise
        assert set(ZarrSource(str(tmp_path / "wb2.zarr")).open().data_vars) == set(wb2.data_vars)
    local = ingest(str(tmp_path / "wb2.zarr"), tmp_path / "a.zarr", progress=False)
    assert set(local.dataset.data_vars) == {"t2m", "t"}
    assert local.dataset.longitude.values.tolist() == list(range(0, 360, 45)), "global -> [0, 360)"
    wb2.to_zarr("memory://wb2-test.zarr", zarr_format=3, consolidated=False, mode="w")
    remote = ingest(
        ZarrSource("memory://wb2-test.zarr"), tmp_path / "b.zarr", variables=["t"], progress=False
    )
    assert list(remote.dataset.data_vars) == ["t"]
    assert remote.statistics["t"].dims == ("statistic", "level")
    one = ingest(str(tmp_path / "wb2.zarr"), tmp_path / "c.zarr", variables="t2m", progress=False)
    assert list(one.dataset.data_vars) == ["t2m"]  # one name, not ['t', '2', 'm']


def test_a_store_read_while_an_append_writes_it_reads_as_it_was_before(
    tmp_path, monkeypatch, caplog
):
    """A scheduled forecast opening the store while the hourly ingest appends to it was
    refused ('the store is incomplete'), and its run failed: it now reads the last
    complete commit (the 5 times it had), told that an ingest is writing or was
    interrupted; the store's first ingest unfinished is still refused."""
    _, store = store_of_the_first_five(tmp_path)
    five = open_store(store).statistics
    real_write, seen = store_module.write_blocks, []

    def reading_meanwhile(*args, **kwargs):
        with caplog.at_level("WARNING", logger="pipeline.analysis_store"):
            seen.append(open_store(store))
        return real_write(*args, **kwargs)

    monkeypatch.setattr(store_module, "write_blocks", reading_meanwhile)
    ingest(tmp_path / "all.nc", store, progress=False)
    before, after = seen[0], open_store(store)
    assert before.dataset.sizes["time"] == 5 and after.dataset.sizes["time"] == 8
    xr.testing.assert_equal(before.dataset.load(), after.dataset.isel(time=slice(0, 5)).load())
    xr.testing.assert_identical(before.statistics, five)
    said = caplog.text
    assert "its last ingest has not finished (5 of 8 times written: an ingest is writing" in said
    assert "if none is running, rerun it" in said and "as it was before it, 5 times" in said
    first = tmp_path / "first.zarr"
    monkeypatch.setattr(store_module, "write_blocks", lambda *a, **k: open_store(first))
    with pytest.raises(StoreError, match="the store is incomplete .*if none is running"):
        ingest(tmp_path / "all.nc", first, progress=False)


def test_failed_write_resumes_to_the_same_bytes(tmp_path, monkeypatch, store_content):
    times = pd.date_range("2021-01-01", periods=10, freq="1h")
    make_netcdf(tmp_path / "in.nc", times)
    monkeypatch.setattr(store_module, "MIN_CHUNK_BYTES", 1)  # one time step a chunk
    reference = tmp_path / "reference.zarr"
    ingest(tmp_path / "in.nc", reference, progress=False)

    monkeypatch.setattr(blocks_module, "BLOCK_BYTES", 2 * 12 * 4)  # two time steps a block
    real_write, calls = blocks_module.write_region, []

    def failing_write(data, path, region):
        calls.append(region)
        if len(calls) == 3:
            raise OSError("disk full (simulated)")
        real_write(data, path, region)

    monkeypatch.setattr(blocks_module, "write_region", failing_write)
    broken = tmp_path / "broken.zarr"
    with pytest.raises(OSError, match="simulated"):
        ingest(tmp_path / "in.nc", broken, progress=False)
    with pytest.raises(StoreError, match=r"incomplete \(4 of 10 times written"):
        open_store(broken)
    assert main(["info", str(broken)]) == 2

    monkeypatch.setattr(blocks_module, "write_region", real_write)
    resumed = ingest(tmp_path / "in.nc", broken, progress=False)
    assert without_history(store_content(broken)) == without_history(store_content(reference))
    # other block boundaries only change the order of the float64 sums
    xr.testing.assert_allclose(resumed.statistics, open_store(reference).statistics, rtol=1e-12)


# --- bad input: a clear error naming the file and the fix, exit 2, nothing half-written ---


def run_cli(capsys, *args: str) -> tuple[int, str]:
    code = main(list(args))
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return code, err


def test_truncated_grib(tmp_path, capsys, uk_sample):
    bad = tmp_path / "cut.grib"
    bad.write_bytes(uk_sample.read_bytes()[: 3360 * 5 + 1000])
    code, err = run_cli(capsys, "ingest", str(bad), "--store", str(tmp_path / "s.zarr"))
    assert code == 2 and "cut.grib: GRIB message 6" in err and "truncated" in err
    assert not (tmp_path / "s.zarr").exists()
    # a feed's file still being copied reads so: told to download it again, a forecaster
    # would fetch (or delete) a file about to be whole; the message says where it ends
    assert f"the file ends at byte {3360 * 5 + 1000}, 2342 bytes before" in err, err
    assert "still being written" in err, err


@pytest.mark.parametrize(
    "damage, said",
    [
        # the data section's length field 1000 bytes short: read past it, silently
        (lambda m: m.__setitem__(slice(92, 95), (3246 - 1000).to_bytes(3, "big")), "sections"),
        # the data section's packing flags garbled: ecCodes cannot decode the message
        (lambda m: m.__setitem__(95, 0xF0), "cannot be decoded"),
    ],
)
def test_a_grib_message_with_a_corrupt_data_section_is_refused(
    tmp_path, capsys, uk_sample, store_content, damage, said
):
    # Message 101 keeps its length and 7777 (the framing check passes); its data section
    # (at byte 92 of the 3342-byte GRIB 1 message) is damaged. The store is left as it was.
    store = tmp_path / "s.zarr"
    code, _ = run_cli(
        capsys,
        "ingest",
        str(uk_sample),
        "--store",
        str(store),
        "--end",
        "2019-03-01T05",
        "--no-progress",
    )
    assert code == 0
    before = store_content(store)
    data = bytearray(uk_sample.read_bytes())
    message = data[100 * 3360 : 100 * 3360 + 3342]
    damage(message)
    data[100 * 3360 : 100 * 3360 + 3342] = message
    bad = tmp_path / "bad.grib"
    bad.write_bytes(bytes(data))
    code, err = run_cli(capsys, "ingest", str(bad), "--store", str(store), "--no-progress")
    assert code == 2 and "bad.grib: GRIB message 101" in err and said in err, err
    assert "corrupt" in err and "download the file again" in err
    assert store_content(store) == before
    # named by its byte offset and length too (it was by its index only where ecCodes
    # could not decode it): they cut out of the file the message damaged
    at = re.search(r"GRIB message 101 \(at byte (\d+), (\d+) bytes\)", err)
    assert at is not None, err
    offset, length = int(at.group(1)), int(at.group(2))
    assert bad.read_bytes()[offset : offset + length] == message


def test_non_grib_named_grib(tmp_path, capsys):
    fake = tmp_path / "fake.grib"
    make_netcdf(tmp_path / "x.nc", pd.date_range("2021-01-01", periods=2, freq="h"))
    shutil.copy(tmp_path / "x.nc", fake)
    code, err = run_cli(capsys, "ingest", str(fake), "--store", str(tmp_path / "s.zarr"))
    assert code == 2 and "fake.grib: is not a GRIB file" in err
    assert not (tmp_path / "s.zarr").exists()


def test_absent_variable(tmp_path, capsys, uk_sample):
    code, err = run_cli(
        capsys, "ingest", str(uk_sample), "--store", str(tmp_path / "s.zarr"), "--variables", "msl"
    )
    assert code == 2 and "['msl'] not found" in err and "--variables" in err
    assert not (tmp_path / "s.zarr").exists()


def test_unknown_units(tmp_path, capsys):
    make_netcdf(
        tmp_path / "odd.nc", pd.date_range("2021-01-01", periods=2, freq="h"), units="furlongs"
    )
    code, err = run_cli(
        capsys, "ingest", str(tmp_path / "odd.nc"), "--store", str(tmp_path / "s.zarr")
    )
    assert code == 2 and "'furlongs'" in err and "odd.nc" in err
    assert not (tmp_path / "s.zarr").exists()


def test_duplicate_times_across_files(tmp_path, capsys):
    times = pd.date_range("2021-01-01", periods=4, freq="h")
    make_netcdf(tmp_path / "a.nc", times[:3])
    make_netcdf(tmp_path / "b.nc", times[2:])
    code, err = run_cli(
        capsys,
        "ingest",
        str(tmp_path / "a.nc"),
        str(tmp_path / "b.nc"),
        "--store",
        str(tmp_path / "s.zarr"),
    )
    assert code == 2 and "duplicate time" in err and "2021-01-01T02:00" in err
    assert not (tmp_path / "s.zarr").exists()


def test_a_day_sent_again_under_another_name_is_kept_as_the_store_holds_it(
    tmp_path, capsys, caplog
):
    """A feed's folder (`incoming/*.nc`) with a day sent again under another name: its
    times are the store's already, so no copy of them is written and which one is no
    question. It refused every run ("duplicate time"); the new day is now appended once."""
    times = pd.date_range("2021-01-01", periods=6, freq="6h")
    incoming, store = tmp_path / "incoming", tmp_path / "s.zarr"
    incoming.mkdir()
    make_netcdf(incoming / "day1.nc", times[:3])
    assert run_cli(capsys, "ingest", str(incoming / "*.nc"), "--store", str(store))[0] == 0
    before = open_store(store).dataset["t2m"].values
    resent = make_netcdf(incoming / "day1_v2.nc", times[:3], seed=5)  # other values, unused
    new = make_netcdf(incoming / "day2.nc", times[3:], seed=1)
    with caplog.at_level("INFO"):
        code, err = run_cli(capsys, "ingest", str(incoming / "*.nc"), "--store", str(store))
    assert code == 0, err
    held = "2 inputs hold 3 time(s) the store has already"
    assert f"{held} ({incoming / 'day1.nc'}, {incoming / 'day1_v2.nc'})" in caplog.text
    ds = open_store(store).dataset
    assert list(ds["time"].values) == list(times.values)
    np.testing.assert_array_equal(ds["t2m"].values[:3], before)
    assert not np.allclose(ds["t2m"].values[:3], resent["tas"].values + 273.15)
    np.testing.assert_allclose(ds["t2m"].values[3:], new["tas"].values + 273.15, rtol=1e-6)
    # the files named one by one: the same; a time of them the store lacks is still refused
    later = make_netcdf(tmp_path / "day3.nc", pd.date_range(times[-1], periods=4, freq="6h")[1:])
    args = [str(incoming / "day2.nc"), str(incoming / "day1_v2.nc"), str(tmp_path / "day3.nc")]
    assert run_cli(capsys, "ingest", *args, "--store", str(store))[0] == 0
    assert open_store(store).dataset.sizes["time"] == 9
    np.testing.assert_array_equal(open_store(store).dataset["t2m"].values[:3], before)
    shutil.copy(tmp_path / "day3.nc", tmp_path / "day3_v2.nc")
    (tmp_path / "day3.nc").unlink()
    fourth = pd.date_range(later["time"].values[-1], periods=3, freq="6h")[1:]
    make_netcdf(tmp_path / "day4.nc", fourth)  # new times, given twice: which copy?
    shutil.copy(tmp_path / "day4.nc", tmp_path / "day4_v2.nc")
    code, err = run_cli(capsys, "ingest", str(tmp_path / "day*.nc"), "--store", str(store))
    assert code == 2 and "'tas' has 2 duplicate time(s) across the inputs" in err, err
    assert open_store(store).dataset.sizes["time"] == 9  # nothing written of it


def resent_day(tmp_path: Path, capsys) -> tuple[Path, Path, pd.DatetimeIndex, xr.Dataset]:
    """``incoming/day1.nc`` (3 six-hourly times, degC) ingested into ``s.zarr``; returns
    the folder, the store, the 6 times of two days and day1's dataset, to resend."""
    times = pd.date_range("2021-01-01", periods=6, freq="6h")
    incoming, store = tmp_path / "incoming", tmp_path / "s.zarr"
    incoming.mkdir()
    day1 = make_netcdf(incoming / "day1.nc", times[:3])
    assert run_cli(capsys, "ingest", str(incoming / "*.nc"), "--store", str(store))[0] == 0
    return incoming, store, times, day1


def test_a_day_resent_with_a_corrected_value_warns_and_the_store_keeps_its_own(
    tmp_path, capsys, caplog
):
    """A centre's corrected re-send of a day the store holds was dropped as silently as an
    identical one: the forecaster never learnt the store disagrees with the newest file.
    It is still not written, but a warning names the file, variable, time, difference."""
    incoming, store, times, day1 = resent_day(tmp_path, capsys)
    before = open_store(store).dataset["t2m"].values
    corrected = day1.copy(deep=True)
    corrected["tas"].values[1, 2, 3] += 1.5
    corrected.to_netcdf(incoming / "day1_v2.nc")
    make_netcdf(incoming / "day2.nc", times[3:], seed=1)
    with caplog.at_level("INFO"):
        code, err = run_cli(capsys, "ingest", str(incoming / "*.nc"), "--store", str(store))
    assert code == 0, err
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    resent = [m for m in warned if "differ from the store" in m]
    assert len(resent) == 1, warned  # once, though the flow opens the inputs twice
    assert f"1 resent input(s) ({incoming / 'day1_v2.nc'})" in resent[0]
    assert f"at 1 time(s) it holds ({times_text(times[1:2])})" in resent[0]
    assert "t2m by up to 1.5 K" in resent[0] and "wxens ingest --overwrite" in resent[0]
    assert "2 inputs hold 3 time(s) the store has already" in caplog.text
    ds = open_store(store).dataset
    assert ds["t2m"].values[:3].tobytes() == before.tobytes()
    # named one by one (combined as canonical datasets): the same warning
    caplog.clear()
    later = make_netcdf(tmp_path / "day3.nc", pd.date_range(times[-1], periods=2, freq="6h")[1:])
    with caplog.at_level("WARNING", logger="pipeline.resent"):
        named = [incoming / "day1.nc", incoming / "day1_v2.nc", tmp_path / "day3.nc"]
        ingest(named, store, progress=False)
    assert f"(netcdf:{incoming / 'day1_v2.nc'}) differ from the store at 1 time" in caplog.text
    assert open_store(store).dataset["t2m"].values[:3].tobytes() == before.tobytes()
    assert open_store(store).dataset.sizes["time"] == 6 + later.sizes["time"]


def test_a_day_resent_identical_in_content_does_not_warn(tmp_path, capsys, caplog):
    """A copy equal to the store's values once normalised as ingest writes them (here in
    kelvin, not the first file's degC, its latitudes descending) keeps the one log line."""
    incoming, store, times, day1 = resent_day(tmp_path, capsys)
    before = open_store(store).dataset["t2m"].values
    shutil.copy(incoming / "day1.nc", incoming / "day1_copy.nc")
    kelvin = (day1 + 273.15).isel(lat=slice(None, None, -1))
    kelvin["tas"].attrs["units"] = "K"
    kelvin.to_netcdf(incoming / "day1_v2.nc")
    make_netcdf(incoming / "day2.nc", times[3:], seed=1)
    with caplog.at_level("INFO"):
        code, err = run_cli(capsys, "ingest", str(incoming / "*.nc"), "--store", str(store))
    assert code == 0, err
    assert "3 inputs hold 3 time(s) the store has already" in caplog.text
    assert "differ from the store" not in caplog.text
    ds = open_store(store).dataset
    assert ds.sizes["time"] == 6 and ds["t2m"].values[:3].tobytes() == before.tobytes()


def resent_copies(incoming: Path, times: pd.DatetimeIndex, day1: xr.Dataset) -> None:
    """Beside ``resent_day``'s ``day1.nc``: an identical copy of it, a copy with one value
    1.5 degrees higher (``day1_v2.nc``) and the next day, new to the store."""
    shutil.copy(incoming / "day1.nc", incoming / "day1_copy.nc")
    corrected = day1.copy(deep=True)
    corrected["tas"].values[1, 2, 3] += 1.5
    corrected.to_netcdf(incoming / "day1_v2.nc")
    make_netcdf(incoming / "day2.nc", times[3:], seed=1)


def test_a_resent_day_is_accepted_and_compared_when_ingest_adjusts_its_inputs(
    tmp_path, capsys
):
    """With --units (or --rename, --select) the same resent day failed every run ("'tas'
    has 3 duplicate time(s) across the inputs"): the check of the adjustments opened the
    glob before the store's times were known. Opened once, where they are, its dropped
    copies are compared as without adjustments: the corrected one warns once."""
    incoming, store, times, day1 = resent_day(tmp_path, capsys)
    before = open_store(store).dataset["t2m"].values
    resent_copies(incoming, times, day1)
    argv = ["ingest", str(incoming / "*.nc"), "--store", str(store), "--units", "tas=degC"]
    done = subprocess.run(
        [sys.executable, "-m", "flows.cli", *argv, "--no-progress"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert "3 inputs hold 3 time(s) the store has already" in done.stderr
    assert done.stderr.count("differ from the store") == 1, done.stderr
    assert f"1 resent input(s) ({incoming / 'day1_v2.nc'}) differ" in done.stderr
    ds = open_store(store).dataset
    assert list(ds["time"].values) == list(times.values)
    assert ds["t2m"].values[:3].tobytes() == before.tobytes()
    # --overwrite builds the store from the inputs alone: two copies of a time, refused
    code, err = run_cli(capsys, *argv, "--overwrite")
    assert code == 2 and "'tas' has 3 duplicate time(s) across the inputs" in err, err
    assert open_store(store).dataset["t2m"].values[:3].tobytes() == before.tobytes()


def test_one_adjusted_source_opened_twice_still_compares_its_resent_copies(
    tmp_path, capsys, caplog
):
    """An AdjustedSource keeps its first open; the copies of held times dropped there were
    gathered by that open only, so an ingest reusing it (as the CLI and the flow's task do,
    after checking the adjustments) dropped a corrected re-send without a word."""
    incoming, store, times, day1 = resent_day(tmp_path, capsys)
    before = open_store(store).dataset["t2m"].values
    resent_copies(incoming, times, day1)
    glob = resolve_source(str(incoming / "*.nc"))
    adjusted = AdjustedSource(glob, Adjustments(units={"tas": "degC"}))
    with store_holds(held_times(store)):
        open_canonical([adjusted])
    with caplog.at_level("WARNING", logger="pipeline.resent"):
        ingest([adjusted], store, progress=False)
    assert caplog.text.count("differ from the store") == 1, caplog.text
    assert f"1 resent input(s) ({incoming / 'day1_v2.nc'}) differ" in caplog.text
    ds = open_store(store).dataset
    assert ds.sizes["time"] == 6 and ds["t2m"].values[:3].tobytes() == before.tobytes()


def test_a_grib_day_sent_again_under_another_name_appends_the_new_day(
    tmp_path, capsys, uk_sample
):
    """The same through cfgrib: the shipped sample's first day, then that day again under
    another name beside its second day (hourly messages of 3360 bytes)."""
    day = 24 * 3360
    incoming, store = tmp_path / "incoming", tmp_path / "s.zarr"
    incoming.mkdir()
    sample = uk_sample.read_bytes()
    (incoming / "2019-03-01.grib").write_bytes(sample[:day])
    assert run_cli(capsys, "ingest", str(incoming / "*.grib"), "--store", str(store))[0] == 0
    before = open_store(store).dataset["t2m"].values
    (incoming / "2019-03-01_v2.grib").write_bytes(sample[:day])
    (incoming / "2019-03-02.grib").write_bytes(sample[day : 2 * day])
    code, err = run_cli(capsys, "ingest", str(incoming / "*.grib"), "--store", str(store))
    assert code == 0, err  # was: "'t2m' has 24 duplicate time(s) across the inputs"
    ds = open_store(store).dataset
    assert ds.sizes["time"] == 48 and not ds.indexes["time"].has_duplicates
    np.testing.assert_array_equal(ds["t2m"].values[:24], before)


def test_a_block_of_one_dask_chunk_is_loaded_without_a_copy():
    """dask's own compute copies a lone chunk; the ingest block takes it as its task
    returned it (a decoder's read, here a fixed array), and assembles a variable of
    several chunks as load does."""
    single = np.arange(12.0).reshape(4, 3)
    read = dask.array.from_delayed(dask.delayed(lambda: single)(), single.shape, single.dtype)
    assert not np.shares_memory(read.compute(), single)  # the copy avoided
    ds = xr.Dataset(
        {
            "one": (("time", "x"), read),
            "two": (("time", "x"), dask.array.from_array(single + 1, chunks=(2, 3))),
        },
        coords={"time": np.arange(4), "c": ("time", dask.array.arange(4, chunks=4))},
    )
    loaded = blocks_module.load_without_copy(ds)
    assert np.shares_memory(loaded["one"].values, single)
    assert not any(isinstance(v.data, dask.array.Array) for v in loaded.variables.values())
    assert isinstance(ds["one"].data, dask.array.Array)  # the caller's stays lazy
    xr.testing.assert_identical(loaded, ds.load())


def test_nans_refused_unless_allowed(tmp_path, capsys):
    times = pd.date_range("2021-01-01", periods=4, freq="h")
    ds = make_netcdf(tmp_path / "ok.nc", times)
    ds["tas"][2, 1, 1] = np.nan
    ds.to_netcdf(tmp_path / "nan.nc")
    code, err = run_cli(
        capsys, "ingest", str(tmp_path / "nan.nc"), "--store", str(tmp_path / "s.zarr")
    )
    assert code == 2 and "1 NaN value(s)" in err and "--allow-nan" in err
    assert not (tmp_path / "s.zarr").exists()
    store = ingest(tmp_path / "nan.nc", tmp_path / "s.zarr", allow_nan=True, progress=False)
    assert store_module.read_state(store.path)["nan_counts"] == {"t2m": 1}


def test_nans_in_an_append_roll_back(tmp_path):
    times = pd.date_range("2021-01-01", periods=6, freq="h")
    ds = make_netcdf(tmp_path / "all.nc", times)
    ds.isel(time=slice(0, 3)).to_netcdf(tmp_path / "first.nc")
    ds["tas"][4, 0, 0] = np.nan
    ds.to_netcdf(tmp_path / "nan.nc")
    path = tmp_path / "s.zarr"
    ingest(tmp_path / "first.nc", path, progress=False)
    with pytest.raises(InputError, match="NaN"):
        ingest(tmp_path / "nan.nc", path, progress=False)
    kept = open_store(path)
    assert kept.dataset.sizes["time"] == 3


def test_store_of_another_grid_or_variables(tmp_path, capsys):
    times = pd.date_range("2021-01-01", periods=3, freq="h")
    make_netcdf(tmp_path / "a.nc", times)
    make_netcdf(tmp_path / "b.nc", times, lat=(40.0, 41.0))
    path = tmp_path / "s.zarr"
    ingest(tmp_path / "a.nc", path, progress=False)
    code, err = run_cli(capsys, "ingest", str(tmp_path / "b.nc"), "--store", str(path))
    assert code == 2 and "3x4 grid" in err and "2x4 grid" in err and "--overwrite" in err
    assert open_store(path).dataset.sizes["latitude"] == 3, "refused store left untouched"
    code, _ = run_cli(
        capsys,
        "ingest",
        str(tmp_path / "b.nc"),
        "--store",
        str(path),
        "--overwrite",
        "--no-progress",
    )
    assert code == 0 and open_store(path).dataset.sizes["latitude"] == 2


def test_overwrite_failure_keeps_the_old_store(tmp_path, monkeypatch):
    times = pd.date_range("2021-01-01", periods=3, freq="h")
    make_netcdf(tmp_path / "a.nc", times)
    make_netcdf(tmp_path / "b.nc", times, lat=(40.0, 41.0))
    path = tmp_path / "s.zarr"
    ingest(tmp_path / "a.nc", path, progress=False)

    def broken(*_args):
        raise OSError("write failed (simulated)")

    monkeypatch.setattr(blocks_module, "write_region", broken)
    with pytest.raises(OSError):
        ingest(tmp_path / "b.nc", path, overwrite=True, progress=False)
    assert open_store(path).dataset.sizes["latitude"] == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == [".s.zarr.lock", "a.nc", "b.nc", "s.zarr"]


def test_info_command(uk_store, capsys):
    assert main(["info", str(uk_store)]) == 0
    out = capsys.readouterr().out
    assert "744 times, step 1 h" in out and "33 x 49" in out and "t2m" in out


def test_one_time_store_finalises_then_appends_as_one_ingest(tmp_path, capsys):
    """No step nor tendency std yet (were NaN: Icechunk's "bad metadata"); 6-hourly appends."""
    grid, one = "synthetic:n_lat=6,n_lon=8", tmp_path / "1.zarr"
    store = ingest(f"{grid},n_times=1", one, progress=False)
    assert main(["info", str(one)]) == 0
    out = capsys.readouterr().out
    assert "(1 time, step undefined (one time), 0 missing)" in out
    t2m = next(line for line in out.splitlines() if line.startswith("t2m "))
    assert t2m.split()[-1] == "undefined" and "nan" not in out  # the tendency's std
    assert store.native_step == pd.Timedelta(0) and store.missing_times == ()
    assert store.statistics.sel(statistic="tendency_std").isnull().to_array().all()
    assert store_module.read_state(one)["statistics"]["t"]["tendency_std"] == [None, None]
    assert np.isnan(statistics_pass(reader(one)).result()["t2m"]["tendency_std"])
    appended = ingest(f"{grid},n_times=8", one, progress=False)
    whole = ingest(f"{grid},n_times=8", tmp_path / "8.zarr", progress=False)
    xr.testing.assert_equal(appended.dataset.load(), whole.dataset.load())
    assert appended.native_step == whole.native_step == pd.Timedelta("6h")
    xr.testing.assert_allclose(appended.statistics, whole.statistics, rtol=1e-12)
    # one chunk of times, filled by the appends (was one chunk per time appended)
    assert appended.dataset.time.encoding["chunks"] == (store_module.TIME_COORDINATE_CHUNK,)


def test_times_off_the_store_step_are_refused_and_a_gap_is_not(tmp_path, capsys, store_content):
    """6- and 3-hourly times went into one store silently; refused now, before any write."""
    make_netcdf(tmp_path / "good.nc", pd.date_range("2010-01-01", periods=20, freq="6h"))
    make_netcdf(tmp_path / "3h.nc", pd.date_range("2010-01-13", periods=8, freq="3h"))
    make_netcdf(tmp_path / "gap.nc", pd.date_range("2010-01-07", periods=2, freq="12h"))
    ingest(tmp_path / "good.nc", path := tmp_path / "e8.zarr", progress=False)
    before = store_content(path)
    code, err = run_cli(capsys, "ingest", str(tmp_path / "3h.nc"), "--store", str(path))
    assert code == 2 and f"{path}: the store holds times every 6 h up to" in err
    assert "first 2010-01-13T03:00" in err and "new store= (--store), or select or resample" in err
    assert store_content(path) == before
    assert ingest(tmp_path / "gap.nc", path, progress=False).missing_times[0].day == 6


def test_an_append_to_a_store_of_one_time_keeps_that_time_on_the_axis(
    tmp_path, capsys, store_content
):
    """One analysis at 18 UTC, then daily times at 00 UTC: they were taken, the step became
    1 day and the store listed 18 UTC times as missing that no input was ever to give."""
    make_netcdf(tmp_path / "one.nc", pd.DatetimeIndex(["2019-12-31T18"]))
    make_netcdf(tmp_path / "daily.nc", pd.date_range("2020-01-01", periods=3, freq="D"))
    make_netcdf(tmp_path / "next.nc", pd.date_range("2020-01-01T18", periods=3, freq="D"))
    ingest(tmp_path / "one.nc", path := tmp_path / "one.zarr", progress=False)
    before = store_content(path)
    code, err = run_cli(capsys, "ingest", str(tmp_path / "daily.nc"), "--store", str(path))
    assert code == 2 and f"{path}: the store holds times every 1 day up to 2019-12-31" in err
    assert "first 2020-01-01T00:00" in err and store_content(path) == before
    code, err = run_cli(
        capsys,
        "ingest",
        str(tmp_path / "one.nc"),
        str(tmp_path / "daily.nc"),
        "--store",
        str(tmp_path / "two.zarr"),
    )
    assert code == 2 and "give times every 1 day up to 2019-12-31T18:00" in err
    store = ingest(tmp_path / "next.nc", path, progress=False)  # the same hour: appended
    assert store.native_step == pd.Timedelta("1D") and store.missing_times == ()


def test_appended_times_on_the_axis_of_fixed_and_calendar_steps():
    """The last time plus whole steps (months at the same place in theirs, one a month)."""
    hours = pd.date_range("2010-01-01", periods=20, freq="6h")
    later = pd.DatetimeIndex(["2010-01-06 12:00", "2010-01-13", "2010-01-13 03:00"])
    assert off_axis(hours, later).equals(later[2:]) and off_axis(hours[:1], later).empty
    starts = pd.date_range("2018-01-01", periods=12, freq="MS")
    later = pd.DatetimeIndex(["2019-03-01", "2019-04-15", "2019-05-01 06:00", "2019-06-30"])
    assert off_axis(starts, later).equals(later[1:]) and off_axis(starts[::3], later[:1]).size
    middles = pd.DatetimeIndex(["2020-01-16 12:00", "2020-02-15 12:00", "2020-03-16 12:00"])
    assert off_axis(middles, pd.DatetimeIndex(["2020-04-16", "2020-04-17"])).size == 1  # twice


def test_mid_month_appends_and_times_an_older_store_cannot_hold(tmp_path, monkeypatch, capsys):
    """Noon mid-month stamps were in days: rounded ones appended went to 2029; now refused."""
    make_netcdf(tmp_path / "a.nc", pd.DatetimeIndex(["2020-01-16 12:00", "2020-02-15 12:00"]))
    make_netcdf(tmp_path / "b.nc", pd.DatetimeIndex(["2020-03-16", "2020-04-15 12:00"]))
    ingest(tmp_path / "a.nc", new := tmp_path / "new.zarr", progress=False)
    times = ingest(tmp_path / "b.nc", new, progress=False).dataset.time.values
    assert str(times[2])[:13] == "2020-03-16T00"
    monkeypatch.setattr(store_module, "TIME_ENCODING", {"units": "days since 2020-01-16 12:00"})
    ingest(tmp_path / "a.nc", old := tmp_path / "old.zarr", progress=False)
    code, err = run_cli(capsys, "ingest", str(tmp_path / "b.nc"), "--store", str(old))
    assert code == 2 and "whole days since 2020-01-16T12:00:00, which cannot hold 1 of" in err
    assert "first 2020-03-16T00:00" in err and "--overwrite" in err


def test_a_stores_variables_read_in_one_order_whatever_the_hash_seed(tmp_path):
    """Zarr lists a group's arrays in no fixed order (it followed ``PYTHONHASHSEED``), and a
    derived config's channels follow the store's: the same store must read the same way in
    every process."""
    import os
    import subprocess
    import sys

    path = tmp_path / "s.zarr"
    ingest("synthetic:n_lat=4,n_lon=5,n_times=3,step=6h", path, progress=False)
    read = f"from pipeline.store import open_store; print(list(open_store({str(path)!r}).dataset))"
    orders = set()
    for seed in ("1", "2", "3", "4"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        done = subprocess.run([sys.executable, "-c", read], env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr[-2000:]
        orders.add(done.stdout.strip())
    assert len(orders) == 1
    assert orders.pop() == str(sorted(open_store(path).dataset.data_vars))


def test_info_says_per_which_step_the_tendency_std_is(tmp_path, capsys):
    """The tendency_std column was printed without its step: per 6 h? per hour?"""
    ingest("synthetic:n_lat=6,n_lon=8,n_times=8", tmp_path / "s.zarr", progress=False)
    assert main(["info", str(tmp_path / "s.zarr")]) == 0
    out = capsys.readouterr().out
    assert "tendency_std: the std of the change over one step of the store (6 h)" in out
