"""Forecasts split over processes: the initial times of one forecast dealt to the ranks of
a ``torchrun`` launch (one device each) or to the workers of a dask cluster, every process
writing its own initial times into the one forecast store. Each write is one commit of the
store's transactions, so writers of disjoint initial times all land.

Members are drawn per initial time (:func:`generators.rollout.init_seed`) and the initial
times are dealt in whole batches of the one-process run (:func:`shard_init_times`), so a
split forecast writes the members and the provenance that one process writes with the
same seed. :func:`forecast_sharded` is what ``wxens forecast`` runs.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
import uuid
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import torch
import torch.distributed as dist
from distributed import wait
from distributed.client import WorkerStartTimeoutError

from generators.checkpoint import Checkpoint
from generators.device import resolve_device
from generators.distributed import backend_for, check_rendezvous, world_from_env
from generators.rollout import inits_per_batch
from generators.rollout_store import FORECAST_REDRAW, ForecastRun, forecast_to_store, to_draw
from pipeline.errors import InputError, WxensError, counted
from pipeline.forecast_claims import Claims, in_turn
from pipeline.forecast_store import pending_init_times
from pipeline.progress import tqdm
from pipeline.store import AnalysisStore

log = logging.getLogger(__name__)

TORCHRUN_ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK")
"""The variables ``torchrun`` sets in every process it starts."""


RANK_WAIT = timedelta(days=1)
"""How long the ranks of a forecast wait for each other at its end."""

WORKERS_GONE_S = 60
"""How long a dask forecast whose workers have all left waits for one to connect before it
stops (it waited for good, silently, its batches queued on the scheduler)."""


def shard_init_times(
    inits: Sequence[pd.Timestamp] | pd.DatetimeIndex, rank: int, world: int, per_batch: int = 1
) -> pd.DatetimeIndex:
    """The initial times shard ``rank`` of ``world`` forecasts: ``inits`` cut into
    consecutive batches of ``per_batch`` (the batches one process draws), dealt round
    robin. The shards are disjoint and together hold every initial time; a shard is empty
    when there are fewer batches than shards."""
    if world < 1 or not 0 <= rank < world:
        raise InputError(f"shard {rank} of {world} does not exist; shards are 0 to world - 1")
    if per_batch < 1:
        raise InputError(f"{per_batch} initial times per batch; it must be at least 1")
    inits = pd.DatetimeIndex(inits)
    mine = [i for i in range(len(inits)) if (i // per_batch) % world == rank]
    return inits[mine]


def launched_by_torchrun() -> bool:
    """Whether this process is one rank of a ``torchrun`` launch (its variables are set);
    ``WORLD_SIZE`` without a rank is refused, as training refuses it (it ran the whole
    forecast in one process, silently)."""
    world_from_env()
    return all(name in os.environ for name in TORCHRUN_ENV)


def rank_device(device: str, local_rank: int) -> torch.device:
    """The device of the rank ``local_rank`` on its machine: ``auto`` and ``cuda`` give
    each rank its own CUDA device (``cuda:LOCAL_RANK``), else the CPU; any other name is
    taken as given."""
    if device not in ("auto", "cuda") or not torch.cuda.is_available():
        return resolve_device(device)
    count = torch.cuda.device_count()
    if local_rank >= count:
        raise InputError(
            f"rank {local_rank} on this machine has no CUDA device of its own ({count} here); "
            f"start at most {count} processes per machine (torchrun --nproc_per_node {count})"
        )
    return torch.device("cuda", local_rank)


def forecast_sharded(
    checkpoint: str | Path | Checkpoint,
    store: AnalysisStore | str | Path,
    inits: Sequence[pd.Timestamp] | pd.DatetimeIndex,
    leads_hours: Sequence[float],
    n_members: int,
    out: str,
    *,
    client: Any = None,
    **options: Any,
) -> ForecastRun | None:
    """:func:`generators.rollout_store.forecast_to_store` split over processes: over the
    workers of the dask ``client`` (a ``distributed.Client``: one task per batch of
    initial times, each to a free worker) when given; else over the ranks of a ``torchrun`` launch
    when this process is one (every rank calls this; they meet at the end); else in this
    process. ``options`` are :func:`forecast_to_store`'s.

    Returns the whole forecast (every shard's initial times), or None on the ranks other
    than 0.
    """
    args = (inits, leads_hours, n_members, out)
    if client is not None:
        return _forecast_on_workers(client, checkpoint, store, *args, **options)
    if launched_by_torchrun():
        return _forecast_on_ranks(checkpoint, store, *args, **options)
    return forecast_to_store(checkpoint, store, *args, **options)


def _pending(inits, out, options: dict[str, Any]) -> pd.DatetimeIndex:
    """The initial times left to draw with :func:`forecast_to_store`'s ``options``."""
    redraw = options.get("redraw", FORECAST_REDRAW)
    return pending_init_times(inits, out, options.get("recompute", False), redraw)


def _forecast_on_workers(
    client: Any, checkpoint, store, inits, leads_hours, n_members, out, **options: Any
) -> ForecastRun:
    """One dask task per batch, each forecasting its initial times into ``out``, handed to
    the workers as they are free (:func:`_dealt_to_free_workers`): workers that connect
    after the forecast began take batches too, and a slow one holds only its own batch."""
    if isinstance(checkpoint, Checkpoint):
        checkpoint = checkpoint.path  # the workers load it themselves
    if isinstance(store, AnalysisStore):
        store = store.path
    per_batch = inits_per_batch(n_members, options.get("batch_members", 512))
    # those left to draw, read once (a rerun after a worker had failed draws the rest)
    asked, inits = len(inits), _pending(inits, out, options)
    workers = _worker_count(client)
    shards = [shard_init_times(inits, k, workers, per_batch) for k in range(workers)]
    log.info(
        "forecast: %s in %s of up to %s, each to a dask worker as one is free (%s at the "
        "start%s)",
        counted(len(inits), "initial time"),
        _batches(-(-len(inits) // per_batch)),
        counted(per_batch, "initial time"),
        counted(workers, "worker"),
        _why_idle(shards, "dask worker", per_batch, n_members),
    )
    # the run claims each batch as it hands it out (pipeline.forecast_claims), so another
    # forecast into ``out`` puts it off; its task draws it under this run's claim
    claims = Claims(str(out), run=options.get("claims_run") or uuid.uuid4().hex)
    claimed = not options.get("recompute", False)
    task = functools.partial(
        client.submit,
        forecast_to_store,
        str(checkpoint),
        str(store),
        leads_hours=leads_hours,
        n_members=n_members,
        out=out,
        pure=False,
        **{**options, "progress": False, "claims_run": claims.run if claimed else None},
    )
    to_draw_now = functools.partial(to_draw, claims) if claimed else (lambda batch: batch)
    try:
        futures, meanwhile = _dealt_to_free_workers(
            client, task, in_turn(inits, per_batch, to_draw_now), len(inits), options
        )
    finally:  # a caller's claims (the forecast flow's) are its own to remove
        if claimed and not options.get("claims_run"):
            claims.release()
    runs = client.gather(futures)  # every batch finished or failed: the first error raised
    # a task dask reran after its worker died skipped what that worker had written
    died = sum(run.skipped for run in runs)
    merged = _merged(runs, skipped=asked - len(inits))
    return dataclasses.replace(
        merged,
        written_before_a_worker_died=died,
        written_by_another_run=merged.written_by_another_run + meanwhile,
    )


def _batches(n: int) -> str:
    """``n`` batches, in words: "1 batch", "3 batches"."""
    return f"{n} batch{'' if n == 1 else 'es'}"


def _worker_count(client: Any) -> int:
    """The workers connected to the scheduler of ``client`` now (at least one)."""
    return max(1, len(client.scheduler_info(n_workers=-1)["workers"]))


def _dealt_to_free_workers(
    client: Any, task: Any, batches: Any, total: int, options: dict[str, Any]
) -> tuple[list[Any], int]:
    """Submit ``task(inits)`` for each ``(batch, its times to draw)`` of ``batches`` while
    fewer tasks run than workers are connected (counted again every second, so a worker
    that joins takes the next batch): dask's scheduler gives each to a free worker, one
    batch a worker at a time as before, whatever its threads (a GPU holds one batch).
    A batch is claimed only when it is handed out, so claims put off what another run
    draws. Returns the futures, all finished or failed, and the initial times another run
    wrote meanwhile. With no batch, one task: it checks the inputs."""
    futures: list[Any] = []
    running: set[Any] = set()
    meanwhile = 0
    progress = options.get("progress", True)
    bar = tqdm(total=total, disable=not progress, desc="forecast", unit="init")
    with bar:
        for batch, left in batches:
            meanwhile += len(batch) - len(left)
            if left.empty:
                continue
            while len(running) >= _worker_count(client):
                running = _finished(client, running, bar)
            if any(future.status == "error" for future in futures):
                break  # its error is raised: the batches left are not handed out to fail too
            futures.append(task(left))
            running.add(futures[-1])
        if not futures:
            futures.append(task(pd.DatetimeIndex([])))
        while running := {future for future in futures if not future.done()}:
            _finished(client, running, bar)
        bar.update(total - bar.n)
    return futures, meanwhile


def _finished(client: Any, running: set[Any], bar: Any) -> set[Any]:
    """Wait up to a second for one of the ``running`` futures to end; those still running,
    the progress ``bar`` moved on by those ended (their initial times). With no worker
    left, up to :data:`WORKERS_GONE_S` for one (:func:`_wait_for_a_worker`)."""
    try:
        done, running = wait(running, timeout=1, return_when="FIRST_COMPLETED")
    except TimeoutError:
        if not client.scheduler_info(n_workers=-1)["workers"]:
            _wait_for_a_worker(client)
        return running
    for future in done:
        if future.status == "finished":
            bar.update(len(future.result().init_times) + future.result().skipped)
    return running


def _wait_for_a_worker(client: Any) -> None:
    """Wait up to :data:`WORKERS_GONE_S` for a worker to connect to the scheduler of
    ``client``, whose workers have all left (killed, out of memory, scaled down), saying
    so; else stop with the scheduler's address and what to do."""
    address = client.scheduler.address
    log.warning("every dask worker at %s has left; waiting up to %d s for one to connect",
                address, WORKERS_GONE_S)  # fmt: skip
    try:
        client.wait_for_workers(1, timeout=WORKERS_GONE_S)
    except WorkerStartTimeoutError:
        raise InputError(
            f"every dask worker at {address!r} left and none connected in {WORKERS_GONE_S} s; "
            "the initial times written are kept: start workers with "
            f"`dask worker {address}` and rerun the same command to draw the rest"
        ) from None


def _forecast_on_ranks(
    checkpoint, store, inits, leads_hours, n_members, out, **options: Any
) -> ForecastRun | None:
    """This rank's shard into ``out`` on its own device; the ranks gather their runs."""
    local_rank = int(os.environ["LOCAL_RANK"])
    device = rank_device(options.pop("device", "auto"), local_rank)
    joined = not dist.is_initialized()
    if joined:
        check_rendezvous()
        if device.type == "cuda":
            torch.cuda.set_device(device)
        # a rank may finish a batch or more later than another: wait as long as it takes
        # (torchrun stops every rank when one dies)
        dist.init_process_group(backend_for(device), timeout=RANK_WAIT)
    try:
        rank, world = dist.get_rank(), dist.get_world_size()
        failure = None
        # the initial times left to draw, read once so that every rank deals the same (each
        # rank skipping its own, a rerun after one had failed left it the rest to draw alone)
        try:
            pending = _pending(inits, out, options) if rank == 0 else None
        except Exception as err:
            failure, pending = err, _RankFailure.of(rank, err)
        shared = [pending]
        dist.broadcast_object_list(shared, src=0)
        runs: list[ForecastRun | _RankFailure | None] = [shared[0]]
        if not isinstance(shared[0], _RankFailure):
            per_batch = inits_per_batch(n_members, options.get("batch_members", 512))
            shards = [shard_init_times(shared[0], k, world, per_batch) for k in range(world)]
            shard = shards[rank]
            if rank == 0:  # the others' INFO lines are off (quiet_other_ranks)
                _log_dealt(shards, "torchrun rank", per_batch, n_members)
            options["progress"] = options.get("progress", True) and rank == 0
            try:
                run = forecast_to_store(
                    checkpoint,
                    store,
                    shard,
                    leads_hours,
                    n_members,
                    out,
                    device=str(device),
                    **options,
                )
            except Exception as err:  # the other ranks learn of it rather than wait for this one
                failure, run = err, _RankFailure.of(rank, err)
                log.error(
                    "rank %d failed: %s; the other ranks finish their own initial times, then "
                    "every rank fails with this error",
                    rank,
                    err,
                )
            runs = [None] * world
            dist.all_gather_object(runs, run)
    finally:
        if joined:
            dist.destroy_process_group()
    if failure is not None:
        raise failure
    failed = [r for r in runs if isinstance(r, _RankFailure)]
    if failed:
        message = f"{out}: " + "; ".join(f"rank {f.rank} failed: {f.message}" for f in failed)
        # another rank's bad input is this rank's too (one line, exit 2); a bug keeps its trace
        raise (WxensError if all(f.expected for f in failed) else RuntimeError)(message)
    return _merged(runs, skipped=len(inits) - len(shared[0])) if rank == 0 else None


def _log_dealt(
    shards: Sequence[pd.DatetimeIndex], what: str, per_batch: int, n_members: int
) -> None:
    """Log how the initial times were dealt: ``forecast: 4 initial times over 2 dask
    workers (2 + 2)``, ``what`` naming a shard's process; where one draws none, why
    (:func:`_why_idle`): "3 + 0" alone read as a fault."""
    sizes = [len(shard) for shard in shards]
    log.info(
        "forecast: %s over %s (%s%s)",
        counted(sum(sizes), "initial time"),
        counted(len(shards), what),
        " + ".join(map(str, sizes)),
        _why_idle(shards, what, per_batch, n_members),
    )


def _why_idle(
    shards: Sequence[pd.DatetimeIndex], what: str, per_batch: int, n_members: int
) -> str:
    """Where a shard is empty, why: each batch goes whole to one process, so that the
    members are those one process draws, and the batch members (initial times x members,
    ``batch_members``) that would spread them wider, if any would; else nothing."""
    inits = pd.DatetimeIndex(sorted(t for shard in shards for t in shard))
    world, batches = len(shards), -(-len(inits) // per_batch)
    if not len(inits) or batches >= world:
        return ""
    text = (
        f": {_batches(batches)} of up to "
        f"{counted(per_batch, 'initial time')} x {counted(n_members, 'member')}, and one "
        f"{what} draws a batch whole, so that its members are those one process draws"
    )
    spread = -(-len(inits) // world)  # initial times a batch that fill the most shards
    wider = [len(shard_init_times(inits, k, world, spread)) for k in range(world)]
    if wider.count(0) < sum(not len(shard) for shard in shards):
        text += f"; batch members {spread * n_members} deal them {' + '.join(map(str, wider))}"
    return text


@dataclasses.dataclass(frozen=True)
class _RankFailure:
    """What a rank that failed tells the others: its error's message, and whether it was a
    :class:`~pipeline.errors.WxensError` (an input or store refused, not a bug)."""

    rank: int
    message: str
    expected: bool

    @classmethod
    def of(cls, rank: int, err: Exception) -> _RankFailure:
        return cls(rank, str(err), isinstance(err, WxensError))


def _merged(runs: Sequence[ForecastRun], skipped: int) -> ForecastRun:
    """One run holding the initial times of every shard (their provenance is one), those
    another run wrote meanwhile into any shard's batches, and the count ``skipped`` before
    they were dealt (held completely by the store already)."""
    times = sorted(t for run in runs for t in run.init_times)
    meanwhile = sum(run.written_by_another_run for run in runs)
    return dataclasses.replace(
        runs[0], init_times=tuple(times), skipped=skipped, written_by_another_run=meanwhile
    )
