"""The canonical dataset of an ingest's sources: each opened by the source that claims it,
normalised to the canonical schema (:func:`pipeline.normalize.normalize`) and combined
lazily on one grid (:func:`pipeline.grid.onto_one_grid`) and one time axis, every variable
at every time unless NaNs are allowed, with a provenance string whose credentials are
masked."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from pipeline.duplicate_times import check_unique_times, dropped_apart, note_dropped
from pipeline.errors import InputError, times_text
from pipeline.grid import combine_on_one_grid
from pipeline.normalize import normalize, sorted_along
from pipeline.redact import redact
from pipeline.schema import HORIZONTAL, TIME
from pipeline.sources import AdjustedSource, Source, resolve_source
from pipeline.timeaxis import check_one_axis

log = logging.getLogger(__name__)


def open_canonical(
    sources: str | Path | Source | Sequence[str | Path | Source],
    variables: Sequence[str] | None = None,
    time: slice | None = None,
    *,
    allow_nan: bool = True,
) -> tuple[xr.Dataset, str]:
    """All sources opened, normalised and combined lazily; with a provenance string.

    ``allow_nan=False`` refuses a variable that the sources lack at some of the times (in
    ``time``) that others give, which the combination leaves NaN there, naming it, the
    times and the sources; :func:`pipeline.store.ingest` passes its own ``allow_nan``.
    """
    return open_checked(sources, variables, checked_period(time), allow_nan=allow_nan)


def open_checked(
    sources: str | Path | Source | Sequence[str | Path | Source],
    variables: Sequence[str] | None,
    time: slice | None,
    *,
    allow_nan: bool,
) -> tuple[xr.Dataset, str]:
    """:func:`open_canonical` of a ``time`` that :func:`checked_period` returned, for a
    caller that checked it before anything else (:func:`pipeline.store.ingest`, before it
    touches the store): checked once, not again here."""
    if isinstance(sources, str | Path | Source):
        sources = [sources]
    if isinstance(variables, str):  # one name, not its letters
        variables = [variables]
    resolved = [resolve_source(s if isinstance(s, Source) else str(s)) for s in sources]
    if not resolved:
        raise InputError("no source given: name at least one file, glob, URL or 'synthetic'")
    parts = [(src.description, _normalized(src, variables)) for src in resolved]
    origin = redact(", ".join(src.description for src in resolved))
    ds = parts[0][1] if len(parts) == 1 else _combine(parts, origin)
    if not allow_nan:
        _check_every_time(parts, origin, time or slice(None))
    if time is not None:
        held = pd.DatetimeIndex(ds[TIME].values)
        ds = ds.sel({TIME: time})
        if ds.sizes[TIME] == 0:
            within = f"{time.start or ''}..{time.stop or ''}"
            holds = f"{times_text(held[:1])}..{times_text(held[-1:])}" if held.size else "none"
            raise InputError(
                f"{origin}: no time in {within}; it holds {holds}; check time= (--start/--end)"
            )
    return ds, origin


def checked_period(time: slice | None) -> slice | None:
    """``time`` with its ends checked, naming a value that is not a time: pandas' TypeError
    from ``sel`` was a traceback (``--start banana``), and so was a time with a zone
    (``2019-03-01T00Z``), which is read in UTC, as wxens's times are. A start after the end
    is left to select no time, said with the inputs' period (``--end 2019-03-05`` is that
    whole day, so a start at its noon is not after it)."""
    if time is None:
        return None
    ends = []
    for value, flag in ((time.start, "--start"), (time.stop, "--end")):
        try:
            stamp = None if value is None else pd.Timestamp(value)
        except (TypeError, ValueError):
            raise InputError(
                f"time= ({flag} {value}): {value!r} is not a time such as 2019-03-01T00"
            ) from None
        zoned = stamp is not None and stamp.tzinfo is not None
        ends.append(stamp.tz_convert("UTC").tz_localize(None) if zoned else value)
    return slice(*ends)


def _normalized(src: Source, variables: Sequence[str] | None) -> xr.Dataset:
    """``src`` opened and normalised; so too the later copies of times the store holds that
    it dropped among its files (a glob), for :mod:`pipeline.resent` to compare with the
    store's values as ingest would have written them."""
    with dropped_apart() as copies:  # in the producer's names, before any adjustment
        ds = normalize(src.open(), src.description, variables)
    for label, copy in copies:
        if isinstance(src, AdjustedSource):
            copy = src.adjustments.apply(copy, src.source.description)[0]
        note_dropped(label, normalize(copy, label, variables))
    return ds


def _combine(parts: list[tuple[str, xr.Dataset]], origin: str) -> xr.Dataset:
    """Inputs (label, dataset) that differ in time or variables, as one dataset sorted by
    time: refused when they give a variable one time twice (but one the store holds,
    :mod:`pipeline.duplicate_times`), leave one time axis or lie on two grids; on the first
    one's points otherwise, so that the outer join fills with NaN only what an input lacks
    (another level or time), never a grid point."""
    parts = check_unique_times(parts, origin)  # less later copies of times the store holds
    check_one_axis(parts, origin)
    combined = combine_on_one_grid(parts, HORIZONTAL, origin)
    log.debug("combined %d inputs, %d times", len(parts), combined.sizes[TIME])
    return sorted_along(combined, TIME)


def _check_every_time(parts: list[tuple[str, xr.Dataset]], origin: str, period: slice) -> None:
    """Refuse a variable that the inputs (label, dataset) lack at some of the times in
    ``period`` that others give: combined, it is NaN there, and the NaN check would ask
    to repair files that hold none."""
    selected = []
    for label, part in parts:
        times = pd.DatetimeIndex(part[TIME].values)
        selected.append((label, part, times[times.slice_indexer(period.start, period.stop)]))
    every = pd.DatetimeIndex(np.unique(np.concatenate([t.values for _, _, t in selected])))
    for name in sorted({str(name) for _, part, _ in selected for name in part.data_vars}):
        holders = [(label, t) for label, part, t in selected if name in part.data_vars]
        absent = every.difference(pd.DatetimeIndex(np.concatenate([t.values for _, t in holders])))
        if absent.size:
            giver = next(label for label, _, times in selected if absent[0] in times)
            raise InputError(
                f"{origin}: {name!r} (from {', '.join(label for label, _ in holders)}) lacks "
                f"{absent.size} of the {every.size} time(s) the inputs give, first "
                f"{times_text(absent[:3])} (given by {giver}); supply those times of "
                f"{name!r}, or pass allow_nan=True (--allow-nan) to keep it NaN there"
            )
