"""How one forecast's initial times are dealt to several processes (the ranks of a
``torchrun`` launch, the workers of a dask cluster): in whole batches of the one-process run
(:func:`shard_init_times`), so a split forecast writes the members and the provenance that
one process writes with the same seed; why a process gets none, and the runs
of the processes merged into one."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import pandas as pd

from generators.rollout_store import FORECAST_REDRAW, ForecastRun
from pipeline.errors import InputError, counted
from pipeline.forecast_store import pending_init_times


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


def left_to_draw(inits, out, options: dict[str, Any]) -> pd.DatetimeIndex:
    """The initial times left to draw with :func:`forecast_to_store`'s ``options``."""
    redraw = options.get("redraw", FORECAST_REDRAW)
    return pending_init_times(inits, out, options.get("recompute", False), redraw)


def why_idle(shards: Sequence[pd.DatetimeIndex], what: str, per_batch: int, n_members: int) -> str:
    """Where a shard is empty, why: each batch goes whole to one process, so that the
    members are those one process draws, and the batch members (initial times x members,
    ``batch_members``) that would spread them wider, if any would; else nothing."""
    inits = pd.DatetimeIndex(sorted(t for shard in shards for t in shard))
    world, batches = len(shards), -(-len(inits) // per_batch)
    if not len(inits) or batches >= world:
        return ""
    text = (
        f": {batches_text(batches)} of up to "
        f"{counted(per_batch, 'initial time')} x {counted(n_members, 'member')}, and one "
        f"{what} draws a batch whole, so that its members are those one process draws"
    )
    spread = -(-len(inits) // world)  # initial times a batch that fill the most shards
    wider = [len(shard_init_times(inits, k, world, spread)) for k in range(world)]
    if wider.count(0) < sum(not len(shard) for shard in shards):
        text += f"; batch members {spread * n_members} deal them {' + '.join(map(str, wider))}"
    return text


def batches_text(n: int) -> str:
    """``n`` batches, in words: "1 batch", "3 batches"."""
    return f"{n} batch{'' if n == 1 else 'es'}"


def merged(runs: Sequence[ForecastRun], skipped: int) -> ForecastRun:
    """One run holding the initial times of every shard (their provenance is one), those
    another run wrote meanwhile into any shard's batches, and the count ``skipped`` before
    they were dealt (held completely by the store already)."""
    times = sorted(t for run in runs for t in run.init_times)
    meanwhile = sum(run.written_by_another_run for run in runs)
    return dataclasses.replace(
        runs[0], init_times=tuple(times), skipped=skipped, written_by_another_run=meanwhile
    )
