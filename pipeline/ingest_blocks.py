"""Writing an analysis store's data block by block: the pipeline of :func:`write_blocks`.

A block is a run of whole time chunks of the store (about :data:`BLOCK_BYTES`, aligned
to the source's own dask chunks where they allow). A reader thread decodes the next block
while this one is compressed, folded into the store's running statistics and committed
as one transaction with its record in the store's state, so a kill loses at most the
blocks in hand and a rerun skips what is recorded. :mod:`pipeline.store` prepares the
store before and finalises it after.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import dask
import dask.array
import numpy as np
import pandas as pd
import xarray as xr
import zarr
from zarr.abc.store import Store

from pipeline.analysis_store import STATE_ATTR, STORE_ID, times_per_block, update_state
from pipeline.errors import InputError, StoreError, time_text, times_text
from pipeline.progress import tqdm
from pipeline.running_statistics import RunningStatistics
from pipeline.schema import TIME
from pipeline.transaction import reader, transaction

#: Target size of one written block (whole time chunks); bounds ingest memory.
BLOCK_BYTES = 128 * 2**20


def _blocks(todo: list[tuple[int, int]], per_block: int) -> Iterator[list[tuple[int, int]]]:
    """Runs of consecutive store indexes (and source positions) that never cross a
    multiple of ``per_block``, so every block covers whole chunks of the store."""
    run: list[tuple[int, int]] = []
    for item in todo:
        if run and (
            item[0] != run[-1][0] + 1 or item[1] != run[-1][1] + 1 or item[0] % per_block == 0
        ):
            yield run
            run = []
        run.append(item)
    if run:
        yield run


def write_blocks(
    ds: xr.Dataset,
    todo: list[tuple[int, int]],
    path: Path,
    allow_nan: bool,
    progress: bool,
    origin: str,
    running: RunningStatistics | None,
    store_id: str | None,
) -> bool:
    """Read, check and write the source block by block: one transaction (data, the
    written ranges, the NaN counts) per block, so a kill loses at most the blocks in hand.
    A block another ingest wrote meanwhile is left as it is; a store replaced meanwhile
    (another identity than ``store_id``) is a StoreError. Whether this call wrote every
    block.

    Three stages overlap: a reader thread decodes the next block while this one is
    compressed (Zarr's codec threads) and, beside it, folded into ``running`` by a
    statistics thread (its compiled pass releases the GIL); the NaN check waits for that
    pass, inside the transaction, so a refused block is never committed. At most two
    blocks are in memory.
    """
    per_block = times_per_block(ds, reader(path), BLOCK_BYTES)
    blocks = list(_blocks(todo, per_block))
    every_block = True
    read_ahead = ThreadPoolExecutor(1, thread_name_prefix="wxens-ingest-read")
    statistics = ThreadPoolExecutor(1, thread_name_prefix="wxens-ingest-statistics")
    count_nans = running is None  # else the statistics pass counts them
    bar = tqdm(total=len(todo), unit="time", desc=f"ingest {path.name}", disable=not progress)
    try:
        pending: Future = read_ahead.submit(_read_block, ds, blocks[0], count_nans)
        for k, block in enumerate(blocks):
            data, counts = pending.result()
            if k + 1 < len(blocks):
                pending = read_ahead.submit(_read_block, ds, blocks[k + 1], count_nans)
            (i0, _), (i1, _) = block[0], block[-1]
            folded = statistics.submit(running.add, data, i0) if running is not None else None
            if folded is None:
                _refuse_nans(counts, allow_nan, origin, data)
            with transaction(path, f"ingest times {i0}..{i1}") as store:
                state = zarr.open_group(store, mode="r").attrs[STATE_ATTR]
                if state.get(STORE_ID) != store_id:
                    raise StoreError(
                        f"{path} was replaced by another ingest (overwrite=True (--overwrite)) "
                        f"before this one wrote its times {i0}..{i1}; nothing more was written: "
                        "rerun this ingest to add its times to the new store"
                    )
                done = _covers(state["written"], i0, i1 + 1)
                if not done:
                    write_region(data, store, slice(i0, i1 + 1))
                if folded is not None:  # a store this run created: removed if refused
                    counts = folded.result()
                    _refuse_nans(counts, allow_nan, origin, data)
                if done:
                    every_block = False
                else:
                    nan_counts = dict(state["nan_counts"])
                    for name, n in counts.items():
                        nan_counts[name] = nan_counts.get(name, 0) + n
                    written = _merge_ranges([*state["written"], [i0, i1 + 1]])
                    update_state(store, written=written, nan_counts=nan_counts)
            bar.update(len(block))
    finally:
        read_ahead.shutdown(wait=True, cancel_futures=True)
        statistics.shutdown(wait=True, cancel_futures=True)
        bar.close()
    return every_block


def _refuse_nans(counts: dict[str, int], allow_nan: bool, origin: str, data: xr.Dataset) -> None:
    """Refuse a block with NaNs unless ``allow_nan``: a variable NaN everywhere at some
    times (an input without it there, e.g. one file of a glob) is named with those times,
    scattered NaNs with their count."""
    bad = {name: n for name, n in counts.items() if n}
    if not bad or allow_nan:
        return
    for name in bad:
        field = data[name]
        empty = field.isnull().all([d for d in field.dims if d != TIME]).values
        if empty.any():
            times = pd.DatetimeIndex(data[TIME].values[empty])
            raise InputError(
                f"{origin}: {name!r} is missing (NaN everywhere) at {times.size} time(s), "
                f"first {times_text(times[:3])}: an input, or a file of a glob, lacks "
                f"it there; supply those times of {name!r}, or pass allow_nan=True "
                "(--allow-nan) to keep it NaN there"
            )
    first = time_text(data[TIME].values[0])
    raise InputError(
        f"{origin}: {sum(bad.values())} NaN value(s) in {bad} in the block starting "
        f"{first}; repair the input, or pass allow_nan=True (--allow-nan) to keep "
        "them (they are counted in the store's attributes)"
    )


def _read_block(
    ds: xr.Dataset, block: list[tuple[int, int]], count_nans: bool
) -> tuple[xr.Dataset, dict[str, int]]:
    """One block of the source in memory, and its NaN count per variable where
    ``count_nans`` (else empty)."""
    (_, s0), (_, s1) = block[0], block[-1]
    data = load_without_copy(ds.isel({TIME: slice(s0, s1 + 1)}))
    if not count_nans:
        return data, {}
    # a NaN makes the sum NaN: the NaNs are counted only then, one cheap pass otherwise
    counts = {
        str(name): int(np.isnan(da.values).sum()) if np.isnan(da.values.sum()) else 0
        for name, da in data.data_vars.items()
    }
    return data, counts


def load_without_copy(ds: xr.Dataset) -> xr.Dataset:
    """``ds`` in memory, each variable of a single dask chunk taken as its task returns it.

    ``Dataset.load`` copies such a variable once more (dask's ``finalize`` copies a lone
    chunk, lest it alias data held in the graph): a pass over the block into fresh pages,
    about a sixth of the CPU of ingesting a 0.25° field. Ingest only reads a block, so a
    chunk that aliases an array held in the graph (an in-memory source) is safe too."""
    ds = ds.copy()  # shallow: the caller's dataset keeps its lazy variables
    single = {
        name: var.data.to_delayed().item()
        for name, var in ds.variables.items()
        if isinstance(var.data, dask.array.Array) and var.data.npartitions == 1
    }
    (computed,) = dask.compute(single)
    for name, values in computed.items():
        ds[name] = ds[name].copy(data=values)
    return ds.load()


def _covers(ranges: Sequence[Sequence[int]], start: int, stop: int) -> bool:
    return any(i <= start and stop <= j for i, j in ranges)


def write_region(data: xr.Dataset, store: Store, region: slice) -> None:
    """Write in-memory ``data`` (whole time steps) into the store's ``region`` of time.

    Straight into the Zarr arrays the template created (coordinates and encodings are
    already there): one batched write per variable, no per-chunk xarray overhead.
    """
    group = zarr.open_group(store, mode="r+")
    for name, da in data.data_vars.items():
        array = group[str(name)]
        array[region] = da.transpose(*array.metadata.dimension_names).values


def _merge_ranges(ranges: Iterable[Sequence[int]]) -> list[list[int]]:
    merged: list[list[int]] = []
    for i, j in sorted(ranges):
        if merged and i <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], j)
        else:
            merged.append([i, j])
    return merged
