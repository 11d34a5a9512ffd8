"""Copies of transactional stores (``wxens export``) for tools that do not read Icechunk:
plain Zarr v3 (WeatherBench 2's tools, any ``xr.open_zarr`` without the icechunk package)
or CF NetCDF-4 (a forecaster's own tools: :mod:`pipeline.cf_export`), one registered
:class:`Writer` per format, chosen by the output's suffix."""

from __future__ import annotations

import os
import shutil
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import xarray as xr
from dask.delayed import Delayed
from zarr.abc.store import Store

from pipeline.cf_export import write_netcdf
from pipeline.errors import StoreError
from pipeline.file_attrs import contents, titled
from pipeline.progress import dask_bar
from pipeline.registry import Registry
from pipeline.schema import INIT_TIME
from pipeline.transaction import has_root_group, locked, open_snapshot, reader

EXPORT_ATTR = "wxens_export"
"""The root attribute marking a copy :func:`export` wrote: ``{"store": the absolute path
of the store it copies}`` (JSON text in a NetCDF file), so that an ingest refusing to write
it names it as an export, and ``--overwrite`` replaces only an earlier export."""


@dataclass(frozen=True)
class Writer:
    """One export format: what it is called in messages, the suffixes of the outputs it
    writes, the xarray engine that reads them back, and ``write(dataset, path)``, the
    delayed (dask) write of a store's dataset to ``path``."""

    description: str
    suffixes: tuple[str, ...]
    engine: str
    write: Callable[[xr.Dataset, Path], Delayed]


def _write_zarr(ds: xr.Dataset, path: Path) -> Delayed:
    """The store's chunking and encoding kept, with consolidated metadata (``xr.open_zarr``
    reads it without warning that it is missing; a Zarr v3 extension of zarr-python)."""
    for var in ds.variables.values():
        var.encoding.pop("preferred_chunks", None)
    with warnings.catch_warnings():  # zarr-python's, on a v3 extension it writes
        warnings.filterwarnings("ignore", "Consolidated metadata", UserWarning)
        return ds.to_zarr(path, mode="w-", zarr_format=3, consolidated=True, compute=False)


FORMATS: Registry[Writer] = Registry("export format")
"""Every export format by name; an output of none's suffix is written as ``zarr``."""
FORMATS.register("zarr")(Writer("plain Zarr v3 copy", (".zarr",), "zarr", _write_zarr))
FORMATS.register("netcdf")(Writer("CF NetCDF-4 copy", (".nc", ".nc4"), "netcdf4", write_netcdf))


def writer_for(out: str | Path) -> Writer:
    """The format of an export to ``out``: the one whose suffix it has, else Zarr."""
    suffix = Path(out).suffix.lower()
    return next((w for w in FORMATS.values() if suffix in w.suffixes), FORMATS["zarr"])


def export(
    path: str | Path,
    out: str | Path,
    *,
    progress: bool = True,
    snapshot: Store | str | None = None,
    overwrite: bool = False,
) -> Path:
    """Copy the last commit (or ``snapshot``, another) of the store at ``path`` to ``out``
    in the format of its suffix (:func:`writer_for`; marked as a copy: :data:`EXPORT_ATTR`),
    streamed through dask, a forecast's initial times sorted (as :func:`open_forecast`
    reads them). Written aside and renamed into place under ``out``'s lock, so ``out`` is
    either absent or complete, and a second export to it waits, then finds it there.
    StoreError, before ``out`` is touched, if ``path`` holds no store, one with nothing
    committed yet, ``out`` lies inside it, or ``out`` exists (unless ``overwrite`` and it
    is an earlier export: then it is replaced). Its ``title`` (unless the store has one) and
    ``history`` (the store's, this command appended): :mod:`pipeline.file_attrs`."""
    out = Path(out)
    snapshot = reader(path) if snapshot is None else snapshot
    if not isinstance(snapshot, str) and not has_root_group(snapshot):
        raise StoreError(
            f"{path}: an empty store (another command is creating it, or its creation was "
            "interrupted before anything was committed); export it once that command ends"
        )
    if out.resolve().is_relative_to(Path(path).resolve()):
        raise StoreError(f"{out} is inside the store {path}; export to a path outside it")
    ds = open_snapshot(snapshot)
    if INIT_TIME in ds.indexes and not ds.indexes[INIT_TIME].is_monotonic_increasing:
        ds = ds.sortby(INIT_TIME)  # a forecast store grows in the order it was written
    ds.attrs[EXPORT_ATTR] = {"store": str(Path(path).resolve())}
    what = "forecast" if INIT_TIME in ds.dims else "analysis"
    ds = titled(ds, contents(what, ds), ["wxens", "export", str(path), "--out", str(out)])
    return write_aside(
        ds, out, mark=EXPORT_ATTR, verb="export", progress=progress, overwrite=overwrite
    )


def write_aside(
    ds: xr.Dataset, out: Path, *, mark: str, verb: str, progress: bool, overwrite: bool
) -> Path:
    """Write ``ds`` (lazy; its root attribute ``mark`` set) to ``out`` in the format of its
    suffix (:func:`writer_for`), streamed through dask under a progress bar (``progress``):
    written aside and renamed into place under ``out``'s lock, so ``out`` is either absent
    or complete, and a second write of it waits, then finds it there. StoreError if ``out``
    exists, unless ``overwrite`` and it holds ``mark`` (an earlier output of the same
    command, ``verb`` in messages: "export"): then it is replaced; anything else there is
    refused, never deleted."""
    writer = writer_for(out)
    with locked(out):
        if out.exists() and not overwrite:
            raise StoreError(
                f"{out} exists; {verb} to a new path, or replace it: overwrite=True (--overwrite)"
            )
        if out.exists() and not _written_by(out, writer, mark):
            raise StoreError(
                f"{out} exists and is not an earlier wxens {verb} output (one that xarray's "
                f"{writer.engine!r} engine opens, with the root attribute {mark!r}); "
                f"overwrite=True (--overwrite) replaces only such an output: {verb} to a new path"
            )
        tmp = out.with_name(out.name + f".{verb}-tmp")
        _remove(tmp)  # an interrupted write's (the lock is held)
        try:
            write = writer.write(ds, tmp)
            with dask_bar(progress, desc=f"{verb} {out.name}"):
                write.compute()
        except BaseException:
            _remove(tmp)
            raise
        if out.is_dir():  # an earlier output, replaced (a file is, by the rename itself)
            shutil.rmtree(out)
        os.replace(tmp, out)
    return out


def _written_by(path: Path, writer: Writer, mark: str) -> bool:
    """Whether ``path`` is a dataset in ``writer``'s format whose root attributes hold ``mark``."""
    try:
        with xr.open_dataset(path, engine=writer.engine) as ds:
            return mark in ds.attrs
    except (OSError, ValueError):  # not a dataset this format's engine reads
        return False


def _remove(path: Path) -> None:
    """Delete ``path``, a folder (a Zarr store) or a file, if it is there."""
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)
