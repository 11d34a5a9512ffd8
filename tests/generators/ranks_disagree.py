"""``disagreeing_rank``, one of two gloo ranks that ``torch.multiprocessing.spawn`` starts
for ``test_train_ddp.py``: a module of its own, imported by each spawned rank, so that a
rank imports what it runs (torch, :mod:`generators.distributed`,
:mod:`generators.shared_paths`), not the test module's whole command line and training
stack."""

import json
from pathlib import Path

import torch
import torch.distributed as dist

from generators.distributed import World, check_identical, check_same_step
from generators.shared_paths import check_ranks_see
from pipeline.errors import InputError

DIGESTS = ("0123456789abcdef", "fedcba9876543210")
"""The sha256 (first 16 hex digits) of the checkpoint each rank loaded."""


def disagreeing_rank(rank: int, rendezvous: str, out: str) -> None:
    """One of two gloo ranks whose step, weights and checkpoint (its sha256: rank 1 loaded
    another file at the path, ``out``) differ; writes the errors it gets."""
    dist.init_process_group("gloo", init_method=rendezvous, rank=rank, world_size=2)
    world = World(rank, 2, rank)
    errors = []
    try:
        check_same_step(3 * rank, world, "runs/x")
    except InputError as err:
        errors.append(str(err))
    check_same_step(5, world, "runs/x")  # the same step: no error
    model = torch.nn.Linear(2, 1)
    torch.nn.init.constant_(model.weight, 1.0 + rank)
    try:
        check_identical([model], world)
    except RuntimeError as err:
        errors.append(str(err))
    seen = (out, out, f"{out}/forecast.zarr")  # checkpoint, store (both there) and out
    check_ranks_see(*seen, DIGESTS[0])  # the same checkpoint: no error
    try:
        check_ranks_see(*seen, DIGESTS[rank])
    except InputError as err:
        errors.append(str(err))
    dist.destroy_process_group()
    Path(out, f"rank{rank}.json").write_text(json.dumps(errors))
