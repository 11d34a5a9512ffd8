"""``--threads N``: the CPU threads a command starts, for a user sharing a machine.

Given, it bounds at N threads each: torch's intra-op threads (its OpenMP/MKL pool: the
training, forecasts, calibration and tuning), Zarr's codec thread pool (compression of
what a command writes, decompression of what it reads), dask's local threaded scheduler
and the dask ``LocalCluster`` a flow starts for ingestion and verification (one worker
process of N threads instead of :class:`flows.cluster.LocalClusterConfig`'s default; its
workers run BLAS and OpenMP single-threaded, as dask sets them). Not bounded: Icechunk's
I/O threads and torch's inter-op pool, which wait rather than compute; the temporary
Prefect server of ``wxens run`` and ``wxens demo`` (a process of its own, busy only while it
records the flows' states); and a cluster named with ``--dask-scheduler``, which is the
user's. Not given: every default is left as is.
"""

from __future__ import annotations


def set_threads(threads: int | None, torch: bool = True) -> None:
    """Apply ``--threads`` (None: change nothing from the defaults, or undo an earlier
    call's cluster shape; the parser refuses fewer than 1); ``torch`` false: leave torch
    unloaded (``wxens verify``, which computes without it)."""
    from flows.cluster import bound_local_cluster

    bound_local_cluster(threads)
    if threads is None:
        return
    import dask
    import zarr

    if torch:
        import torch as torch_module

        torch_module.set_num_threads(threads)
    zarr.config.set({"threading.max_workers": threads})
    dask.config.set(num_workers=threads)
