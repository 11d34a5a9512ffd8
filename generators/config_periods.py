"""The training and held-out periods of a derived config
(:func:`generators.config_derive.derive_config`): how many of a store's last times are held
out (:func:`held_out_times`) of those up to an end (:func:`times_up_to`), whether they are
enough (:func:`trainable`, :func:`check_trainable`) and whether the times the store misses
leave each period a whole window (:func:`check_windows`); and
the check of every period of a config when it is read (:func:`check_periods`, its bounds
by :func:`bound_time`, as ``wxens calibrate`` checks its own)."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd

from generators.durations import duration_text
from pipeline.errors import InputError, time_text, times_text
from pipeline.schema import Period

HELD_OUT_FRACTION = 0.1
"""Share of the store's times (the last ones) held out for validation and calibration."""
MIN_HELD_OUT = pd.Timedelta(days=4)
"""The least held-out period: ``wxens tune`` weighs a decaying average of verified errors on
it, which needs forecasts of days the model has not seen, several of each time of day
(forecasts of training days show too little of the bias a correction removes)."""
MAX_HELD_OUT_FRACTION = 0.3
"""The most of a short store's times :data:`MIN_HELD_OUT` may take."""


def held_out_times(n_times: int, step: pd.Timedelta) -> int:
    """Times held out of ``n_times`` every ``step``: ``ceil(HELD_OUT_FRACTION * n)``, and at
    least :data:`MIN_HELD_OUT` of them where that is at most ``MAX_HELD_OUT_FRACTION * n``."""
    least = min(math.ceil(MIN_HELD_OUT / step), math.floor(MAX_HELD_OUT_FRACTION * n_times))
    return max(math.ceil(HELD_OUT_FRACTION * n_times), least)


def trainable(n_times: int, lead: int, history: int, step: pd.Timedelta) -> bool:
    """Whether ``n_times`` every ``step`` hold out more than ``lead`` steps and leave the
    training period ``history + lead`` of them (more times never make it False)."""
    held = held_out_times(n_times, step)
    return held > lead and n_times - held >= history + lead


def times_up_to(
    path: str, times: pd.DatetimeIndex, end: str | pd.Timestamp | None, option: str
) -> pd.DatetimeIndex:
    """The ``times`` of the store at ``path`` up to ``end`` (all where None), given as
    ``option`` (``--end``): a date keeps its whole day, as a period's end does. Refused,
    naming ``option``, where ``end`` is no time (:func:`bound_time`) or precedes them all."""
    if end is None:
        return times
    up_to = Period(None, end)  # a pd.Timestamp kept as its text
    bound_time(up_to.end, option)
    kept = times[up_to.contains(times)]
    if not len(kept):
        raise InputError(
            f"{option} {up_to.end} is before the first time of {path} ({time_text(times[0])}): "
            f"give a later {option} (the times up to it are trained on, the rest left out)"
        )
    return kept


def left_out_note(
    times: pd.DatetimeIndex, kept: pd.DatetimeIndex, end: str | pd.Timestamp | None, option: str
) -> tuple[str, ...]:
    """The note of a derived config on the store's ``times`` after those ``kept`` up to
    ``end`` (given as ``option``), which no part of it sees; none where it keeps them all."""
    if len(kept) == len(times):
        return ()
    return (
        f"{len(times) - len(kept)} times after {time_text(kept[-1])} left out ({option} "
        f"{Period(None, end).end}): neither trained, calibrated nor tuned on; forecast them "
        "to verify",
    )


def check_trainable(
    path: str, times: pd.DatetimeIndex, kept: pd.DatetimeIndex, step: pd.Timedelta,
    lead: int, history: int, option: str,
) -> None:  # fmt: skip
    """Refuse the store's ``times`` every ``step`` up to ``option`` (those ``kept``) too few
    to hold out more than ``lead`` steps and train on ``history + lead`` (:func:`trainable`),
    naming the fewest that do: the ``option`` that keeps them, else the times to ingest; and
    the longest lead they do hold, if any."""
    if trainable(len(kept), lead, history, step):
        return
    need = next(n for n in range(len(kept), 10**9) if trainable(n, lead, history, step))
    fit = [k for k in range(1, lead) if trainable(len(kept), k, history, step)]
    held = f"{path} holds {len(times)} times every {duration_text(step)}"
    if len(kept) < len(times):
        held = f"{option} keeps {len(kept)} of the {len(times)} times every {duration_text(step)}"
        held += f" of {path}"
    article = "an" if option.lstrip("-")[0] in "aeiou" else "a"  # an --end, a --train-end
    fix = (
        f"give {article} {option} of {time_text(times[need - 1])} or later"
        if need <= len(times)
        else f"ingest at least {need} times"
    )
    raise InputError(
        f"{held}; a derived config for a {duration_text(lead * step)} lead needs {need} (a "
        f"held-out period longer than the lead, a training period of the lead plus {history} "
        f"history states): {fix}"
        + (f" or give a lead= (--lead) of at most {duration_text(fit[-1] * step)}" if fit else "")
    )


def missing_windows(
    times: pd.DatetimeIndex, step: pd.Timedelta, history: int, lead: int, part: slice
) -> pd.DatetimeIndex | None:
    """None where an initial time of ``times[part]`` has its ``history`` states (which may
    reach back before the part) and its valid time ``lead`` steps on (inside the part) all
    in ``times``, as a training or validation item needs; else the times the part's span
    misses (a store with gaps can hold enough times and no whole window)."""
    inits = times[part]
    whole = np.ones(len(inits), dtype=bool)
    for k in (*range(history), -lead):
        whole &= times.get_indexer(inits - k * step) >= 0
    whole &= inits + lead * step <= inits[-1]
    if whole.any():
        return None
    span = pd.date_range(inits[0] - (history - 1) * step, inits[-1], freq=step)
    return span.difference(times)


def check_windows(
    path: str, times: pd.DatetimeIndex, step: pd.Timedelta, history: int, leads, n_train: int
) -> None:
    """Refuse a store whose missing times leave its training period (``times[:n_train]``)
    or its held-out one (the rest) no item of some lead (native steps): the training
    would fail on it after the config was printed and written, telling the user to widen
    a period they never chose."""
    for name, part in (("training", slice(None, n_train)), ("held-out", slice(n_train, None))):
        for lead in leads:
            missing = missing_windows(times, step, history, lead, part)
            if missing is None:
                continue
            shown = times_text(missing[:4])
            span = f"{time_text(times[part][0])} to {time_text(times[part][-1])}"
            raise InputError(
                f"{path} misses {len(missing)} time(s) in or just before its {name} period "
                f"({span}): {shown}{', ...' if len(missing) > 4 else ''}, so no initial time "
                f"in it has its {history} history states and its state "
                f"{(lead * step) / pd.Timedelta(hours=1):g} h later; ingest the missing "
                "times, or a store that ends before them"
            )


def bound_time(bound: str, what: str) -> pd.Timestamp:
    """The time a period bound names (naive UTC, as the stores' times); an InputError naming
    ``what`` it is (``the calibration period bound``), the bound and the form to give where
    it is no time (``nonsense``, ``2019-13-01``: pandas' traceback once the store is sliced
    by it) or has an offset (pandas' "Both dates must have the same UTC offset")."""
    try:
        time = pd.Timestamp(bound)
    except ValueError:
        time = pd.NaT
    if pd.isna(time) or time.tz is not None:  # pandas' TypeError, ValueError
        raise InputError(
            f"{what} {bound!r} is not a time of the store: give a UTC date or time without "
            "an offset, e.g. 2019-03-01 or 2019-03-01T00:00"
        )
    return time


def check_periods(config: Any, where: str) -> None:
    """Refuse a period of ``config`` (a config dataclass read from the file ``where``: its
    ``data.train``, ``data.validation``, ``data.exclude[i]``, ``fine_tune.period``,
    ``calibration.period``) with a bound that is no time, or that ends before it starts,
    naming the file, the key and the value: read, such a config trained until its data
    were sliced by the period (or, for the calibration's, until training was done)."""
    for key, period in _periods(config, ""):
        times = {}
        for side in ("start", "end"):
            bound = getattr(period, side)
            if bound is not None:
                times[side] = bound_time(bound, f"{where}: {key}.{side}")
        if len(times) == 2 and not period.contains(pd.DatetimeIndex([times["start"]]))[0]:
            raise InputError(
                f"{where}: {key} ends before it starts ({period}): give an end after its "
                "start (a date as an end keeps its whole day: {start: 2019-03-01, end: "
                "2019-03-01} is one day)"
            )


def _periods(value: Any, key: str) -> Iterator[tuple[str, Period]]:
    """The periods in a config dataclass or tuple ``value``, with their key paths."""
    if isinstance(value, Period):
        yield key, value
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            yield from _periods(getattr(value, f.name), f"{key}.{f.name}".lstrip("."))
    elif isinstance(value, tuple | list):
        for i, item in enumerate(value):
            yield from _periods(item, f"{key}[{i}]")
