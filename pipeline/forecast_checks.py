"""The refusals of a write into a forecast store (:mod:`pipeline.forecast_store`): another
provenance, other variables or coordinates (members, leads, levels, grid) than the store
holds, and a path that is a regular file or a plain Zarr store. Each names the store and
the fix; :func:`~pipeline.forecast_store.check_extends` runs them before anything is drawn,
:func:`~pipeline.forecast_store.write_forecast` again in its transaction."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import xarray as xr

from pipeline.errors import StoreError
from pipeline.forecast_provenance import ForecastProvenance
from pipeline.schema import LAT, LEAD_TIME, LEVEL, LON, MEMBER
from pipeline.transaction import is_plain_zarr, is_repository
from pipeline.writable import check_can_write


def check_compatible(path: Path, existing: xr.Dataset, new: xr.Dataset) -> None:
    """StoreError unless ``new`` has the provenance, variables and coordinates of the store
    ``existing`` at ``path``: a store never mixes models, members, leads or grids."""
    check_provenance(path, existing, ForecastProvenance.from_attrs(new.attrs))
    if set(existing.data_vars) != set(new.data_vars):
        raise StoreError(
            f"{path} holds variables {sorted(existing.data_vars)}, this forecast "
            f"{sorted(new.data_vars)}; write to another store"
        )
    for dim in (MEMBER, LEAD_TIME, LEVEL, LAT, LON):
        if dim in existing.coords or dim in new.coords:
            check_coordinate(path, existing, dim, new[dim].values if dim in new.coords else None)


def check_provenance(path: Path, existing: xr.Dataset, new: ForecastProvenance) -> None:
    """StoreError naming what differs where the store records another provenance."""
    old = ForecastProvenance.from_attrs(existing.attrs)
    if old != new:
        raise StoreError(f"{path} {old.refusal(new)}")


def check_coordinate(path: Path, existing: xr.Dataset, dim: str, now: np.ndarray | None) -> None:
    """StoreError unless the store's ``dim`` values are ``now`` (None: it has none); for
    members, the ``--members`` that fits the store."""
    old = existing[dim].values if dim in existing.coords else None
    if old is None or now is None or old.shape != now.shape or not np.array_equal(old, now):
        if dim == MEMBER and old is not None and now is not None:
            raise StoreError(
                f"{path} holds {old.size} members, this forecast {now.size}; write it to "
                f"another store, or give n_members={old.size} (--members {old.size})"
            )
        raise StoreError(
            f"{path} has {dim} = {_short(old)}, this forecast {_short(now)}; forecasts with "
            f"other {dim} values go to another store"
        )


def _short(values: np.ndarray | None) -> str:
    """Up to six values, else the first and last; lead times in hours."""
    if values is None:
        return "none"
    values = np.asarray(values)
    unit = ""
    if values.dtype.kind == "m":
        values, unit = values / np.timedelta64(1, "h"), " h"
    text = [f"{v:g}" if isinstance(v, float) else str(v) for v in values.tolist()]
    if values.size <= 6:
        return f"[{', '.join(text)}]{unit}"
    return f"[{text[0]} ... {text[-1]}]{unit} ({values.size} values)"


def check_writable(path: Path) -> None:
    """StoreError if ``path`` is a regular file or a plain Zarr store (its kind is read in
    the write's transaction, under its lock: read here, a store being created looked
    foreign), PermissionError if it cannot be written; from the files alone (fast)."""
    check_can_write(path)
    if path.exists() and not path.is_dir():
        raise StoreError(
            f"{path} is a regular file, not a forecast store; choose another store path"
        )
    if is_plain_zarr(path) and not is_repository(path):
        raise StoreError(
            f"{path} is a plain Zarr store (an export, or written by another tool or an older "
            "wxens); forecasts are written only to transactional stores: choose another store path"
        )
