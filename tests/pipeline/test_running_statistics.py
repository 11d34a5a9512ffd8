"""Statistics accumulated block by block while a store is ingested or appended to: equal to
numpy on the whole array, whatever the block size, and an append's to one run's."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
import zarr

import pipeline.analysis_store as analysis_store
import pipeline.ingest_blocks as blocks_module
import pipeline.store as store_module
from pipeline.analysis_store import STATE_ATTR
from pipeline.running_statistics import RunningStatistics, ordered_bits
from pipeline.store import ingest, open_store
from pipeline.transaction import transaction

TIMES = pd.date_range("2001-01-01", periods=11, freq="6h").delete(4)  # a gap: 10 times
LEVELS = [500.0, 850.0]


def field(seed: int, offset: float) -> xr.Dataset:
    """t2m and t on 2 levels at TIMES, values ``offset`` + noise; t holds one NaN."""
    rng = np.random.default_rng(seed)
    lat, lon = np.linspace(40, 60, 5), np.linspace(0, 12, 4)
    t2m = offset + rng.standard_normal((TIMES.size, lat.size, lon.size))
    t = offset + 3 * rng.standard_normal((TIMES.size, len(LEVELS), lat.size, lon.size))
    t[2, 1, 0, 0] = np.nan
    return xr.Dataset(
        {
            "t2m": (("time", "latitude", "longitude"), t2m.astype("f4"), {"units": "K"}),
            "t": (("time", "level", "latitude", "longitude"), t.astype("f4"), {"units": "K"}),
        },
        coords={
            "time": TIMES,
            "level": ("level", LEVELS, {"units": "hPa"}),
            "latitude": lat,
            "longitude": lon,
        },
    )


def numpy_statistics(ds: xr.Dataset) -> dict[str, dict[str, np.ndarray]]:
    """The reference: numpy on the whole float64 array of each variable, per level; the
    tendency is the float32 difference of times one 6 h step apart (gaps left out)."""
    times = pd.DatetimeIndex(ds.time.values)
    pairs = np.flatnonzero(np.diff(times) == pd.Timedelta("6h"))
    out = {}
    for name, da in ds.data_vars.items():
        axes = tuple(i for i, d in enumerate(da.dims) if d != "level")
        values = da.values
        wide = values.astype("f8")
        tendency = (values[1:] - values[:-1])[pairs].astype("f8")
        out[name] = {
            "mean": np.nanmean(wide, axis=axes),
            "std": np.nanstd(wide, axis=axes),
            "min": np.nanmin(wide, axis=axes),
            "max": np.nanmax(wide, axis=axes),
            "tendency_std": np.nanstd(tendency, axis=axes),
        }
    return out


def ingest_in_blocks(source: Path, path: Path, times_a_block: int, monkeypatch) -> None:
    """Ingest ``source`` one time a chunk, ``times_a_block`` a block; the pass over the
    store is refused, so the statistics must come from the blocks."""
    with monkeypatch.context() as patch:
        patch.setattr(store_module, "MIN_CHUNK_BYTES", 1)
        patch.setattr(blocks_module, "BLOCK_BYTES", times_a_block * 5 * 4 * 4 * 3)
        patch.setattr(analysis_store, "statistics_pass", pytest.fail)
        ingest(source, path, allow_nan=True, progress=False)


def test_one_pass_statistics_equal_numpy_on_the_store(tmp_path, monkeypatch):
    source = tmp_path / "in.nc"
    field(0, 280.0).to_netcdf(source)
    ingest_in_blocks(source, tmp_path / "s.zarr", 3, monkeypatch)
    store = open_store(tmp_path / "s.zarr")
    assert store.missing_times == (TIMES[0] + pd.Timedelta("24h"),)
    stats = store.statistics
    for name, entry in numpy_statistics(store.dataset.load()).items():
        for statistic, expected in entry.items():
            np.testing.assert_allclose(
                stats[name].sel(statistic=statistic).values, expected, rtol=1e-11
            )


def test_block_size_changes_nothing(tmp_path, monkeypatch, store_content):
    """Many blocks read ahead of their writes, or one block: the same store, bit for bit
    (the statistics too: they are folded one time step at a time either way)."""
    source = tmp_path / "in.nc"
    field(1, 5.0e4).to_netcdf(source)
    contents = []
    for times_a_block, name in ((1, "many.zarr"), (TIMES.size, "one.zarr")):
        ingest_in_blocks(source, tmp_path / name, times_a_block, monkeypatch)
        content = store_content(tmp_path / name)
        content["/"][0].pop("history")
        contents.append(content)
    assert contents[0] == contents[1]
    assert contents[0]["/"][0][STATE_ATTR]["written"] == [[0, TIMES.size]]


def test_running_statistics_against_numpy():
    """Blocks of 4, 1 and 5 times against numpy on the whole float64 array: a large offset
    (5e4, the size of geopotential) tests the cancellation in the variance; the tendency
    is the float32 difference of times 6 h apart (the gap's pair is left out)."""
    ds = field(2, 5.0e4)
    running = RunningStatistics(ds, TIMES)
    for start, stop in ((0, 4), (4, 5), (5, 10)):
        running.add(ds.isel(time=slice(start, stop)), start)
    got = running.result()
    for name, want in numpy_statistics(ds).items():
        for statistic, expected in want.items():
            np.testing.assert_allclose(got[name][statistic], expected, rtol=1e-11)
    assert got["t"]["level"] == LEVELS


def test_constant_field_has_zero_spread():
    ds = field(3, 0.0)
    ds = ds.assign(t2m=xr.full_like(ds.t2m, 1234.5))
    running = RunningStatistics(ds, TIMES)
    running.add(ds, 0)
    got = running.result()["t2m"]
    assert (got["mean"], got["std"], got["tendency_std"]) == (1234.5, 0.0, 0.0)


def test_blocks_out_of_order_are_refused():
    ds = field(4, 0.0)
    running = RunningStatistics(ds, TIMES)
    with pytest.raises(ValueError, match="starts at time 3, but 0 were added"):
        running.add(ds.isel(time=slice(3, 5)), 3)
    running.add(ds.isel(time=slice(0, 3)), 0)
    with pytest.raises(ValueError, match="3 of 10 times were added"):
        running.result()


def test_extremes_and_nan_counts_of_signed_and_missing_values():
    """Negative values, -0.0, a level without values at one time and a level without any:
    min and max equal numpy's nanmin/nanmax, a level without values gives NaN, and the
    NaN count of each variable comes back from the same pass."""
    ds = field(5, -3.0)
    t = ds.t.values.copy()
    t[:, 0] *= -1e30  # level 500: huge values of both signs
    t[0, 0, 0, 0] = -0.0
    t[3, 0] = np.nan  # level 500 has no value at time 3
    t[:, 1] = np.nan  # level 850 has none at all
    ds = ds.assign(t=(ds.t.dims, t))
    running = RunningStatistics(ds, TIMES)
    counts = running.add(ds.isel(time=slice(0, 6)), 0)
    counts_rest = running.add(ds.isel(time=slice(6, 10)), 6)
    got = running.result()["t"]
    nan_in = np.isnan(t)
    assert counts["t"] + counts_rest["t"] == nan_in.sum()
    assert counts["t2m"] == counts_rest["t2m"] == 0
    assert got["min"][0] == np.nanmin(t[:, 0]) and got["max"][0] == np.nanmax(t[:, 0])
    assert np.isnan([got[s][1] for s in ("mean", "std", "min", "max", "tendency_std")]).all()


def test_ordered_bits_orders_float32_as_integers():
    """The integer form of the extremes: order kept over 10 decades of both signs, signed
    zeros and infinities, and its own inverse."""
    rng = np.random.default_rng(6)
    scaled = rng.standard_normal(1000) * 10.0 ** np.arange(-5, 5).repeat(100)
    values = np.concatenate([scaled, [0.0, -0.0, np.inf, -np.inf]]).astype("f4")
    bits = ordered_bits(values.view(np.int32))
    assert np.array_equal(ordered_bits(bits).view(np.float32), values)
    order = np.argsort(bits, kind="stable")
    assert (np.diff(values[order]) >= 0).all()


def test_an_append_folds_in_only_its_times(tmp_path, monkeypatch):
    """A store grown by two appends (across the gap, and a time with a NaN) has the
    statistics of the same times ingested at once, bit for bit, with no pass over the
    store: the sums kept in its state go on (an append cost the whole history before)."""
    source = tmp_path / "in.nc"
    field(7, 5.0e4).to_netcdf(source)
    whole = ingest(source, tmp_path / "whole.zarr", allow_nan=True, progress=False)
    grown = tmp_path / "grown.zarr"
    ingest(source, grown, time=slice(None, TIMES[2]), allow_nan=True, progress=False)
    with monkeypatch.context() as patch:
        patch.setattr(analysis_store, "statistics_pass", pytest.fail)
        for last in (TIMES[6], TIMES[-1]):
            store = ingest(source, grown, time=slice(None, last), allow_nan=True, progress=False)
    xr.testing.assert_identical(store.statistics, whole.statistics)
    sums = store_module.read_state(grown)["running_sums"]
    assert sums == store_module.read_state(tmp_path / "whole.zarr")["running_sums"]
    assert sums["n_times"] == TIMES.size


def test_a_store_without_sums_is_summed_once_then_appends_alone(tmp_path, monkeypatch):
    """A store finalised by an older wxens (no sums in its state) is read whole once, on
    its next append; the appends after that fold in their own times only."""
    source = tmp_path / "in.nc"
    field(8, 280.0).to_netcdf(source)
    whole = ingest(source, tmp_path / "whole.zarr", allow_nan=True, progress=False)
    old = tmp_path / "old.zarr"
    ingest(source, old, time=slice(None, TIMES[3]), allow_nan=True, progress=False)
    with transaction(old, "a store as an older wxens left it") as writable:
        group = zarr.open_group(writable, mode="r+")
        state = dict(group.attrs[STATE_ATTR])
        del state["running_sums"]
        group.attrs[STATE_ATTR] = state
    passes = []
    real_pass = analysis_store.statistics_pass
    monkeypatch.setattr(
        analysis_store, "statistics_pass", lambda s: passes.append(1) or real_pass(s)
    )
    ingest(source, old, time=slice(None, TIMES[6]), allow_nan=True, progress=False)
    store = ingest(source, old, allow_nan=True, progress=False)
    assert passes == [1]
    xr.testing.assert_identical(store.statistics, whole.statistics)


def test_an_append_that_changes_the_native_step_sums_the_store_again(tmp_path):
    """Two times 6 h apart, then times 12 h apart: the step becomes 12 h, so the 6 h pair
    summed before is no tendency pair any more; the statistics equal one ingest's."""
    times = pd.DatetimeIndex(["2001-01-01T00", "2001-01-01T06"]).append(
        pd.date_range("2001-01-01T18", periods=TIMES.size - 2, freq="12h")
    )
    source = tmp_path / "in.nc"
    field(9, 280.0).assign_coords(time=times).to_netcdf(source)
    whole = ingest(source, tmp_path / "whole.zarr", allow_nan=True, progress=False)
    grown = tmp_path / "grown.zarr"
    ingest(source, grown, time=slice(None, times[1]), allow_nan=True, progress=False)
    store = ingest(source, grown, allow_nan=True, progress=False)
    assert store.native_step == whole.native_step == pd.Timedelta("12h")
    xr.testing.assert_identical(store.statistics, whole.statistics)
