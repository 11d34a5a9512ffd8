"""Which of a producer's variables and dimensions an analysis keeps: those of the wxens
vocabulary (or the ones asked for), on time, [level], latitude and longitude; a dimension
of size one (a scalar member) is dropped, a larger one refused. Part of
:func:`pipeline.normalize.normalize`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import xarray as xr

from pipeline.errors import InputError
from pipeline.schema import LAT, LEVEL, LON, TIME, VARIABLES
from pipeline.variable_aliases import VARIABLE_ALIASES

log = logging.getLogger(__name__)


def select(ds: xr.Dataset, origin: str, variables: Sequence[str] | None) -> xr.Dataset:
    """``ds``'s ``variables`` (canonical names), or every one of the vocabulary it has."""
    present = [str(v) for v in ds.data_vars]
    if variables is None:
        unknown = [v for v in present if v not in VARIABLES]
        if unknown:
            log.info("%s: dropping variables outside the vocabulary: %s", origin, unknown)
        keep = [v for v in present if v in VARIABLES]
        if not keep:
            raise InputError(
                f"{origin}: none of its variables {present} is one wxens knows "
                f"({sorted(VARIABLES)}); map yours onto those with rename= (--rename OLD=NEW), "
                "or give them a CF standard_name (or ECMWF long_name)"
            )
        return ds[keep]
    unknown = [v for v in variables if v not in VARIABLES]
    if unknown:
        raise InputError(_outside_vocabulary(origin, unknown, present))
    missing = [v for v in variables if v not in present]
    if missing:
        raise InputError(
            f"{origin}: variable(s) {missing} not found; it has {present} "
            "(names after mapping to the canonical schema); pick from those with "
            "variables= (--variables)"
        )
    return ds[list(variables)]


def _outside_vocabulary(origin: str, unknown: list[str], present: list[str]) -> str:
    """The error for ``--variables`` names outside the vocabulary: a producer's name says
    which canonical one it is read as, one the file has unmapped needs ``--rename``."""

    def canonical(name: str) -> str:
        alias = VARIABLE_ALIASES[name]
        return " or ".join(alias) if isinstance(alias, tuple) else alias

    said = [f"{v!r} is read as {canonical(v)}" for v in unknown if v in VARIABLE_ALIASES]
    known = [v for v in present if v in VARIABLES]
    unmapped = [v for v in present if v not in VARIABLES]
    text = (
        f"{origin}: variables= (--variables) {unknown}: not wxens variable names; it takes the "
        f"canonical names {sorted(VARIABLES)}"
        + (f" ({'; '.join(said)})" if said else "")
        + (f"; it has {known}" if known else f"; it has none of them (its own: {unmapped})")
    )
    for name in (v for v in unknown if v in unmapped):
        text += f"; map the file's {name} onto one with rename= (--rename {name}=NAME)"
    return text


def squeeze_extra_dims(ds: xr.Dataset, origin: str) -> xr.Dataset:
    """``ds`` on time, [level], latitude and longitude only: other dimensions of size one
    dropped; a larger one, or no latitude or longitude, an :class:`InputError`."""
    extra = [d for d in ds.dims if d not in (TIME, LEVEL, LAT, LON)]
    for dim in extra:
        if ds.sizes[dim] != 1 and dim in ds.coords and _vertical(ds[dim]):
            said = {k: ds[dim].attrs[k] for k in ("standard_name", "units") if ds[dim].attrs.get(k)}
            raise InputError(not_pressure_message(origin, str(dim), said))
        if ds.sizes[dim] != 1:
            raise InputError(
                f"{origin}: unexpected dimension {dim!r} of size {ds.sizes[dim]}; an analysis "
                f"has dims time, [level], latitude, longitude — keep one index of it with "
                f"select= (--select {dim}=VALUE) (one ensemble member, say) or score it as a "
                "forecast instead"
            )
        ds = ds.isel({dim: 0}, drop=True)
    for dim in (LAT, LON):
        if dim not in ds.dims:
            raise InputError(f"{origin}: no {dim!r} dimension; dims are {dict(ds.sizes)}")
    return ds


#: Standard names of vertical coordinates other than pressure (CF's, and cfgrib's for
#: ``hybrid``, ``heightAboveGround``, ``depthBelowLandLayer``), besides ``*_coordinate``.
_VERTICAL_STANDARD_NAMES = ("height", "altitude", "depth", "model_level_number")


def _vertical(coord: xr.DataArray) -> bool:
    """Whether ``coord`` says it is a vertical coordinate (CF's ``axis: Z`` or ``positive``,
    or a vertical standard name), as cfgrib's model levels (``hybrid``) do."""
    standard = str(coord.attrs.get("standard_name", ""))
    return (
        coord.attrs.get("axis") == "Z"
        or coord.attrs.get("positive") in ("up", "down")
        or standard in _VERTICAL_STANDARD_NAMES
        or standard.endswith("_coordinate")
    )


def not_pressure_message(origin: str, name: str, said: dict) -> str:
    """The refusal of a vertical coordinate ``name`` that is not pressure, quoting what its
    attributes ``said`` (standard name, units) and the two ways on."""
    described = ", ".join(f"{key} {value!r}" for key, value in said.items())
    return (
        f"{origin}: its vertical coordinate {name!r} ({described}) is not pressure; "
        "wxens keeps pressure levels (in hPa): interpolate the file to pressure levels "
        f"first, or keep one level as a surface field with select= (--select {name}=VALUE)"
    )
