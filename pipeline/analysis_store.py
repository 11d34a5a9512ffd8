"""Analysis stores as read: :class:`AnalysisStore`, :func:`open_store`, the ingest state
recorded in the group attributes, and the statistics a store is finalised with.

A store is complete once :func:`finalise` has written its per-variable (per-level)
statistics (mean, std, min, max and the std of the tendency at the native step) and its
missing times into the state; :func:`open_store` refuses a store that is not. Writing a
store is :mod:`pipeline.store`'s part.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import dask
import numpy as np
import pandas as pd
import xarray as xr
import zarr

from pipeline.errors import StoreError
from pipeline.schema import LAT, LEVEL, LON, TIME
from pipeline.timeaxis import missing_times, native_step

log = logging.getLogger(__name__)

STATISTICS = ("mean", "std", "min", "max", "tendency_std")
STATE_ATTR = "wxens_ingest"
#: Size of one dask task when computing statistics (bounds their memory).
STATS_CHUNK_BYTES = 32 * 2**20


@dataclass(frozen=True)
class AnalysisStore:
    """An opened, complete analysis store.

    ``dataset`` is lazy (dask), dims ``time, [level], latitude, longitude``;
    ``statistics`` holds the same variable names with dims ``(statistic[, level])``.
    """

    path: Path
    dataset: xr.Dataset
    statistics: xr.Dataset
    native_step: pd.Timedelta
    missing_times: tuple[pd.Timestamp, ...]


def open_store(path: str | Path) -> AnalysisStore:
    """Open a complete analysis store lazily, with its statistics."""
    path = Path(path)
    state = read_state(path)
    if not state["complete"]:
        written = sum(j - i for i, j in state["written"])
        raise StoreError(
            f"{path}: the store is incomplete ({written} of {state['n_times']} times written; "
            "an ingest was interrupted); rerun the same `wxens ingest` to complete it"
        )
    ds = xr.open_zarr(path, consolidated=False)
    return AnalysisStore(
        path=path,
        dataset=ds,
        statistics=statistics_from_attrs(state["statistics"]),
        native_step=pd.Timedelta(state["native_step"]),
        missing_times=tuple(pd.Timestamp(t) for t in state["missing_times"]),
    )


def read_state(path: Path) -> dict:
    """The ingest state recorded in a store's attributes; StoreError if there is none."""
    if not path.exists():
        raise StoreError(
            f"{path}: no such store; create it with `wxens ingest SOURCE --store {path}`"
        )
    try:
        attrs = zarr.open_group(str(path), mode="r").attrs.asdict()
    except Exception as err:
        raise StoreError(f"{path}: not a Zarr store ({type(err).__name__}: {err})") from err
    if STATE_ATTR not in attrs:
        raise StoreError(f"{path}: a Zarr store, but not a wxens analysis store")
    return attrs[STATE_ATTR]


def update_state(path: Path, **changes: object) -> dict:
    """Change entries of the ingest state of the store at ``path``; the new state."""
    group = zarr.open_group(str(path), mode="r+")
    state = {**group.attrs[STATE_ATTR], **changes}
    group.attrs[STATE_ATTR] = state
    return state


def bytes_per_time(da: xr.DataArray) -> int:
    """Bytes of one time step of ``da``."""
    return da.dtype.itemsize * int(np.prod([n for d, n in da.sizes.items() if d != TIME]))


def times_per_block(ds: xr.Dataset, path: Path, size: int) -> int:
    """Whole time chunks of the store at ``path`` making ~``size`` bytes (at least one)."""
    array = zarr.open_group(str(path), mode="r")[str(next(iter(ds.data_vars)))]
    steps = array.chunks[array.metadata.dimension_names.index(TIME)]
    per_time = sum(bytes_per_time(da) for da in ds.data_vars.values())
    return steps * max(1, size // max(per_time * steps, 1))


def finalise(path: Path, nan_counts: dict[str, int] | None = None) -> None:
    """Compute statistics and missing times with dask, then mark the store complete."""
    ds = xr.open_zarr(path, consolidated=False, chunks=None)
    # tasks of whole store chunks, ~STATS_CHUNK_BYTES each: few enough to keep the dask
    # overhead low, small enough that the reductions in flight stay within memory
    steps = times_per_block(ds, path, STATS_CHUNK_BYTES)
    ds = xr.open_zarr(path, consolidated=False, chunks={TIME: steps})
    times = pd.DatetimeIndex(ds[TIME].values)
    step = native_step(times)
    stats = compute_statistics(ds, step)
    missing = missing_times(times, step)
    if missing.size:
        log.warning("%s: %d missing time(s) at the native step %s", path, missing.size, step)
    group = zarr.open_group(str(path), mode="r+")
    history = group.attrs.get("history", "")
    group.attrs["history"] = (
        f"{history}\n{datetime.now(UTC):%Y-%m-%dT%H:%M:%SZ} finalised: {len(times)} times"
    ).strip()
    update_state(
        path,
        complete=True,
        n_times=len(times),
        native_step=str(step),
        missing_times=[str(t) for t in missing],
        statistics=stats,
        nan_counts=nan_counts if nan_counts is not None else read_state(path)["nan_counts"],
    )


def compute_statistics(ds: xr.Dataset, step: pd.Timedelta) -> dict:
    """mean, std, min, max and the std of the tendency at ``step`` of each variable,
    over time and the grid (per level for upper-air variables), in one dask pass.

    Sums accumulate in float64 chunk by chunk (no float64 copy of the data); the
    tendency uses only pairs of times exactly ``step`` apart, so gaps are skipped.
    """
    dims = [TIME, LAT, LON]
    consecutive = np.flatnonzero(np.diff(ds[TIME].values) == step.to_timedelta64())
    tendency = ds.diff(TIME).isel({TIME: consecutive})
    lazy = {
        "mean": ds.mean(dims, dtype="float64"),
        "std": ds.std(dims, dtype="float64"),
        "min": ds.min(dims),
        "max": ds.max(dims),
        "tendency_std": tendency.std(dims, dtype="float64"),
    }
    (values,) = dask.compute(lazy)
    out: dict[str, dict] = {}
    for name in ds.data_vars:
        entry: dict[str, object] = {
            k: values[k][name].astype("float64").values.tolist() for k in STATISTICS
        }
        if LEVEL in ds[name].dims:
            entry["level"] = ds[LEVEL].values.tolist()
        out[str(name)] = entry
    return out


def statistics_from_attrs(stats: dict) -> xr.Dataset:
    data = {}
    for name, entry in stats.items():
        values = np.array([entry[k] for k in STATISTICS], dtype="float64")
        if "level" in entry:
            data[name] = xr.DataArray(
                values, dims=("statistic", LEVEL), coords={LEVEL: entry["level"]}
            )
        else:
            data[name] = xr.DataArray(values, dims=("statistic",))
    return xr.Dataset(data).assign_coords(statistic=list(STATISTICS))
