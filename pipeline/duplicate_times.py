"""Times that the inputs of one ingest give twice: refused where they would be written,
accepted where the store holds them written already.

A feed that sends a day again under another name (``2019-03-22.grib`` and
``2019-03-22_v2.grib`` in one glob) gives that day's times twice. Which copy to write is
a question only for times the store lacks; the times it holds are kept as written there
(:func:`pipeline.store.ingest` writes no input's copy of them), so their later copies are
dropped and said once in the log. :func:`store_holds` tells the checks, around the opening
of an ingest's sources, which times that store holds, and gathers the copies dropped, for
:mod:`pipeline.resent` to compare with the store's values.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import NamedTuple

import numpy as np
import pandas as pd
import xarray as xr

from pipeline.errors import InputError, times_text
from pipeline.normalize import COORD_ALIASES
from pipeline.schema import LEVEL, TIME
from pipeline.timeaxis import valid_times

log = logging.getLogger(__name__)


class DuplicateTimesError(InputError):
    """Inputs that give one variable's time twice: its own class, so that a reader of
    forecasts (:func:`verification.run.open_forecast_any`) can say what else they may be."""

_HELD: ContextVar[pd.DatetimeIndex | None] = ContextVar("store_holds", default=None)
#: The copies dropped so far, (input, dataset of its dropped times), while they are gathered.
_DROPPED: ContextVar[list[tuple[str, xr.Dataset]] | None] = ContextVar("dropped", default=None)


@contextmanager
def store_holds(times: pd.DatetimeIndex) -> Iterator[list[tuple[str, xr.Dataset]]]:
    """Within it, :func:`check_unique_times` accepts inputs that give twice times among
    ``times`` (those the store being ingested into holds written); it yields the list of
    the later copies dropped, ``(input, dataset of those times)``, filled as they are."""
    copies: list[tuple[str, xr.Dataset]] = []
    token, dropped = _HELD.set(pd.DatetimeIndex(times)), _DROPPED.set(copies)
    try:
        yield copies
    finally:
        _DROPPED.reset(dropped)
        _HELD.reset(token)


@contextmanager
def dropped_apart() -> Iterator[list[tuple[str, xr.Dataset]]]:
    """Within it, the copies dropped go to the list it yields, not :func:`store_holds`'s:
    those of one source's files, in its producer's names, to normalise before
    :func:`note_dropped` passes them on."""
    copies: list[tuple[str, xr.Dataset]] = []
    token = _DROPPED.set(copies)
    try:
        yield copies
    finally:
        _DROPPED.reset(token)


def note_dropped(label: str, copy: xr.Dataset) -> None:
    """Add a dropped copy to those gathered (none gathered outside :func:`store_holds`)."""
    dropped = _DROPPED.get()
    if dropped is not None:
        dropped.append((label, copy))


def check_unique_times(
    parts: Sequence[tuple[str, xr.Dataset]], origin: str
) -> list[tuple[str, xr.Dataset]]:
    """``parts`` less the later copies of times given twice that the store holds
    (:func:`store_holds`); refused where they give one variable another time twice.

    ``parts`` are ``(label, dataset)`` pairs, the files of a glob or the sources of one
    ingest, in their producers' names or canonical ones (valid times from ``valid_time``,
    else ``time``; a dataset with neither is skipped). The :class:`InputError` names the
    variable, the number of such times, the first three and two inputs that hold the first.
    A time the store holds stays in the first input that gives it (an input left with no
    time is dropped), so the ingest still counts it as kept.
    """
    held = _HELD.get()
    held = pd.DatetimeIndex([]) if held is None else held
    inputs = [_input(label, part) for label, part in parts]  # valid times read once
    twice_held = False
    for (name, level), labelled in _times_by_variable(inputs).items():
        joined = labelled[0][1].append([times for _, times in labelled[1:]])
        if not joined.has_duplicates:
            continue
        twice = joined[joined.duplicated()].unique()
        dup = twice[~twice.isin(held)]
        twice_held = twice_held or dup.size < twice.size
        if dup.size:
            holders = [label for label, times in labelled if dup[0] in times]
            var = repr(name) if level is None else f"{name!r} at level {level:g}"
            raise DuplicateTimesError(
                f"{origin}: {var} has {dup.size} duplicate time(s) across the inputs, first "
                f"{times_text(dup[:3])} (in {holders[0]} and {holders[1]}); give each time "
                "once (do two files overlap?)"
            )
    return _without_later_copies(inputs, origin) if twice_held else list(parts)


class _Input(NamedTuple):
    """A part of :func:`check_unique_times` with its valid times (None: it has none) and
    its variables and levels (none without valid times), each read once for all passes."""

    label: str
    part: xr.Dataset
    times: pd.DatetimeIndex | None
    keys: list[tuple[str, float | None]]


def _input(label: str, part: xr.Dataset) -> _Input:
    times = valid_times(part)
    if times is None:
        return _Input(label, part, None, [])
    keys = [(str(name), level) for name in part.data_vars for level in _levels(part[name])]
    return _Input(label, part, times, keys)


def _times_by_variable(
    inputs: Sequence[_Input],
) -> dict[tuple[str, float | None], list[tuple[str, pd.DatetimeIndex]]]:
    by_var: dict[tuple[str, float | None], list[tuple[str, pd.DatetimeIndex]]] = {}
    for label, _, times, keys in inputs:
        for key in keys:  # none without valid times
            by_var.setdefault(key, []).append((label, times.unique()))
    return by_var


def _without_later_copies(inputs: list[_Input], origin: str) -> list[tuple[str, xr.Dataset]]:
    """The inputs' parts with each time (all of them held by the store) given by an earlier
    part for every variable and level of a later one left out of the later one. Refused
    where a later part gives such a time beside a variable or level the earlier ones lack
    there, or holds it among the steps of a forecast: no copy of it can be left out alone."""
    seen: dict[tuple[str, float | None], pd.DatetimeIndex] = {}
    dropped, kept = pd.DatetimeIndex([]), []
    for label, part, times, keys in inputs:
        if not keys:
            kept.append((label, part))
            continue
        before = np.zeros(times.size, int)
        for key in keys:
            before += times.isin(seen.get(key, pd.DatetimeIndex([])))
            seen[key] = seen.get(key, pd.DatetimeIndex([])).union(times.unique())
        name = next(n for n in ("valid_time", TIME) if n in part.coords and _is_time(part[n]))
        partial = (before > 0) & ((before < len(keys)) | (part[name].ndim > 1))
        if partial.any():
            raise InputError(
                f"{origin}: {label} gives {int(partial.sum())} time(s) that inputs before it "
                f"give too, first {times_text(times[partial][:3])}, beside variables or levels "
                "they lack there; give each time once (do two files overlap?)"
            )
        drop = before == len(keys)
        dropped = dropped.union(times[drop])
        if drop.any():
            note_dropped(label, part.isel({part[name].dims[0]: drop}))
        if drop.all():
            continue  # every time of it given before and held: nothing of it left
        kept.append((label, part.isel({part[name].dims[0]: ~drop}) if drop.any() else part))
    holders = [label for label, _, times, keys in inputs if keys and times.isin(dropped).any()]
    log.info(
        "%s: %d inputs hold %d time(s) the store has already (%s): kept as written there",
        origin,
        len(holders),
        dropped.size,
        ", ".join(holders),
    )
    return kept


def _is_time(da: xr.DataArray) -> bool:
    return da.dtype.kind == "M"


def _levels(da: xr.DataArray) -> tuple[float | None, ...]:
    """The pressure levels ``da`` holds, by any name ingest reads as a level (a dim, or a
    scalar coordinate: one file per level); ``(None,)`` for a field without one."""
    for name in (*da.dims, *da.coords):
        if COORD_ALIASES.get(str(name), str(name)) == LEVEL and name in da.coords:
            return tuple(float(v) for v in np.atleast_1d(da[name].values))
    return (None,)
