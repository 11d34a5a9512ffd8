"""Map a producer's dataset onto the canonical wxens schema, lazily.

Names (cfgrib/ERA5, WeatherBench 2, NCEP/CMIP), units (to CF: degC -> K, hPa -> Pa,
geopotential height kept distinct from geopotential), coordinates (ascending latitude,
contiguous regional or [0, 360) global longitudes, levels in hPa, times sorted) and
dtype (float32). Problems raise :class:`~pipeline.errors.InputError` naming the
origin, the variable and the fix. Nothing here reads the data values.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd
import xarray as xr

from pipeline.errors import InputError
from pipeline.grid import longitudes_canonical
from pipeline.normalize_select import not_pressure_message, select, squeeze_extra_dims
from pipeline.normalize_time import sort_time, to_time_axis
from pipeline.schema import LAT, LEVEL, LON, TIME, VARIABLES, variable_attrs
from pipeline.standard_names import (
    canonical_from_long_name,
    canonical_from_standard_name,
    coordinate_renames,
)
from pipeline.variable_aliases import VARIABLE_ALIASES

log = logging.getLogger(__name__)

COORD_ALIASES: dict[str, str] = {
    "lat": LAT,
    "Latitude": LAT,
    "nav_lat": LAT,
    "lon": LON,
    "Longitude": LON,
    "nav_lon": LON,
    "isobaricInhPa": LEVEL,
    "pressure_level": LEVEL,
    "plev": LEVEL,
    "lev": LEVEL,
    "pressure": LEVEL,
}

#: Spellings of units -> the canonical spelling.
UNIT_ALIASES: dict[str, str] = {
    "kelvin": "K",
    "degK": "K",
    "deg_K": "K",
    "degC": "degC",
    "deg_C": "degC",
    "C": "degC",
    "celsius": "degC",
    "Celsius": "degC",
    "degrees_Celsius": "degC",
    "°C": "degC",
    "m/s": "m s-1",
    "ms-1": "m s-1",
    "m2/s2": "m2 s-2",
    "gpm": "m",
    "mbar": "hPa",
    "millibar": "hPa",
    "millibars": "hPa",  # the CDS's NetCDF of ERA5
    "mb": "hPa",
    "kg/kg": "kg kg-1",
    "g/kg": "g kg-1",
    "percent": "%",
    "(0 - 1)": "1",
    "fraction": "1",
    "Pa/s": "Pa s-1",
    "kg/m2": "kg m-2",
    "kg/m^2": "kg m-2",
}

#: (from, to) -> (scale, offset): value_to = value_from * scale + offset.
UNIT_CONVERSIONS: dict[tuple[str, str], tuple[float, float]] = {
    ("degC", "K"): (1.0, 273.15),
    ("hPa", "Pa"): (100.0, 0.0),
    ("g kg-1", "kg kg-1"): (1e-3, 0.0),
    ("1", "kg kg-1"): (1.0, 0.0),
    ("1", "%"): (100.0, 0.0),
    ("mm", "m"): (1e-3, 0.0),
    ("mm", "kg m-2"): (1.0, 0.0),
    ("kg m-2", "m"): (1e-3, 0.0),  # of liquid water (precipitation_amount), 1000 kg m-3
}

#: Attribute of a renamed variable holding its name in the file, to name it in messages.
SOURCE_NAME = "wxens_source_name"


def canonical_units(units: str) -> str:
    """``"m**2 s**-2" -> "m2 s-2"``; other spellings through :data:`UNIT_ALIASES`."""
    text = " ".join(units.replace("**", "").replace("^", "").split())
    return UNIT_ALIASES.get(text, text)


def difference_units(units: str) -> str:
    """The units of a difference of values in ``units`` (a spread): an offset unit's
    absolute one of the same size (degC: K), since a tool converting degC to K adds 273.15
    to whatever it labels; any other unit as given."""
    for (source, target), (scale, offset) in UNIT_CONVERSIONS.items():
        if source == canonical_units(units) and offset and scale == 1.0:
            return target
    return units


def normalize(ds: xr.Dataset, origin: str, variables: Sequence[str] | None = None) -> xr.Dataset:
    """The canonical form of ``ds`` (from ``origin``, named in errors), lazily.

    ``variables`` selects canonical names; without it every variable of the
    vocabulary is kept and the others are dropped with a log message.
    """
    ds = to_time_axis(_rename(ds, origin), origin)
    ds = select(ds, origin, variables)
    ds = squeeze_extra_dims(ds, origin)
    ds = _normalize_levels(ds, origin)
    ds = _normalize_horizontal(ds, origin)
    ds = sort_time(ds, origin)
    out = xr.Dataset({name: _convert_units(ds[name], origin) for name in ds.data_vars})
    order = [d for d in (TIME, LEVEL, LAT, LON) if d in out.dims]
    out = out.transpose(*order)
    out.attrs = {k: v for k, v in ds.attrs.items() if isinstance(v, str | int | float)}
    return out


def _rename(ds: xr.Dataset, origin: str) -> xr.Dataset:
    """Coordinates and variables to canonical names: a variable by its own name when that
    is canonical or a known alias, else by its CF ``standard_name``. Each renamed variable
    remembers its name in the file (:data:`SOURCE_NAME`) for later messages."""
    ds = _canonical_coordinates(ds)
    names = _variable_names(ds, origin)
    for target in set(names.values()):
        sources = [name for name, t in names.items() if t == target]
        if len(sources) > 1:
            raise InputError(
                f"{origin}: variables {sources} would all be {target!r}; say which one is "
                f"with rename= (--rename {sources[0]}={target}): the others are then left out"
            )
    ds = ds.assign(
        {
            name: ds[name].assign_attrs({SOURCE_NAME: ds[name].attrs.get(SOURCE_NAME, name)})
            for name, target in names.items()
            if target != name
        }
    )
    return ds.rename({name: target for name, target in names.items() if target != name})


def canonical_names(ds: xr.Dataset, origin: str) -> dict[str, str]:
    """Each variable of a producer's ``ds`` -> the canonical name :func:`normalize` reads it
    as (two may share one, which normalize refuses); those it would leave out are absent.
    For naming a variable by its canonical name before it is read (``--units t2m=degC``)."""
    return _variable_names(_canonical_coordinates(ds), origin)


def _canonical_coordinates(ds: xr.Dataset) -> xr.Dataset:
    """``ds`` with canonical coordinate names (each remembering its own) and a scalar
    pressure level as a level dimension (:func:`_one_level`)."""
    coords = {k: v for k, v in COORD_ALIASES.items() if k in ds.variables and v not in ds.variables}
    coords.update(coordinate_renames(ds.rename(coords)))
    ds = ds.rename(coords)
    for old, new in coords.items():
        ds[new].attrs = {**ds[new].attrs, SOURCE_NAME: old}
    return _one_level(ds)


def _variable_names(ds: xr.Dataset, origin: str) -> dict[str, str]:
    """Each variable of ``ds`` (canonical coordinates) -> its canonical name: by its own name
    when canonical or a known alias, else by its CF ``standard_name``, else by its
    ``long_name``; one of the latter two unless a variable before it has that name already
    (logged)."""
    by: dict[str, dict[str, str]] = {"name": {}, "standard_name": {}, "long_name": {}}
    for name, da in ds.data_vars.items():
        alias = VARIABLE_ALIASES.get(str(name), str(name) if name in VARIABLES else None)
        if isinstance(alias, tuple):
            alias = alias[0] if LEVEL in da.dims else alias[1]
        if alias is not None:
            by["name"][str(name)] = _geopotential_height(alias, da)
        elif (standard := canonical_from_standard_name(da, str(name), origin)) is not None:
            by["standard_name"][str(name)] = _geopotential_height(standard, da)
        elif (long := canonical_from_long_name(da, str(name), origin)) is not None:
            by["long_name"][str(name)] = _geopotential_height(long, da)
    names: dict[str, str] = {}  # two of one kind to one name: refused by _rename
    for said, found in by.items():
        taken = set(names.values())
        for name, target in found.items():
            if target in taken:
                said_so = "%s: %r is %r by its %s, but another variable is"
                log.info(said_so, origin, name, target, said)
            else:
                names[name] = target
    return names


def _geopotential_height(name: str, da: xr.DataArray) -> str:
    """``gh`` for a variable called geopotential but in metres (geopotential *height*)."""
    if name == "z" and canonical_units(da.attrs.get("units", "")) == "m":
        return "gh"
    return name


def _one_level(ds: xr.Dataset) -> xr.Dataset:
    """A scalar pressure coordinate (the CDS's z at 500 hPa) as a level dimension of size
    one of each variable that is not a surface one by its name."""
    if LEVEL not in ds.coords or ds[LEVEL].ndim or _not_pressure(ds[LEVEL]):
        return ds
    surface = {n for n, v in VARIABLES.items() if not v.upper_air}
    upper = {
        name: da.expand_dims(LEVEL)
        for name, da in ds.data_vars.items()
        if VARIABLE_ALIASES.get(str(name), name) not in surface
    }
    return ds.drop_vars(LEVEL).assign(upper)


def _not_pressure(level: xr.DataArray) -> dict[str, str]:
    """The ``standard_name`` and ``units`` of a vertical coordinate that are not a
    pressure's (empty when it is pressure, or does not say)."""
    said = {key: level.attrs[key] for key in ("standard_name", "units") if level.attrs.get(key)}
    units = canonical_units(str(said.get("units", "hPa")))
    if said.get("standard_name", "air_pressure") != "air_pressure" or units not in ("Pa", "hPa"):
        return said
    return {}


def _normalize_levels(ds: xr.Dataset, origin: str) -> xr.Dataset:
    """Pressure levels in hPa, ascending; another vertical coordinate is refused."""
    if LEVEL not in ds.dims:
        return ds
    level = ds[LEVEL]
    name = level.attrs.get(SOURCE_NAME, LEVEL)
    if said := _not_pressure(level):
        raise InputError(not_pressure_message(origin, name, said))
    in_pa = canonical_units(level.attrs.get("units", "")) == "Pa" or float(level.max()) > 1100
    values = level.values / 100.0 if in_pa else level.values
    ds = sorted_along(ds.assign_coords({LEVEL: values.astype("float64")}), LEVEL)
    ds[LEVEL].attrs = {"units": "hPa", "long_name": "pressure level", "positive": "down"}
    return ds


def sorted_along(ds: xr.Dataset, dim: str) -> xr.Dataset:
    """``ds`` with ascending ``dim``: as it is when it ascends already, a reversed view
    when it descends (ERA5's latitudes), else sorted. ``sortby`` alone would gather every
    block through an index array, a copy of the data, even when nothing moves."""
    index = ds.indexes[dim]
    if index.is_monotonic_increasing:
        return ds
    if index.is_monotonic_decreasing:
        return ds.isel({dim: slice(None, None, -1)})
    return ds.sortby(dim)


def _normalize_horizontal(ds: xr.Dataset, origin: str) -> xr.Dataset:
    lon = ds[LON].values.astype("float64")
    if lon.size > 2 and abs(abs(lon[-1] - lon[0]) - 360.0) < 1e-6:  # -180 .. 180: one meridian
        log.info(
            "%s: longitude %g repeats %g (one meridian); the repeat is dropped",
            origin,
            lon[-1],
            lon[0],
        )
        ds, lon = ds.isel({LON: slice(0, -1)}), lon[:-1]
    written = {LON: lon, LAT: ds[LAT].values.astype("float64")}
    ds = ds.assign_coords({LON: longitudes_canonical(lon), LAT: written[LAT]})
    for dim in (LAT, LON):
        index = pd.Index(ds[dim].values)
        if index.has_duplicates:
            shown = [f"{v:g}" for v in index[index.duplicated()].unique()[:3]]
            raise InputError(
                f"{origin}: duplicate {dim} values {shown} (after longitudes are taken modulo "
                "360); the grid must be regular: select one of each"
            )
    ds = sorted_along(sorted_along(ds, LAT), LON)
    words = {LON: "longitudes", LAT: "latitudes"}
    moved = [_reordered(words[d], written[d], ds[d].values) for d in (LON, LAT)]
    if said := "; ".join(m for m in moved if m):  # info: the file's indices are not the store's
        log.info("%s: grid reordered to wxens's: %s", origin, said)
    ds[LAT].attrs = {"units": "degrees_north", "long_name": "latitude", "standard_name": "latitude"}
    ds[LON].attrs = {
        "units": "degrees_east",
        "long_name": "longitude",
        "standard_name": "longitude",
    }
    return ds


def _reordered(name: str, written: np.ndarray, stored: np.ndarray) -> str:
    """In words, how ``name`` coordinates as ``written`` in a file became those ``stored``
    (ascending, global longitudes in [0, 360)): "" where they are the same."""
    span = f"{name} {written[0]:g}..{written[-1]:g}"
    if not np.array_equal(np.sort(written), stored):  # moved by a turn
        return f"{span} shifted to {stored[0]:g}..{stored[-1]:g}"
    if np.array_equal(written, stored):
        return ""
    if np.array_equal(written[::-1], stored):
        return f"{span} reversed to ascending"
    return f"{span} sorted ascending"


def _convertible(target: str) -> str:
    """``'Pa', or 'hPa' (converted)``: the units a variable stored in ``target`` may have."""
    others = [repr(units) for units, to in UNIT_CONVERSIONS if to == target]
    return f"{target!r}" + (f", or {', '.join(others)} (converted)" if others else "")


def _convert_units(da: xr.DataArray, origin: str) -> xr.DataArray:
    name = str(da.name)
    target = VARIABLES[name].units
    raw = da.attrs.get("units")
    source = str(da.attrs.get(SOURCE_NAME, name))
    called = repr(source) if source == name else f"{source!r} (wxens {name!r})"
    if raw is None:
        raise InputError(
            f"{origin}: variable {called} has no 'units' attribute; declare them with "
            f"units= (--units {source}=UNITS) ({_convertible(target)})"
        )
    units = canonical_units(str(raw))
    if units == target:
        out = da
    elif (units, target) in UNIT_CONVERSIONS:
        scale, offset = UNIT_CONVERSIONS[(units, target)]
        out = da * scale + offset
        how = " ".join([f"x {scale:g}"] * (scale != 1.0) + [f"+ {offset:g}"] * (offset != 0.0))
        log.info(  # info, forecasts and scores then speak of `target`, not the file's units
            "%s: %s in %r, stored in %s (%s): wxens reads, forecasts and scores it in %s",
            origin,
            called,
            str(raw),
            target,
            how,
            target,
        )
    else:
        raise InputError(
            f"{origin}: variable {called} has units {raw!r}, which wxens cannot convert to "
            f"{target!r}; convert it to {target} first, or declare its true units with "
            f"units= (--units {source}=UNITS)"
        )
    out = out.astype("float32")
    out.attrs = {**variable_attrs(name), "source_units": str(raw)}
    return out.rename(name)
