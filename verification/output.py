"""Files written whole or not at all: :func:`atomic_output`, and :func:`write_scores`
(the verification tree as NetCDF groups)."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr


@contextlib.contextmanager
def atomic_output(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it to ``path``.

    A failure (or an interrupt) removes the temporary file, so ``path`` is either the
    previous file or the complete new one, never half-written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=path.suffix, dir=path.parent, prefix=f".{path.name}.")
    os.close(fd)
    try:
        yield Path(tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def write_scores(tree: xr.DataTree, path: str | Path) -> Path:
    """Write the tree as NetCDF groups (reopen with ``xr.open_datatree``), atomically."""
    with atomic_output(path) as tmp:
        _encodable(tree).to_netcdf(tmp, engine="netcdf4")
    return Path(path)


def _encodable(tree: xr.DataTree) -> xr.DataTree:
    """Attributes NetCDF can store: lists of strings joined, booleans as ints."""

    def clean(ds: xr.Dataset) -> xr.Dataset:
        ds = ds.copy()
        for obj in (ds, *ds.variables.values()):
            obj.attrs = {k: _attr(v) for k, v in obj.attrs.items()}
        return ds

    return tree.map_over_datasets(clean)


def _attr(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return "; ".join(map(str, value)) if value else ""
    if isinstance(value, bool | np.bool_):
        return int(value)
    return value
