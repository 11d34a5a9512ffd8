"""The time axis of an analysis: its native step, the times it should hold, the gaps.

Most producers write times a fixed step apart (hourly ERA5, 6-hourly reanalyses, daily
means). Monthly, seasonal or yearly means are instead a whole number ``k`` of *calendar*
months apart (28 to 31 days for one), each time stamp at the same place in its month: a
fixed offset from the month's start (the 1st at 00:00, the 15th), a fixed offset before
its end (the last day), or its middle (CF's mid-month stamps, 16 Jan 12:00, 15 Feb 00:00).
An axis is read as calendar months when no two times share a month and every time sits at
one such place; otherwise its step is the most common spacing of its times.

A step is a :class:`pandas.Timedelta`, stored as its string and read back with
``pd.Timedelta``, so every reader of a fixed step reads a calendar step too: ``k`` calendar
months are ``k`` mean Gregorian months, ``k * 365.2425 / 12`` days (``30 days 10:29:06``
for one month), a spacing no fixed-step axis has (its times would drift through the
clock); :func:`calendar_months` recognises it, :func:`describe_step` prints it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr
from xarray.coding.times import encode_cf_datetime

from pipeline.errors import InputError, StoreError, time_text, times_text
from pipeline.schema import TIME

MEAN_MONTH = pd.Timedelta(seconds=365.2425 * 86400 / 12)
"""One calendar month as a fixed step: the mean Gregorian month, 2,629,746 s exactly."""

#: How a step of 0 (a store of one time, with no step yet) is shown.
UNDEFINED_STEP = "undefined (one time)"

#: How far from the exact middle of its month a time may lie and still read as mid-month
#: (producers round the middle of 28-, 29-, 30- and 31-day months differently).
MID_MONTH_TOLERANCE = pd.Timedelta(days=1)


def native_step(times: pd.DatetimeIndex) -> pd.Timedelta:
    """The step of sorted ``times``: ``k`` x :data:`MEAN_MONTH` for ``k`` calendar months,
    else the most common spacing (1 h for hourly ERA5 even with gaps).

    0 for one time: its step is undefined until a second time comes (a store created from
    one analysis, appended to later; the append sets it). A step of 0 has no missing times
    and no tendency pairs, accepts an append at any step, and reads as undefined."""
    times = pd.DatetimeIndex(times)
    if len(times) < 2:
        return pd.Timedelta(0)
    months = _calendar_step(times)
    if months is not None:
        return months * MEAN_MONTH
    diffs = pd.Series(np.diff(times.values))
    return pd.Timedelta(diffs.mode().iloc[0])


def calendar_months(step: pd.Timedelta) -> int | None:
    """``k`` when ``step`` stands for ``k`` calendar months (``k`` x :data:`MEAN_MONTH`),
    else None."""
    months, rest = divmod(pd.Timedelta(step), MEAN_MONTH)
    return int(months) if months >= 1 and rest == pd.Timedelta(0) else None


def fixed_step(step: pd.Timedelta, where: object) -> pd.Timedelta:
    """``step``, a model's step between states; an :class:`InputError` naming ``where``
    for a calendar step, whose states are no fixed duration apart (28 to 31 days a month):
    a model's history and leads, fixed multiples of its step, would find none of them."""
    if calendar_months(step) is not None:
        raise InputError(
            f"{where}: its times are {describe_step(step)} apart (monthly or seasonal means), "
            "not a fixed step, and models and baselines step a fixed duration (their history "
            "and leads are whole steps); use a store of daily or sub-daily analyses (a "
            "calendar-month store can be the truth of wxens verify)"
        )
    return step


def describe_step(step: pd.Timedelta) -> str:
    """``"1 calendar month"``, ``"3 calendar months"``, a fixed step in its largest whole
    unit (``"6 h"``, ``"1 day"``, ``"30 min"``, else seconds), or ``"undefined (one time)"``
    for the step 0 of one time."""
    if pd.Timedelta(step) <= pd.Timedelta(0):
        return UNDEFINED_STEP
    months = calendar_months(step)
    if months is not None:
        return f"{months} calendar month{'s' if months > 1 else ''}"
    seconds = pd.Timedelta(step).total_seconds()
    for size, unit in ((86400, " day"), (3600, " h"), (60, " min")):
        if seconds % size == 0:
            count = int(seconds // size)
            return f"{count}{unit}{'s' if unit == ' day' and count > 1 else ''}"
    return f"{seconds:g} s"


def refuse_off_step(
    where: object, inits: pd.DatetimeIndex, times: pd.DatetimeIndex, step: pd.Timedelta
) -> None:
    """An :class:`InputError` naming ``where`` and the initial times of ``inits`` off the
    fixed ``step`` of the store's ``times`` (03:00 on a 6-hourly store): no state is held at
    them, and no store time can be ingested there; the forecast and the baselines say so
    alike."""
    off = inits[(inits - times[0]) % step != pd.Timedelta(0)]
    if off.size:
        more = f" and {off.size - 5} more" if off.size > 5 else ""
        raise InputError(
            f"{where}: initial time(s) {times_text(off[:5])}{more} are not on the store's "
            f"{describe_step(step)} step (its times run {time_text(times[0])} to "
            f"{time_text(times[-1])}); choose initial times on it, inits= (--init)"
        )


def hours_text(hours: Sequence[float]) -> str:
    """Lead hours as a person reads them: a few listed (``1, 3, 6, 12, 24``), a run of four
    or more evenly spaced as ``6 to 240 every 6`` (a 10-day forecast every hour listed
    its 240 leads in one line of ``wxens info``)."""
    hours = [float(h) for h in hours]
    parts, i = [], 0
    while i < len(hours):
        j = i + 1
        if j < len(hours):
            step = hours[j] - hours[i]
            while j + 1 < len(hours) and abs(hours[j + 1] - hours[j] - step) < 1e-9:
                j += 1
        if j - i + 1 >= 4:
            parts.append(f"{hours[i]:g} to {hours[j]:g} every {hours[i + 1] - hours[i]:g}")
            i = j + 1
        else:
            parts.append(f"{hours[i]:g}")
            i += 1
    return ", ".join(parts)


def missing_times(times: pd.DatetimeIndex, step: pd.Timedelta | None = None) -> pd.DatetimeIndex:
    """The times of the axis from the first to the last of sorted ``times``, ``step``
    apart (default: :func:`native_step`), that ``times`` lacks. A missing calendar month is
    stamped where its neighbours are stamped in theirs."""
    times = pd.DatetimeIndex(times)
    step = native_step(times) if step is None else pd.Timedelta(step)
    if len(times) < 2 or step <= pd.Timedelta(0):
        return pd.DatetimeIndex([])
    months = calendar_months(step)
    anchor = _month_anchor(times) if months is not None else None
    if months is None or anchor is None:
        return pd.date_range(times[0], times[-1], freq=step).difference(times)
    ordinals = _month_ordinals(times)
    axis = np.arange(ordinals[0], ordinals[-1] + 1, months)
    return anchor(axis[~np.isin(axis, ordinals)])


def missing_text(missing: pd.DatetimeIndex, step: pd.Timedelta) -> str:
    """``missing`` (:func:`missing_times` of an axis of ``step``) as a store's warning names
    them: their count and :func:`missing_names`, so the gap can be found
    (``2 missing time(s) at the native step (6 h): 2021-01-02T00:00, 2021-01-02T06:00``)."""
    said = f"{len(missing)} missing time(s) at the native step ({describe_step(step)})"
    return f"{said}: {missing_names(missing)}"


def missing_names(missing: pd.DatetimeIndex, shown: int = 5) -> str:
    """The missing times of a store (an analysis store's, a forecast store's initial times)
    as ``wxens info`` names them: up to ``shown`` by name, more by their first three, their
    last and their count (``2019-03-05T00:00, 2019-03-05T06:00, 2019-03-05T12:00 ...
    2019-03-09T18:00 (12 in all)``)."""
    if len(missing) <= shown:
        return times_text(missing)
    return f"{times_text(missing[:3])} ... {time_text(missing[-1])} ({len(missing)} in all)"


def late_times(times: pd.DatetimeIndex, new: pd.DatetimeIndex) -> pd.DatetimeIndex:
    """The times of ``new`` among the missing times of the axis of sorted ``times`` (inside
    its period, on its step): analyses that arrived after later ones, which a store, only
    growing at its end, cannot take in (:mod:`pipeline.ingest_report` says what became of
    them). Refusing the input for them refused its later times too, so one late file
    stopped every later ingest."""
    new = pd.DatetimeIndex(new)
    return new[new.isin(missing_times(pd.DatetimeIndex(times)))]


def consecutive_pairs(times: pd.DatetimeIndex, step: pd.Timedelta) -> np.ndarray:
    """Positions ``i`` of sorted ``times`` whose next time is one ``step`` later (one step
    of ``k`` calendar months for a calendar step): the pairs a tendency is taken over."""
    times = pd.DatetimeIndex(times)
    months = calendar_months(step)
    if months is not None and _month_anchor(times) is not None:
        return np.flatnonzero(np.diff(_month_ordinals(times)) == months)
    return np.flatnonzero(np.diff(times.values) == pd.Timedelta(step).to_timedelta64())


def off_axis(times: pd.DatetimeIndex, later: pd.DatetimeIndex) -> pd.DatetimeIndex:
    """The times of sorted ``later`` (all after ``times``) off the axis of sorted ``times``:
    not its last time plus whole native steps, so that one store never mixes two steps.

    For a calendar step, whole ``k`` calendar months later, one a month, each at the place
    in its month that ``times`` use. Skipped whole steps (a gap) are on the axis. When
    ``times`` has no step yet (one time), the step is the one that ``later`` sets
    (:func:`axis_step`), and the one time is on that axis too: an append of daily times at
    00 UTC to one analysis at 18 UTC made a store whose 18 UTC times were all missing.
    """
    times, later = pd.DatetimeIndex(times), pd.DatetimeIndex(later)
    step = axis_step(times, later)
    if step <= pd.Timedelta(0) or later.empty:
        return later[:0]
    months = calendar_months(step)
    if months is None or _month_anchor(times) is None:
        return later[(later - times[-1]) % step != pd.Timedelta(0)]
    after = _month_ordinals(later) - _month_ordinals(times[-1:])[0]
    off = (after <= 0) | (after % months != 0) | pd.Index(after).duplicated()
    if _month_anchor(times.append(later)) is None:  # find those at another place
        off |= [_month_anchor(times.append(later[i : i + 1])) is None for i in range(len(later))]
    return later[off]


def axis_step(times: pd.DatetimeIndex, later: pd.DatetimeIndex) -> pd.Timedelta:
    """The step of the axis that sorted ``times`` and ``later`` make: that of ``times``, or
    when ``times`` has none yet (one time), that of both together (0 while they have none)."""
    step = native_step(pd.DatetimeIndex(times))
    if step > pd.Timedelta(0) or len(later) == 0:
        return step
    return native_step(pd.DatetimeIndex(times).append(pd.DatetimeIndex(later)).sort_values())


def check_one_axis(parts: Sequence[tuple[str, xr.Dataset]], origin: str) -> None:
    """Refuse inputs of one ingest that leave one time axis, as appends would be refused.

    ``parts`` are ``(label, dataset)`` pairs (valid times as in :func:`valid_times`).
    Taken in the order of their first times, the times each input adds must be on the axis
    of the inputs before it: later ones as :func:`off_axis` takes an append, earlier ones
    where that axis misses a time. So one ingest of several inputs takes what ingests of them
    one after another take: a 6-hourly input and a later hourly one are refused, an hourly
    input and a later 6-hourly one make an hourly axis with missing times. The
    :class:`InputError` names the input, the axis before it and its first time off it.
    """
    labelled = []
    for label, part in parts:
        times = valid_times(part)
        if times is not None and times.size:
            labelled.append((label, times.unique().sort_values()))
    labelled.sort(key=lambda item: item[1][0])
    if not labelled:
        return
    axis, step = labelled[0][1], None
    for label, times in labelled[1:]:
        step = native_step(axis) if step is None else step
        if _continues(axis, times, step):  # the files of a long record: no set operations
            axis = axis.append(times)
            continue
        new = times.difference(axis)
        inside = new[new < axis[-1]]
        off = inside.difference(missing_times(axis)).append(off_axis(axis, new[new > axis[-1]]))
        if off.size:
            raise InputError(
                f"{origin}: the inputs that start earlier than {label} give times every "
                f"{describe_step(axis_step(axis, new))} up to {time_text(axis[-1])}, but "
                f"{off.size} of the {times.size} time(s) of {label} are not a whole number of "
                f"steps from those, first {time_text(off[0])}; a store has one time step: "
                "select or resample the inputs to one step, or ingest them into separate stores"
            )
        axis, step = axis.union(new), None


def _continues(axis: pd.DatetimeIndex, times: pd.DatetimeIndex, step: pd.Timedelta) -> bool:
    """Whether sorted ``times`` follow ``axis`` one fixed ``step`` (under 28 days, so not a
    calendar one) after another: the diffs they add are all its most common one, so its
    :func:`native_step` stays ``step``."""
    if not pd.Timedelta(0) < step < pd.Timedelta(days=28):
        return False
    return bool(((times - axis[-1]) == step * np.arange(1, times.size + 1)).all())


def _calendar_step(times: pd.DatetimeIndex) -> int | None:
    """The most common spacing in calendar months of ``times`` if they are a calendar
    axis (one time per month at most, each at the same place in its month), else None."""
    diffs = np.diff(_month_ordinals(times))
    if diffs.min() < 1 or _month_anchor(times) is None:
        return None
    return int(pd.Series(diffs).mode().iloc[0])


def _month_ordinals(times: pd.DatetimeIndex) -> np.ndarray:
    """Months since January 1970 of each time (January 1970 is 0)."""
    return ((times.year - 1970) * 12 + times.month - 1).to_numpy()


def _month_start(ordinals: np.ndarray) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(
        (np.asarray(ordinals, "int64").astype("datetime64[M]")).astype("datetime64[ns]")
    )


def _month_anchor(times: pd.DatetimeIndex) -> Callable[[np.ndarray], pd.DatetimeIndex] | None:
    """Where in its month each of ``times`` is stamped, as a function from month ordinals
    to time stamps; None when the times are not all at one such place."""
    ordinals = _month_ordinals(times)
    start, end = _month_start(ordinals), _month_start(ordinals + 1)
    after_start, before_end = times - start, end - times
    if (after_start == after_start[0]).all():
        offset = after_start[0]
        return lambda months: _month_start(months) + offset
    if (before_end == before_end[0]).all():
        offset = before_end[0]
        return lambda months: _month_start(np.asarray(months) + 1) - offset
    middle = start + (end - start) / 2
    if (abs(times - middle) <= MID_MONTH_TOLERANCE).all():
        return lambda months: (
            _month_start(months) + (_month_start(np.asarray(months) + 1) - _month_start(months)) / 2
        )
    return None


def valid_times(ds: xr.Dataset) -> pd.DatetimeIndex | None:
    """Every valid time of ``ds`` (cfgrib's ``valid_time`` of each time and step, else
    ``time``), flattened; None when it has neither."""
    for name in ("valid_time", TIME):
        if name in ds.coords and ds[name].dtype.kind == "M":
            return pd.DatetimeIndex(np.ravel(ds[name].values))
    return None


def days_from_date(times: pd.DatetimeIndex, reference: pd.Timestamp) -> np.ndarray:
    """Calendar days from each of ``times`` to ``reference``'s date (month and day) in the
    nearest year: 1 March is 0 days from 1 March in a leap year too, 31 December 1 day
    from 1 January; 29 February is 28 February in a common year (a baseline's window of
    days of the year, :mod:`generators.correction.baselines`)."""
    dates = pd.DatetimeIndex(times).normalize()
    best = np.full(len(dates), np.inf)
    for shift in (-1, 0, 1):
        years = dates.year + shift
        leap = (years % 4 == 0) & ((years % 100 != 0) | (years % 400 == 0))
        day = np.where((reference.month == 2) & (reference.day == 29) & ~leap, 28, reference.day)
        there = pd.to_datetime({"year": years, "month": reference.month, "day": day})
        best = np.minimum(best, np.abs((dates - pd.DatetimeIndex(there)).days))
    return best


def check_time_units(existing: xr.Dataset, new: pd.DatetimeIndex, path: str | Path) -> None:
    """Refuse new times that the whole time units of the store at ``path`` (``existing``)
    cannot hold (a store made before :data:`pipeline.store.TIME_ENCODING`: one time at
    midnight was encoded in days)."""
    encoding = existing[TIME].encoding
    units, calendar = encoding["units"], encoding.get("calendar")
    if np.dtype(encoding.get("dtype", "float64")).kind not in "iu":
        return  # a fractional unit holds any time
    count, _, _ = encode_cf_datetime(new.values, units, calendar, dtype=np.dtype("float64"))
    off = new[count != np.round(count)]
    if off.size:
        raise StoreError(
            f"{path}: the store encodes its times as whole {units}, which cannot hold "
            f"{off.size} of the new time(s), first {time_text(off[0])}; rebuild it from all its "
            "inputs with overwrite=True (--overwrite), or ingest into a new store= (--store)"
        )
