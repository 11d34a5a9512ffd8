"""Initial times a forecast store holds already, written again (:func:`pipeline.
forecast_store.write_forecast`): a rerun of the whole history (``wxens bias-correct``)
writes only the ones whose values changed."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd
import xarray as xr

from pipeline.schema import INIT_TIME

#: Bytes of a forecast loaded at once to compare it with the store.
LOAD_BYTES = 256 * 2**20


def batches(along: xr.Dataset, times: pd.DatetimeIndex, load: bool) -> Iterator[xr.Dataset]:
    """``along`` at ``times``, one initial time at a time, lazily; with ``load``, in
    batches of up to :data:`LOAD_BYTES` loaded by one compute each: a compute per initial
    time walked the whole lazy forecast's graph each time (quadratic in its length)."""
    per_init = sum(v.nbytes for v in along.data_vars.values()) // max(along.sizes[INIT_TIME], 1)
    size = max(1, LOAD_BYTES // max(per_init, 1)) if load else 1
    for i in range(0, len(times), size):
        batch = along.sel({INIT_TIME: times[i : i + size]})
        yield batch.load() if load else batch


def same_values(stored: xr.Dataset, new: xr.Dataset) -> bool:
    """Whether the store's variables hold exactly ``new``'s values (NaN where it has NaN)."""
    return all(np.array_equal(stored[k].values, v.values, equal_nan=True) for k, v in new.items())
