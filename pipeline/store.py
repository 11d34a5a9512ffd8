"""Analysis stores written: canonical Zarr v3 stores ingested resumably.

Life of a store: :func:`ingest` creates it from a template of the canonical dataset
(metadata and coordinates only), writes the data by region in blocks of whole time
steps (:mod:`pipeline.ingest_blocks`), records each finished block in the group
attributes, and finalises: per-variable (per-level) statistics (folded in from the
blocks as they are read, onto the sums the store's state keeps, when this run writes
every time after those; else one pass over the store), the missing times,
``complete = True``. An interrupted ingest leaves a store that reads as incomplete; the
same command resumes it and writes exactly the bytes an uninterrupted run would. A
repeated ingest is a no-op; later times append. :func:`open_store` reads a store's last
complete commit. Reading a store and its statistics is :mod:`pipeline.analysis_store`'s
part (re-exported here).
"""

from __future__ import annotations

import logging
import shutil
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr
import zarr
from zarr.abc.store import Store
from zarr.codecs import ZstdCodec

from pipeline.analysis_store import (
    STATE_ATTR,
    STORE_ID,
    AnalysisStore,
    aside_path,
    bytes_per_time,
    finalise,
    open_store,
    read_state,
    update_state,
    warn_dropped_times,
    warn_implausible,
    with_history,
    written_times,
)
from pipeline.canonical import checked_period, open_canonical, open_checked
from pipeline.chunking import MAX_CHUNK_BYTES, capped_chunks
from pipeline.disk_space import warn_if_short_of_room
from pipeline.duplicate_times import store_holds
from pipeline.errors import InputError, StoreError, time_text
from pipeline.grid import describe_grid, same_points
from pipeline.ingest_blocks import write_blocks
from pipeline.ingest_report import log_kept_and_resumed, refuse_only_late, warn_partly_late
from pipeline.ingest_turns import Turn, announced
from pipeline.resent import warn_resent_differences
from pipeline.running_statistics import RunningStatistics
from pipeline.schema import HORIZONTAL, LEVEL, SCHEMA_VERSION, TIME
from pipeline.sources import Source
from pipeline.store_swap import finish_interrupted_swap, swap_in
from pipeline.store_target import check_replaceable
from pipeline.timeaxis import axis_step, check_time_units, describe_step, late_times, off_axis
from pipeline.transaction import collect_garbage, has_root_group, lock_path, locked, transaction

__all__ = ["AnalysisStore", "held_times", "ingest", "open_canonical", "open_store", "read_state"]

log = logging.getLogger(__name__)

#: Chunks hold the whole grid and all levels of one time step, split along level (then the
#: grid) when larger than MAX_CHUNK_BYTES (:func:`pipeline.chunking.capped_chunks`); time
#: steps smaller than MIN_CHUNK_BYTES (a regional surface field) are grouped until a chunk
#: reaches it, since thousands of tiny chunks cost more in per-object overhead than their data.
MIN_CHUNK_BYTES = 2**20
#: The chunks' compressor: Zstandard level 1 compresses the shipped ERA5 sample to 0.63 of
#: its size (0.60 at Zarr's default level 3) about three times faster; it bounds ingest.
COMPRESSOR = ZstdCodec(level=1)
#: The time axis in whole seconds, whatever times come later: xarray's own choice fits the
#: first times only (days for one time at midnight, or for mid-month stamps at noon), and it
#: writes appended times that need finer units in those under the old name: a wrong axis.
TIME_ENCODING = {"units": "seconds since 1970-01-01", "dtype": "int64"}
#: Times per chunk of the time coordinate (64 KiB): appends fill a chunk, rather than each
#: ingest adding one (xarray chunks a coordinate whole, so a store created with one time
#: gained a chunk per appended time, and every open read them all).
TIME_COORDINATE_CHUNK = 8192


def ingest(
    sources: str | Path | Source | Sequence[str | Path | Source],
    store: str | Path,
    *,
    variables: Sequence[str] | None = None,
    time: slice | None = None,
    overwrite: bool = False,
    allow_nan: bool = False,
    progress: bool = True,
    held: pd.DatetimeIndex | None = None,
) -> AnalysisStore | None:
    """Ingest ``sources`` into the analysis store at ``store``; return it opened, or None
    when its times are written but others of the store are not yet (another ingest is
    writing them, or one was interrupted: logged), so it is not finalised.

    sources:   paths, globs, URLs, ``"synthetic:..."`` specs or :class:`Source` objects.
    variables: canonical names to keep (default: every known variable).
    time:      a ``slice`` of times (label-based, inclusive).
    overwrite: replace a store of another grid or other variables (built aside, then
               swapped in, so the old one survives a failure). Only a wxens analysis
               store is ever replaced: anything else at ``store`` (a regular file, another
               folder, a forecast or foreign Zarr store) is an InputError, and nothing is
               deleted.
    allow_nan: accept NaNs (always counted and reported).
    held:      the store's :func:`held_times`, read by a caller that opened the sources
               first (an :class:`AdjustedSource` keeps its open); None: read here, once.
    """
    # checked once, here, before the store is touched; a zoned end read in UTC, as resent's
    path, time = Path(store), checked_period(time)
    finish_interrupted_swap(path)  # a kill between an --overwrite's two renames
    check_replaceable(path, overwrite)  # before anything is written, even a lock file
    if overwrite:  # a second writer waits for the whole replacement, never sees it halfway
        with locked(path):
            check_replaceable(path, overwrite)  # again: another process may have been first
            ds, origin = open_checked(sources, variables, time, allow_nan=allow_nan)
            _replace(ds, origin, path, allow_nan, progress)
        return warn_implausible(open_store(path))
    held = held_times(path) if held is None else held
    with store_holds(held) as resent:  # times it holds may come twice: no copy is written
        ds, origin = open_checked(sources, variables, time, allow_nan=allow_nan)
    warn_resent_differences(path, resent, time)  # a copy with other values: said once
    with announced(path, pd.DatetimeIndex(ds[TIME].values).difference(held)) as turn:
        if not _ingest_into(ds, origin, path, allow_nan, progress, turn):
            return None  # not an error of this ingest: the other one finalises the store
    return warn_implausible(open_store(path))


def held_times(path: str | Path, overwrite: bool = False) -> pd.DatetimeIndex:
    """The times the inputs of an ingest into ``path`` may give twice (``store_holds`` around
    their opening): those the store holds written, a stranded ``--overwrite`` swapped in
    first as :func:`ingest` does; none for ``overwrite``, built from its inputs alone."""
    if overwrite:
        return pd.DatetimeIndex([])
    finish_interrupted_swap(Path(path))
    return written_times(Path(path))


def _replace(ds: xr.Dataset, origin: str, path: Path, allow_nan: bool, progress: bool) -> None:
    """Build the store aside, then swap it in for ``path`` (the caller holds its lock): a
    failure before leaves the old one in place; a reader finds the old or the new one."""
    aside = aside_path(path)
    shutil.rmtree(aside, ignore_errors=True)
    try:
        _ingest_into(ds, origin, aside, allow_nan, progress, Turn(aside, pd.DatetimeIndex([])))
    except BaseException:
        shutil.rmtree(aside, ignore_errors=True)
        raise
    finally:
        lock_path(aside).unlink(missing_ok=True)
    warn_dropped_times(path, pd.DatetimeIndex(ds[TIME].values))
    swap_in(aside, path)  # one atomic exchange where the system can


def _ingest_into(
    ds: xr.Dataset, origin: str, path: Path, allow_nan: bool, progress: bool, turn: Turn
) -> bool:
    """Prepare (after the earlier ingests ``turn`` waits for), write, finalise; whether the
    store is complete after. The statistics are folded in from the blocks as they are
    written (no pass over the store) when this run writes every time of a store it creates
    or every time it appends to a complete store."""
    while (prepared := _prepare(ds, origin, path, turn)) is None:
        turn.wait()  # the lock released: an earlier period's ingest appends first
    turn.done()  # its times are on the axis: a later ingest need not wait for it
    created, old_times, todo, store_id, running, late = prepared
    warn_if_short_of_room(ds, len(todo), path)  # the times it writes: no second open
    if todo:
        try:
            every_block = write_blocks(
                ds, todo, path, allow_nan, progress, origin, running, store_id
            )
        except InputError:
            new_times = old_times + sum(i >= old_times for i, _ in todo)
            _roll_back(path, created, old_times, new_times)
            raise
        running = running if every_block else None
    if late.size:  # after the writes: the count of those written is then true
        warn_partly_late(path, late, pd.DatetimeIndex(ds[TIME].values), len(todo))
    return finalise(path, running)


def _prepare(
    ds: xr.Dataset, origin: str, path: Path, turn: Turn
) -> (
    tuple[bool, int, list[tuple[int, int]], str | None, RunningStatistics | None, pd.DatetimeIndex]
    | None
):
    """One transaction: create the store or check the input fits it, grow its time axis by
    the new times (their data deferred), and plan the writes; None, nothing written, where
    another ingest is to append earlier times first (:meth:`Turn.ahead`).

    Returns whether the store was created, its number of times before, the (store
    index, source position) pairs still to write, the store's identity (None for a
    store written before stores had one), and the statistics to fold the writes into
    (None where the writes are not all of the store's times after those it has summed),
    and the input's late times (in a gap of the store: they stay missing). An input of
    late times only is a StoreError. Creation and growth commit together
    with the state, so the store never reads as complete with unwritten times.
    """
    source_times = pd.DatetimeIndex(ds[TIME].values)
    with transaction(path, f"ingest from {origin}: create or grow the time axis") as store:
        created = not has_root_group(store)
        existing = None if created else xr.open_zarr(store, consolidated=False, chunks=None)
        if turn.ahead(pd.DatetimeIndex([] if created else existing[TIME].values)):
            return None
        if created:  # every time is to write, in the source's order
            store_id, running = _create(ds, origin, store), RunningStatistics(ds, source_times)
            todo = list(enumerate(range(source_times.size)))
            return True, 0, todo, store_id, running, source_times[:0]
        _check_compatible(existing, ds, origin, path)
        if not existing.attrs[STATE_ATTR]["complete"]:
            collect_garbage(path)  # what an interrupted writer left unreferenced
        store_times = pd.DatetimeIndex(existing[TIME].values)
        old_times, running = store_times.size, None
        unseen = source_times[~source_times.isin(store_times)]
        late = late_times(store_times, unseen)
        new = unseen.difference(late)
        if new.size:
            if store_times.size and new.min() <= store_times.max():
                raise StoreError(
                    f"{path}: the input has {new.size} time(s) inside or before the store's "
                    f"period ({time_text(store_times.min())}..{time_text(store_times.max())}), "
                    f"first {time_text(new.min())}; a "
                    "store only grows at its end: ingest into a new store= (--store), or "
                    "rebuild it with overwrite=True (--overwrite) with inputs of every time it is "
                    "to hold"
                )
            _check_on_axis(store_times, new, origin, path)
            check_time_units(existing, new, path)
            _append_template(ds.sel({TIME: new}), origin, store)
            store_times = store_times.append(new)
            if existing.attrs[STATE_ATTR]["complete"]:  # then only the new times are written
                sums = existing.attrs[STATE_ATTR].get("running_sums")
                running = RunningStatistics.resumed(existing, store_times, sums)
            update_state(store, n_times=store_times.size, complete=False)
        state = zarr.open_group(store, mode="r").attrs[STATE_ATTR]
    written = np.zeros(store_times.size, bool)
    for i, j in state["written"]:
        written[i:j] = True
    requested = store_times.isin(source_times)
    todo = np.flatnonzero(requested & ~written)
    if late.size == source_times.size:  # none it holds or writes: the ingest did nothing
        refuse_only_late(path, late, store_times[-1])
    log_kept_and_resumed(path, int((requested & written).sum()), todo, old_times, source_times)
    if todo.size == 0 and state["complete"] and not late.size:  # late ones are warned of
        log.info("%s: already holds every requested time; nothing to do", path)
    positions = source_times.get_indexer(store_times[todo])
    todo_pairs = list(zip(todo.tolist(), positions.tolist(), strict=True))
    return created, old_times, todo_pairs, state.get(STORE_ID), running, late


def _create(ds: xr.Dataset, origin: str, store: Store) -> str:
    """Write the store's template (data deferred) and its state; the store's new identity."""
    store_id = uuid.uuid4().hex
    template = ds.copy()
    template.attrs = {
        "schema_version": SCHEMA_VERSION,
        "source": origin,
        "history": f"{datetime.now(UTC):%Y-%m-%dT%H:%M:%SZ} created by wxens ingest from {origin}",
        "Conventions": "CF-1.8",
        STATE_ATTR: {
            "complete": False,
            "n_times": ds.sizes[TIME],
            "written": [],
            "nan_counts": {},
            STORE_ID: store_id,
        },
    }
    steps = time_chunk(ds)
    encoding = {
        name: {"chunks": chunk_shape(da, steps), "compressors": (COMPRESSOR,)}
        for name, da in ds.data_vars.items()
    }
    encoding[TIME] = {**TIME_ENCODING, "chunks": (TIME_COORDINATE_CHUNK,)}
    template.to_zarr(
        store,
        mode="w-",
        compute=False,
        zarr_format=3,
        consolidated=False,
        safe_chunks=False,  # data are written by region in whole chunks, not through dask
        encoding=encoding,
    )
    return store_id


def time_chunk(ds: xr.Dataset) -> int:
    """Time steps per chunk: one, or enough for the smallest variable to reach
    :data:`MIN_CHUNK_BYTES` while the largest stays under :data:`MAX_CHUNK_BYTES`."""
    sizes = [bytes_per_time(da) for da in ds.data_vars.values()]
    steps = max(1, MIN_CHUNK_BYTES // max(min(sizes), 1))
    return int(min(steps, max(1, MAX_CHUNK_BYTES // max(sizes))))


def chunk_shape(da: xr.DataArray, steps: int) -> tuple[int, ...]:
    """``steps`` time steps, all levels and the whole grid; split along level (as many levels
    as fit), then the grid, if too large (:func:`pipeline.chunking.capped_chunks`)."""
    return capped_chunks(da, {TIME: steps})


def _check_compatible(existing: xr.Dataset, ds: xr.Dataset, origin: str, path: Path) -> None:
    """Refuse an input of other variables, levels or grid points than the store's (points
    within :data:`~pipeline.schema.GRID_TOLERANCE_DEG` are one: a grid in float32 and in
    float64 is one grid, and the store keeps its own, :func:`_append_template`)."""

    def describe(d: xr.Dataset) -> str:
        levels = f", levels {d[LEVEL].values.tolist()}" if LEVEL in d.dims else ""
        names = sorted(map(str, d.data_vars))
        return f"variables {names} on the {describe_grid(d, HORIZONTAL)}{levels}"

    same = (
        set(existing.data_vars) == set(ds.data_vars)
        and all(same_points(existing[dim].values, ds[dim].values) is not None for dim in HORIZONTAL)
        and existing.sizes.get(LEVEL) == ds.sizes.get(LEVEL)
        and (LEVEL not in ds.dims or np.allclose(existing[LEVEL].values, ds[LEVEL].values))
    )
    if not same:
        raise StoreError(
            f"{path}: the store holds {describe(existing)}, but {origin} gives {describe(ds)}; "
            "ingest into a new store= (--store), or pass overwrite=True (--overwrite) to replace "
            "this one"
        )


def _check_on_axis(
    store_times: pd.DatetimeIndex, new: pd.DatetimeIndex, origin: str, path: Path
) -> None:
    """Refuse appended times off the store's axis (its last time plus whole native steps:
    another step, or another hour of the day); a gap of whole steps is only missing times."""
    off = off_axis(store_times, new)
    if off.size:
        step = describe_step(axis_step(store_times, new))
        raise StoreError(
            f"{path}: the store holds times every {step} up to {time_text(store_times[-1])}, but "
            f"{off.size} of the {new.size} new time(s) of {origin} are not a whole number of "
            f"steps later, first {time_text(off[0])}; a store has one time step: ingest into a new "
            "store= (--store), or select or resample the input to the store's step"
        )


def _append_template(target: xr.Dataset, origin: str, store: Store) -> None:
    """Grow the store's time axis by ``target``'s times (data deferred: written by region),
    ``origin`` added to the history. The coordinates without a time dim are left out:
    xarray writes again every variable of an append without the append dim, and the input's
    grid (50.1 where the store holds the float32 50.09999847) would replace the store's."""
    template = target.drop_vars([n for n, c in target.coords.items() if TIME not in c.dims])
    template.attrs = zarr.open_group(store, mode="r").attrs.asdict()  # kept, not replaced
    line = f"{datetime.now(UTC):%Y-%m-%dT%H:%M:%SZ} extended by wxens ingest from {origin}"
    history = template.attrs.get("history", "")  # older stores may lack it
    template.attrs["history"] = with_history(history, line)
    template.to_zarr(store, append_dim=TIME, compute=False, consolidated=False, safe_chunks=False)


def _roll_back(path: Path, created: bool, old_times: int, new_times: int) -> None:
    """Undo a refused ingest: remove a store it created, or shrink an appended one back.

    Shrinks only when no other ingest appended after this one (then its times stay,
    unwritten, and the store reads incomplete until they are written)."""
    if created:
        with locked(path):
            shutil.rmtree(path, ignore_errors=True)
        return
    with transaction(path, f"roll back a refused ingest to {old_times} times") as store:
        group = zarr.open_group(store, mode="r+")
        state = group.attrs[STATE_ATTR]
        if state["n_times"] != new_times:
            log.warning("%s: another ingest appended after this one; nothing rolled back", path)
            return
        for _, array in group.arrays():
            dims = array.metadata.dimension_names or ()
            if TIME in dims:
                shape = list(array.shape)
                shape[dims.index(TIME)] = old_times
                array.resize(tuple(shape))
        kept = [[i, min(j, old_times)] for i, j in state["written"] if i < old_times]
        complete = bool(state.get("statistics")) and kept == [[0, old_times]]
        update_state(store, n_times=old_times, written=kept, complete=complete)
