"""The time axis of a producer's dataset: one ``time`` dimension of valid times, sorted.

cfgrib writes a forecast's valid times as ``time`` (the initial time) and ``step`` (or
``valid_time``, their sum); an analysis store is indexed by valid time alone. Part of
:func:`pipeline.normalize.normalize`; nothing here reads the data values.
"""

from __future__ import annotations

import logging

import pandas as pd
import xarray as xr

from pipeline.errors import InputError
from pipeline.schema import TIME, VALID_TIME

log = logging.getLogger(__name__)

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
    if "step" in ds.dims and "time" in ds.dims:
        ds = ds.stack(_valid=("time", "step"))
        ds = ds.assign_coords(_valid=ds["valid_time"].values).rename({"_valid": TIME})
        ds = ds.drop_vars(["step", "valid_time"], errors="ignore")
    elif "step" in ds.dims:
        ds = ds.swap_dims({"step": "valid_time"})
    if TIME not in ds.dims and "valid_time" in ds.dims:
        ds = ds.drop_vars(TIME, errors="ignore").rename({"valid_time": TIME})
    elif "step" in ds.coords and ds["step"].ndim == 0 and TIME in ds.dims:
        ds = ds.assign_coords({TIME: ds[TIME].values + ds["step"].values})  # = valid_time
    if TIME not in ds.dims:
        raise InputError(
            f"{origin}: no time dimension (dims are {dict(ds.sizes)}); "
            "an analysis needs 'time' or cfgrib's 'time'/'step'/'valid_time'"
        )
    ds = ds.drop_vars([c for c in _DROP_COORDS if c in ds.coords and c not in ds.dims])
    ds[TIME].attrs = {"standard_name": "time", "long_name": "time"}  # whichever way it came
    return ds


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
