"""A forecaster's plume at a place (EPSgram-style): every member's value at the grid point
nearest a town against valid time, the ensemble's percentiles shaded, the truth over it
where it has arrived; the first look at an ensemble, which maps of members do not give.

:func:`point_series` reads the members at the point from any ensemble ``wxens verify``
reads, :func:`plot_plume` draws them as a matplotlib ``Figure`` built without ``pyplot``
(as :mod:`verification.plots`), one panel per variable.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
from matplotlib.figure import Figure

from pipeline.errors import InputError
from pipeline.forecast_times import span
from pipeline.members import chosen_members
from pipeline.schema import INIT_TIME, LAT, LEAD_TIME, LEVEL, LON, MEMBER, TIME, VALID_TIME
from verification.output import conversion
from verification.plots import MAX_VARIABLES, channel_units, label_with_units, panel_figure
from verification.product_output import in_units
from verification.products import field
from verification.run import open_forecast_any

LOGGER = logging.getLogger(__name__)
PANEL_WIDTH_INCHES, PANEL_HEIGHT_INCHES = 9.0, 3.2


def nearest_point(
    latitudes: np.ndarray, longitudes: np.ndarray, latitude: float, longitude: float, named: object
) -> tuple[int, int]:
    """The indices ``(i, j)`` of the grid point nearest ``(latitude, longitude)`` on the grid
    of 1-D ``latitudes`` and ``longitudes`` (either 0..360 or -180..180: longitudes compare
    modulo 360, so -0.12 finds 359.9). InputError naming the place, ``named``'s grid and the
    fix where the place is more than one grid cell (the widest spacing) outside the grid."""
    if not (np.isfinite(latitude) and np.isfinite(longitude)):
        raise InputError(
            f"latitude={latitude}, longitude={longitude} (--at LAT,LON): not a number; give "
            "degrees north and east, e.g. 51.5,-0.12"
        )
    lats, lons = np.asarray(latitudes, dtype=float), np.asarray(longitudes, dtype=float)
    away_lat = np.abs(lats - latitude)
    away_lon = np.abs((lons - longitude + 180.0) % 360.0 - 180.0)
    i, j = int(np.argmin(away_lat)), int(np.argmin(away_lon))
    if away_lat[i] > _cell(lats) or away_lon[j] > _cell(lons):
        raise InputError(
            f"latitude={latitude:g}, longitude={longitude:g} (--at {latitude:g},{longitude:g}) "
            f"is more than one grid cell outside {named}'s grid: latitude {lats.min():g} to "
            f"{lats.max():g}, longitude {lons.min():g} to {lons.max():g} (cells of "
            f"{_cell(lats):g}° and {_cell(lons):g}°); give a place on the grid, or a forecast "
            "that covers it"
        )
    return i, j


def _cell(values: np.ndarray) -> float:
    """The widest spacing of a grid axis (a Gaussian grid's are uneven); 0 for one point."""
    return float(np.abs(np.diff(values)).max()) if values.size > 1 else 0.0


def point_series(
    forecast: str | Path | xr.Dataset,
    latitude: float,
    longitude: float,
    *,
    init: object = None,
    variables: Sequence[str] | None = None,
    units: Sequence[str] = (),
    init_from_filename: str | None = None,
    members: str = "all",
) -> xr.Dataset:
    """The members of ``forecast`` at the grid point nearest ``(latitude, longitude)``
    (:func:`nearest_point`) for one initial time ``init`` (default the latest), loaded: each
    of ``variables`` (default every variable, a variable on levels as its channels, ``z500``;
    the first :data:`MAX_VARIABLES` of them, the rest named in a warning)
    with dims ``member`` and ``valid_time`` (init + lead; a calendar month's, each file's
    own; ``lead_time`` beside it), in
    ``units`` (``--units`` items, ``t2m=degC``, as ``wxens products`` converts). Scalar
    coordinates: the grid point's ``latitude``, ``longitude`` and the ``init_time``;
    attribute ``place``: the place asked for.

    ``forecast``: a path any of ``wxens verify`` reads (:func:`verification.run.
    open_forecast_any`; files of one start date each with ``init_from_filename``, as
    ``--init-from-filename``), or a dataset in a layout :mod:`pipeline.adapters` knows.
    ``members``: ``all``, or ``perturbed`` to leave out an ENS file's control forecast
    (:func:`pipeline.members.chosen_members`, as ``wxens verify --members``)."""
    named = "the forecast" if isinstance(forecast, xr.Dataset) else forecast
    opened = (
        forecast
        if isinstance(forecast, xr.Dataset)
        else open_forecast_any(forecast, init_from_filename)
    )
    ensemble = chosen_members(opened, members, named)
    i, j = nearest_point(ensemble[LAT].values, ensemble[LON].values, latitude, longitude, named)
    at = ensemble.isel({LAT: i, LON: j}).sel({INIT_TIME: _init_time(ensemble, init, named)})
    at = in_units(at, units) if units else at
    names = list(variables) if variables else _default_channels(at, named)
    series = xr.Dataset({name: field(at, name) for name in names}).load()
    # the mapping's valid_time: init + lead, or, for calendar-month starts, each file's own
    series = series.assign_coords({VALID_TIME: at[VALID_TIME].reset_coords(drop=True)})
    series = series.swap_dims({LEAD_TIME: VALID_TIME})
    return series.assign_attrs(place=[float(latitude), float(longitude)])


def _init_time(ensemble: xr.Dataset, init: object, named: object) -> pd.Timestamp:
    """``init`` as a time of ``ensemble``'s initial times (None: the latest); InputError
    naming those it holds where it holds not ``init``."""
    held = pd.DatetimeIndex(np.atleast_1d(ensemble[INIT_TIME].values))
    if init is None:
        return held.max()
    try:
        asked = pd.Timestamp(init)
    except (TypeError, ValueError) as err:
        raise InputError(
            f"init={init!r} (--init) is not a time ({err}); e.g. 2019-03-05T00"
        ) from None
    if asked not in held:
        raise InputError(
            f"init={init} (--init): {named} has no initial time {asked}; it holds {span(held)}"
        )
    return asked


def _channels(ensemble: xr.Dataset) -> list[str]:
    """The channels of ``ensemble``: each variable, one on levels as each of its levels."""
    names = []
    for name, da in ensemble.data_vars.items():
        levels = da[LEVEL].values if LEVEL in da.dims else [None]
        names += [str(name) if level is None else f"{name}{int(level)}" for level in levels]
    return names


def _default_channels(at: xr.Dataset, named: object) -> list[str]:
    """The channels a plume draws where none were asked for: every one of ``at``
    (:func:`_channels`), or the first :data:`MAX_VARIABLES` (the most panels a plume draws;
    a store of many levels asked for a plume refused it before), the rest named in a
    warning with the flag that chooses."""
    names = _channels(at)
    if len(names) > MAX_VARIABLES:
        LOGGER.warning(
            "%s: %d channels, a plume draws at most %d: drawn %s, left out %s; choose some, "
            "e.g. variables=['%s'] (--variable %s)",
            named,
            len(names),
            MAX_VARIABLES,
            ", ".join(names[:MAX_VARIABLES]),
            ", ".join(names[MAX_VARIABLES:]),
            names[-1],
            names[-1],
        )
    return names[:MAX_VARIABLES]


def truth_series(truth: xr.Dataset, series: xr.Dataset) -> xr.Dataset:
    """The analysis ``truth`` (dims ``time``, latitude, longitude: an analysis store's
    dataset) at the grid point nearest ``series``' (:func:`point_series`), at the valid times
    of ``series`` it holds (the others have not arrived), in ``series``' units: dim
    ``valid_time``, one variable per variable of ``series`` the truth holds (a warning names
    those it lacks). InputError where the truth's units do not convert to the series'."""
    lat, lon = float(series[LAT]), float(series[LON])
    i, j = nearest_point(truth[LAT].values, truth[LON].values, lat, lon, "the truth")
    at = truth.isel({LAT: i, LON: j})
    times = pd.DatetimeIndex(at[TIME].values).intersection(
        pd.DatetimeIndex(series[VALID_TIME].values)
    )
    found = {}
    for name, members in series.data_vars.items():
        try:
            da = field(at, str(name)).sel({TIME: times})
        except InputError:
            LOGGER.warning("the truth holds no %s: its plume has no truth markers", name)
            continue
        want, have = members.attrs.get("units", ""), da.attrs.get("units", "")
        converts = conversion(have, want)
        if converts is None:
            raise InputError(
                f"the truth's {name} is in {have!r}, which does not convert to the "
                f"forecast's {want!r}; give units= (--units {name}=UNIT) both convert to"
            )
        scale, offset = converts
        found[str(name)] = (da * scale + offset).rename({TIME: VALID_TIME})
    return xr.Dataset(found).load()


def plot_plume(
    series: xr.Dataset,
    observed: xr.Dataset | None = None,
    quantiles: Sequence[float] = (0.1, 0.5, 0.9),
) -> Figure:
    """The plume of ``series`` (:func:`point_series`), one panel per variable against valid
    time: each member a thin grey line, the band between the lowest and highest of
    ``quantiles`` shaded, each quantile between them a line (the median) marked at the leads
    forecast (the lines between join them, they hold no forecast), and ``observed`` (the
    analysis at the point, :func:`truth_series`: read once by the caller, who also counts
    it) as black markers at the valid times it holds. The title
    names the grid point, the place asked for and the initial time; the y axes their units.
    InputError for a quantile outside [0, 1] or more than :data:`MAX_VARIABLES` panels."""
    q = sorted(float(x) for x in quantiles)
    if not q or not all(0.0 <= x <= 1.0 for x in q):
        raise InputError(f"quantiles={tuple(quantiles)} (--quantiles): give some in [0, 1]")
    names = [str(n) for n in series.data_vars]
    if len(names) > MAX_VARIABLES:
        raise InputError(
            f"variables={names} (--variable): {len(names)} panels; a plume draws at most "
            f"{MAX_VARIABLES}: choose some, e.g. variables=['t2m'] (--variable t2m)"
        )
    observed = xr.Dataset() if observed is None else observed
    fig = panel_figure(1, len(names), PANEL_WIDTH_INCHES, PANEL_HEIGHT_INCHES)
    axes = fig.subplots(len(names), 1, squeeze=False, sharex=True)[:, 0]
    x = series[VALID_TIME].values
    for ax, name in zip(axes, names, strict=True):
        members = series[name].transpose(MEMBER, VALID_TIME).values
        _draw(ax, x, members, q, observed.get(name))
        units = series[name].attrs.get("units") or channel_units(name)
        ax.set_ylabel(label_with_units(name, units))
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small")
    locator = AutoDateLocator()
    axes[-1].xaxis.set_major_locator(locator)
    axes[-1].xaxis.set_major_formatter(ConciseDateFormatter(locator))
    axes[-1].set_xlabel("valid time (UTC)")
    fig.suptitle(plume_title(series))
    return fig


def _draw(ax, x: np.ndarray, members: np.ndarray, q: list[float], observed) -> None:
    """Members thin, the quantiles' band and lines, the truth's markers, on ``ax``."""
    for k, member in enumerate(members):
        label = f"members ({len(members)})" if k == 0 else None
        ax.plot(x, member, color="0.6", linewidth=0.6, gid="member", label=label)
    values = np.quantile(members, q, axis=0)
    if len(q) > 1:
        band = f"P{100 * q[0]:g} to P{100 * q[-1]:g}"
        ax.fill_between(x, values[0], values[-1], alpha=0.3, color="C0", gid="band", label=band)
    for k in [0] if len(q) == 1 else range(1, len(q) - 1):
        label = "median" if q[k] == 0.5 else f"P{100 * q[k]:g}"
        ax.plot(  # its markers: the leads forecast, which the lines between do not hold
            x, values[k], "o-", color="C0", lw=2.0, ms=4, gid=f"quantile {q[k]:g}", label=label
        )
    if observed is not None and observed.size:
        ax.plot(
            observed[VALID_TIME].values,
            observed.values,
            "o",
            color="black",
            gid="truth",
            label="truth",
            markersize=4,
        )


def plume_title(series: xr.Dataset) -> str:
    """``plume at 51.50°N, 0.00°E (nearest 51.50°N, 0.12°W), init 2019-03-05 00:00 UTC``."""
    point = _degrees(float(series[LAT]), float(series[LON]))
    asked = series.attrs.get("place")
    nearest = f" (nearest grid point to {_degrees(*asked)})" if asked is not None else ""
    init = pd.Timestamp(series[INIT_TIME].values).strftime("%Y-%m-%d %H:%M UTC")
    return f"plume at {point}{nearest}, init {init}"


def _degrees(latitude: float, longitude: float) -> str:
    """``51.5, -0.12`` -> ``51.50°N, 0.12°W``; a longitude past 180 °E read west of it."""
    east = (longitude + 180.0) % 360.0 - 180.0
    return (
        f"{abs(latitude):.2f}°{'N' if latitude >= 0 else 'S'}, "
        f"{abs(east):.2f}°{'E' if east >= 0 else 'W'}"
    )
