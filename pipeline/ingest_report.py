"""What an ingest says of its input's times besides writing them: those the store holds
written already (a rerun, overlapping inputs), those an interrupted ingest left unwritten
on the axis, and the late ones that stay missing.

A late time falls in a gap of the store (:func:`pipeline.timeaxis.late_times`): another
ingest appended later times first (two ingests of consecutive days started together), or
the analysis came after later ones. A store only grows at its end, so it stays missing. An
ingest whose times are all late is refused: it said its times were written and exited 0,
its rerun said the store held every requested time, and the period stayed missing
unnoticed. One that holds or writes others warns of its late ones after its writes: a
served ingest of a glob reads again the files the store holds, and one late file among
them would fail every run that finds no new file.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.errors import StoreError, time_text

log = logging.getLogger(__name__)

#: What to do about late times, which an ingest into the same store can never add.
LATE_REMEDY = (
    "a store only grows at its end, so they stay missing: rebuild it from itself and this "
    "input, `wxens ingest STORE INPUT --store STORE --overwrite`, or ingest this input into a "
    "new store= (--store)"
)


def refuse_only_late(path: Path, late: pd.DatetimeIndex, last: pd.Timestamp) -> None:
    """StoreError for an ingest into ``path`` whose times are all ``late``: in a gap of a
    store that holds times up to ``last``. Names the first late time and the remedy."""
    raise StoreError(
        f"{path}: none of the input's {late.size} time(s) was written: they fall in a gap of "
        f"the store, first {time_text(late[0])} (it holds times up to {time_text(last)}: "
        f"later times were ingested first); {LATE_REMEDY}"
    )


def warn_partly_late(
    path: Path, late: pd.DatetimeIndex, source_times: pd.DatetimeIndex, written: int
) -> None:
    """Warn, once ``written`` of ``source_times`` are written into ``path``, how many of
    them it holds already and that the ``late`` ones stay missing, naming the first."""
    held = source_times.size - late.size - written
    log.warning(
        "%s: %d of the input's %d time(s) written%s; %d stay missing, in a gap of the store, "
        "first %s; %s",
        path, written, source_times.size, f" ({held} were in the store already)" if held else "",
        late.size, time_text(late[0]), LATE_REMEDY,
    )  # fmt: skip


def log_kept_and_resumed(
    path: Path, kept: int, todo: np.ndarray, old_times: int, source_times: pd.DatetimeIndex
) -> None:
    """Say how many of the input's times the store holds written already (a rerun, or
    overlapping inputs) and how many an interrupted ingest left unwritten on the axis."""
    if kept:
        log.info(
            "%s: %d of the input's %d time(s) are in the store already: kept as written "
            "there (not compared with the input; --overwrite rebuilds from the inputs)",
            path, kept, source_times.size,
        )  # fmt: skip
    resumed = int((todo < old_times).sum())
    if resumed:
        log.info(  # two ingests at once write the same values: either one finishes it
            "%s: writing %d time(s) of the store not yet written (an ingest was interrupted "
            "there, or another one is writing them now)", path, resumed,
        )  # fmt: skip
