"""The warm forecast of the truth store (``analysis``, in conftest.py) shared by the
bias-correction tests (imported as ``warm``: pytest puts this folder on ``sys.path``)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr


def warm_forecast(
    store, offset: float, members: int = 4, variables: tuple[str, ...] = ("t2m",)
) -> xr.Dataset:
    """Members = the truth at each valid time + ``offset`` + zero-mean member noise, of each
    of ``variables`` (at the store's levels for an upper-air one)."""
    rng = np.random.default_rng(2)
    forecast = xr.Dataset()
    for name in variables:
        truth = store.dataset[name].load()
        inits = pd.DatetimeIndex(truth.time.values[4:20])
        leads = pd.to_timedelta([6, 24], unit="h")
        valid = truth.sel(
            time=xr.DataArray(
                inits.values[:, None] + leads.values[None], dims=("init_time", "lead_time")
            )
        ).drop_vars("time")
        noise = rng.normal(size=(members, *valid.shape))
        noise -= noise.mean(axis=0)
        values = xr.DataArray(valid.values[None] + offset + noise, dims=("member", *valid.dims))
        dims = ("init_time", "member", "lead_time", *valid.dims[2:])
        forecast[name] = values.transpose(*dims).assign_attrs(truth.attrs)
    return forecast.assign_coords(
        init_time=inits,
        member=np.arange(members),
        lead_time=leads,
        **{d: truth[d].values for d in truth.dims if d != "time"},
    )
