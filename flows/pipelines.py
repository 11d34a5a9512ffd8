"""The Prefect flows of wxens: ``ingest``, ``train``, ``forecast``, ``verify`` and
``ensemble_run``.

Flows hold the orchestration (which init times, which step is already done, which
cluster); each step is one task of :mod:`flows.tasks`. Run them as plain functions (an
ad hoc run: Prefect starts a temporary local API when ``PREFECT_API_URL`` is unset), with
``wxens run``, or on a schedule with ``wxens serve``. Parameters are JSON values (paths
as strings, times as ISO strings) so the Prefect UI can show and edit them.
"""

from __future__ import annotations

from prefect import flow

from flows import tasks
from flows.runtime import unless_done
from pipeline.errors import StoreError


def analysis_store_complete(path: str) -> bool:
    """Whether ``path`` holds a complete analysis store (an interrupted ingest is not)."""
    from pipeline.store import open_store

    try:
        open_store(path)
    except StoreError:
        return False
    return True


@flow(name="ingest")
def ingest(
    sources: list[str],
    store: str,
    variables: list[str] | None = None,
    start: str | None = None,
    end: str | None = None,
    overwrite: bool = False,
    allow_nan: bool = False,
    dask_scheduler: str | None = None,
    progress: bool = False,
) -> str:
    """Ingest ``sources`` (paths, globs, URLs, ``synthetic:...``) into the analysis store
    ``store`` on a dask cluster (a new ``LocalCluster`` unless ``dask_scheduler`` names
    one); times ``start``..``end`` (ISO, inclusive) if given. Returns the store path.

    Skipped when the sources and the store are unchanged since the last ingest.
    """
    return unless_done(tasks.ingest_store, analysis_store_complete(store))(
        sources,
        store,
        variables,
        start,
        end,
        overwrite,
        allow_nan,
        dask_scheduler=dask_scheduler,
        progress=progress,
    )


FLOWS = {f.name: f for f in (ingest,)}
"""Every wxens flow by its Prefect name: what a schedule file's ``flow:`` may name."""
