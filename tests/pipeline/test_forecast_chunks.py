"""The forecast store's chunks: every member of an (initial time, lead) together, capped near
MAX_CHUNK_BYTES by one level a chunk, then even blocks of latitude, then longitude; small
grids as before; a store written before the cap keeps its chunks when appended to."""

from __future__ import annotations

import math

import dask.array as da
import numpy as np
import pandas as pd
import pytest
import xarray as xr
import zarr

from pipeline import chunking
from pipeline.chunking import MAX_CHUNK_BYTES, capped_chunks, even_block
from pipeline.forecast_store import (
    ForecastProvenance,
    _encoding,
    _prepare,
    open_forecast,
    write_forecast,
)
from pipeline.store import chunk_shape
from pipeline.transaction import reader

PROVENANCE = ForecastProvenance("flow_matching", "0123456789abcdef", "euler:nfe=10", 10, 0)
DIMS = ("init_time", "member", "lead_time", "level", "latitude", "longitude")


def lazy_forecast(members: int, levels: int, n_lat: int, n_lon: int, inits=2, leads=3):
    """A forecast of the shape given, lazily (nothing of it allocated)."""
    shape = (inits, members, leads, levels, n_lat, n_lon)
    z = da.zeros(shape, chunks=-1, dtype="float32")
    t2m = da.zeros(shape[:3] + shape[4:], chunks=-1, dtype="float32")
    coords = {
        "init_time": pd.date_range("2020-01-01", periods=inits, freq="6h"),
        "member": np.arange(members),
        "lead_time": pd.to_timedelta(np.arange(1, leads + 1) * 6, unit="h"),
        "level": np.arange(levels) * 100 + 100,
        "latitude": np.linspace(90, -90, n_lat),
        "longitude": np.arange(n_lon) * 360 / n_lon,
    }
    return xr.Dataset({"z": (DIMS, z), "t2m": (DIMS[:3] + DIMS[4:], t2m)}, coords=coords)


def chunks_of(forecast: xr.Dataset) -> dict[str, tuple[int, ...]]:
    encoding = _encoding(_prepare(forecast, PROVENANCE))
    return {name: encoding[name]["chunks"] for name in forecast.data_vars}


@pytest.mark.parametrize(
    ("shape", "z", "t2m"),
    [
        # 1 degree, 13 levels, 50 members: 170 MB an (init, lead) before; one level 13 MB
        ((50, 13, 181, 360), (1, 50, 1, 1, 181, 360), (1, 50, 1, 181, 360)),
        # 0.25 degree: one level is 208 MB, so four even latitude blocks of 181 (2.7 GB before)
        ((50, 13, 721, 1440), (1, 50, 1, 1, 181, 1440), (1, 50, 1, 181, 1440)),
        # a latitude row of every member over 64 MB: longitude in even blocks
        ((3000, 2, 721, 7200), (1, 3000, 1, 1, 1, 3600), (1, 3000, 1, 1, 3600)),
    ],
)
def test_a_large_grid_is_capped_with_every_member_in_each_chunk(shape, z, t2m):
    members, levels, n_lat, n_lon = shape
    chunks = chunks_of(lazy_forecast(members, levels, n_lat, n_lon))
    assert chunks == {"z": z, "t2m": t2m}
    for chunk in chunks.values():
        assert chunk[1] == members  # all members together
        assert math.prod(chunk) * 4 <= MAX_CHUNK_BYTES
        whole_level = chunk[-2:] == (n_lat, n_lon)
        assert whole_level or math.prod(chunk) * 4 > MAX_CHUNK_BYTES / 3  # not over-split


def test_latitude_and_longitude_blocks_are_even():
    assert even_block(721, 400) == 361  # two blocks (361 + 360), not 400 + 321
    assert even_block(721, 181) == 181 and even_block(721, 180) == 145  # four, then five
    assert even_block(181, 1000) == 181 and even_block(7, 0) == 1


@pytest.mark.parametrize(
    "shape",
    [(3, 2, 4, 5), (50, 1, 37, 45), (20, 4, 181, 360), (50, 3, 181, 360), (1, 13, 721, 1440)],
)
def test_a_grid_under_the_cap_keeps_one_chunk_per_init_and_lead(shape):
    """The UK sample (37 x 45), test stores and anything under 64 MB an (init, lead): as
    before the cap, every member, level and grid point of one (init, lead) in a chunk."""
    members, levels, n_lat, n_lon = shape
    chunks = chunks_of(lazy_forecast(members, levels, n_lat, n_lon))
    assert chunks == {
        "z": (1, members, 1, levels, n_lat, n_lon),
        "t2m": (1, members, 1, n_lat, n_lon),
    }


@pytest.mark.parametrize(
    ("levels", "n_lat", "n_lon", "expected"),
    [(37, 721, 1440, 16), (13, 721, 1440, 13), (137, 1801, 3600, 2), (2, 19, 36, 2)],
)
def test_the_analysis_store_keeps_its_chunks(levels, n_lat, n_lon, expected):
    """The shared helper gives the analysis store the chunks it had: as many levels as fit
    into MAX_CHUNK_BYTES (its level rule), the whole grid of one time step."""
    field = xr.DataArray(
        da.zeros((10, levels, n_lat, n_lon), dtype="float32"),
        dims=("time", "level", "latitude", "longitude"),
    )
    assert chunk_shape(field, 1) == (1, expected, n_lat, n_lon)
    assert capped_chunks(field, {"time": 1}) == chunk_shape(field, 1)


def small_forecast(inits: list[str], value: float) -> xr.Dataset:
    forecast = lazy_forecast(4, 3, 8, 10, inits=len(inits), leads=2).compute()
    forecast = forecast.assign_coords(init_time=pd.DatetimeIndex(inits))
    base = np.arange(forecast.z[0].size, dtype="float32").reshape(forecast.z.shape[1:])
    return forecast.assign(
        z=forecast.z + base + value, t2m=forecast.t2m + base[:, :, 0] + 2 * value
    )


def test_a_store_written_before_the_cap_keeps_its_chunks_when_appended_to(tmp_path, monkeypatch):
    """A store of the old layout (one chunk an (init, lead)) takes new initial times and
    reruns of its own with the chunks it has, even where the encoding now splits: the
    appended and rerun values are read back right, and only the rerun's region changes."""
    old, new = tmp_path / "old.zarr", tmp_path / "new.zarr"
    write_forecast(old, small_forecast(["2020-01-01T00", "2020-01-01T06"], 0.0), PROVENANCE)
    assert zarr.open_group(reader(old), mode="r")["z"].chunks == (1, 4, 1, 3, 8, 10)
    monkeypatch.setattr(chunking, "MAX_CHUNK_BYTES", 4 * 4 * 10 * 3)  # a level of 3 rows
    assert chunks_of(small_forecast(["2020-01-01T00"], 0.0))["z"] == (1, 4, 1, 1, 3, 10)
    write_forecast(new, small_forecast(["2020-01-01T00", "2020-01-01T06"], 0.0), PROVENANCE)
    assert zarr.open_group(reader(new), mode="r")["z"].chunks == (1, 4, 1, 1, 3, 10)
    for path in (old, new):
        write_forecast(path, small_forecast(["2020-01-01T12", "2020-01-01T18"], 1.0), PROVENANCE)
        write_forecast(path, small_forecast(["2020-01-01T06"], 5.0), PROVENANCE)
    group = zarr.open_group(reader(old), mode="r")
    assert group["z"].chunks == (1, 4, 1, 3, 8, 10) and group["t2m"].chunks == (1, 4, 1, 8, 10)
    expected = xr.concat(
        [
            small_forecast(["2020-01-01T00"], 0.0),
            small_forecast(["2020-01-01T06"], 5.0),
            small_forecast(["2020-01-01T12", "2020-01-01T18"], 1.0),
        ],
        "init_time",
    )
    for path in (old, new):
        read = open_forecast(path)
        for name in ("z", "t2m"):
            np.testing.assert_array_equal(read[name].values, expected[name].values)


def test_a_lazy_forecast_in_the_other_layout_is_written_into_either(tmp_path, monkeypatch):
    """A forecast read lazily from a store of one layout (``wxens bias-correct`` writes the
    raw store's dask chunks) appended to and rerun into a store of the other: dask chunks
    that split a stored chunk are written whole, not refused as unsafe."""

    def stores(layout: str) -> tuple:
        source, target = tmp_path / f"{layout}-source.zarr", tmp_path / f"{layout}-target.zarr"
        write_forecast(target, small_forecast(["2020-01-01T00"], 0.0), PROVENANCE)
        write_forecast(source, small_forecast(["2020-01-01T06", "2020-01-01T12"], 2.0), PROVENANCE)
        write_forecast(source, small_forecast(["2020-01-01T00"], 7.0), PROVENANCE)
        return source, target

    whole_source, whole_target = stores("whole")
    monkeypatch.setattr(chunking, "MAX_CHUNK_BYTES", 4 * 4 * 10 * 3)
    split_source, split_target = stores("split")
    assert zarr.open_group(reader(split_source), mode="r")["z"].chunks == (1, 4, 1, 1, 3, 10)
    for source, target in ((split_source, whole_target), (whole_source, split_target)):
        lazy = open_forecast(source)  # dask chunks as its store's
        assert lazy.z.chunks is not None
        write_forecast(target, lazy, PROVENANCE)  # 00 rerun, 06 and 12 appended
        read = open_forecast(target)
        np.testing.assert_array_equal(read.z.values, lazy.z.values)
        np.testing.assert_array_equal(read.t2m.values, lazy.t2m.values)
