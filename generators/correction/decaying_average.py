"""The decaying average of verified forecasts that every stage of the correction chain
learns from (:mod:`generators.correction.bias`, :mod:`generators.correction.ranks`):
for each lead, the values of the earlier forecasts that have verified by an initial time
t (``s + l <= t``), folded in order of s as ``a <- (1 - w) a + w v_s`` (Cui, Toth, Zhu and
Hou 2012, Weather and Forecasting 27, 396-410)."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd

from pipeline.errors import InputError, time_text

log = logging.getLogger(__name__)


def decaying_average(
    values: np.ndarray,
    inits: Sequence[pd.Timestamp],
    leads: Sequence[pd.Timedelta],
    weight: float,
    *,
    by_time_of_day: bool = True,
) -> np.ndarray:
    """The causal recursion: values (N, L, ...) of the forecasts of
    ``inits`` (N) at ``leads`` (L), NaN where unverified -> a (N, L, ...), a[t] folding in
    order the values of the earlier forecasts of the same lead and time of day (of any time
    of day if not ``by_time_of_day``) that have verified by t (``s + l <= t``):
    a <- (1 - w) a + w v_s, a = 0 before the first one."""
    values = np.asarray(values, dtype=np.float64)
    times = pd.DatetimeIndex(inits)
    if values.shape[:2] != (len(times), len(leads)):
        raise InputError(
            f"values of shape {values.shape} do not match {len(times)} initial times x "
            f"{len(leads)} leads"
        )
    out = np.zeros_like(values)
    time_of_day = times - times.normalize() if by_time_of_day else times - times  # one group
    groups = [  # the initial times of each time of day, in order
        group[np.argsort(times[group], kind="stable")]
        for group in (np.flatnonzero(time_of_day == tod) for tod in time_of_day.unique())
    ]
    for li, lead in enumerate(pd.TimedeltaIndex(leads)):
        for group in groups:
            a = np.zeros(values.shape[2:])
            verified = 0
            for n in group:
                while verified < len(group) and times[group[verified]] + lead <= times[n]:
                    v = values[group[verified], li]
                    a = np.where(np.isnan(v), a, (1 - weight) * a + weight * v)
                    verified += 1
                out[n, li] = a
    return out


def without_verified_past(
    inits: Sequence[pd.Timestamp], leads: Sequence[pd.Timedelta], truth_times: Sequence
) -> pd.DatetimeIndex:
    """The initial times of ``inits`` whose forecasts have, at none of ``leads``, an earlier
    forecast of the same lead and time of day verified by them (valid at one of
    ``truth_times`` by the initial time): those every decaying average leaves as they are."""
    inits, leads = pd.DatetimeIndex(inits), pd.TimedeltaIndex(leads)
    truth_times = pd.DatetimeIndex(truth_times)
    verified = np.stack([(inits + lead).isin(truth_times) for lead in leads], axis=1)
    seen = decaying_average(np.where(verified, 1.0, np.nan), inits, leads, 1.0)
    return inits[~(seen > 0).any(axis=1)]


def corrects_any(
    inits: Sequence[pd.Timestamp], leads: Sequence[pd.Timedelta], truth_times: Sequence
) -> bool:
    """Whether a decaying average corrects any of ``inits``: one has an earlier forecast of
    its lead and time of day verified by it (:func:`without_verified_past` leaves it out)."""
    return len(without_verified_past(inits, leads, truth_times)) < len(inits)


def say_uncorrected(
    forecast: object,
    truth: object,
    inits: np.ndarray,
    leads: np.ndarray,
    valid: np.ndarray,
    truth_times: np.ndarray,
) -> None:
    """Log why a forecast store's correction leaves every initial time as it is: none has
    an earlier one of its time of day (a store's first forecasts), or none of theirs is
    verified in the truth store (a warning naming both periods); nothing if some is."""
    if not corrects_any(inits, leads, np.ravel(valid)):
        log.info(
            "%s: no initial time has an earlier one of its time of day: written as they are "
            "(a store's first forecasts; the later ones learn from them)",
            forecast,
        )
    elif len(without_verified_past(inits, leads, truth_times)) == len(inits):
        log.warning(
            "none of the %d initial time(s) of %s has an earlier forecast verified in %s (it "
            "holds %s to %s; the forecasts are valid %s to %s): all are written as they are, "
            "to be corrected by a rerun once their predecessors' truths are in %s",
            len(inits),
            forecast,
            truth,
            *_period(truth_times),
            *_period(valid),
            truth,
        )


def _period(times: np.ndarray) -> tuple[str, str]:
    times = pd.DatetimeIndex(np.ravel(times))
    return time_text(times.min()), time_text(times.max())
