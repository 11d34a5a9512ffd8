"""Forecast layouts of other producers mapped onto the wxens forecast layout, and back
(pairing a forecast with an analysis on valid time is :mod:`pipeline.alignment`'s part).

The wxens forecast layout: dims ``init_time, member, lead_time, [level],
latitude, longitude``, coordinate ``valid_time(init_time, lead_time)``, canonical short
variable names in CF units. Each producer layout is one :class:`ForecastLayout` class,
registered by name; :func:`to_wxens_forecast` picks the one that claims a dataset:

=============== ======================= ================== ================= ===============
layout          members                 lead               init              levels
=============== ======================= ================== ================= ===============
``wxens``       ``member``              ``lead_time``      ``init_time``     ``level``
``cfgrib``      ``number``/``realization`` ``step``        ``time``          ``isobaricInhPa``
``weatherbench2`` ``realization``/``number`` ``prediction_timedelta`` ``time`` ``level``
``cf`` ``realization``/``number`` ``forecast_period`` ``forecast_reference_time`` ``pressure_level``
=============== ======================= ================== ================= ===============

Variable names go through :data:`pipeline.variable_aliases.VARIABLE_ALIASES` (``2m_temperature
-> t2m``), units through :data:`pipeline.normalize.UNIT_CONVERSIONS`. A scalar member,
step, time or pressure level (a single-member, -lead or -level file) becomes a length-1
dim. A numeric lead time with CF time units (``forecast_period`` in ``hours``, as NetCDF
files hold it) becomes a duration. Pure xarray, lazy.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from typing import ClassVar

import numpy as np
import pandas as pd
import xarray as xr

from pipeline.errors import InputError, times_text
from pipeline.grid import longitudes_canonical
from pipeline.normalize import (
    COORD_ALIASES,
    UNIT_CONVERSIONS,
    VARIABLE_ALIASES,
    canonical_units,
    sorted_along,
)
from pipeline.normalize_time import HAS_MESSAGE
from pipeline.registry import Registry
from pipeline.schema import (
    INIT_TIME,
    LAT,
    LEAD_TIME,
    LEVEL,
    LON,
    MEMBER,
    MEMBER_ALIASES,
    TIME,
    VALID_TIME,
    VARIABLES,
    variable_attrs,
)
from pipeline.timeaxis import hours_text

log = logging.getLogger(__name__)

FORECAST_DIMS = (INIT_TIME, MEMBER, LEAD_TIME, LEVEL, LAT, LON)
#: Attribute of a ``valid_time(init_time, lead_time)`` that is not the initial time plus
#: the lead (calendar-month leads counted by position, :mod:`pipeline.start_dates`): kept.
VALID_TIME_AS_GIVEN = "valid_time_as_given"
#: Scalar coordinates of GRIB/WB2 files that describe a level type, not the data.
_LEVEL_TYPE_COORDS = ("surface", "heightAboveGround", "meanSea", "height", "depthBelowLandLayer")
#: Coordinates that describe the file, not the forecast, dropped on the way in: the level
#: types above and the GRIB source's mark of the (time, step) cells a message holds (a cell
#: without one is NaN in the data; the mark, chunked apart from the fields, would stop
#: every score of a file of several starts with "inconsistent chunks").
_FILE_COORDS = (*_LEVEL_TYPE_COORDS, HAS_MESSAGE)
#: A variable without units is taken as given: a degC file scored 272 K of CRPS, unwarned.
_NO_UNITS = "%s variable %r has no 'units' attribute: taken to be in %s; if not, set its units"


class ForecastLayout(ABC):
    """One producer's naming of a forecast: ``dims`` maps its names to the wxens ones."""

    name: ClassVar[str]
    dims: ClassVar[dict[str, str]]

    @classmethod
    @abstractmethod
    def claims(cls, ds: xr.Dataset) -> bool:
        """Whether ``ds`` is in this layout."""

    @classmethod
    def to_wxens(cls, ds: xr.Dataset) -> xr.Dataset:
        """``ds`` in the wxens layout: renamed dims and variables, CF units, valid_time
        (the initial time plus the lead, unless marked :data:`VALID_TIME_AS_GIVEN`)."""
        given = ds.coords.get(VALID_TIME)
        if given is not None and not given.attrs.get(VALID_TIME_AS_GIVEN):
            given = None
        ds = ds.drop_vars([c for c in (VALID_TIME, *_FILE_COORDS) if c in ds.coords])
        names = {**COORD_ALIASES, **cls.dims}
        if MEMBER not in ds.dims and all(names.get(d) != MEMBER for d in ds.dims):
            alias = next((a for a in MEMBER_ALIASES if a in ds.dims), None)
            names |= {} if alias is None else {alias: MEMBER}
        renames = {k: v for k, v in names.items() if k in ds.variables or k in ds.dims}
        ds = _level_as_dim(_levels_in_hpa(ds.rename(renames)))
        for dim in (INIT_TIME, MEMBER, LEAD_TIME):
            if dim not in ds.dims:
                ds = ds.expand_dims(dim) if dim in ds.coords else ds.expand_dims({dim: [0]})
        ds = xr.Dataset(
            {_canonical_name(n, da): to_cf_units(n, da) for n, da in ds.data_vars.items()}
        )
        return _finish(ds, given)

    @classmethod
    def from_wxens(cls, ds: xr.Dataset) -> xr.Dataset:
        """A wxens-layout forecast renamed to this layout (the inverse of :meth:`to_wxens`)."""
        inverse = {v: k for k, v in cls.dims.items() if v in ds.variables}
        return ds.drop_vars(VALID_TIME, errors="ignore").rename(inverse)


LAYOUTS: Registry[type[ForecastLayout]] = Registry("forecast layout")
"""Every layout by name, in registration order: the order :func:`detect_layout` asks them."""


@LAYOUTS.register("wxens")
class WxensLayout(ForecastLayout):
    """Already wxens: ``init_time, member, lead_time`` (as written by pipeline.forecast_store)."""

    name = "wxens"
    dims: ClassVar[dict[str, str]] = {}

    @classmethod
    def claims(cls, ds: xr.Dataset) -> bool:
        return {INIT_TIME, LEAD_TIME} <= set(ds.coords) | set(ds.dims)


@LAYOUTS.register("cfgrib")
class CfgribLayout(ForecastLayout):
    """cfgrib / ECMWF ENS: ``number, time, step, isobaricInhPa`` (+ ``valid_time``)."""

    name = "cfgrib"
    dims: ClassVar[dict[str, str]] = {
        "number": MEMBER,
        "realization": MEMBER,
        "time": INIT_TIME,
        "step": LEAD_TIME,
        "isobaricInhPa": LEVEL,
    }

    @classmethod
    def claims(cls, ds: xr.Dataset) -> bool:
        return {"time", "step"} <= set(ds.coords)

    @classmethod
    def from_wxens(cls, ds: xr.Dataset) -> xr.Dataset:
        out = super().from_wxens(ds)
        return out.assign_coords(valid_time=out["time"] + out["step"])


@LAYOUTS.register("weatherbench2")
class WeatherBench2Layout(ForecastLayout):
    """WeatherBench 2: ``time, prediction_timedelta, realization`` (or ``number``), ``level``."""

    name = "weatherbench2"
    dims: ClassVar[dict[str, str]] = {
        "realization": MEMBER,
        "number": MEMBER,
        "time": INIT_TIME,
        "prediction_timedelta": LEAD_TIME,
    }

    @classmethod
    def claims(cls, ds: xr.Dataset) -> bool:
        return "prediction_timedelta" in ds.coords

    @classmethod
    def from_wxens(cls, ds: xr.Dataset) -> xr.Dataset:
        long_names = {short: long for long, short in VARIABLE_ALIASES.items() if "_" in long}
        out = ds.drop_vars(VALID_TIME, errors="ignore").rename(
            {MEMBER: "realization", INIT_TIME: "time", LEAD_TIME: "prediction_timedelta"}
        )
        return out.rename({n: long_names[n] for n in out.data_vars if n in long_names})


@LAYOUTS.register("cf")
class CfLayout(ForecastLayout):
    """CF names (NetCDF from the Copernicus data stores, Iris): ``forecast_reference_time``,
    ``forecast_period``, ``realization`` (or ``number``), ``pressure_level``. Where the
    file's dimension is the valid ``time`` with ``forecast_period`` or
    ``forecast_reference_time`` along it (Iris), that dimension is swapped for them."""

    name = "cf"
    dims: ClassVar[dict[str, str]] = {
        "realization": MEMBER,
        "number": MEMBER,
        "forecast_reference_time": INIT_TIME,
        "forecast_period": LEAD_TIME,
    }

    @classmethod
    def claims(cls, ds: xr.Dataset) -> bool:
        return {"forecast_reference_time", "forecast_period"} <= set(ds.coords)

    @classmethod
    def to_wxens(cls, ds: xr.Dataset) -> xr.Dataset:
        for name in ("forecast_period", "forecast_reference_time"):
            along = ds[name].dims
            if len(along) == 1 and along[0] not in cls.dims:
                ds = ds.swap_dims({along[0]: name})
        valid = [c for c in (TIME, VALID_TIME) if c in ds.coords and c not in ds.dims]
        return super().to_wxens(ds.drop_vars(valid))


@LAYOUTS.register("graphcast")
class GraphCastLayout(ForecastLayout):
    """GraphCast's and GenCast's rollout output (``graphcast.rollout``): ``batch`` one
    forecast each, ``time`` the lead (a duration), ``datetime(batch, time)`` the valid
    time, GenCast's members on ``sample``; the initial time is ``datetime - time``."""

    name = "graphcast"
    dims: ClassVar[dict[str, str]] = {"time": LEAD_TIME}

    @classmethod
    def claims(cls, ds: xr.Dataset) -> bool:
        return "datetime" in ds.coords and "time" in ds.coords and ds["time"].dtype.kind == "m"

    @classmethod
    def to_wxens(cls, ds: xr.Dataset) -> xr.Dataset:
        starts = (ds["datetime"] - ds["time"]).transpose("batch", "time")
        if not (starts == starts.isel(time=0)).all():
            raise InputError(
                "a GraphCast-style forecast whose datetime - time differs along time: its "
                "leads are not measured from one initial time per batch"
            )
        init = ("batch", starts.isel(time=0).values)
        ds = ds.drop_vars(["datetime", "batch"], errors="ignore").assign_coords({INIT_TIME: init})
        return super().to_wxens(ds.swap_dims(batch=INIT_TIME))


def detect_layout(ds: xr.Dataset) -> type[ForecastLayout]:
    """The first registered layout that claims ``ds``; InputError naming its dims if none."""
    for layout in LAYOUTS.values():
        if layout.claims(ds):
            return layout
    raise InputError(
        f"cannot tell the forecast layout of a dataset with dims {dict(ds.sizes)} and coords "
        f"{sorted(map(str, ds.coords))}: expected wxens (init_time, member, lead_time), cfgrib "
        f"(time, step, number), WeatherBench 2 (time, prediction_timedelta, realization) or "
        f"CF (forecast_reference_time, forecast_period, realization), GraphCast (batch, "
        f"time as lead, datetime); files of one forecast "
        f"each, holding only valid times, take their start dates from their names "
        f"(init_from_filename= (--init-from-filename PATTERN))"
    )


def to_wxens_forecast(ds: xr.Dataset, layout: str | None = None) -> xr.Dataset:
    """``ds`` (any registered layout, detected unless named) in the wxens forecast layout."""
    if not ds.data_vars:
        raise InputError(
            f"the forecast holds no data variables, only coordinates "
            f"{sorted(map(str, ds.coords))}; is it the file of a write that failed?"
        )
    cls = LAYOUTS[layout] if layout else detect_layout(ds)
    return cls.to_wxens(ds)


def from_wxens_forecast(ds: xr.Dataset, layout: str) -> xr.Dataset:
    """A wxens-layout forecast in another producer's layout (e.g. to hand to their tools)."""
    return LAYOUTS[layout].from_wxens(ds)


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
    if (ds[LEAD_TIME] < np.timedelta64(0, "ns")).any():
        raise InputError(
            f"the forecast has negative lead times ({pd.Timedelta(ds[LEAD_TIME].values.min())}); "
            "a lead is the time from the initial time to the valid time"
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
