"""A forecast paired with an analysis on valid time (:func:`align_with_truth`): every
forecast field beside the analysis at its valid time and at its initial time, on the
analysis grid, the valid times the analysis lacks counted. Pure xarray, lazy."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr

from pipeline.adapters import scaled, to_cf_units, to_wxens_forecast
from pipeline.errors import InputError, times_text
from pipeline.grid import longitudes_canonical
from pipeline.normalize import COORD_ALIASES
from pipeline.schema import (
    G0,
    GRID_TOLERANCE_DEG,
    INIT_TIME,
    LAT,
    LEAD_TIME,
    LEVEL,
    LON,
    TIME,
    VALID_TIME,
    variable_attrs,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AlignedForecast:
    """A forecast and its truth on the same coordinates.

    forecast: wxens layout, the variables and levels both hold, on the truth's grid.
    truth:    dims ``init_time, lead_time, [level], latitude, longitude`` — the analysis
              at each valid time; NaN where the analysis lacks that time.
    initial:  dims ``init_time, [level], latitude, longitude`` — the analysis at each
              init time (the state the forecast started from), NaN where it lacks one.
    missing_valid_times: valid times the forecast needs and the analysis lacks.
    """

    forecast: xr.Dataset
    truth: xr.Dataset
    initial: xr.Dataset
    missing_valid_times: tuple[pd.Timestamp, ...]


def align_with_truth(
    forecast: xr.Dataset,
    truth: xr.Dataset,
    *,
    variables: list[str] | None = None,
    pending_ok: bool = False,
    warn_missing: bool = True,
) -> AlignedForecast:
    """Pair every forecast field with the analysis at its valid time, lazily.

    ``forecast`` in any registered layout; ``truth`` a canonical analysis (dims ``time,
    [level], latitude, longitude``). Keeps the variables (or the given ``variables``) and
    pressure levels both have, on the grid points both hold (points within
    GRID_TOLERANCE_DEG are one, after mapping longitudes to the truth's convention): a
    forecast covering the truth's grid is taken at the truth's points, a forecast on part of
    it (a region, every other point) is scored on its own; a forecast on another grid is an
    InputError. Missing valid times become NaN truth, to be skipped and counted by the
    scores; they are warned of, except with ``pending_ok`` those after the truth's last
    time (a correction learning from the past only: the newest forecasts' truth is yet
    to come in every operational run), and not at all without ``warn_missing`` (a
    reference ensemble paired with a forecast whose own alignment warned of them).
    """
    forecast = to_wxens_forecast(forecast)
    truth = _canonical_truth(truth)
    forecast = _geopotential_as_truth(forecast, truth)
    names = variables or [n for n in forecast.data_vars if n in truth.data_vars]
    missing = [n for n in names if n not in forecast.data_vars or n not in truth.data_vars]
    if not names or missing:
        raise InputError(
            f"no common variable to pair{f' ({missing} missing)' if missing else ''}: the "
            f"forecast has {sorted(map(str, forecast.data_vars))}, the truth "
            f"{sorted(map(str, truth.data_vars))}; verify variables both hold "
            "(variables= (--variables)), or give the analysis store that holds the forecast's "
            "(wxens info lists a store's)"
        )
    forecast = forecast[names]
    truth = truth[names].assign({n: to_cf_units(n, truth[n], "truth") for n in names})
    if LEVEL in forecast.dims and LEVEL in truth.dims:
        levels = np.intersect1d(forecast[LEVEL].values, truth[LEVEL].values)
        if levels.size == 0:
            raise InputError(
                f"the forecast levels {forecast[LEVEL].values.tolist()} and the truth levels "
                f"{truth[LEVEL].values.tolist()} have none in common; verify a variable on "
                "levels both hold (variables= (--variables)), or ingest the truth at the "
                "forecast's levels"
            )
        forecast, truth = forecast.sel({LEVEL: levels}), truth.sel({LEVEL: levels})
    truth = _truth_on_forecast_domain(forecast, truth)
    forecast = _on_truth_grid(forecast, truth)
    valid = forecast[VALID_TIME].transpose(INIT_TIME, LEAD_TIME)
    needed = pd.DatetimeIndex(np.unique(valid.values))
    absent = needed.difference(pd.DatetimeIndex(truth[TIME].values))
    warned = absent
    if pending_ok and truth.sizes[TIME]:
        warned = absent[absent <= truth[TIME].values.max()]
    if warn_missing:
        warn_missing_valid_times(warned, needed.size)
    paired = truth.reindex({TIME: needed}).sel({TIME: valid}).drop_vars(TIME)
    paired = paired.assign_coords({VALID_TIME: valid})
    order = [d for d in (INIT_TIME, LEAD_TIME, LEVEL, LAT, LON) if d in paired.dims]
    initial = truth.reindex({TIME: forecast[INIT_TIME].values}).rename({TIME: INIT_TIME})
    return AlignedForecast(forecast, paired.transpose(*order), initial, tuple(absent))


def warn_missing_valid_times(absent: pd.DatetimeIndex, needed: int) -> None:
    """Warn that the truth lacks the valid times ``absent`` of the ``needed`` ones (they
    are scored as missing); nothing when it lacks none."""
    if absent.size:
        log.warning(
            "the truth lacks %d of the %d valid times the forecast needs (first %s); those "
            "are scored as missing",
            absent.size,
            needed,
            times_text(absent[:3]),
        )


def _geopotential_as_truth(forecast: xr.Dataset, truth: xr.Dataset) -> xr.Dataset:
    """``forecast`` with its geopotential height ``gh`` (m) as the truth's geopotential ``z``
    (m² s⁻², ``z = g0 gh`` by the definition of geopotential height), or its ``z`` as the
    truth's ``gh``, where the truth holds only the other and the forecast only the one."""
    for have, want, scale in (("gh", "z", G0), ("z", "gh", 1.0 / G0)):
        if have in forecast and want not in forecast and want in truth and have not in truth:
            log.info("the forecast's %s is verified as the truth's %s (g0 = %g)", have, want, G0)
            field = scaled(forecast[have], scale).assign_attrs(variable_attrs(want))
            forecast = forecast.drop_vars(have).assign({want: field})
    return forecast


def _canonical_truth(truth: xr.Dataset) -> xr.Dataset:
    """``truth`` with its coordinates under the canonical names (``lat`` -> ``latitude``,
    ``valid_time`` -> ``time``, as ingest reads them); InputError when it lacks one, or
    holds a time twice."""
    aliases = {**COORD_ALIASES, VALID_TIME: TIME}
    truth = truth.rename(
        {k: v for k, v in aliases.items() if k in truth.dims and v not in truth.dims}
    )
    lacking = [d for d in (TIME, LAT, LON) if d not in truth.coords]
    if lacking:
        raise InputError(
            f"the truth has no {lacking} coordinate(s) (its coordinates: "
            f"{sorted(map(str, truth.coords))}); give an analysis with dims time, [level], "
            "latitude, longitude, e.g. a wxens store (wxens ingest reads other namings)"
        )
    truth = _contiguous_longitudes(truth)
    times = truth.indexes[TIME]
    if not times.is_unique:
        raise InputError(
            f"the truth holds times more than once ({times_text(times[times.duplicated()][:3])}"
            "); keep one of each (truth.drop_duplicates('time'))"
        )
    return truth


def _contiguous_longitudes(truth: xr.Dataset) -> xr.Dataset:
    """``truth`` with its longitudes as given where they ascend evenly spaced, else as ingest
    writes them (:func:`pipeline.grid.longitudes_canonical`: a box across Greenwich given
    in 0..360 becomes -10..2), sorted, so that the grid is one block for the spectra."""
    lon = truth[LON].values.astype(np.float64)
    steps = np.diff(lon)
    if steps.size == 0 or np.allclose(steps, steps[0], rtol=1e-6, atol=GRID_TOLERANCE_DEG):
        return truth
    wrapped = longitudes_canonical(lon)
    order = np.argsort(wrapped, kind="stable")
    return truth.isel({LON: order}).assign_coords({LON: wrapped[order]})


def _in_truth_convention(forecast: xr.Dataset | xr.DataArray, truth: xr.Dataset):
    """The forecast's longitudes in the truth's convention, [min, min + 360) (350 -> -10
    for a UK box), sorted with its latitudes."""
    west = float(truth[LON].min())
    forecast = forecast.assign_coords({LON: np.mod(forecast[LON].values - west, 360.0) + west})
    return forecast.sortby([LAT, LON])


def _nearest(have: np.ndarray, want: np.ndarray) -> np.ndarray:
    """Index in ``have`` of each of ``want`` within GRID_TOLERANCE_DEG, -1 where none."""
    index = pd.Index(np.asarray(have, np.float64))
    return index.get_indexer(
        np.asarray(want, np.float64), method="nearest", tolerance=GRID_TOLERANCE_DEG
    )


def truth_on_forecast_grid(forecast: xr.Dataset | xr.DataArray, truth: xr.Dataset) -> xr.Dataset:
    """The analysis ``truth`` on the grid points it shares with ``forecast``, as
    :func:`align_with_truth` pairs them (a reference ensemble is aligned with this truth,
    so that it is scored on the forecast's points)."""
    return _truth_on_forecast_domain(forecast, _canonical_truth(truth))


def _truth_on_forecast_domain(forecast: xr.Dataset | xr.DataArray, truth: xr.Dataset) -> xr.Dataset:
    """The truth at the forecast's points where the forecast lacks some of the truth's but
    each of its own is one of the truth's (a regional forecast against a global analysis,
    or every other point): the scores cover the points both hold. Else the truth as given
    (a forecast on another grid is refused by :func:`_on_truth_grid`)."""
    grid = xr.Dataset(coords={LAT: forecast[LAT].values, LON: forecast[LON].values})
    forecast = _in_truth_convention(grid, truth)  # the points only, not a sorted copy of data
    inside = {dim: _nearest(truth[dim].values, forecast[dim].values) for dim in (LAT, LON)}
    covers = all((_nearest(forecast[d].values, truth[d].values) >= 0).all() for d in (LAT, LON))
    if covers or any((index < 0).any() for index in inside.values()):
        return truth
    log.info(
        "the forecast covers %d x %d of the truth's %d x %d points: scored on those",
        forecast.sizes[LAT],
        forecast.sizes[LON],
        truth.sizes[LAT],
        truth.sizes[LON],
    )
    return _contiguous_longitudes(truth.isel(inside))


def _on_truth_grid(forecast: xr.Dataset, truth: xr.Dataset) -> xr.Dataset:
    """The forecast at the truth's grid points; InputError if it does not cover them."""
    given = {dim: forecast[dim].values for dim in (LAT, LON)}  # to name, in its convention
    forecast = _in_truth_convention(forecast, truth)
    selected = {}
    for dim, want in ((LAT, truth[LAT].values), (LON, truth[LON].values)):
        have = forecast[dim].values.astype(np.float64)
        index = _nearest(have, want)
        if (index < 0).any():
            lacking = np.asarray(want)[index < 0]
            off = np.abs(have[None] - lacking[:, None])
            off = np.minimum(off, 360.0 - off) if dim == LON else off  # across the seam
            off = off.min(axis=1)
            raise InputError(
                f"the forecast grid does not hold the truth's {dim} points "
                f"{lacking[:5].tolist()}, the nearest up to {off.max():.3g} degrees away "
                f"(forecast {dim} {given[dim].min():g}..{given[dim].max():g}, {have.size} "
                "points; truth "
                f"{want.min():g}..{want.max():g}, {want.size} points; points within "
                f"{GRID_TOLERANCE_DEG:g} degrees are one); regrid the forecast to the "
                "analysis grid, or ingest the truth on the forecast's grid"
            )
        selected[dim] = index
    out = forecast.isel(selected)
    return out.assign_coords({LAT: truth[LAT].values, LON: truth[LON].values})
