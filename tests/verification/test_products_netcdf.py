"""Products written to CF NetCDF: the same numbers as to Zarr, and each chunk's products
reach the file as they are computed, not held in memory until it closes (HDF5's chunk cache
held every written chunk, up to 64 MiB a field, so the memory of a products file grew with
the store: benchmarks/products.py)."""

from __future__ import annotations

from pathlib import Path

import netCDF4
import numpy as np
import pandas as pd
import xarray as xr
from dask.callbacks import Callback

from verification.product_output import ProductRequest, write_products

ASKED = ProductRequest(mean=True, spread=True, quantiles="10,50,90", probability=("t2m<0degC",))


def _forecast(path: Path) -> Path:
    """t2m of 5 members, 4 initial times x 2 leads on a 46 x 90 grid, one chunk per initial
    time and lead as ``wxens forecast`` writes: 8 chunks of products, about 1 MB in all,
    noise that zlib barely compresses, against a NetCDF header of some 30 kB."""
    rng = np.random.default_rng(7)
    t2m = (273.0 + 3.0 * rng.standard_normal((4, 5, 2, 46, 90))).astype("float32")
    xr.Dataset(
        {
            "t2m": (
                ("init_time", "member", "lead_time", "latitude", "longitude"),
                t2m,
                {"units": "K"},
            )
        },
        coords={
            "init_time": pd.date_range("2019-03-04", periods=4, freq="6h"),
            "member": np.arange(5),
            "lead_time": pd.to_timedelta([6, 12], unit="h"),
            "latitude": np.linspace(-90, 90, 46),
            "longitude": np.arange(90) * 4.0,
        },
    ).chunk({"init_time": 1, "lead_time": 1}).to_zarr(path, consolidated=False)
    return path


class _FileSizes(Callback):
    """The size of ``path`` before each dask task starts (0 while it does not exist)."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path, self.sizes = path, [0]

    def _pretask(self, key, dsk, state) -> None:
        self.sizes.append(self.path.stat().st_size if self.path.exists() else 0)


def test_netcdf_products_reach_the_file_as_computed_and_equal_the_zarr_ones(tmp_path):
    forecast = _forecast(tmp_path / "f.zarr")
    out = tmp_path / "p.nc"
    default = netCDF4.get_chunk_cache()
    with _FileSizes(out.with_name("p.nc.products-tmp")) as seen:
        write_products(forecast, out, ASKED, progress=False)
    # before its last task (the close) the file held most of its data: nothing was waiting
    # in a cache for the close to write it
    assert max(seen.sizes) > out.stat().st_size / 2, (max(seen.sizes), out.stat().st_size)
    assert netCDF4.get_chunk_cache() == default  # other files' caches as they were
    write_products(forecast, tmp_path / "p.zarr", ASKED, progress=False)
    with xr.open_dataset(out) as nc, xr.open_zarr(tmp_path / "p.zarr") as zarr:
        assert sorted(nc.data_vars) == sorted(zarr.data_vars) and len(nc.data_vars) == 4
        for name in zarr.data_vars:
            np.testing.assert_array_equal(nc[name].values, zarr[name].values)
            assert nc[name].dims == zarr[name].dims
