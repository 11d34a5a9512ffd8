"""The time axes of a forecast store: how a batch's initial times are named in its commit
message and log (:func:`span`), the cycle a run drew them on, where it knew it
(:func:`record_cycle`), the cadence they were drawn at and the cycles missing between them
(:func:`init_cadence`), and its ``valid_time`` in whole seconds, as every store since this
module writes it (:func:`repair_valid_time`, for a store an older wxens made).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
import zarr

from pipeline.errors import time_text
from pipeline.schema import INIT_TIME, LEAD_TIME, VALID_TIME
from pipeline.timeaxis import (
    calendar_months,
    describe_step,
    missing_names,
    missing_times,
    native_step,
    off_axis,
)
from pipeline.transaction import is_empty_repository, is_store, read_attrs, transaction

log = logging.getLogger(__name__)

SECONDS = "seconds since 1970-01-01"
"""The units of a forecast store's ``init_time`` and ``valid_time``."""
INIT_CHUNK = 4096
"""Initial times per chunk of a forecast store's ``init_time``, ``complete`` and
``valid_time``: a store written a cycle at a time fills a chunk, rather than gaining three
objects a cycle that every open reads (as the analysis store's time coordinate)."""
CYCLE_ATTR = "wxens_init_cycle_hours"
"""A forecast store's attribute: the cycle its initial times are drawn on, in hours, where a
run knew it (a scheduled run's ``cycle_hours``, a ``wxens forecast``/``run`` ``--init``
range's step); absent where none did (single or hand-picked initial times). The finest is
kept."""


def span(times: pd.DatetimeIndex) -> str:
    """``times`` in a few words: the one, or how many from the first to the last."""
    if times.size <= 1:
        return f"initial time {time_text(times[0])}" if times.size else "no initial time"
    return f"{times.size} initial times {time_text(times.min())}..{time_text(times.max())}"


def recorded_cycle(attrs: dict[str, Any]) -> pd.Timedelta | None:
    """The cycle a forecast store's ``attrs`` record (:data:`CYCLE_ATTR`); None if none."""
    hours = attrs.get(CYCLE_ATTR)
    return None if hours is None else pd.Timedelta(hours=float(hours))


def finest_cycle(existing: dict[str, Any], new: dict[str, Any]) -> dict[str, float]:
    """The cycle record (:data:`CYCLE_ATTR`) of a store whose attrs are ``existing`` when
    attrs ``new`` are written over them: the finer of the two, so that no write forgets it
    (xarray replaces a store's attrs on every append), nor a coarser run hides the cycles
    missing at a finer one; ``{}`` where neither records one."""
    cycles = [c for c in map(recorded_cycle, (existing, new)) if c is not None]
    return {CYCLE_ATTR: min(cycles) / pd.Timedelta(hours=1)} if cycles else {}


def record_cycle(path: str | Path, cycle: pd.Timedelta) -> None:
    """Record ``cycle`` as the one the forecast store at ``path`` is drawn on, unless it
    records one as fine or finer (:func:`finest_cycle`: a run on a coarser cycle is logged
    and never refused); nothing where there is no store yet (nothing was drawn). A commit
    of its own, only when the record changes, so a scheduled run adds none after its first."""
    if not is_store(path) or is_empty_repository(path):
        return
    held = recorded_cycle(read_attrs(path))
    if held is not None and held <= cycle:
        if held < cycle:
            log.info(
                "%s: drawn on a %s cycle, records the finer %s it holds forecasts of (wxens info "
                "names the cycles missing at it)",
                path,
                describe_step(cycle),
                describe_step(held),
            )
        return
    with transaction(path, f"record cycle {describe_step(cycle)}") as store:
        attrs = zarr.open_group(store, mode="r+").attrs  # another run may have recorded one
        attrs.update(finest_cycle(dict(attrs), {CYCLE_ATTR: cycle / pd.Timedelta(hours=1)}))


def init_cadence(times: pd.DatetimeIndex) -> tuple[pd.Timedelta, pd.DatetimeIndex] | None:
    """The cadence of a forecast store's sorted initial ``times`` read off them (for a store
    that records no cycle: :func:`record_cycle`) and the times missing at it between the
    first and the last (:func:`pipeline.timeaxis.missing_times`): their most common step
    (:func:`pipeline.timeaxis.native_step`), when it is clearly the one they were drawn at:
    every time a whole number of steps from the first, and no more missing than held. None
    for one time, or times picked by hand (a case study's days), whose gaps are no missed
    cycles."""
    times = pd.DatetimeIndex(times)
    step = native_step(times)
    if step <= pd.Timedelta(0) or off_axis(times[:1], times[1:]).size:
        return None
    missing = missing_times(times, step)
    return (step, missing) if missing.size <= times.size else None


def cadence_text(
    inits: pd.DatetimeIndex, recorded: pd.Timedelta | None = None
) -> tuple[str, list[str]]:
    """What ``wxens info`` says of a forecast store's sorted initial times beyond their span:
    their cadence, the ``recorded`` cycle (:func:`record_cycle`) or else the one read off
    them (:func:`init_cadence`; nothing of one time, "no one cadence" of times picked by
    hand), how many are missing at it, and a line naming the missing ones with the
    ``--init`` range that draws them (the others in it, held, are skipped)."""
    cadence = (
        init_cadence(inits) if recorded is None else (recorded, missing_times(inits, recorded))
    )
    if cadence is None:
        return ("" if len(inits) < 2 else " (no one cadence)"), []
    step, missing = cadence
    how = ", recorded;" if recorded is not None else ","
    said = f" (every {describe_step(step)}{how} {len(missing)} missing)"
    if not len(missing):
        return said, []
    line = f"missing    {missing_names(missing)}"
    if calendar_months(step) is None:  # a range's EVERY is a fixed step
        first, last = time_text(missing[0]), time_text(missing[-1])
        line += f"; to draw them: --init {first}/{last}/{step / pd.Timedelta(hours=1):g}h"
    return said, [line]


def repair_valid_time(path: Path, store: Any, existing: xr.Dataset) -> None:
    """Rewrite the ``valid_time`` of the Zarr ``store`` (the forecast store at ``path``,
    ``existing`` opened from it) as init + lead in :data:`SECONDS` where an older wxens
    wrote it in other units. xarray chose them from a store's first batch: one valid time
    at 00 UTC got 'days since', and later cycles' valid times were written in hours under
    those units (valid 06 UTC read as 6 days later), so verification aligned them with
    the wrong truth; the rewrite makes such a store right again, whatever it holds."""
    array = zarr.open_group(store, mode="r+")[VALID_TIME]
    units = array.attrs.get("units")
    if units == SECONDS:
        return
    valid = existing[INIT_TIME].values[:, None] + existing[LEAD_TIME].values[None, :]
    seconds = (valid - np.datetime64("1970-01-01")) // np.timedelta64(1, "s")
    array[...] = seconds.astype(array.dtype)
    array.attrs.update({"units": SECONDS, "calendar": "proleptic_gregorian"})
    log.info("%s: valid_time rewritten in %s (an older wxens wrote it in %s)", path, SECONDS, units)
