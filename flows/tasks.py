"""The tasks of the wxens flows: each calls one library function with paths and small values.

No task passes an array: inputs and outputs are paths, names, times and small summaries,
so results persist in a few bytes and a cached rerun costs nothing. Options (retries on
transient I/O, caching, persisted results) come from :func:`flows.runtime.wxens_task`.
"""

from __future__ import annotations

import pandas as pd

from flows.dask import dask_client
from flows.runtime import wxens_task


def time_slice(start: str | None, end: str | None) -> slice | None:
    """``slice(start, end)`` of timestamps (inclusive, label-based), or None for all times."""
    if start is None and end is None:
        return None
    return slice(
        None if start is None else pd.Timestamp(start), None if end is None else pd.Timestamp(end)
    )


@wxens_task(name="ingest-store", reads=("sources",), not_keyed=("dask_scheduler", "progress"))
def ingest_store(
    sources: list[str],
    store: str,
    variables: list[str] | None,
    start: str | None,
    end: str | None,
    overwrite: bool,
    allow_nan: bool,
    dask_scheduler: str | None,
    progress: bool,
) -> str:
    """:func:`pipeline.store.ingest` of ``sources`` into ``store`` on the dask cluster at
    ``dask_scheduler`` (a new local one if None); returns the store path."""
    from pipeline import store as stores

    with dask_client(dask_scheduler):
        opened = stores.ingest(
            sources,
            store,
            variables=variables,
            time=time_slice(start, end),
            overwrite=overwrite,
            allow_nan=allow_nan,
            progress=progress,
        )
    return str(opened.path)
