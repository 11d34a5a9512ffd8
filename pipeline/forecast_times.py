"""The time axes of a forecast store: how a batch's initial times are named in its commit
message and log (:func:`span`), the cadence they were drawn at and the cycles missing
between them (:func:`init_cadence`), and its ``valid_time`` in whole seconds, as every store
since this module writes it (:func:`repair_valid_time`, for a store an older wxens made).
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

log = logging.getLogger(__name__)

SECONDS = "seconds since 1970-01-01"
"""The units of a forecast store's ``init_time`` and ``valid_time``."""
INIT_CHUNK = 4096
"""Initial times per chunk of a forecast store's ``init_time``, ``complete`` and
``valid_time``: a store written a cycle at a time fills a chunk, rather than gaining three
objects a cycle that every open reads (as the analysis store's time coordinate)."""


def span(times: pd.DatetimeIndex) -> str:
    """``times`` in a few words: the one, or how many from the first to the last."""
    if times.size <= 1:
        return f"initial time {time_text(times[0])}" if times.size else "no initial time"
    return f"{times.size} initial times {time_text(times.min())}..{time_text(times.max())}"


def init_cadence(times: pd.DatetimeIndex) -> tuple[pd.Timedelta, pd.DatetimeIndex] | None:
    """The cadence of a forecast store's sorted initial ``times`` (a store records none: a
    run's cycle or ``--init`` range is not kept) and the times missing at it between the
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


def cadence_text(inits: pd.DatetimeIndex) -> tuple[str, list[str]]:
    """What ``wxens info`` says of a forecast store's sorted initial times beyond their span:
    their cadence and how many are missing at it (:func:`init_cadence`; nothing of one time,
    "no one cadence" of times picked by hand), and a line naming the missing ones with the
    ``--init`` range that draws them (the others in it, held, are skipped)."""
    cadence = init_cadence(inits)
    if cadence is None:
        return ("" if len(inits) < 2 else " (no one cadence)"), []
    step, missing = cadence
    said = f" (every {describe_step(step)}, {len(missing)} missing)"
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
