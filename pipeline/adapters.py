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
files hold it) becomes a duration: steps every layout shares, :mod:`pipeline.wxens_layout`'s.
Pure xarray, lazy.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

import xarray as xr

from pipeline.errors import InputError
from pipeline.normalize import COORD_ALIASES, VARIABLE_ALIASES
from pipeline.normalize_time import HAS_MESSAGE
from pipeline.registry import Registry
from pipeline.schema import (
    INIT_TIME,
    LEAD_TIME,
    LEVEL,
    MEMBER,
    MEMBER_ALIASES,
    TIME,
    VALID_TIME,
)
from pipeline.wxens_layout import (
    FORECAST_DIMS as FORECAST_DIMS,  # imported from here, where it was defined: kept so
)
from pipeline.wxens_layout import (
    _canonical_name,
    _finish,
    _level_as_dim,
    _levels_in_hpa,
    to_cf_units,
)
from pipeline.wxens_layout import scaled as scaled  # as FORECAST_DIMS

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
        (the initial time plus the lead, unless marked :data:`VALID_TIME_AS_GIVEN`), and its
        own attributes (its history, a wxens store's provenance) kept."""
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
            {_canonical_name(n, da): to_cf_units(n, da) for n, da in ds.data_vars.items()},
            attrs=ds.attrs,
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
    """``ds`` (any registered layout, detected unless named) in the wxens forecast layout,
    its attributes kept: a products file continues its ``history`` and names its ``source``
    from them, verify records a wxens store's provenance."""
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
