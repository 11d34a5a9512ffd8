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
import logging
import os
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import torch
import torch.distributed as dist
from distributed import wait

from generators.checkpoint import Checkpoint
from generators.device import resolve_device
from generators.distributed import backend_for, check_rendezvous, world_from_env
from generators.rollout import inits_per_batch
from generators.rollout_store import FORECAST_REDRAW, ForecastRun, forecast_to_store
from pipeline.errors import InputError, WxensError, counted
from pipeline.forecast_store import pending_init_times
from pipeline.store import AnalysisStore

log = logging.getLogger(__name__)

TORCHRUN_ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK")
"""The variables ``torchrun`` sets in every process it starts."""


RANK_WAIT = timedelta(days=1)
"""How long the ranks of a forecast wait for each other at its end."""


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
    workers of the dask ``client`` (a ``distributed.Client``: one task per worker, each a
    shard of the initial times) when given; else over the ranks of a ``torchrun`` launch
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
    """One dask task per worker, each forecasting its shard into ``out``."""
    if isinstance(checkpoint, Checkpoint):
        checkpoint = checkpoint.path  # the workers load it themselves
    if isinstance(store, AnalysisStore):
        store = store.path
    workers = max(1, len(client.scheduler_info(n_workers=-1)["workers"]))
    per_batch = inits_per_batch(n_members, options.get("batch_members", 512))
    # deal those left to draw, as the ranks do (all dealt again, a rerun after one worker
    # had failed left the rest to the shards that had not been drawn: one worker alone)
    asked, inits = len(inits), _pending(inits, out, options)
    shards = [shard_init_times(inits, k, workers, per_batch) for k in range(workers)]
    options = {**options, "progress": False}
    _log_dealt(shards, "dask worker", per_batch, n_members)
    futures = [
        client.submit(
            forecast_to_store,
            str(checkpoint),
            str(store),
            shard,
            leads_hours,
            n_members,
            out,
            pure=False,
            **options,
        )
        for k, shard in enumerate(shards)
        if len(shard) or k == 0  # one task even for no initial times: it checks the inputs
    ]
    wait(futures)  # every shard finished or failed before the first error is raised
    runs = client.gather(futures)
    # a task dask reran after its worker died skipped what that worker had written
    died = sum(run.skipped for run in runs)
    merged = _merged(runs, skipped=asked - len(inits))
    return dataclasses.replace(merged, written_before_a_worker_died=died)


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
        f": {batches} batch{'' if batches == 1 else 'es'} of up to "
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
