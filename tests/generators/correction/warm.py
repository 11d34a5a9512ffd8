"""The warm forecast of the truth store (``analysis``, in conftest.py) shared by the
bias-correction tests (imported as ``warm``: pytest puts this folder on ``sys.path``)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr


def warm_forecast(store, offset: float, members: int = 4) -> xr.Dataset:
    """Members = the truth at each valid time + ``offset`` + zero-mean member noise."""
    truth = store.dataset.t2m.load()
    inits = pd.DatetimeIndex(truth.time.values[4:20])
    leads = pd.to_timedelta([6, 24], unit="h")
    valid = truth.sel(
        time=xr.DataArray(
            inits.values[:, None] + leads.values[None], dims=("init_time", "lead_time")
        )
    )
    noise = np.random.default_rng(2).normal(size=(members, *valid.shape))
    noise -= noise.mean(axis=0)
    values = valid.values[None] + offset + noise
    return xr.Dataset(
        {
            "t2m": (
                ("init_time", "member", "lead_time", "latitude", "longitude"),
                values.transpose(1, 0, 2, 3, 4),
            )
        },
        coords={
            "init_time": inits,
            "member": np.arange(members),
            "lead_time": leads,
            "latitude": truth.latitude.values,
            "longitude": truth.longitude.values,
        },
    )
