"""The canonical wxens schema: dimension names, variable vocabulary, channels.

Every layer speaks these names. Analysis stores have dims ``time, [level], latitude,
longitude``; forecast stores ``init_time, member, lead_time, [level], latitude,
longitude`` with ``valid_time(init_time, lead_time)``. Upper-air variables carry a
``level`` dimension in hPa; a model channel of one level is named ``z500``, ``t850``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr

from pipeline.errors import TIME_TYPES, InputError, time_text

SCHEMA_VERSION = "1"

TIME = "time"
LEVEL = "level"
LAT = "latitude"
LON = "longitude"
INIT_TIME = "init_time"
MEMBER = "member"
LEAD_TIME = "lead_time"
VALID_TIME = "valid_time"
CHANNEL = "channel"
#: The dims of a forecast variable in the wxens layout, in order (``level`` only where it has
#: levels): what every layout is mapped to and a forecast store holds.
FORECAST_DIMS = (INIT_TIME, MEMBER, LEAD_TIME, LEVEL, LAT, LON)
#: Other names of the member dim in producers' files (the first found is read as the
#: members): ECMWF's ``number``, CF's ``realization``, GenCast's ``sample`` in WeatherBench 2.
MEMBER_ALIASES = ("number", "realization", "ensemble_member", "sample", "ensemble")
#: Dataset attribute of an ensemble read from a file: the member that is the control
#: (unperturbed) forecast, when the file says which (GRIB ``dataType`` ``cf``).
CONTROL_MEMBER = "control_member"

HORIZONTAL = (LAT, LON)
#: Grid points closer than this (degrees) are one point: a grid stored in float32 (0.1
#: degrees as 50.09999847) is the same grid as its float64 spelling.
GRID_TOLERANCE_DEG = 1e-4

# Physical constants (SI), shared by the synthetic source and the physics checks; values
# as in WeatherBench 2 and the ECMWF IFS documentation.
G0 = 9.80665  # standard gravity, m s-2
R_DRY = 287.05  # gas constant of dry air, J kg-1 K-1
OMEGA = 7.292e-5  # Earth's rotation rate, s-1
EARTH_RADIUS = 6_371_000.0  # mean Earth radius, m
VIRTUAL_FACTOR = 0.608  # virtual temperature T_v = T (1 + 0.608 q)


@dataclass(frozen=True)
class Variable:
    """One entry of the vocabulary: short name, CF units, long name, upper-air or not."""

    name: str
    units: str
    long_name: str
    upper_air: bool = False
    lower_bound: float | None = None
    upper_bound: float | None = None


VARIABLES: dict[str, Variable] = {
    v.name: v
    for v in (
        Variable("t2m", "K", "2 metre temperature", lower_bound=150.0, upper_bound=350.0),
        Variable("d2m", "K", "2 metre dewpoint temperature", lower_bound=150.0, upper_bound=350.0),
        Variable("sst", "K", "sea surface temperature", lower_bound=260.0, upper_bound=320.0),
        Variable("msl", "Pa", "mean sea level pressure", lower_bound=8.5e4, upper_bound=1.1e5),
        Variable("sp", "Pa", "surface pressure", lower_bound=4.0e4, upper_bound=1.1e5),
        Variable(
            "u10", "m s-1", "10 metre U wind component", lower_bound=-120.0, upper_bound=120.0
        ),
        Variable(
            "v10", "m s-1", "10 metre V wind component", lower_bound=-120.0, upper_bound=120.0
        ),
        Variable("tp", "m", "total precipitation", lower_bound=0.0),
        Variable("tcwv", "kg m-2", "total column water vapour", lower_bound=0.0),
        Variable("z", "m2 s-2", "geopotential", upper_air=True),
        Variable("gh", "m", "geopotential height", upper_air=True),
        Variable("t", "K", "temperature", upper_air=True, lower_bound=150.0, upper_bound=350.0),
        Variable(
            "u",
            "m s-1",
            "U component of wind",
            upper_air=True,
            lower_bound=-200.0,
            upper_bound=200.0,
        ),
        Variable(
            "v",
            "m s-1",
            "V component of wind",
            upper_air=True,
            lower_bound=-200.0,
            upper_bound=200.0,
        ),
        Variable("w", "Pa s-1", "vertical velocity", upper_air=True),
        Variable(
            "q", "kg kg-1", "specific humidity", upper_air=True, lower_bound=0.0, upper_bound=0.05
        ),
        Variable("r", "%", "relative humidity", upper_air=True, lower_bound=0.0, upper_bound=110.0),
    )
}

_CHANNEL = re.compile(r"^([a-z][a-z0-9]*?)(\d+)(?:hPa)?$")


def channel_name(variable: str, level: float | int | None = None) -> str:
    """``("z", 500) -> "z500"``; a surface variable is its own channel. Where that name is
    a surface variable's, the level says its unit: u at 10 hPa is ``u10hPa``, since ``u10``
    is the 10 m wind (and ``u100``, were it listed, the 100 m wind)."""
    if level is None:
        return variable
    name = f"{variable}{int(level)}"
    return f"{name}hPa" if name in VARIABLES else name


def split_channel(channel: str) -> tuple[str, int | None]:
    """Inverse of :func:`channel_name`: ``"z500" -> ("z", 500)``, ``"u10hPa" -> ("u", 10)``,
    ``"t2m" -> ("t2m", None)``.

    Names in :data:`VARIABLES` (``t2m``, ``u10``) are surface variables, never split; a
    level may be followed by ``hPa`` (``z500hPa`` reads as ``z500``).
    """
    if channel in VARIABLES:
        return channel, None
    match = _CHANNEL.match(channel)
    if match is None or match.group(1) not in VARIABLES:
        raise ValueError(
            f"channel {channel!r} is neither a known variable nor <variable><level> such as "
            f"'z500' or 'u10hPa'; known variables: {sorted(VARIABLES)}"
        )
    return match.group(1), int(match.group(2))


def channels(ds: xr.Dataset) -> list[str]:
    """Channel names of a canonical dataset, in data-variable order, levels ascending."""
    names: list[str] = []
    for name, da in ds.data_vars.items():
        if LEVEL in da.dims:
            names.extend(channel_name(str(name), lev) for lev in np.sort(da[LEVEL].values))
        else:
            names.append(str(name))
    return names


def to_channels(ds: xr.Dataset) -> xr.DataArray:
    """Stack a canonical dataset into one DataArray with a ``channel`` dim (lazy if ``ds`` is).

    Dims of the result: everything except ``level`` from the inputs, with ``channel``
    placed before ``latitude, longitude``.
    """
    parts = []
    for name, da in ds.data_vars.items():
        if LEVEL in da.dims:
            da = da.sortby(LEVEL)
            names = [channel_name(str(name), lev) for lev in da[LEVEL].values]
            da = da.rename({LEVEL: CHANNEL}).assign_coords({CHANNEL: names})
        else:
            da = da.expand_dims({CHANNEL: [str(name)]})
        parts.append(da.drop_vars(LEVEL, errors="ignore"))
    stacked = xr.concat(parts, dim=CHANNEL, coords="minimal", compat="override")
    order = [d for d in stacked.dims if d not in (CHANNEL, LAT, LON)] + [CHANNEL, LAT, LON]
    return stacked.transpose(*order)


def from_channels(da: xr.DataArray, name: str | None = None) -> xr.Dataset:
    """Inverse of :func:`to_channels`: split ``channel`` back into variables and levels."""
    groups: dict[str, list[tuple[int | None, str]]] = {}
    for ch in da[CHANNEL].values:
        var, lev = split_channel(str(ch))
        groups.setdefault(var, []).append((lev, str(ch)))
    out = {}
    for var, members in groups.items():
        if members[0][0] is None:
            out[var] = da.sel({CHANNEL: members[0][1]}, drop=True)
        else:
            levels = [lev for lev, _ in members]
            sub = da.sel({CHANNEL: [ch for _, ch in members]})
            out[var] = sub.rename({CHANNEL: LEVEL}).assign_coords({LEVEL: levels})
        out[var].attrs = variable_attrs(var)
        out[var].name = var
    ds = xr.Dataset(out)
    if name:
        ds.attrs["name"] = name
    return ds


def variable_attrs(name: str) -> dict[str, str]:
    """CF attributes of a vocabulary variable (empty for an unknown name)."""
    var = VARIABLES.get(name)
    if var is None:
        return {}
    return {"units": var.units, "long_name": var.long_name}


def cos_latitude_weights(latitude: xr.DataArray) -> xr.DataArray:
    """cos(latitude) weights normalised to mean 1 over the given latitudes."""
    w = np.cos(np.deg2rad(latitude))
    return w / w.mean()


@dataclass(frozen=True)
class Period:
    """Inclusive time range with pandas partial-string semantics: ``end="2019-03-21"`` keeps
    every time of 21 March. ``None`` leaves that side open."""

    start: str | None = None
    end: str | None = None

    def __post_init__(self) -> None:
        # a time (pd.Timestamp, datetime, date, np.datetime64) is kept as its text: a checkpoint
        # records its periods, and one holding a Timestamp would be refused when loaded
        for side in ("start", "end"):
            value = getattr(self, side)
            if value is None or isinstance(value, str):
                continue
            if not isinstance(value, TIME_TYPES):
                raise InputError(
                    f"period {side} {value!r} ({type(value).__name__}) is not a time: give "
                    f"its text, e.g. Period('2019-03-18', '2019-03-21'), or a pd.Timestamp"
                )
            object.__setattr__(self, side, time_text(value))

    @classmethod
    def parse(cls, text: str, what: str = "period") -> Period:
        """``START/END`` (``2019-03-01/2019-03-21``), as typed on the command line."""
        start, sep, end = str(text).partition("/")
        if not sep or not start or not end:
            raise InputError(f"{what} {text!r}: give START/END, e.g. 2019-03-01/2019-03-21")
        return cls(start, end)

    def time_slice(self) -> slice | None:
        """``slice(start, end)`` of timestamps (inclusive, label-based); None when unbounded."""
        if self.start is None and self.end is None:
            return None
        return slice(*(None if t is None else pd.Timestamp(t) for t in (self.start, self.end)))

    def indexer(self, times: pd.DatetimeIndex) -> slice:
        return times.slice_indexer(self.start, self.end)

    def contains(self, times: pd.DatetimeIndex) -> np.ndarray:
        """(N,) bool: which of ``times`` (any order) lie in the period."""
        order = np.argsort(times.to_numpy(), kind="stable")
        inside = np.zeros(len(times), dtype=bool)
        inside[order[self.indexer(times[order])]] = True
        return inside

    def __str__(self) -> str:
        return f"{self.start or '...'} to {self.end or '...'}"

    @classmethod
    def from_str(cls, text: str) -> Period | None:
        """The period ``str(period)`` wrote (``START to END``, ``...`` an open side), as a
        record keeps it; None for other text (``the held-out periods of 4 folds ...``)."""
        start, sep, end = text.partition(" to ")
        sides = [None if side == "..." else side for side in (start, end)]
        try:
            for side in sides:
                if side is not None:
                    pd.Timestamp(side)
        except ValueError:
            return None
        return cls(*sides) if sep else None
