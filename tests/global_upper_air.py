"""A small global analysis store on WeatherBench 2's grid and names, shared by the tests of
``wxens verify`` and ``wxens forecast --balance`` on global grids (imported as
``tests.global_upper_air``)."""

from __future__ import annotations

import numpy as np
import xarray as xr

from pipeline.store import ingest
from verification.physics.balance import geostrophic_wind


def global_upper_air(root, n_times: int = 16) -> xr.Dataset:
    """A global store of 10 x 15 degrees with both poles (WeatherBench 2's grid and names),
    3 levels, ``n_times`` times 6 h apart (``root/global.zarr``): hypsometric z from a
    lapse-rate t, geostrophic winds (0 on the equator)."""
    lat, lon = np.arange(-90.0, 90.1, 10.0), np.arange(0.0, 360.0, 15.0)
    levels = np.array([500.0, 700.0, 850.0])
    phi, lam = np.meshgrid(np.deg2rad(lat), np.deg2rad(lon), indexing="ij")
    hours = np.arange(n_times)[:, None, None, None]
    t = 290 - 40 * np.sin(phi) ** 2 + 3 * np.cos(phi) * np.cos(2 * lam - hours / 10)
    t = t * (levels[None, :, None, None] / 1000) ** 0.19
    below = np.r_[1000.0, levels[::-1]][:-1]  # each level's lower neighbour, bottom first
    layers = 287.05 * t[:, ::-1] * np.log(below / levels[::-1])[None, :, None, None]
    z = 1000 + np.cumsum(layers, axis=1)[:, ::-1]
    dims = ("time", "level", "latitude", "longitude")
    u, v = (w.fillna(0).values for w in geostrophic_wind(xr.DataArray(z, dims=dims, coords={
        "latitude": lat, "longitude": lon})))  # fmt: skip
    fields = (
        ("geopotential", z, "m2 s-2"), ("temperature", t, "K"),
        ("u_component_of_wind", u, "m s-1"), ("v_component_of_wind", v, "m s-1"),
    )  # fmt: skip
    ds = xr.Dataset(
        {name: (dims, values.astype("float32"), {"units": unit}) for name, values, unit in fields},
        coords={
            "time": np.datetime64("2020-01-01") + np.arange(n_times) * np.timedelta64(6, "h"),
            "level": levels.astype(int), "latitude": lat, "longitude": lon,
        },
    )  # fmt: skip
    ds.to_zarr(root / "wb2.zarr", zarr_format=2)
    ingest([str(root / "wb2.zarr")], root / "global.zarr", progress=False)
    return ds
