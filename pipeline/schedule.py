"""What a scheduled run forecasts and what it verifies, decided from the stores' metadata.

- :func:`latest_init_times`: the most recent analysis times on the forecast cycle that
  have the model's whole conditioning window of data before them;
- :func:`truth_arrived`: the completely written initial times of a forecast whose every
  valid time the analysis store has reached, i.e. that can be verified now.

Both read coordinates and attributes only (no field data), so a flow can call them at
every scheduled run.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.analysis_store import AnalysisStore, open_store
from pipeline.errors import InputError, time_text
from pipeline.forecast_store import complete_init_times
from pipeline.schema import INIT_TIME, TIME, VALID_TIME
from pipeline.transaction import open_dataset

log = logging.getLogger(__name__)


def available_times(analysis: AnalysisStore) -> pd.DatetimeIndex:
    """The times of ``analysis`` that hold data: its time axis less its missing times."""
    return pd.DatetimeIndex(analysis.dataset[TIME].values).difference(
        pd.DatetimeIndex(analysis.missing_times)
    )


def latest_init_times(
    analysis: AnalysisStore | str | Path,
    *,
    history: pd.Timedelta,
    latest: int,
    cycle_hours: int,
) -> pd.DatetimeIndex:
    """The ``latest`` most recent times of ``analysis`` on the ``cycle_hours`` cycle (00,
    06, 12 and 18 UTC for 6), oldest first, that lie at least ``history`` after the store's
    first time (the model's conditioning window: the earliest offset of its history times
    the native step).

    Times listed as missing in the store are never chosen, nor times with a missing time
    within ``history`` before them (their window lacks a state). Raises :class:`InputError` for
    ``latest`` or ``cycle_hours`` below 1, a negative ``history``, or a store with no such
    time.
    """
    if latest < 1 or cycle_hours < 1:
        raise InputError(f"latest ({latest}) and cycle_hours ({cycle_hours}) must be >= 1")
    history = pd.Timedelta(history)
    if history < pd.Timedelta(0):
        raise InputError(f"history ({history}) must be a non-negative duration")
    if not isinstance(analysis, AnalysisStore):
        analysis = open_store(analysis)
    times = available_times(analysis)
    if times.empty:
        raise InputError(f"{analysis.path} holds no time with data; ingest some")
    cycle = (times.minute == 0) & (times.second == 0) & ((times.hour % cycle_hours) == 0)
    if not cycle.any():
        raise InputError(
            f"{analysis.path}: none of its times falls on the {cycle_hours}-hourly cycle (on "
            f"the hour, at hours divisible by {cycle_hours} UTC; its times are at "
            f"{times[-1]:%H:%M}, ...): give the initial times, init_times= (--init)"
        )
    on_cycle = times[(times >= times[0] + history) & cycle]
    # a time with a missing time inside its window cannot start a forecast
    on_cycle = on_cycle[~window_gapped(analysis, on_cycle, history)]
    if on_cycle.empty:
        raise InputError(
            f"{analysis.path} holds no time on the {cycle_hours}-hourly cycle with {history} "
            f"of history before it and no missing time in it (times {time_text(times[0])} to "
            f"{time_text(times[-1])}); ingest more data"
        )
    return on_cycle[-latest:]


def window_gapped(
    analysis: AnalysisStore, times: pd.DatetimeIndex, history: pd.Timedelta
) -> np.ndarray:
    """Which of ``times`` have a missing time of ``analysis`` within ``history`` before
    them, themselves included: their conditioning window lacks a state."""
    gaps = pd.DatetimeIndex(analysis.missing_times)
    return np.array([((gaps >= t - history) & (gaps <= t)).any() for t in times], bool)


def warn_gapped_cycles(
    analysis: AnalysisStore, after: pd.Timestamp, history: pd.Timedelta, cycle_hours: int
) -> None:
    """Warn of the cycles of the store's time axis after ``after`` (and ``history`` after
    its first time) whose window holds a missing analysis: no run of the latest cycles
    forecasts them, and a store only grows at its end, so they were left out unsaid."""
    gaps = pd.DatetimeIndex(analysis.missing_times)  # a store's axis may leave them out
    axis = pd.DatetimeIndex(analysis.dataset[TIME].values).union(gaps)
    cycle = (axis.minute == 0) & (axis.second == 0) & ((axis.hour % cycle_hours) == 0)
    axis = axis[cycle & (axis > after) & (axis >= axis[0] + history)]
    gapped = axis[window_gapped(analysis, axis, history)]
    if gapped.empty:
        return
    first_gap = gaps[gaps >= gapped[0] - history].min()
    log.warning(
        "%s: %d cycle(s) from %s to %s are not forecast: their %g h conditioning window "
        "holds a missing analysis (first %s); the store only grows at its end, so no run "
        "of the latest cycles forecasts them (wxens info names its missing times)",
        analysis.path, gapped.size, time_text(gapped[0]), time_text(gapped[-1]),
        history / pd.Timedelta(hours=1), time_text(first_gap),
    )  # fmt: skip


def skipped_cycles(
    analysis: AnalysisStore | str | Path,
    forecast: str | Path,
    chosen: pd.DatetimeIndex,
    *,
    history: pd.Timedelta,
    cycle_hours: int,
) -> pd.DatetimeIndex:
    """The times of ``analysis`` that :func:`latest_init_times` could choose (on the cycle,
    with their whole window) after the last complete initial time of the forecast store
    ``forecast`` and before the first of ``chosen``: cycles a run of the ``latest`` few
    leaves out for good, once analyses of more than one cycle arrived between two runs
    (late data, a stopped server). Empty when ``forecast`` holds no complete time yet.

    The cycles after its last complete initial time (with none, after the first of
    ``chosen``) that no run of the latest ones can forecast, a missing analysis in their
    window, are warned of (:func:`warn_gapped_cycles`): once, by the run that passes them."""
    done = complete_init_times(forecast)
    chosen = pd.DatetimeIndex(chosen)
    if chosen.empty:
        return chosen
    if not isinstance(analysis, AnalysisStore):
        analysis = open_store(analysis)
    warn_gapped_cycles(analysis, done.max() if done.size else chosen.min(), history, cycle_hours)
    if done.empty:
        return chosen[:0]
    every = latest_init_times(
        analysis, history=history, latest=analysis.dataset.sizes[TIME], cycle_hours=cycle_hours
    )
    return every[(every > done.max()) & (every < chosen.min())]


def truth_arrived(forecast: str | Path, analysis: AnalysisStore | str | Path) -> pd.DatetimeIndex:
    """The complete initial times of the forecast store ``forecast`` whose valid times the
    analysis has all reached (its last time with data is at or after each), some holding
    data, in order; empty when the forecast store does not exist yet. A valid time missing
    inside the analysis (an analysis that never arrived) does not hold its cycle back for
    good: the cycle is verified, that lead's truth scored as missing."""
    done = complete_init_times(forecast)
    if done.empty:
        return done
    valid = open_dataset(forecast)[VALID_TIME]
    if not isinstance(analysis, AnalysisStore):
        analysis = open_store(analysis)
    available = available_times(analysis)
    if available.empty:
        return pd.DatetimeIndex([])
    arrived = []
    for t in done:
        times = pd.DatetimeIndex(valid.sel({INIT_TIME: t}).values)
        if times.max() <= available.max() and times.isin(available).any():
            arrived.append(t)
    return pd.DatetimeIndex(arrived)
