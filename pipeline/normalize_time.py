"""The time axis of a producer's dataset: one ``time`` dimension of valid times, sorted.

cfgrib writes a forecast's valid times as ``time`` (the initial time) and ``step`` (or
``valid_time``, their sum); an analysis store is indexed by valid time alone. A (time,
step) cell that no message fills (ERA5's accumulations start at step 7 of their first
forecast) is no time: the source marks the cells it has (:data:`HAS_MESSAGE`). Part of
:func:`pipeline.normalize.normalize`; nothing here reads the data values.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import xarray as xr

from pipeline.errors import InputError
from pipeline.schema import TIME, VALID_TIME

log = logging.getLogger(__name__)

STEP = "step"
#: A boolean coordinate over the (time, step) cells of a GRIB file: whether a message
#: holds the cell (cfgrib fills the others with NaN).
HAS_MESSAGE = "wxens_has_message"

_DROP_COORDS = (
    "number",
    "step",
    "surface",
    "heightAboveGround",
    "valid_time",
    "height",
    "realization",
    "expver",  # ERA5's experiment version (final or ERA5T) in the CDS's NetCDF
)


def to_time_axis(ds: xr.Dataset, origin: str) -> xr.Dataset:
    """Analyses are indexed by valid time: cfgrib's (time, step) become one ``time``; a
    file of one time (a scalar ``valid_time``, or ``time`` and maybe ``step``) has a
    ``time`` of size one."""
    if {TIME, "step", VALID_TIME}.isdisjoint(ds.dims):
        scalar = [name for name in (VALID_TIME, TIME) if name in ds.coords]
        ds = ds.expand_dims(scalar[0]) if scalar else ds
    if STEP in ds.dims and TIME in ds.dims:
        ds = ds.stack(_cell=(TIME, STEP))
        valid = ds[VALID_TIME].values
        ds = ds.drop_vars(["_cell", TIME, STEP, VALID_TIME]).rename({"_cell": TIME})
        ds = ds.assign_coords({TIME: valid})
    elif "step" in ds.dims:
        ds = ds.swap_dims({"step": "valid_time"})
    if TIME not in ds.dims and "valid_time" in ds.dims:
        ds = ds.drop_vars(TIME, errors="ignore").rename({"valid_time": TIME})
    elif VALID_TIME in ds.coords and ds[VALID_TIME].dims == (TIME,):  # one step of cfgrib's
        ds = ds.assign_coords({TIME: ds[VALID_TIME].values})
    elif "step" in ds.coords and ds["step"].ndim == 0 and TIME in ds.dims:
        ds = ds.assign_coords({TIME: ds[TIME].values + ds["step"].values})  # = valid_time
    if TIME not in ds.dims:
        raise InputError(
            f"{origin}: no time dimension (dims are {dict(ds.sizes)}); "
            "an analysis needs 'time' or cfgrib's 'time'/'step'/'valid_time'"
        )
    if HAS_MESSAGE in ds.coords:
        ds = _cells_with_a_message(ds, origin)
    ds = ds.drop_vars([c for c in _DROP_COORDS if c in ds.coords and c not in ds.dims])
    ds[TIME].attrs = {"standard_name": "time", "long_name": "time"}  # whichever way it came
    return ds


def _cells_with_a_message(ds: xr.Dataset, origin: str) -> xr.Dataset:
    """``ds`` at the times that a message holds (:data:`HAS_MESSAGE`), the others logged."""
    present = np.broadcast_to(ds[HAS_MESSAGE].fillna(False).astype(bool).values, ds[TIME].shape)
    if not present.all():
        absent = pd.DatetimeIndex(ds[TIME].values[~present])
        log.info(
            "%s: no message holds %d of its (time, step) cells (valid at %s%s); they are no times",
            origin,
            absent.size,
            ", ".join(str(t) for t in absent[:3]),
            ", ..." if absent.size > 3 else "",
        )
    return ds.isel({TIME: present}).drop_vars(HAS_MESSAGE)


def sort_time(ds: xr.Dataset, origin: str) -> xr.Dataset:
    """``ds`` with ascending times; a time given twice is an :class:`InputError`."""
    times = pd.DatetimeIndex(ds[TIME].values)
    if times.has_duplicates:
        dup = times[times.duplicated()].unique()
        raise InputError(
            f"{origin}: {dup.size} duplicate time(s), first {[str(t) for t in dup[:3]]}; "
            "give each time once (are two input files covering the same period?)"
        )
    if not times.is_monotonic_increasing:
        log.info("%s: times were not in order; sorted", origin)
        ds = ds.sortby(TIME)
    return ds
