"""Analysis stores as read: :class:`AnalysisStore`, :func:`open_store`, the ingest state
recorded in the group attributes, and the statistics a store is finalised with.

A store is complete once :func:`finalise` has written its per-variable (per-level)
statistics and missing times into the state; :func:`open_store` reads its last complete
commit (refusing a store never completed). Writing a store is :mod:`pipeline.store`'s.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr
import zarr
from zarr.abc.store import Store

from pipeline.errors import (
    StoreError,
    refuse_dangling_link,
    shell_word,
    time_text,
)
from pipeline.running_statistics import RunningStatistics, statistics_from_attrs, undefined_as_null
from pipeline.schema import TIME, VARIABLES
from pipeline.timeaxis import missing_text, missing_times
from pipeline.transaction import (
    commits,
    has_root_group,
    is_repository,
    open_snapshot,
    reader,
    transaction,
)

log = logging.getLogger(__name__)

STATE_ATTR = "wxens_ingest"
#: The key of the ingest state naming the store (made when it is created): an ingest that
#: finds another at its path mid-way (replaced by an ``--overwrite``) stops.
STORE_ID = "id"
#: Commits a reader looks back through for the last complete one (an ingest appending
#: commits once, then once a block of about 128 MB, :mod:`pipeline.ingest_blocks`).
LAST_COMPLETE_WITHIN = 1000
#: Size of one block read when computing statistics over a whole store (bounds memory).
STATS_CHUNK_BYTES = 32 * 2**20
#: Lines of a store's ``history`` kept: its creation and the latest ones. Each append adds
#: two (the input, then the finalisation); kept whole, a store ingested every hour grew its
#: root attributes, read by every open, by 0.5 kB an append (about 4 MB a year).
HISTORY_LINES = 64
_LEFT_OUT = " earlier line(s) left out"


@dataclass(frozen=True)
class AnalysisStore:
    """An opened, complete analysis store.

    ``dataset`` is lazy (dask), dims ``time, [level], latitude, longitude``;
    ``statistics`` holds the same variable names with dims ``(statistic[, level])``: over
    time and every grid point, unweighted (the training normalises with them), not area
    means (``wxens info`` weighs its mean and std by cos latitude).
    """

    path: Path
    dataset: xr.Dataset
    statistics: xr.Dataset
    native_step: pd.Timedelta
    missing_times: tuple[pd.Timestamp, ...]


def open_store(path: str | Path) -> AnalysisStore:
    """Open a complete analysis store lazily, with its statistics (its last commit)."""
    path = Path(path)
    snapshot = _snapshot(path)
    state = _state_in(snapshot, path)  # the state and the data of one commit
    if not state["complete"]:
        snapshot, state = _last_complete(path, state)
    ds = open_snapshot(snapshot)
    return AnalysisStore(
        path=path,
        dataset=ds,
        statistics=statistics_from_attrs(state["statistics"]),
        native_step=pd.Timedelta(state["native_step"]),
        missing_times=tuple(pd.Timestamp(t) for t in state["missing_times"]),
    )


def last_complete_commit(path: str | Path) -> tuple[Store | str, dict, datetime] | None:
    """The newest commit of the store at ``path`` whose ingest state is complete, among its
    last :data:`LAST_COMPLETE_WITHIN`: its snapshot, state and time; None if there is none
    (a store whose first ingest has not finished, a plain Zarr store)."""
    for snapshot_id, _, written_at in commits(path, limit=LAST_COMPLETE_WITHIN):
        snapshot = reader(path, snapshot_id)
        group = zarr.open_group(snapshot, mode="r") if has_root_group(snapshot) else None
        state = group.attrs.get(STATE_ATTR, {}) if group is not None else {}
        if state.get("complete"):
            return snapshot, state, written_at
    return None


def _last_complete(path: Path, tip: dict) -> tuple[Store | str, dict]:
    """The last complete commit of a store whose last one is not (an ingest appending to
    it now, or one interrupted), and its state: a reader goes on with the analyses it had
    (a scheduled forecast beside an ingest of the next analyses), told so. StoreError if
    there is none (the store's first ingest has not finished)."""
    found, unfinished = last_complete_commit(path), unfinished_ingest(tip)
    if found is None:
        raise StoreError(f"{path}: the store is incomplete ({unfinished}); nothing to read yet")
    log.warning(
        "%s: its last ingest has not finished (%s); reading the store as it was before it, "
        "%d times", path, unfinished, found[1]["n_times"],
    )  # fmt: skip
    return found[0], found[1]


def unfinished_ingest(tip: dict) -> str:
    """How far a store's unfinished last ingest got (``tip``: its last commit's state), and
    the fix: the words of the readers' warning and of ``wxens info``."""
    return (
        f"{sum(j - i for i, j in tip['written'])} of {tip['n_times']} times written: an "
        "ingest is writing it now or was interrupted; if none is running, rerun it"
    )


def readers_snapshot(path: str | Path) -> Store | str | None:
    """What :func:`open_store` reads of a store whose latest ingest has not finished (with
    its warning); None where readers read the last commit (a complete store, any other)."""
    try:
        state = read_state(path)
    except StoreError:
        return None
    return None if state["complete"] else _last_complete(Path(path), state)[0]


def aside_path(path: Path) -> Path:
    """Where ``--overwrite`` builds the store that replaces the one at ``path``."""
    return path.with_name(path.name + ".ingest-tmp")


def replaced_path(path: Path) -> Path:
    """Where the store ``--overwrite`` replaced at ``path`` is put until it is deleted."""
    return path.with_name(path.name + ".replaced-tmp")


def stranded_replacement(path: Path) -> Path | None:
    """The complete store an ``--overwrite`` built beside ``path`` and was killed before
    swapping in (nothing at ``path``, :mod:`pipeline.store_swap`); None if there is none."""
    aside = aside_path(path)
    if path.exists() or path.is_symlink() or not is_repository(aside):
        return None
    try:
        return aside if read_state(aside)["complete"] else None
    except (StoreError, KeyError):
        return None


def refuse_stranded_replacement(path: Path) -> None:
    """StoreError naming the store an interrupted ``--overwrite`` left beside ``path`` (and
    nothing at ``path``), with the fix: not "no such store", which would start another."""
    aside = stranded_replacement(path)
    if aside is not None:
        raise StoreError(
            f"{path}: no store there, but {aside} beside it holds the complete store that an "
            "interrupted `wxens ingest --overwrite` built to replace it; any `wxens ingest` "
            f"into {shell_word(path)} swaps it in (or, with no ingest running, "
            f"`mv {shell_word(aside)} {shell_word(path)}`)"
        )


def _snapshot(path: Path) -> Store | str:
    refuse_dangling_link(path)
    refuse_stranded_replacement(path)
    if not path.exists():
        raise StoreError(
            f"{path}: no such store; create it with `wxens ingest SOURCE --store "
            f"{shell_word(path)}`"
        )
    if path.is_file():  # a --truth of the analyses' own file, say
        raise StoreError(
            f"{path}: not a Zarr store but a file; if it holds analyses (GRIB, NetCDF), "
            f"ingest it into a store first: `wxens ingest {shell_word(path)} --store STORE.zarr`"
        )
    try:
        return reader(path)
    except Exception as err:
        raise StoreError(f"{path}: not a Zarr store ({type(err).__name__}: {err})") from err


def read_state(path: str | Path) -> dict:
    """The ingest state of the store at ``path`` (its last commit); StoreError if none."""
    return _state_in(_snapshot(Path(path)), Path(path))


def _state_in(snapshot: Store | str, path: Path) -> dict:
    if not isinstance(snapshot, str) and not has_root_group(snapshot):
        raise StoreError(
            f"{path}: an empty store (its creation was interrupted before anything was "
            "committed); rerun the command that writes it"
        )
    try:
        attrs = zarr.open_group(snapshot, mode="r").attrs.asdict()
    except Exception as err:
        raise StoreError(f"{path}: not a Zarr store ({type(err).__name__}: {err})") from err
    if STATE_ATTR not in attrs:
        raise StoreError(
            f"{path}: a Zarr store, but not a wxens analysis store; if it holds analyses "
            f"(WeatherBench 2's, say), ingest it into one first: "
            f"`wxens ingest {shell_word(path)} --store STORE.zarr`"
        )
    return attrs[STATE_ATTR]


def warn_dropped_times(path: Path, times: pd.DatetimeIndex) -> None:
    """Warn when the analysis store at ``path``, about to be replaced by one of ``times``,
    holds times they lack: a replacement is built from its inputs alone."""
    if not is_repository(path):
        return
    held = pd.DatetimeIndex(open_snapshot(reader(path))[TIME].values)
    dropped = held.difference(times)
    if dropped.size:
        log.warning(
            "%s: the replacement drops %d of the %d time(s) it held (%s to %s): it is built "
            "from the inputs alone",
            path, dropped.size, held.size, time_text(dropped.min()), time_text(dropped.max()),
        )  # fmt: skip


def written_times(path: Path) -> pd.DatetimeIndex:
    """The times the analysis store at ``path`` holds written (its last commit): none where
    there is no such store yet (the ingest that finds one checks it). One opening reads the
    times and the ingest state (in its attrs): each ingest reads them."""
    if not is_repository(path):
        return pd.DatetimeIndex([])
    try:
        ds = open_snapshot(reader(path), chunks=None)
    except FileNotFoundError:  # nothing committed yet (zarr's GroupNotFoundError)
        return pd.DatetimeIndex([])
    state = ds.attrs.get(STATE_ATTR)
    if state is None:
        return pd.DatetimeIndex([])
    times = pd.DatetimeIndex(ds[TIME].values)
    written = np.zeros(times.size, bool)
    for i, j in state["written"]:
        written[i:j] = True
    return times[written]


def update_state(store: Store, **changes: object) -> dict:
    """Change entries of the ingest state in a transaction's ``store``; the new state."""
    group = zarr.open_group(store, mode="r+")
    state = {**group.attrs[STATE_ATTR], **changes}
    group.attrs[STATE_ATTR] = state
    return state


def bytes_per_time(da: xr.DataArray) -> int:
    """Bytes of one time step of ``da``."""
    return da.dtype.itemsize * int(np.prod([n for d, n in da.sizes.items() if d != TIME]))


def times_per_block(ds: xr.Dataset, store: Store | str, size: int) -> int:
    """Whole time chunks of ``store`` making ~``size`` bytes of ``ds`` (at least one);
    whole dask chunks of ``ds`` too (a source's own chunks) when they are regular and a
    common multiple fits in ``size``, so that no source chunk is read for two blocks."""
    array = zarr.open_group(store, mode="r")[str(next(iter(ds.data_vars)))]
    steps = array.chunks[array.metadata.dimension_names.index(TIME)]
    per_time = sum(bytes_per_time(da) for da in ds.data_vars.values())
    source = {da.chunks[da.dims.index(TIME)] for da in ds.data_vars.values() if da.chunks}
    if len(source) == 1 and len(set((chunks := source.pop())[:-1])) <= 1:
        aligned = math.lcm(steps, chunks[0])
        if aligned * per_time <= size:
            steps = aligned
    return steps * max(1, size // max(per_time * steps, 1))


def finalise(path: Path, running: RunningStatistics | None = None) -> bool:
    """Compute statistics and missing times, then mark the store complete: one
    transaction, holding the store's lock while the statistics of its last commit are
    computed, so no other writer changes the data they describe. A no-op when another
    ingest finalised the same times already. Whether the store is complete: not while
    times of it are unwritten (another ingest writing them, or one interrupted).

    ``running``: the statistics accumulated while every time of the store was written
    (used when the store still holds those times); else one pass over the store
    (:func:`statistics_pass`). Their sums are kept in the state, for the next append.
    """
    with transaction(path, "finalise: statistics and missing times") as store:
        group = zarr.open_group(store, mode="r+")
        state = group.attrs[STATE_ATTR]
        if state["complete"]:
            return True
        if state["written"] != [[0, state["n_times"]]]:
            unwritten = state["n_times"] - sum(j - i for i, j in state["written"])
            log.warning(
                "%s: %d time(s) are not written yet (another ingest is writing them, or one "
                "was interrupted: rerun it); statistics wait until every time is written",
                path,
                unwritten,
            )
            return False
        if running is None or running.n_times != state["n_times"]:
            running = statistics_pass(reader(path))  # the transaction's tip: the lock is held
        times, step = running.times, running.step
        missing = missing_times(times, step)
        if missing.size:
            log.warning("%s: %s", path, missing_text(missing, step))
        group.attrs["history"] = with_history(
            group.attrs.get("history", ""),
            f"{datetime.now(UTC):%Y-%m-%dT%H:%M:%SZ} finalised: {len(times)} times",
        )
        update_state(
            store,
            complete=True,
            n_times=len(times),
            native_step=str(step),
            missing_times=[str(t) for t in missing],
            statistics=undefined_as_null(running.result()),
            running_sums=running.sums(),
        )
    return True


def with_history(history: str, line: str) -> str:
    """``history`` with ``line`` added, bounded to :data:`HISTORY_LINES`: the first line
    (the creation) stays, then a count of the lines left out, then the latest ones."""
    lines = [*filter(None, history.splitlines()), line]
    if len(lines) <= HISTORY_LINES:
        return "\n".join(lines)
    first, rest, left_out = lines[0], lines[1:], 0
    if rest[0].startswith("... ") and rest[0].endswith(_LEFT_OUT):
        left_out, rest = int(rest[0].split()[1]), rest[1:]
    keep = max(HISTORY_LINES - 2, 1)
    left_out += max(len(rest) - keep, 0)
    return "\n".join([first, f"... {left_out}{_LEFT_OUT}", *rest[-keep:]])


def statistics_pass(store: Store | str) -> RunningStatistics:
    """The statistics of every time of ``store``, read in blocks of whole time chunks of
    about :data:`STATS_CHUNK_BYTES` (bounding the memory), in time order."""
    plain = xr.open_zarr(store, consolidated=False, chunks=None)
    running = RunningStatistics(plain, pd.DatetimeIndex(plain[TIME].values))
    steps = times_per_block(plain, store, STATS_CHUNK_BYTES)
    for start in range(0, running.n_times, steps):
        running.add(plain.isel({TIME: slice(start, start + steps)}).load(), start)
    return running


def warn_implausible(store: AnalysisStore) -> AnalysisStore:
    """``store``, after a warning for each variable whose values leave its physical bounds
    (:data:`pipeline.schema.VARIABLES`; t2m of 554 K is a K field labelled degC, 0 K a
    zeroed region): ingested as given, but a sign of wrong units or a damaged file."""
    stats = store.statistics
    for name in stats.data_vars:
        spec = VARIABLES.get(str(name))
        if spec is None or (spec.lower_bound is None and spec.upper_bound is None):
            continue
        low, high = (float(stats[name].sel(statistic=s).min()) for s in ("min", "max"))
        below = spec.lower_bound is not None and low < spec.lower_bound
        above = spec.upper_bound is not None and high > spec.upper_bound
        if below or above:
            log.warning(
                "%s: %s ranges %g..%g %s, beyond its physical bounds %s..%s: are its units "
                "right (a field in K labelled degC), or is part of the file damaged?",
                store.path, name, low, high, spec.units,
                "" if spec.lower_bound is None else f"{spec.lower_bound:g}",
                "" if spec.upper_bound is None else f"{spec.upper_bound:g}",
            )  # fmt: skip
    return store
