"""CF NetCDF-4 copies of stores (``wxens export STORE --out F.nc``), for a forecaster's own
tools (Panoply, ncview, cdo, a GIS, netCDF4 scripts): they read NetCDF with CF's names for
what each coordinate is, not Zarr v3."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr
from dask.delayed import Delayed

from pipeline.forecast_store import COMPLETE
from pipeline.schema import (
    INIT_TIME,
    LAT,
    LEAD_TIME,
    LEVEL,
    LON,
    MEMBER,
    VALID_TIME,
    VARIABLES,
)
from pipeline.standard_names import cf_names

#: CF 1.9: the first to allow the int64 that whole hours and levels are written in (2.2).
CONVENTIONS = "CF-1.9"
#: CF time units of every time coordinate: whole hours stay integers in the file.
TIME_UNITS = "hours since 1970-01-01 00:00:00"
DURATION_UNITS = "hours"
#: The calendar of a file whose store names none: numpy's datetime64 (as xarray writes it).
DEFAULT_CALENDAR = "proleptic_gregorian"
#: zlib level of the data variables: 4 compresses nearly as much as 9, much faster.
COMPLEVEL = 4
#: HDF5's chunk cache of each variable written, in bytes: none. Each dask chunk is written
#: whole as one NetCDF chunk (``chunksizes``), so a cache would only hold written chunks until
#: the file closes; netCDF-C's default (64 MiB a variable) held a products file's every small
#: chunk, so its memory grew with the store (docs/benchmarks.md).
WRITE_CHUNK_CACHE = 0
#: Held while the library-wide default chunk cache is :data:`WRITE_CHUNK_CACHE`.
_CACHE_DEFAULT = threading.Lock()
#: What a CF tool reads each wxens coordinate as (a store's own attributes win). xarray adds
#: its own ``dtype`` attribute on writing ``complete`` (``bool``) and ``lead_time``
#: (``timedelta64[us]``); it stays, as without it xarray reads them back as int8 and plain
#: integers, and a CF tool ignores an attribute it does not know.
COORDINATE_ATTRS: dict[str, dict[str, Any]] = {
    INIT_TIME: {"standard_name": "forecast_reference_time", "long_name": "initial time"},
    LEAD_TIME: {"standard_name": "forecast_period", "long_name": "lead time"},
    VALID_TIME: {"standard_name": "time", "long_name": "valid time"},
    MEMBER: {"standard_name": "realization", "long_name": "ensemble member", "units": "1"},
    LEVEL: {"standard_name": "air_pressure", "units": "hPa", "positive": "down"},
    # a forecast store's grid has no attributes: without these units CF tools cannot map it
    LAT: {"standard_name": "latitude", "long_name": "latitude", "units": "degrees_north"},
    LON: {"standard_name": "longitude", "long_name": "longitude", "units": "degrees_east"},
    # a forecast store's flag, a bool xarray writes as int8: CF flags (3.5) name its values
    COMPLETE: {
        "long_name": "every member and lead of the initial time written",
        "flag_values": np.array([0, 1], dtype=np.int8),
        "flag_meanings": "incomplete complete",
    },
}


def write_netcdf(ds: xr.Dataset, path: Path) -> Delayed:
    """The delayed write of the store dataset ``ds`` (dask-backed) to a NetCDF-4 file at
    ``path`` in CF (:func:`cf_dataset`): the file's header is written now, its data chunk by
    chunk as the result is computed, straight to the file (:data:`WRITE_CHUNK_CACHE`), never
    the whole store in memory. netCDF-C gives a variable the library's default cache
    when it creates it (xarray passes netCDF4 no ``chunk_cache``), so the default
    is :data:`WRITE_CHUNK_CACHE` while the file's variables are created, then restored: a
    file another thread opens meanwhile reads more slowly, never wrongly."""
    import netCDF4  # here, as xarray does: 11 MB of memory a Zarr output need not pay

    cf = cf_dataset(ds)
    with _CACHE_DEFAULT:
        default = netCDF4.get_chunk_cache()
        netCDF4.set_chunk_cache(WRITE_CHUNK_CACHE, *default[1:])
        try:
            return cf.to_netcdf(path, engine="netcdf4", format="NETCDF4", compute=False)
        finally:
            netCDF4.set_chunk_cache(*default)


def cf_dataset(ds: xr.Dataset) -> xr.Dataset:
    """``ds`` as CF tools read it: time coordinates in :data:`TIME_UNITS`, leads as durations
    in hours, :data:`COORDINATE_ATTRS`, units, long names and standard names of known
    variables where the store has none (and a 2 m or 10 m one's scalar height coordinate:
    :func:`~pipeline.standard_names.cf_names`), ``Conventions`` (this file's: the
    CF-1.8 an analysis store says forbids the int64 times written here), attributes NetCDF cannot
    hold (dicts, lists, booleans) as JSON text, and each data variable zlib-compressed in
    the store's chunks (one initial time of a forecast, all its members, per chunk). The
    coordinates are loaded (small): xarray encodes lazy times only in a dtype given up
    front, and whole hours are integers."""
    ds = ds.assign_coords({name: coord.compute() for name, coord in ds.coords.items()})
    ds = ds.assign({name: cf_names(da, str(name)) for name, da in ds.data_vars.items()})
    calendar = _calendar(ds)
    for name, var in ds.variables.items():
        known = VARIABLES.get(str(name)) if name in ds.data_vars else None
        vocabulary = {"units": known.units, "long_name": known.long_name} if known else {}
        defaults = {**COORDINATE_ATTRS.get(str(name), {}), **vocabulary}
        var.attrs = {k: _netcdf_attr(v) for k, v in {**defaults, **var.attrs}.items()}
        var.encoding = _encoding(var, calendar, data=name in ds.data_vars)
    ds.attrs = {k: _netcdf_attr(v) for k, v in ds.attrs.items()}
    ds.attrs["Conventions"] = CONVENTIONS  # what this file follows (a store may say CF-1.8)
    return ds


def _calendar(ds: xr.Dataset) -> str:
    """The one calendar of every time in ``ds``: the store's (the first time variable's that
    was read with one), else numpy's, proleptic Gregorian, as xarray writes datetime64. A
    time computed from the store's (a products file's ``valid_time``) has lost it, and one
    file whose times say two calendars makes a CF tool doubt they can be compared."""
    found = (v.encoding.get("calendar") for v in ds.variables.values() if v.dtype.kind == "M")
    return next((c for c in found if c), DEFAULT_CALENDAR)


def _encoding(var: xr.Variable, calendar: str, *, data: bool) -> dict[str, Any]:
    """The NetCDF encoding of ``var`` in place of its Zarr one (codecs NetCDF lacks), a time
    in ``calendar``."""
    out: dict[str, Any] = {}
    if var.dtype.kind == "M":
        out = {"units": TIME_UNITS, "calendar": calendar, "dtype": _hours_dtype(var)}
    elif var.dtype.kind == "m":
        out = {"units": DURATION_UNITS, "dtype": _hours_dtype(var)}
    if not data:
        return out | {"_FillValue": None}  # CF: a coordinate has no missing values
    out |= {"zlib": True, "complevel": COMPLEVEL, "shuffle": True}
    if var.chunks is not None:
        out["chunksizes"] = tuple(sizes[0] for sizes in var.chunks)
    for kept in ("_FillValue", "coordinates"):
        if kept in var.encoding:
            out[kept] = var.encoding[kept]
    return out


def _hours_dtype(var: xr.Variable) -> str:
    """The dtype of the loaded times or durations ``var`` in hours: integers where each is a
    whole hour, else floating point (a 90-minute lead is 1.5 h, not rounded)."""
    since = var.values - np.datetime64(0, "s") if var.dtype.kind == "M" else var.values
    return "int64" if (since % np.timedelta64(1, "h") == np.timedelta64(0)).all() else "float64"


def _netcdf_attr(value: Any) -> Any:
    """``value`` as a NetCDF attribute: text, a number or an array stay; a dict, list,
    boolean or None (which NetCDF cannot hold) become JSON text."""
    if value is None or isinstance(value, dict | list | tuple | bool):
        return json.dumps(value)
    return value
