"""CF ``standard_name`` attributes mapped onto the canonical variables.

A producer's own variable name (``Tair``, ``T2``, ``PRMSL_meansealevel``) tells wxens
nothing, but a CF-compliant file says what each variable is with a ``standard_name`` from
the CF standard name table. Some standard names are one canonical variable wherever they
are (``air_pressure_at_mean_sea_level`` is ``msl``); others are several, told apart by the
variable's vertical coordinate: ``air_temperature`` on pressure levels is ``t``, at a
height of 2 m above the ground (a ``height`` coordinate, CF's way of saying so) it is
``t2m``, and anywhere else it is none of them. Statistics other than a mean or an
instantaneous value (a daily maximum, ``cell_methods: "time: maximum"``) are never mapped.

A variable with neither a known name nor a standard name (ERA5 renamed ``VAR_2T``, cfgrib's
``standard_name: unknown``) may still say what it is in its ``long_name``, ECMWF's parameter
name: ``2 metre temperature``, ``Geopotential``. Those are unambiguous where the variable's
vertical coordinate agrees (``Temperature`` on pressure levels is ``t``, without them none).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import xarray as xr

from pipeline.schema import LAT, LEVEL, LON, VARIABLES

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StandardName:
    """The canonical variables one CF standard name can be: on pressure levels, at a
    height above the ground (m -> name), or wherever it is (a surface field)."""

    on_levels: str | None = None
    at_height: tuple[tuple[float, str], ...] = ()
    anywhere: str | None = None


#: CF standard names (from the CF standard name table) of the canonical variables; the first
#: naming a canonical variable is the one an export writes (:func:`cf_names`).
STANDARD_NAMES: dict[str, StandardName] = {
    "air_temperature": StandardName(on_levels="t", at_height=((2.0, "t2m"),)),
    "dew_point_temperature": StandardName(at_height=((2.0, "d2m"),)),
    "eastward_wind": StandardName(on_levels="u", at_height=((10.0, "u10"),)),
    "northward_wind": StandardName(on_levels="v", at_height=((10.0, "v10"),)),
    "geopotential": StandardName(on_levels="z"),
    "geopotential_height": StandardName(on_levels="gh"),
    "specific_humidity": StandardName(on_levels="q"),
    "relative_humidity": StandardName(on_levels="r"),
    "lagrangian_tendency_of_air_pressure": StandardName(on_levels="w"),
    "sea_surface_temperature": StandardName(anywhere="sst"),
    "air_pressure_at_mean_sea_level": StandardName(anywhere="msl"),
    "air_pressure_at_sea_level": StandardName(anywhere="msl"),  # the table's older alias
    "surface_air_pressure": StandardName(anywhere="sp"),
    "lwe_thickness_of_precipitation_amount": StandardName(anywhere="tp"),  # m, as tp is
    "precipitation_amount": StandardName(anywhere="tp"),  # kg m-2
    "atmosphere_mass_content_of_water_vapor": StandardName(anywhere="tcwv"),
}

#: Long names (ECMWF's parameter names, as ERA5 and cfgrib give them; lower case) of the
#: canonical variables: those of :data:`~pipeline.schema.VARIABLES`, and ECMWF's own where
#: they differ. An upper-air variable's is read on pressure levels only, a surface one's
#: off them.
LONG_NAMES: dict[str, str] = {
    **{variable.long_name.lower(): name for name, variable in VARIABLES.items()},
    "total column vertically-integrated water vapour": "tcwv",
}

#: Standard names of dimension coordinates -> canonical dimension names.
COORDINATE_STANDARD_NAMES = {"latitude": LAT, "longitude": LON, "air_pressure": LEVEL}

#: Names of a scalar coordinate giving the height above the ground: CF's ``height``, and
#: cfgrib's ``heightAboveGround``.
HEIGHT_COORDINATES = ("height", "heightAboveGround")
#: CF attributes of a scalar height coordinate (CF 4.3, 5.7): what says "at 2 m".
HEIGHT_ATTRS = {
    "standard_name": "height",
    "long_name": "height above the ground",
    "units": "m",
    "positive": "up",
    "axis": "Z",
}
_METRES = ("m", "metre", "metres", "meter", "meters", "")
_EXTREMES = ("maximum", "minimum")


def canonical_from_standard_name(da: xr.DataArray, name: str, origin: str) -> str | None:
    """The canonical name of variable ``name`` (``da``, from ``origin``) from its CF
    ``standard_name`` and vertical coordinate; None (and a log line saying why) when it is
    none of them."""
    standard = da.attrs.get("standard_name")
    entry = STANDARD_NAMES.get(str(standard)) if standard else None
    if entry is None:
        return None
    if _extreme(da, name, standard, origin):
        return None
    if LEVEL in da.dims:
        if entry.on_levels is None:
            log.warning(
                "%s: %s (%s on pressure levels) is no canonical field", origin, name, standard
            )
        return entry.on_levels
    height = height_above_ground(da)
    for metres, canonical in entry.at_height:
        if height is not None and np.isclose(height, metres):
            return canonical
    if entry.anywhere is not None:
        return entry.anywhere
    where = f"at {height:g} m" if height is not None else "without a pressure level or height"
    options = [n for n in (entry.on_levels, *(c for _, c in entry.at_height)) if n]
    log.warning(
        "%s: %s, standard_name %s %s, is none of %s; if it is one, say which with "
        "rename= (--rename %s=NAME)",
        origin,
        name,
        standard,
        where,
        options,
        name,
    )
    return None


def canonical_from_long_name(da: xr.DataArray, name: str, origin: str) -> str | None:
    """The canonical name of variable ``name`` (``da``, from ``origin``) from its
    ``long_name`` (:data:`LONG_NAMES`, case and spacing aside) where its pressure levels, or
    their absence, agree with that variable's; None otherwise."""
    long_name = " ".join(str(da.attrs.get("long_name", "")).lower().split())
    canonical = LONG_NAMES.get(long_name)
    if canonical is None or _extreme(da, name, long_name, origin):
        return None
    return canonical if VARIABLES[canonical].upper_air == (LEVEL in da.dims) else None


def _extreme(da: xr.DataArray, name: str, said: str, origin: str) -> bool:
    """Whether ``da`` is a statistic other than a mean or an instantaneous value (its
    ``cell_methods`` a maximum or minimum), which no canonical variable is (logged)."""
    methods = str(da.attrs.get("cell_methods", ""))
    if any(word in methods for word in _EXTREMES):
        log.info("%s: %s (%s, %r) is no canonical field", origin, name, said, methods)
        return True
    return False


def height_above_ground(da: xr.DataArray) -> float | None:
    """The height in metres of a near-surface variable, from a scalar (or size-one)
    ``height`` coordinate (or one with ``standard_name: height``); None without one."""
    for coord_name, coord in da.coords.items():
        named = str(coord_name) in HEIGHT_COORDINATES
        if not (named or coord.attrs.get("standard_name") == "height") or coord.size != 1:
            continue
        units = str(coord.attrs.get("units", "m")).strip()
        if units in _METRES:
            return float(coord.values.ravel()[0])
    return None


def coordinate_renames(ds: xr.Dataset) -> dict[str, str]:
    """Dimension coordinates named by their standard name: ``latitude``, ``longitude``,
    and ``air_pressure`` as the ``level`` dimension; producer name -> canonical name."""
    renames = {}
    for name in ds.dims:
        if name not in ds.coords:
            continue
        target = COORDINATE_STANDARD_NAMES.get(str(ds[name].attrs.get("standard_name")))
        if target is not None and target != name and target not in ds.variables:
            renames[str(name)] = target
    return renames


def _by_canonical() -> tuple[dict[str, str], dict[str, float]]:
    """:data:`STANDARD_NAMES` inverted: canonical name -> its (first) standard name, and
    near-surface canonical name -> its height in metres."""
    standard: dict[str, str] = {}
    heights: dict[str, float] = {}
    for name, entry in STANDARD_NAMES.items():
        for metres, canonical in entry.at_height:
            heights[canonical] = metres
        for canonical in (entry.on_levels, entry.anywhere, *(c for _, c in entry.at_height)):
            if canonical:
                standard.setdefault(canonical, name)
    return standard, heights


#: Canonical variable -> its CF standard name, and near-surface one -> its height (m).
CANONICAL_STANDARD_NAMES, CANONICAL_HEIGHTS = _by_canonical()


def height_coordinate(metres: float) -> str:
    """The name of the scalar height coordinate at ``metres``: ``height`` at 2 m, as CF's
    examples and Iris name the screen level, ``height_10m`` elsewhere; one name per height,
    so two heights in one file do not clash and each file names a height alike."""
    return "height" if metres == 2.0 else f"height_{metres:g}m"


def cf_names(da: xr.DataArray, canonical: str) -> xr.DataArray:
    """``da``, the canonical variable (or a statistic of it) ``canonical``, with its CF
    ``standard_name`` (where ``da`` has none) and, near the surface, its scalar height
    coordinate (:data:`HEIGHT_ATTRS`), which a CF tool reads as "at 2 m" and
    :func:`height_above_ground` reads back. Its coordinates are named in its encoding (its
    ``coordinates`` attribute, CF 5; the store's where it has one): without, in a file of
    t2m and u10, xarray would list both heights on each variable (and on z)."""
    out = da.copy(deep=False)
    listed = da.encoding.get("coordinates") or " ".join(
        sorted(str(name) for name in da.coords if name not in da.dims)
    )
    standard = CANONICAL_STANDARD_NAMES.get(canonical)
    metres = CANONICAL_HEIGHTS.get(canonical)
    if standard is not None:
        out.attrs = {"standard_name": standard, **da.attrs}
    if metres is not None and height_above_ground(da) is None:
        name = height_coordinate(metres)
        out = out.assign_coords({name: xr.Variable((), metres, HEIGHT_ATTRS)})
        listed = f"{listed} {name}".strip()
    out.encoding = {**da.encoding, "coordinates": listed}
    return out
