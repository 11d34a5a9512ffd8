"""Training items built ahead in worker processes while the GPU trains.

A training step's items (:meth:`generators.data.ResidualDataset.__getitem__`: the states
gathered, the targets scaled, the solar forcing and calendar computed) are built on the
CPU. On a GPU that is most of a step: on one H200, 0.69 s of a 0.78 s step at batch 16 on
the 1 degree global grid (``benchmarks/results/train_step_cuda_in_process.json``; with
the workers, 0.005 s of 0.086 s: ``train_step_cuda.json``). So on CUDA a
:class:`torch.utils.data.DataLoader` builds the items of the coming steps in worker
processes, each step's indices drawn exactly as the trainer draws them
(:func:`step_draw`), so the batches, and the training, are the same as built in process.
On a CPU the workers would take the cores the model trains on, and none are started.

Workers are forked from the trainer when the states are in memory (they share them), and
started from a fork server (:mod:`multiprocessing`'s ``forkserver``, a fresh interpreter)
when the dataset reads its store item by item (larger than ``data.max_memory_bytes``): the
store's I/O threads (Icechunk's runtime) do not survive a fork, and a forked worker hangs
on its first read; the dataset is pickled to such workers (the store's read-only session,
not its states) and each opens the store again.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import NamedTuple

import numpy as np
import torch
from torch.utils.data import DataLoader, Sampler

from generators.data import ResidualDataset
from generators.device import usable_cores
from generators.distributed import World, shard_seed
from generators.train_plan import draw_items

MAX_WORKERS = 8
"""Worker processes per rank at most: enough to keep a GPU fed at the batch sizes tried."""
PREFETCH_PER_WORKER = 2
IN_MEMORY_START = "fork"
"""How workers sharing in-memory states start: forked, named so (Python 3.14 made the fork
server Linux's default, which would pickle the states to every worker)."""
LAZY_START = "forkserver"
"""How workers reading the store start (module docstring)."""
WAIT_S = 600.0
"""Seconds a step waits for its items before the loader raises: a stuck worker (a store
that stopped answering) stops the training with an error rather than hanging it."""


def step_draw(
    n_items: int,
    size: int,
    weights: torch.Tensor | None,
    seed: int,
    step: int,
    rank: int,
) -> tuple[np.ndarray, torch.Generator]:
    """The item indices of rank ``rank``'s ``size`` samples at ``step`` and the generator,
    seeded with ``(seed, step, rank)``, that drew them (it then draws their noise)."""
    generator = torch.Generator().manual_seed(shard_seed(seed, step, rank))
    return draw_items(n_items, size, weights, generator), generator


def loader_workers(device: torch.device, world: World) -> int:
    """Worker processes building items ahead for one rank: none on a CPU, else the cores
    of this machine's ranks shared out, one left to each rank, at most :data:`MAX_WORKERS`."""
    if device.type != "cuda":
        return 0
    local_ranks = int(os.environ.get("LOCAL_WORLD_SIZE", world.size))
    cores = usable_cores() // max(local_ranks, 1)
    return max(0, min(MAX_WORKERS, cores - 1))


class Draw(NamedTuple):
    """Which items: rank ``rank``'s ``size`` at ``step`` of a phase that ends before ``stop``."""

    step: int
    stop: int
    rank: int
    size: int


class StepIndices(Sampler):
    """Each step's item indices (:func:`step_draw`) from ``first`` to the end of its phase."""

    def __init__(self, n_items: int, weights: torch.Tensor | None, seed: int, first: Draw):
        self.n_items, self.weights, self.seed, self.first = n_items, weights, seed, first

    def __len__(self) -> int:
        return self.first.stop - self.first.step

    def __iter__(self) -> Iterator[np.ndarray]:
        start, stop, rank, size = self.first
        for step in range(start, stop):
            yield step_draw(self.n_items, size, self.weights, self.seed, step, rank)[0]


class ItemsAhead:
    """Training items, step by step: ``data[index]`` built now (no ``workers``), or by
    ``workers`` processes ahead of their use (``PREFETCH_PER_WORKER`` steps each), the loader
    started again for each phase, rank or size, and whenever the steps jump; the workers
    forked, or started from a fork server for a dataset that reads its store."""

    def __init__(self, workers: int, seed: int, *, pin_memory: bool):
        self.workers, self.seed, self.pin_memory = workers, seed, pin_memory
        self.expected: Draw | None = None  # the draw the running loader serves next
        self.loaded: Iterator[dict[str, torch.Tensor]] | None = None

    def __call__(
        self,
        data: ResidualDataset,
        weights: torch.Tensor | None,
        index: np.ndarray,
        draw: Draw,
    ) -> dict[str, torch.Tensor]:
        """``data[index]``, ``index`` being :func:`step_draw` of ``draw`` from ``data`` with
        ``weights``."""
        if not self.workers:
            return data[index]
        if self.loaded is None or self.expected != draw:
            loader = DataLoader(
                data,
                batch_size=None,  # the sampler yields a step's indices; the dataset batches
                sampler=StepIndices(len(data), weights, self.seed, draw),
                num_workers=self.workers,
                pin_memory=self.pin_memory,
                prefetch_factor=PREFETCH_PER_WORKER,
                multiprocessing_context=IN_MEMORY_START if data.in_memory else LAZY_START,
                timeout=WAIT_S,
            )
            self.loaded = iter(loader)
        self.expected = draw._replace(step=draw.step + 1)
        return next(self.loaded)
