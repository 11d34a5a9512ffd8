"""Forecasts split over processes: the initial times of one forecast dealt to the ranks of
a ``torchrun`` launch (one device each) or to the workers of a dask cluster
(:mod:`generators.rollout_dask`), every process writing its own initial times into the one
forecast store. Each write is one commit of the store's transactions, so writers of
disjoint initial times all land.

Members are drawn per initial time (:func:`generators.rollout.init_seed`) and the initial
times are dealt in whole batches of the one-process run
(:func:`generators.rollout_deal.shard_init_times`), so a split forecast writes the members
and the provenance that one process writes with the same seed. :func:`forecast_sharded` is
what ``wxens forecast`` runs.
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

from generators.checkpoint import Checkpoint, load_checkpoint
from generators.device import resolve_device
from generators.distributed import backend_for, check_rendezvous, world_from_env
from generators.rollout import inits_per_batch
from generators.rollout_dask import forecast_on_workers
from generators.rollout_deal import left_to_draw, merged, shard_init_times, why_idle
from generators.rollout_store import ForecastRun, forecast_to_store
from generators.shared_paths import check_ranks_see
from pipeline.errors import InputError, WxensError, counted
from pipeline.store import AnalysisStore

log = logging.getLogger(__name__)

TORCHRUN_ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK")
"""The variables ``torchrun`` sets in every process it starts."""


RANK_WAIT = timedelta(days=1)
"""How long the ranks of a forecast wait for each other at its end."""


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
            f"start at most {count} processes per machine (`torchrun --nproc_per_node {count}`)"
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
        return forecast_on_workers(client, checkpoint, store, *args, **options)
    if launched_by_torchrun():
        return _forecast_on_ranks(checkpoint, store, *args, **options)
    return forecast_to_store(checkpoint, store, *args, **options)


def _forecast_on_ranks(
    checkpoint, store, inits, leads_hours, n_members, out, **options: Any
) -> ForecastRun | None:
    """This rank's shard into ``out`` on its own device; the ranks gather their runs. Ranks
    that see other files than rank 0's at the paths, or load another checkpoint file than
    rank 0's (its sha256), are refused first
    (:func:`~generators.shared_paths.check_ranks_see`)."""
    # each rank loads it (as the CLI does, before the group: a rank that cannot, fails)
    loaded = checkpoint if isinstance(checkpoint, Checkpoint) else load_checkpoint(checkpoint)
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
        check_ranks_see(checkpoint, store, out, loaded.digest)
        rank, world = dist.get_rank(), dist.get_world_size()
        failure = None
        # the initial times left to draw, read once so that every rank deals the same (each
        # rank skipping its own, a rerun after one had failed left it the rest to draw alone)
        try:
            pending = left_to_draw(inits, out, options) if rank == 0 else None
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
            # rank 0 warns of every initial time asked; the others keep errors only
            options["warn_of"] = inits if rank == 0 else None
            try:
                run = forecast_to_store(
                    loaded,
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
    return merged(runs, skipped=len(inits) - len(shared[0])) if rank == 0 else None


def _log_dealt(
    shards: Sequence[pd.DatetimeIndex], what: str, per_batch: int, n_members: int
) -> None:
    """Log how the initial times were dealt: ``forecast: 4 initial times over 2 torchrun
    ranks (2 + 2)``, ``what`` naming a shard's process; where one draws none, why
    (:func:`why_idle`): "3 + 0" alone read as a fault."""
    sizes = [len(shard) for shard in shards]
    log.info(
        "forecast: %s over %s (%s%s)",
        counted(sum(sizes), "initial time"),
        counted(len(shards), what),
        " + ".join(map(str, sizes)),
        why_idle(shards, what, per_batch, n_members),
    )


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
