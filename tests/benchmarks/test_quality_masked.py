"""The masked-field study's land rule: land where the mean daily range reaches the limit."""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from benchmarks.quality_masked import land_mask
from pipeline.schema import Period


def test_land_is_where_the_mean_daily_range_reaches_the_limit():
    times = pd.date_range("2019-03-01", periods=4 * 24, freq="h")
    hour = np.asarray(times.hour, dtype=np.float64)
    amplitude = np.array([[0.5, 1.6], [1.49, 4.0]])  # K; daily range = 2 x amplitude
    t2m = xr.DataArray(
        280.0 + amplitude[None] * np.sin(2 * np.pi * hour / 24)[:, None, None],
        dims=("time", "latitude", "longitude"),
        coords={"time": times, "latitude": [50.0, 51.0], "longitude": [0.0, 1.0]},
    )
    land = land_mask(t2m, Period.parse("2019-03-01/2019-03-03", "period"), 2.95)
    np.testing.assert_array_equal(land.values, [[False, True], [True, True]])
    land = land_mask(t2m, Period.parse("2019-03-01/2019-03-03", "period"), 3.0)
    np.testing.assert_array_equal(land.values, [[False, True], [False, True]])
