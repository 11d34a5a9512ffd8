"""Times sent again with other values: a warning that the store disagrees with its inputs.

A feed resends a day the store holds (``2019-03-22.grib``, then ``2019-03-22_v2.grib``),
most often because the centre corrected it. Ingest keeps the store's values and drops the
later copies (:mod:`pipeline.duplicate_times`); :func:`warn_resent_differences` compares
those copies, normalised as ingest writes its inputs (canonical units, grid orientation,
dtype), with the store's values at the same times, and warns once where they differ, so the
forecaster learns which files the store disagrees with and how to take them in. Only the
held times the inputs repeat, of the variables they hold, are read from the store.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from pipeline.schema import LEVEL, TIME
from pipeline.timeaxis import missing_names
from pipeline.transaction import open_snapshot, reader

log = logging.getLogger(__name__)

#: Units of the store dtype's epsilon within which two values are equal: a copy identical
#: in content but converted in another order (degC -> K in float64, then cast, against
#: float32 arithmetic) differs by a rounding or two of the dtype, never a correction.
ROUND_OFF_EPS = 4


def warn_resent_differences(
    path: Path, copies: Sequence[tuple[str, xr.Dataset]], period: slice | None = None
) -> None:
    """Warn where the dropped ``copies`` (input, canonical dataset of its dropped times) of
    times the store at ``path`` holds differ from its values there (NaN in both is equal),
    naming the inputs, the variables, the times, the largest differences and the fix."""
    if not copies:
        return
    store = open_snapshot(reader(path))
    inputs: list[str] = []
    times = pd.DatetimeIndex([])
    largest: dict[str, float] = {}  # NaN: differing only where one of them is NaN
    for label, copy in copies:
        if period is not None:
            copy = copy.sel({TIME: period})
        for name in copy.data_vars:
            if name not in store.data_vars or copy.sizes[TIME] == 0:
                continue
            differ, biggest = _differences(copy[name], store[name])
            if differ.size:
                inputs += [label] if label not in inputs else []
                times = times.union(differ)
                largest[str(name)] = np.fmax(largest.get(str(name), np.nan), biggest)
    if not times.size:
        return
    by = ", ".join(
        f"{name} by up to {value:.3g} {store[name].attrs.get('units', '')}".rstrip()
        if np.isfinite(value)
        else f"{name} NaN where the other holds a value"
        for name, value in sorted(largest.items())
    )
    log.warning(
        "%s: %d resent input(s) (%s) differ from the store at %d time(s) it holds (%s): %s; "
        "the store's values stand (an ingest never rewrites a time it holds): "
        "`wxens ingest --overwrite` rebuilds the store from the inputs",
        path, len(inputs), ", ".join(inputs), times.size, missing_names(times), by,
    )  # fmt: skip


def _differences(copy: xr.DataArray, held: xr.DataArray) -> tuple[pd.DatetimeIndex, float]:
    """The times at which ``copy`` differs from the store's ``held`` (read at those times
    and levels only), and the largest absolute difference; none for a copy on another
    grid, which the ingest would have refused had it written it."""
    theirs = held.sel({TIME: copy[TIME].values})
    if LEVEL in copy.dims and LEVEL in theirs.dims:
        theirs = theirs.sel({LEVEL: copy[LEVEL].values})
    if set(theirs.dims) != set(copy.dims) or theirs.transpose(*copy.dims).shape != copy.shape:
        return pd.DatetimeIndex([]), 0.0
    b = theirs.transpose(*copy.dims).values
    a = copy.values.astype(b.dtype)  # the dtype the store holds, as the ingest casts
    scale = np.nanmax(np.abs(b)) if np.isfinite(b).any() else 0.0
    tol = ROUND_OFF_EPS * np.finfo(b.dtype).eps
    same = np.isclose(a, b, rtol=tol, atol=tol * scale, equal_nan=True)
    differ = ~np.moveaxis(same, copy.get_axis_num(TIME), 0).reshape(len(copy[TIME]), -1).all(1)
    if not differ.any():
        return pd.DatetimeIndex([]), 0.0
    gap = np.abs(a.astype(np.float64) - b.astype(np.float64))[~same]
    biggest = float(np.nanmax(gap)) if np.isfinite(gap).any() else float("nan")
    return pd.DatetimeIndex(copy[TIME].values[differ]), biggest
