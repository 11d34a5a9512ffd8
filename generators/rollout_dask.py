"""A forecast over the workers of a dask cluster (``wxens forecast --dask-scheduler``): each
batch of initial times is a dask task of its own, handed out while fewer run than workers
are connected, so dask gives it to a free worker — a worker that connects after the
forecast began takes the next batches, and a slow one holds only its own. The run claims
each batch as it hands it out (:mod:`pipeline.forecast_claims`), so another forecast into
the store puts it off; each result is taken as its task ends, so a worker that dies later
costs only the batch it was drawing (dask recomputes a result lost with its worker while
the client holds it)."""

from __future__ import annotations

import dataclasses
import functools
import logging
import uuid
from collections.abc import Callable, Iterable
from typing import Any

import pandas as pd
from distributed import Future, wait
from distributed.client import WorkerStartTimeoutError

from generators.checkpoint import Checkpoint, load_checkpoint
from generators.config import parse_sampler
from generators.correction.spread import SpreadCalibration
from generators.fine_tuned import warn_if_checkpoint_not_fine_tuned_for
from generators.in_sample import warn_if_trained_on
from generators.models import GENERATORS
from generators.rollout import inits_per_batch
from generators.rollout_deal import (
    batches_text,
    left_to_draw,
    merged,
    shard_init_times,
    why_idle,
)
from generators.rollout_store import ForecastRun, forecast_to_store, to_draw, warn_if_far
from generators.shared_paths import (
    Seen,
    check_same_checkpoint,
    check_this_worker,
    workers_checked,
)
from pipeline.errors import InputError, counted
from pipeline.forecast_claims import Claims, in_turn
from pipeline.progress import tqdm
from pipeline.store import AnalysisStore
from pipeline.transaction import commits

log = logging.getLogger(__name__)

WORKERS_GONE_S = 60
"""How long a dask forecast whose workers have all left waits for one to connect before it
stops (it waited for good, silently, its batches queued on the scheduler)."""


def forecast_on_workers(
    client: Any, checkpoint, store, inits, leads_hours, n_members, out, **options: Any
) -> ForecastRun:
    """:func:`~generators.rollout_store.forecast_to_store` of ``inits`` into ``out``, one
    dask task a batch, over the workers of ``client`` (a ``distributed.Client``) as they
    are free (:func:`_dealt_to_free_workers`). The warnings a forecast gives are said here,
    by the client, once (the tasks are told ``warned``): in the workers they were said in
    their own logs, which the user's terminal does not show, once a batch. A cluster
    whose workers see other files at the paths is refused first (:mod:`~generators.
    shared_paths`), and so is a worker that connects later or loads another checkpoint
    file, by the batch task given to it (:func:`forecast_to_store_on_worker`)."""
    loaded = checkpoint if isinstance(checkpoint, Checkpoint) else load_checkpoint(checkpoint)
    _warn_if_not_fine_tuned(loaded, options.get("sampler"))
    trained_on = functools.partial(_warn_if_trained_on, loaded, inits, leads_hours, options)
    if isinstance(checkpoint, Checkpoint):
        checkpoint = checkpoint.path  # the workers load it themselves
    if isinstance(store, AnalysisStore):
        store = store.path
    # before anything is read or drawn; the marker is kept for the workers that join later
    with workers_checked(client, checkpoint, store, out, loaded.digest) as seen:
        per_batch = inits_per_batch(n_members, options.get("batch_members", 512))
        # those left to draw, read once (a rerun after a worker had failed draws the rest)
        asked, inits = len(inits), left_to_draw(inits, out, options)
        workers = _worker_count(client)
        shards = [shard_init_times(inits, k, workers, per_batch) for k in range(workers)]
        log.info(
            "forecast: %s in %s of up to %s, each to a dask worker as one is free "
            "(%s at the start%s)",
            counted(len(inits), "initial time"),
            batches_text(-(-len(inits) // per_batch)),
            counted(per_batch, "initial time"),
            counted(workers, "worker"),
            why_idle(shards, "dask worker", per_batch, n_members),
        )
        # its task draws a batch under this run's claim
        claims = Claims(str(out), run=options.get("claims_run") or uuid.uuid4().hex)
        claimed = not options.get("recompute", False)
        # a task rerun under --recompute skips what this run committed since (the run id kept
        # in each commit), drawing again only those the store held before
        since = next(iter(commits(out, limit=1)), (None,))[0]
        task = functools.partial(
            client.submit,
            forecast_to_store_on_worker,
            seen,
            str(checkpoint),
            str(store),
            leads_hours=leads_hours,
            n_members=n_members,
            out=out,
            pure=False,
            **{
                **options,
                **{"progress": False, "warned": True},  # the client says the warnings
                **{"claims_run": claims.run, "run_since": since},
            },
        )
        to_draw_now = functools.partial(to_draw, claims) if claimed else (lambda batch: batch)
        progress = options.get("progress", True)
        bar = tqdm(total=len(inits), disable=not progress, desc="forecast", unit="init")
        try:
            with bar:
                batches = in_turn(inits, per_batch, to_draw_now)
                ended = _Ended(client, bar, first_ended=trained_on)
                meanwhile = _dealt_to_free_workers(client, task, batches, ended)
        finally:  # a caller's claims (the forecast flow's) are its own to remove
            if claimed and not options.get("claims_run"):
                claims.release()
    # a task's batch found written when it began: by the worker that died drawing it, if
    # one left, else by another run between the batch's hand-out and its task
    # (retired: dask moved the task it was drawing, which it may have written as it closed)
    found = sum(run.skipped for run in ended.runs)
    died = found if ended.a_worker_died else 0
    retired = found if ended.a_worker_retired and not died else 0
    run = merged(ended.runs, skipped=asked - len(inits))
    return dataclasses.replace(
        run,
        written_before_a_worker_died=died,
        written_before_a_worker_retired=retired,
        written_by_another_run=run.written_by_another_run + meanwhile + found - died - retired,
    )


def forecast_to_store_on_worker(seen: Seen, checkpoint: str, *args, **options) -> ForecastRun:
    """:func:`~generators.rollout_store.forecast_to_store` of one batch, a dask task: first
    refused where its worker does not see the client's files (``seen``), once a worker
    process (:func:`~generators.shared_paths.check_this_worker`: a worker that connected
    after the up-front check is checked here), or loads a checkpoint other than the
    client's at the path (:func:`~generators.shared_paths.check_same_checkpoint`, each
    batch: the digest is computed as the checkpoint loads), before it reads or writes
    anything of the store. Its tasks' keys begin ``forecast_to_store``, as before."""
    check_this_worker(seen)
    loaded = load_checkpoint(checkpoint)
    check_same_checkpoint(seen, loaded.digest)
    return forecast_to_store(loaded, *args, **options)


def _warn_if_not_fine_tuned(checkpoint: Checkpoint, sampler) -> None:
    """The warning of a ``sampler`` (``--sampler``; None: the checkpoint's default, its
    config's own ``sampler:`` where set) longer than the one ``checkpoint`` was fine-tuned
    for, said here, before the tasks are submitted: in the workers it would be said in
    their own logs, which the user's terminal does not show, so their tasks do not say it
    (``warned``). Not for a sampler the workers refuse (bad or of another family than the
    model's): their refusal is what is said."""
    try:
        given = parse_sampler(sampler) if isinstance(sampler, str) else sampler
        if given is not None:
            GENERATORS[checkpoint.kind].check_sampler(given)
    except InputError:
        return
    warn_if_checkpoint_not_fine_tuned_for(checkpoint, given)


def _warn_if_trained_on(checkpoint: Checkpoint, inits, leads_hours, options: dict) -> None:
    """The warnings of forecasts of ``inits`` (every one asked, as one process says them)
    from or valid in the period ``checkpoint`` trained on, or its spread calibration (where
    applied) was fitted on (:func:`~generators.in_sample.warn_if_trained_on`); said once
    the first task has ended well, its inputs having passed a worker's checks, so that a
    refused forecast says only its refusal, as in one process; none where the caller said
    ``warn_trained_on=False`` (the forecast flow, which says it itself). Then too, where
    the calibration is applied, the warning of its factors far from 1 (:func:`warn_if_far`)."""
    calibrated = checkpoint.calibration is not None and options.get("calibrate", True)
    if calibrated:
        warn_if_far(checkpoint, SpreadCalibration.from_dict(checkpoint.calibration))
    if options.get("warn_trained_on", True):
        warn_if_trained_on(checkpoint, pd.DatetimeIndex(inits), leads_hours, calibrated=calibrated)


def _workers(client: Any) -> set[str]:
    """The addresses of the workers connected to the scheduler of ``client`` now, asked of
    the scheduler (``Client.nthreads``): ``scheduler_info()`` returns the client's cache,
    which its own refresh every 2 s leaves without workers, so a busy moment read as every
    worker gone."""
    return set(client.nthreads())


def _worker_count(client: Any) -> int:
    """The workers connected to the scheduler of ``client`` now (at least one)."""
    return max(1, len(_workers(client)))


def _dealt_to_free_workers(
    client: Any,
    task: Any,
    batches: Iterable[tuple[pd.DatetimeIndex, pd.DatetimeIndex]],
    ended: _Ended,
) -> int:
    """Submit ``task(inits)`` for each ``(batch, its times to draw)`` of ``batches`` while
    fewer tasks run than workers are connected (counted again every second, so a worker
    that joins takes the next batch): dask's scheduler gives each to a free worker, one
    batch a worker at a time, whatever its threads (a GPU holds one batch). A batch is
    claimed only when a worker is free to take it, so claims put off what another run
    draws; none is handed out after one has failed. Each task's run is taken into
    ``ended`` as it ends.
    Returns the initial times another run wrote meanwhile; raises the first task's error
    once all running have ended. With no batch, one task: it checks the inputs."""
    running: set[Future] = set()
    meanwhile = submitted = 0
    batches = iter(batches)
    while True:
        # a worker free before the next batch is claimed: claimed while one was awaited, a
        # batch stood claimed undrawn for a whole batch, and another run drew it too
        while len(running) >= _worker_count(client):
            running = ended.after_a_second(running)
        if ended.failed is not None:
            break  # its error is raised: the batches left are not handed out to fail too
        if (nxt := next(batches, None)) is None:
            break
        batch, left = nxt
        meanwhile += len(batch) - len(left)
        if not left.empty:
            running.add(task(left))
            submitted += 1
    if not submitted:
        running.add(task(pd.DatetimeIndex([])))
    while running:
        running = ended.after_a_second(running)
    if ended.failed is not None:
        ended.failed.result()  # raises the task's error, with its traceback
    ended.bar.update(ended.bar.total - ended.bar.n)
    return meanwhile


@dataclasses.dataclass
class _Ended:
    """The tasks of a dask forecast that have ended: their runs, taken (and their futures
    let go) as each ends, and the first that failed; and whether a worker left meanwhile
    (an address seen is gone: a nanny restarts a worker at another), dead or retired
    (removed as the scheduler expected: scaled down, ``Client.retire_workers``).
    ``first_ended`` is called when the first task ends well, none having failed."""

    client: Any
    bar: Any
    first_ended: Callable[[], None]
    runs: list[ForecastRun] = dataclasses.field(default_factory=list)
    failed: Future | None = None
    a_worker_died: bool = False
    a_worker_retired: bool = False
    workers: set[str] = dataclasses.field(default_factory=set)

    def __post_init__(self) -> None:
        self._seen_workers()  # those at the start

    def after_a_second(self, running: set[Future]) -> set[Future]:
        """Wait up to a second for one of ``running`` to end; those still running. With no
        worker left, up to :data:`WORKERS_GONE_S` for one (:func:`_wait_for_a_worker`)."""
        try:
            done, running = wait(running, timeout=1, return_when="FIRST_COMPLETED")
        except TimeoutError:
            if not self._seen_workers():
                _wait_for_a_worker(self.client)
            return running
        self._seen_workers()
        for future in done:
            if future.status != "finished":
                self.failed = self.failed or future
                continue
            run = future.result()
            if not self.runs and self.failed is None:
                self.first_ended()
            self.runs.append(run)
            self.bar.update(len(run.init_times) + run.skipped)
        return running

    def _seen_workers(self) -> set[str]:
        """The workers connected now, noting whether one seen before has left, and how."""
        now = _workers(self.client)
        for address in self.workers - now:
            if _retired(self.client, address):
                self.a_worker_retired = True
            else:
                self.a_worker_died = True
        self.workers = now  # each one gone is judged once
        return now


def _retired(client: Any, address: str) -> bool:
    """Whether the worker at ``address``, gone, was retired (the scheduler's removal event
    says it expected it) rather than lost (killed, out of memory, its connection dropped)."""
    events = client.get_events(address)
    removed = [e for _, e in events if e.get("action") == "remove-worker"]
    return bool(removed) and bool(removed[-1].get("expected"))


def _wait_for_a_worker(client: Any) -> None:
    """Wait up to :data:`WORKERS_GONE_S` for a worker to connect to the scheduler of
    ``client``, whose workers have all left (killed, out of memory, scaled down), saying
    so; else stop with the scheduler's address and what to do."""
    address = client.scheduler.address
    log.warning(
        "every dask worker at %s has left; waiting up to %d s for one to connect",
        address,
        WORKERS_GONE_S,
    )
    try:
        client.wait_for_workers(1, timeout=WORKERS_GONE_S)
    except WorkerStartTimeoutError:
        raise InputError(
            f"every dask worker at {address!r} left and none connected in {WORKERS_GONE_S} s; "
            "the initial times written are kept: start workers with "
            f"`dask worker {address}` and rerun the same command to draw the rest"
        ) from None
