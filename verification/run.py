"""Verify a forecast held in files: :func:`verify_store` opens the forecast, the truth and
an optional reference, scores them with :func:`verification.scorecard.verify`, writes the
scores atomically and, if asked, the HTML report. ``wxens verify`` and the verify flow
both call it.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from pipeline.analysis_store import STATE_ATTR, STORE_ID
from pipeline.duplicate_times import DuplicateTimesError
from pipeline.errors import InputError, times_text
from pipeline.forecast_store import is_forecast_store, open_forecast
from pipeline.forecast_times import span
from pipeline.members import chosen_members, in_wxens_layout
from pipeline.schema import INIT_TIME, LEAD_TIME, TIME
from pipeline.sources import resolve_source
from pipeline.start_dates import open_start_files
from pipeline.store import AnalysisStore, open_store
from pipeline.timeaxis import hours_text
from verification.config import VerifyConfig
from verification.output import (
    FORECAST_PATH,
    REFERENCE_PATH,
    TRUTH_PATH,
    TRUTH_STORE_ID,
    TRUTH_TIMES,
    write_scores,
)
from verification.report import write_report
from verification.report_units import Units
from verification.scorecard import verify


@dataclass(frozen=True)
class Verified:
    """What :func:`verify_store` made: the verification tree (see
    :mod:`verification.scorecard`), the scores file and the report (None if none)."""

    tree: xr.DataTree
    scores: Path
    report: Path | None


def open_forecast_any(spec: str | Path, init_from_filename: str | None = None) -> xr.Dataset:
    """The forecast at ``spec``, lazily.

    With ``init_from_filename`` (a ``strptime`` pattern, ``--init-from-filename``),
    ``spec`` is files, one per start date, without initial times or leads in them: each
    file's start date is read from its name (:func:`pipeline.start_dates.open_start_files`).

    A wxens forecast store (a Zarr store whose ``kind`` is ``forecast``) opens through
    :func:`pipeline.forecast_store.open_forecast`, which leaves out half-written initial
    times; so does a local ``.zarr`` path that does not exist, to be reported as a missing
    forecast store. Anything else (ECMWF GRIB, WeatherBench 2 Zarr, NetCDF, a URL or a
    glob) opens through the source that claims it (:func:`pipeline.sources.base.resolve_source`);
    :func:`pipeline.adapters.to_wxens_forecast` reads its layout.
    """
    text = str(spec)
    if init_from_filename:
        return open_start_files(text, init_from_filename)
    path = Path(text)
    if is_forecast_store(path):
        return open_forecast(path)
    local = "://" not in text and not any(c in text for c in "*?[")
    if local and path.suffix == ".zarr" and not path.exists():
        return open_forecast(path)  # a StoreError naming the store and how to make one
    try:
        return resolve_source(text).open()
    except DuplicateTimesError as err:  # files without leads: of starts that overlap?
        raise DuplicateTimesError(
            f"{err}; or, if they are forecasts of one start date each, holding only valid "
            "times, read the start dates from their names "
            "(init_from_filename= (--init-from-filename PATTERN))"
        ) from None


def verify_store(
    forecast: str | Path,
    truth: str | Path | AnalysisStore,
    scores: str | Path,
    *,
    config: VerifyConfig | None = None,
    reference: str | Path | None = None,
    report: str | Path | None = None,
    variables: Sequence[str] | None = None,
    init_times: Sequence[Any] | None = None,
    leads_hours: Sequence[float] | None = None,
    scheduler: AbstractContextManager[Any] | None = None,
    members: str = "all",
    init_from_filename: str | None = None,
    units: Units | None = None,
) -> Verified:
    """Score the forecast at ``forecast`` against the analysis store ``truth`` into ``scores``.

    forecast:   a wxens forecast store or any ensemble a source reads
                (:func:`open_forecast_any`), in any layout :mod:`pipeline.adapters` knows.
    truth:      the analysis store (:func:`pipeline.store.open_store`), or the one opened
                already (a caller that read its units: opened twice, it warned twice).
    scores:     the NetCDF file the verification tree is written to, atomically
                (:func:`verification.output.write_scores`).
    config:     what to compute (default :class:`~verification.config.VerifyConfig`).
    reference:  another ensemble opened like ``forecast`` (a baseline, an operational
                model): the scorecard adds its CRPS, the skill score and the paired interval.
    report:     the self-contained HTML report to write, if given.
    variables:  verify only these variables of the forecast (an InputError names the
                missing ones).
    init_times: verify only these initial times of the forecast.
    leads_hours: verify only these leads of the forecast (hours).
    scheduler:  a context manager entered around computing and writing the scores (a
                dask client, say); None computes on whatever dask scheduler is active.
                It is entered only once every input has opened, so a missing store fails
                before any cluster starts.
    members:    ``all``, or ``perturbed`` to leave out the forecast's control member
                (:func:`pipeline.members.chosen_members`).
    init_from_filename: ``forecast`` is files, one per start date, without initial
                times or leads in them: a ``strptime`` pattern that reads each file's
                start date from its name (:func:`pipeline.start_dates.open_start_files`).
    units:      ``{variable: (unit, factor)}`` (:func:`verification.output.unit_factors`)
                the report shows its scores and fields in; the scores keep the store's.

    Returns the tree and the paths written.
    """
    ensemble = chosen_members(open_forecast_any(forecast, init_from_filename), members, forecast)
    other = None
    if reference is not None:
        other = in_wxens_layout(open_forecast_any(reference), f"the reference {reference}")
    if variables:
        missing = [v for v in variables if v not in ensemble.data_vars]
        if missing:
            raise InputError(
                f"{forecast}: no variable(s) {missing}; it has "
                f"{sorted(map(str, ensemble.data_vars))}"
            )
        ensemble = ensemble[list(variables)]
    if init_times is not None:
        ensemble = select_init_times(ensemble, init_times, forecast)
    if leads_hours is not None:
        ensemble = _select_leads(ensemble, leads_hours, forecast)
    opened = truth if isinstance(truth, AnalysisStore) else open_store(truth)
    analysis, truth = opened.dataset, opened.path
    with scheduler if scheduler is not None else nullcontext():
        tree = verify(ensemble, analysis, config, reference=other)
        tree.attrs = {**tree.attrs, **inputs_attrs(forecast, opened, reference)}
        written = write_scores(tree, scores)
    if report is not None:
        against = "" if reference is None else f", reference {reference}"
        report = write_report(
            tree,
            report,
            sources=f"forecast {forecast} against analysis {truth}{against}",
            units=units,
        )
    return Verified(tree, written, None if report is None else Path(report))


def inputs_attrs(
    forecast: str | Path, truth: AnalysisStore, reference: str | Path | None = None
) -> dict[str, str]:
    """The root attributes naming what a scores file verified (:data:`verification.output.
    TRUTH_PATH`...): the forecast's, the reference's (left out where there is none) and the
    truth's paths as given, the truth store's id (left out for a store that records none)
    and the times it held (first to last)."""
    attrs = {FORECAST_PATH: str(forecast), TRUTH_PATH: str(truth.path)}
    if reference is not None:
        attrs[REFERENCE_PATH] = str(reference)
    store_id = truth.dataset.attrs.get(STATE_ATTR, {}).get(STORE_ID)
    if store_id:
        attrs[TRUTH_STORE_ID] = str(store_id)
    times = pd.DatetimeIndex(truth.dataset.indexes[TIME])
    if times.size:
        attrs[TRUTH_TIMES] = f"{times.size} times {times.min()} to {times.max()}"
    return attrs


def select_init_times(ensemble: xr.Dataset, init_times: Any, forecast: Any) -> xr.Dataset:
    """``ensemble`` at ``init_times`` (one time or several): what ``wxens verify --init`` and
    ``wxens products --init`` read. InputError naming those the forecast ``forecast`` lacks
    and the initial times it holds, or where none is given."""
    try:
        asked = pd.DatetimeIndex(np.atleast_1d(pd.to_datetime(init_times)))
    except (TypeError, ValueError) as err:
        raise InputError(f"init_times= (--init) {init_times!r} are not times ({err})") from None
    held = pd.DatetimeIndex(ensemble[INIT_TIME].values)
    if not asked.size:
        raise InputError(f"init_times= (--init) is empty; {forecast} holds {span(held)}")
    lacking = asked.difference(held)
    if lacking.size:
        raise InputError(
            f"{forecast} has no initial time(s) {times_text(lacking[:5])}; it holds "
            f"{span(held)}: give initial times from those, init_times= (--init)"
        )
    return ensemble.sel({INIT_TIME: asked})


def _select_leads(ensemble: xr.Dataset, leads_hours: Sequence[float], forecast: Any) -> xr.Dataset:
    """``ensemble`` at the leads ``leads_hours``; InputError naming those the forecast
    ``forecast`` lacks and the leads it holds."""
    asked = pd.to_timedelta(list(leads_hours), unit="h")
    held = pd.TimedeltaIndex(ensemble[LEAD_TIME].values)
    lacking = asked.difference(held)
    if lacking.size:
        hour = pd.Timedelta(hours=1)
        raise InputError(
            f"{forecast} has no lead(s) {hours_text(lacking / hour)} h; it holds "
            f"{hours_text(held / hour)} h: give leads from those, leads_hours= (--lead)"
        )
    return ensemble.sel({LEAD_TIME: asked})
