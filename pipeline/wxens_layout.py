"""The wxens forecast layout's dims, and the steps that every producer layout's mapping onto
it (:mod:`pipeline.adapters`) shares: canonical variable names, CF units, pressure levels in
hPa as a dim, lead times as durations, the checks of dims, leads and initial times, the
grid as ingest stores the truth's, and ``valid_time``. Pure xarray, lazy."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import xarray as xr

from pipeline.errors import InputError, times_text
from pipeline.grid import longitudes_canonical
from pipeline.normalize import (
    UNIT_CONVERSIONS,
    VARIABLE_ALIASES,
    canonical_units,
    sorted_along,
)
from pipeline.schema import (
    FORECAST_DIMS,
    INIT_TIME,
    LAT,
    LEAD_TIME,
    LEVEL,
    LON,
    MEMBER,
    VALID_TIME,
    VARIABLES,
    variable_attrs,
)
from pipeline.timeaxis import hours_text

log = logging.getLogger(__name__)

#: A variable without units is taken as given: a degC file scored 272 K of CRPS, unwarned.
_NO_UNITS = (
    "%s variable %r has no 'units' attribute: taken to be in %s; if not, set its 'units' "
    "attribute where it is stored (verify's units= (--units) only converts the scores shown)"
)


def _canonical_name(name: object, da: xr.DataArray) -> str:
    alias = VARIABLE_ALIASES.get(str(name), str(name))
    if isinstance(alias, tuple):
        alias = alias[0] if LEVEL in da.dims else alias[1]
    if alias == "z" and canonical_units(da.attrs.get("units", "")) == "m":
        alias = "gh"
    return alias


def _levels_in_hpa(ds: xr.Dataset) -> xr.Dataset:
    """Pressure levels given in Pa (CMIP's ``plev``) in hPa, as ingest stores the truth's:
    by their units, or, as ingest judges them, by a level above 1100."""
    level = ds.coords.get(LEVEL)
    if level is None or not np.issubdtype(level.dtype, np.number):
        return ds
    in_pa = canonical_units(str(level.attrs.get("units", ""))) == "Pa"
    if not in_pa and not float(level.max()) > 1100:
        return ds
    hpa = level.values.astype(np.float64) / 100.0
    return ds.assign_coords({LEVEL: (level.dims, hpa, {**level.attrs, "units": "hPa"})})


def _level_as_dim(ds: xr.Dataset) -> xr.Dataset:
    """A scalar pressure level (a file of one level) as a length-1 ``level`` dim of the
    upper-air variables; the surface variables lose it."""
    if LEVEL not in ds.coords or LEVEL in ds.dims:
        return ds
    level = ds[LEVEL].values.reshape(1)
    out = {}
    for name, da in ds.data_vars.items():
        short = VARIABLE_ALIASES.get(str(name), str(name))
        upper_air = isinstance(short, tuple) or short not in VARIABLES or VARIABLES[short].upper_air
        da = da.drop_vars(LEVEL)
        out[name] = da.expand_dims({LEVEL: level}) if upper_air else da
    return xr.Dataset(out, attrs=ds.attrs)


def to_cf_units(name: object, da: xr.DataArray, what: str = "forecast") -> xr.DataArray:
    """``da`` (the ``what`` variable ``name``) in its canonical units (degC -> K, ...),
    when its ``units`` attribute names others; InputError if they cannot be converted."""
    short = _canonical_name(name, da)
    if short not in VARIABLES:
        return da
    if "units" not in da.attrs:  # labelled as taken: said once, not at every mapping
        log.warning(_NO_UNITS, what, name, VARIABLES[short].units)
        return da.assign_attrs(units=VARIABLES[short].units)
    units, target = canonical_units(str(da.attrs["units"])), VARIABLES[short].units
    if units == target:
        return da
    if (units, target) not in UNIT_CONVERSIONS:
        raise InputError(
            f"{what} variable {name!r} has units {da.attrs['units']!r}, which wxens cannot "
            f"convert to {target!r}; convert it first or fix its 'units' attribute"
        )
    return scaled(da, *UNIT_CONVERSIONS[(units, target)]).assign_attrs(variable_attrs(short))


def scaled(da: xr.DataArray, scale: float, offset: float = 0.0) -> xr.DataArray:
    """``da * scale + offset`` computed in float64 and rounded back to ``da``'s float dtype:
    in float32 (numpy's scalar promotion) 273.15 is 273.14999, a bias of 6e-6 K in every
    converted value, where rounding the exact result is no bias at all."""
    dtype = da.dtype if np.issubdtype(da.dtype, np.floating) else np.float64
    return (da.astype(np.float64) * scale + offset).astype(dtype)


#: CF units of a numeric lead time -> the pandas unit of its duration.
_LEAD_UNITS = {
    **dict.fromkeys(("days", "day", "d"), "D"),
    **dict.fromkeys(("hours", "hour", "hrs", "hr", "h"), "h"),
    **dict.fromkeys(("minutes", "minute", "min"), "min"),
    **dict.fromkeys(("seconds", "second", "s"), "s"),
}


def _finish(ds: xr.Dataset, valid: xr.DataArray | None = None) -> xr.Dataset:
    """Check dims, order them, convert lead times, add ``valid_time`` (``valid``, over
    ``init_time, lead_time``, if given)."""
    for name, da in ds.data_vars.items():
        extra = [d for d in da.dims if d not in FORECAST_DIMS]
        if extra:
            raise InputError(
                f"forecast variable {name!r} has dims {extra} beyond the forecast layout "
                f"{FORECAST_DIMS}; select one index of them first, or, where one holds the "
                f"ensemble members, rename it to {MEMBER!r}"
            )
        if not {LAT, LON} <= set(da.dims):
            raise InputError(
                f"forecast variable {name!r} has no latitude/longitude dims ({da.dims})"
            )
    lead = ds[LEAD_TIME]
    unit = _LEAD_UNITS.get(str(lead.attrs.get("units", lead.encoding.get("units", ""))))
    if np.issubdtype(lead.dtype, np.number) and unit is not None:  # CF: forecast_period in hours
        ds = ds.assign_coords({LEAD_TIME: pd.to_timedelta(lead.values, unit=unit)})
    elif not np.issubdtype(lead.dtype, np.timedelta64):
        raise InputError(
            f"the forecast's lead time is {lead.dtype} ({lead.values[:3]}...), not a duration; "
            f"decode it (xr.open_dataset(..., decode_timedelta=True)) or give it units"
        )
    for dim in (INIT_TIME, LEAD_TIME):
        index = ds.indexes[dim]
        if not index.is_unique:
            dup = index[index.duplicated()][:3]
            hours = dim == LEAD_TIME and f"{hours_text(dup / pd.Timedelta(hours=1))} h"
            raise InputError(
                f"the forecast holds {dim} {hours or times_text(dup)} more than once; keep one "
                f"of each (forecast.drop_duplicates({dim!r}))"
            )
    negative = ds.indexes[LEAD_TIME][ds.indexes[LEAD_TIME] < pd.Timedelta(0)].sort_values()
    if negative.size:
        raise InputError(
            f"the forecast has negative lead times ({hours_text(negative / pd.Timedelta(hours=1))}"
            " h); a lead is the time from the initial time to the valid time"
        )
    order = [d for d in FORECAST_DIMS if d in ds.dims]
    ds = _on_canonical_grid(ds.transpose(*order))
    if valid is None:
        return ds.assign_coords({VALID_TIME: ds[INIT_TIME] + ds[LEAD_TIME]})
    valid = valid.transpose(INIT_TIME, LEAD_TIME)
    return ds.assign_coords({VALID_TIME: ((INIT_TIME, LEAD_TIME), valid.values, valid.attrs)})


def _on_canonical_grid(ds: xr.Dataset) -> xr.Dataset:
    """``ds`` on the grid as ingest stores the truth's (ascending latitudes, longitudes by
    :func:`pipeline.grid.longitudes_canonical`, sorted), not a GRIB's north-to-south rows
    or a WB2 box in 0..10, 350..355: products and plumes kept the file's order."""
    if not {LAT, LON} <= set(ds.indexes):
        return ds
    lon = ds[LON]
    ds = ds.assign_coords({LON: (LON, longitudes_canonical(lon.values), lon.attrs)})
    return sorted_along(sorted_along(ds, LAT), LON)
