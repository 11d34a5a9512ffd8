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
from typing import Any

import dask
import psutil
import xarray as xr

from pipeline.progress import dask_bar, tqdm

log = logging.getLogger(__name__)

LOCAL_MEMORY_SHARE = 0.25
"""Under dask's local scheduler, a forecast larger than this share of the memory
available is scored one result at a time."""


def compute_results(lazy: dict[str, Any], *, forecast_bytes: int, progress: bool) -> dict[str, Any]:
    """``lazy`` (name -> dask-backed result) computed: together (shared input chunks read
    once), or one by one where :data:`LOCAL_MEMORY_SHARE` says so; if ``progress``, a bar
    on stderr of the local scheduler's tasks, with their ETA (:func:`pipeline.progress.
    dask_bar`; dask's ``ProgressBar`` showed the time elapsed only), and one by one a bar
    of the results done of all, under that of the one being computed."""
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
        parts = sum(len(v.data_vars) if isinstance(v, xr.Dataset) else 1 for v in lazy.values())
        with tqdm(total=parts, desc="scores", unit="result", disable=not progress) as bar:
            return {name: _computed_alone(value, bar) for name, value in lazy.items()}
    with dask_bar(progress and local, desc="scores", dt=1.0):
        return dask.compute(lazy)[0]


def _computed_alone(value: Any, bar: Any) -> Any:
    """One result computed by itself; a Dataset's variables each by itself (those of one
    Dataset read the same forecast, as the results do); each compute a step of ``bar``
    (its tasks a bar of their own, under it, while it runs)."""

    def computed(one: Any) -> Any:
        with dask_bar(not bar.disable, desc="  tasks", dt=1.0, leave=False):
            result = dask.compute(one)[0]
        bar.update()
        return result

    if isinstance(value, xr.Dataset):
        return xr.Dataset(
            {name: computed(da) for name, da in value.data_vars.items()}, attrs=value.attrs
        )
    return computed(value)


def distributed_client() -> Any:
    """The active ``distributed`` client, or None (also when distributed, an optional
    dependency, is not installed)."""
    try:
        from distributed import get_client

        return get_client()
    except (ImportError, ValueError):
        return None
