"""Plain Zarr v3 copies of transactional stores (``wxens export``), for tools that do not
read Icechunk: WeatherBench 2's, or any ``xr.open_zarr`` without the icechunk package."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

from zarr.abc.store import Store

from pipeline.errors import StoreError
from pipeline.progress import dask_bar
from pipeline.schema import INIT_TIME
from pipeline.transaction import has_root_group, locked, open_snapshot, reader

EXPORT_ATTR = "wxens_export"
"""The root attribute marking a copy :func:`export` wrote: ``{"store": the absolute path
of the store it copies}``, so that an ingest refusing to write it names it as an export."""


def export(
    path: str | Path, out: str | Path, *, progress: bool = True, snapshot: Store | str | None = None
) -> Path:
    """Copy the last commit (or ``snapshot``, another) of the store at ``path`` into a plain
    Zarr v3 store at ``out`` (marked as a copy of it: :data:`EXPORT_ATTR`), chunking and
    encoding kept, a forecast's initial times sorted (as :func:`open_forecast` reads them),
    with consolidated metadata (``xr.open_zarr`` reads it without warning that it is
    missing; a Zarr v3 extension of zarr-python). Written aside and renamed into place under
    ``out``'s lock, so ``out`` is either absent or complete, and a second export to it
    waits, then finds it there. StoreError, before ``out`` is touched, if ``path`` holds
    no store, one with nothing committed yet, or ``out`` lies inside it."""
    out = Path(out)
    snapshot = reader(path) if snapshot is None else snapshot
    if not isinstance(snapshot, str) and not has_root_group(snapshot):
        raise StoreError(
            f"{path}: an empty store (another command is creating it, or its creation was "
            "interrupted before anything was committed); export it once that command ends"
        )
    if out.resolve().is_relative_to(Path(path).resolve()):
        raise StoreError(f"{out} is inside the store {path}; export to a path outside it")
    with locked(out):
        if out.exists():
            raise StoreError(f"{out} exists; export to a new path")
        ds = open_snapshot(snapshot)
        ds.attrs[EXPORT_ATTR] = {"store": str(Path(path).resolve())}
        if INIT_TIME in ds.indexes and not ds.indexes[INIT_TIME].is_monotonic_increasing:
            ds = ds.sortby(INIT_TIME)  # a forecast store grows in the order it was written
        for var in ds.variables.values():
            var.encoding.pop("preferred_chunks", None)
        tmp = out.with_name(out.name + ".export-tmp")
        shutil.rmtree(tmp, ignore_errors=True)  # an interrupted export's (the lock is held)
        try:
            with warnings.catch_warnings():  # zarr-python's, on a v3 extension it writes
                warnings.filterwarnings("ignore", "Consolidated metadata", UserWarning)
                write = ds.to_zarr(tmp, mode="w-", zarr_format=3, consolidated=True, compute=False)
                with dask_bar(progress, desc=f"export {out.name}"):
                    write.compute()
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        tmp.rename(out)
    return out
