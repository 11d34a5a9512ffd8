"""How :func:`verification.scorecard.verify` computes its lazy results: all together in
one pass over the forecast, or one result at a time when dask's local threads would hold
too much of a large forecast.

Dask's local (threaded or synchronous) scheduler reads input chunks ahead of the
reductions that free them: computing the scores together on one forecast held about its
whole size in memory. One result at a time reads each chunk once per result instead of
once in all. ``benchmarks/verify_memory.py`` (a 1° global forecast of 50 members and 4
leads, 0.05 GB an initial time, on two cores): the scores of 4 and 16 initial times took
0.76 and 1.48 GB at peak together, 0.60 and 0.72 GB apart, 8 s against 20 s for 16; with
every check (whose physics sample of 8 initial times is loaded whole), 1.83 GB together
and 1.41 GB apart for 16 (45 s against 65 s). A ``distributed`` cluster queues its root
tasks and keeps to its workers' memory limit, so there everything is computed together.
"""

from __future__ import annotations

import logging
import sys
from contextlib import nullcontext
from typing import Any

import dask
import psutil
import xarray as xr
from dask.diagnostics import ProgressBar

log = logging.getLogger(__name__)

LOCAL_MEMORY_SHARE = 0.25
"""Under dask's local scheduler, a forecast larger than this share of the memory
available is scored one result at a time."""


def compute_results(lazy: dict[str, Any], *, forecast_bytes: int, progress: bool) -> dict[str, Any]:
    """``lazy`` (name -> dask-backed result) computed: together (shared input chunks read
    once), or one by one where :data:`LOCAL_MEMORY_SHARE` says so; a progress bar of the
    local scheduler's work on stderr if ``progress`` (dask's default, stdout, ran it
    into the scores printed there)."""
    local = distributed_client() is None
    available = psutil.virtual_memory().available
    apart = local and forecast_bytes > LOCAL_MEMORY_SHARE * available
    if apart:
        log.info(
            "the forecast (%.1f GB) is more than %.0f %% of the memory available (%.1f GB): "
            "its scores are computed one at a time, each reading it again (a dask cluster, "
            "--local-cluster, computes them together within its workers' memory)",
            forecast_bytes / 1e9,
            100 * LOCAL_MEMORY_SHARE,
            available / 1e9,
        )
    with ProgressBar(dt=1.0, out=sys.stderr) if progress and local else nullcontext():
        if apart:
            return {name: _computed_alone(value) for name, value in lazy.items()}
        return dask.compute(lazy)[0]


def _computed_alone(value: Any) -> Any:
    """One result computed by itself; a Dataset's variables each by itself (those of one
    Dataset read the same forecast, as the results do)."""
    if isinstance(value, xr.Dataset):
        return xr.Dataset(
            {name: dask.compute(da)[0] for name, da in value.data_vars.items()},
            attrs=value.attrs,
        )
    return dask.compute(value)[0]


def distributed_client() -> Any:
    """The active ``distributed`` client, or None (also when distributed, an optional
    dependency, is not installed)."""
    try:
        from distributed import get_client

        return get_client()
    except (ImportError, ValueError):
        return None
