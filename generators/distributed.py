"""Data-parallel training on PyTorch's own engine (``torch.distributed``).

``torchrun --nproc_per_node N -m flows.cli train ...`` starts N processes; torchrun sets
``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` and the rendezvous address, read here by
:func:`world_from_env`. Each process (a rank) trains the same model on its own shard of
the global batch:

- the global batch of ``batch_size`` samples is split into ``N`` shards of
  ``batch_size / N``; rank ``r`` draws its shard's indices and all of its noise from a
  generator seeded with ``(seed, step, r)`` (:func:`shard_seed`), so ranks draw distinct
  samples and rank 0 of a single process draws exactly what it drew before;
- :class:`~torch.nn.parallel.DistributedDataParallel` averages the gradients over the
  ranks during the backward pass, so every rank takes the same optimiser step as one
  process whose loss is the mean of the shards' losses, and the EMA weights, updated from
  identical parameters, stay identical on every rank (checked at every checkpoint by
  :func:`check_identical`);
- rank 0 alone writes checkpoints, ``log.jsonl`` and the progress bar.

The backend is ``nccl`` on CUDA (rank ``r`` takes the GPU of its local rank) and ``gloo``
on CPU. A checkpoint holds no world size: a run resumes at any number of processes with
the same global ``batch_size``, exactly when the number is unchanged.
"""

from __future__ import annotations

import ctypes
import json
import logging
import os
import signal
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn
from torch.distributed.elastic.multiprocessing.api import SignalException
from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
from torch.distributed.run import main as torchrun
from torch.nn.parallel import DistributedDataParallel

from generators.base import Batch
from generators.device import resolve_device
from pipeline.errors import InputError, WxensError
from pipeline.signals import Terminated

RANK_STRIDE = 2**24
"""Seed distance between the shards of one step. A torch generator keeps only the low 32
bits of its seed, so ``step + rank * 2**24`` is distinct for up to :data:`MAX_RANKS` ranks
and 2**24 steps."""
MAX_RANKS = 2**32 // RANK_STRIDE


@dataclass(frozen=True)
class World:
    """This process's place among the ranks of one run (one process: rank 0 of 1)."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """Rank 0: the one that writes checkpoints and logs."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1


SINGLE_PROCESS = World()
"""Rank 0 of 1: training without torchrun."""


def world_from_env(environ: Mapping[str, str] = os.environ) -> World:
    """The :class:`World` torchrun describes in ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK``;
    rank 0 of 1 outside torchrun."""
    if "WORLD_SIZE" not in environ:
        return SINGLE_PROCESS
    try:
        return World(
            rank=int(environ["RANK"]),
            size=int(environ["WORLD_SIZE"]),
            local_rank=int(environ.get("LOCAL_RANK", environ["RANK"])),
        )
    except (KeyError, ValueError):
        raise InputError(
            f"WORLD_SIZE={environ['WORLD_SIZE']!r} is set but RANK={environ.get('RANK')!r} "
            "is not a rank; start the run with torchrun, or unset WORLD_SIZE"
        ) from None


def rank_device(name: str, world: World) -> torch.device:
    """The device of ``world.rank`` for the config's device ``name``: on CUDA with several
    ranks, the GPU of the local rank (``auto`` and ``cuda`` only, a single ``cuda:N``
    cannot hold them all); otherwise :func:`generators.device.resolve_device`."""
    device = resolve_device(name)
    if not world.distributed or device.type != "cuda":
        return device
    if device.index is not None:
        raise InputError(
            f"device {name!r} names one GPU but {world.size} processes train together; "
            "use device: auto or cuda (each process takes the GPU of its local rank)"
        )
    count = torch.cuda.device_count()
    if world.local_rank >= count:
        raise InputError(
            f"local rank {world.local_rank} has no GPU: this machine has {count}; "
            f"start at most {count} processes per node (`torchrun --nproc_per_node N`)"
        )
    return torch.device("cuda", world.local_rank)


def backend_for(device: torch.device) -> str:
    """``nccl`` for CUDA tensors, ``gloo`` for CPU tensors."""
    return "nccl" if device.type == "cuda" else "gloo"


RENDEZVOUS_ENV = ("MASTER_ADDR", "MASTER_PORT")
"""Where the ranks meet: torchrun sets these beside ``RANK`` and ``WORLD_SIZE``."""


def check_rendezvous(environ: Mapping[str, str] = os.environ) -> None:
    """Refuse to join a process group whose meeting point the environment lacks: ``RANK``
    and ``WORLD_SIZE`` set by hand (or left over) without torchrun's ``MASTER_ADDR`` and
    ``MASTER_PORT``, which torch would report as a traceback."""
    missing = [name for name in RENDEZVOUS_ENV if not environ.get(name)]
    if missing:
        raise InputError(
            f"RANK={environ.get('RANK')!r} and WORLD_SIZE={environ.get('WORLD_SIZE')!r} are "
            f"set but {' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} not: "
            "start the processes with torchrun (it sets them all), or unset RANK and "
            "WORLD_SIZE to run in one process"
        )


@contextmanager
def process_group(world: World, device: torch.device) -> Iterator[None]:
    """Join the run's process group (rendezvous from torchrun's environment) for the
    duration of the block; nothing for a single process."""
    if not world.distributed or dist.is_initialized():
        yield
        return
    check_rendezvous()
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group(backend_for(device), rank=world.rank, world_size=world.size)
    try:
        yield
    except RuntimeError as err:
        if not peer_lost(err):
            raise
        raise PeerLost(world, err) from None
    finally:
        dist.destroy_process_group()


PEER_GONE = ("Connection reset by peer", "Connection closed by peer")
"""What gloo's ``RuntimeError`` says when another rank's process died mid-collective."""


def peer_lost(error: BaseException) -> bool:
    """Whether ``error`` is a collective's failure because another rank went away."""
    return isinstance(error, dist.DistNetworkError) or any(m in str(error) for m in PEER_GONE)


class PeerLost(WxensError):
    """Another process of the run died (killed, out of memory) during a collective: one
    line, where the surviving ranks printed gloo's 37-line traceback (ending "GLHF!")
    before torchrun stopped them and named the one that died."""

    exit_code = 1

    @property
    def silent(self) -> bool:
        """In a process of ``wxens train --nproc``, whose launcher names the one that died
        in one line (:class:`ProcessFailed`): nothing to print here."""
        return LAUNCHER_PID in os.environ

    def __init__(self, world: World, error: BaseException):
        cause = str(error).split("] ", 1)[-1].split(". ", 1)[0]  # without gloo's source path
        super().__init__(
            f"process {world.rank} of {world.size}: another process of the run stopped "
            f"({cause}); torchrun names it"
        )


def shard_size(batch_size: int, world: World) -> int:
    """Samples per rank: ``batch_size / world.size``, refused unless it divides (or with
    more than :data:`MAX_RANKS` ranks, whose seeds would repeat)."""
    if world.size > MAX_RANKS:
        raise InputError(
            f"{world.size} processes: data-parallel training takes at most {MAX_RANKS}"
        )
    if batch_size % world.size:
        raise InputError(
            f"batch_size {batch_size} does not split over {world.size} processes; "
            f"use a multiple of {world.size} (it is the global batch of all processes)"
        )
    return batch_size // world.size


def shard_seed(seed: int, step: int, rank: int) -> int:
    """The seed of rank ``rank``'s shard at ``step``: ``seed * 1_000_003 + step +
    rank * 2**24`` (rank 0 is the seed one process has always used)."""
    return seed * 1_000_003 + step + rank * RANK_STRIDE


class ShardLoss(nn.Module):
    """``model.loss`` as a module's forward, the call that DDP synchronises."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, batch: Batch, generator: torch.Generator) -> torch.Tensor:
        return self.model.loss(batch, generator=generator)


def data_parallel(model: nn.Module, world: World, device: torch.device) -> nn.Module:
    """The module whose ``(batch, generator)`` call gives the loss of this rank's shard:
    wrapped in DistributedDataParallel (gradients averaged over ranks in backward) when
    several ranks train, plain otherwise. Every parameter must take part in the loss."""
    loss = ShardLoss(model)
    if not world.distributed:
        return loss
    device_ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(loss, device_ids=device_ids, find_unused_parameters=False)


def mean_over_ranks(value: torch.Tensor, world: World) -> torch.Tensor:
    """The mean of a tensor over the ranks (the value itself for one process)."""
    if not world.distributed:
        return value
    total = value.detach().clone()
    dist.all_reduce(total, op=dist.ReduceOp.SUM)
    return total / world.size


def check_same_step(step: int, world: World, out_dir: object) -> None:
    """Refuse to train when the ranks start at different steps: a run resumed on machines
    that do not all see the same ``out_dir/last.pt``."""
    if not world.distributed:
        return
    steps: list[object] = [None] * world.size
    dist.all_gather_object(steps, step)
    if len(set(steps)) > 1:
        raise InputError(
            f"the {world.size} processes found {out_dir} at different steps {steps}; put "
            "out_dir= (--out) on a file system every machine shares, or pass resume=False "
            "(--no-resume)"
        )


def check_identical(modules: Sequence[nn.Module], world: World) -> None:
    """Refuse to go on when the weights of ``modules`` differ between ranks: compares a
    float64 checksum (sum and sum of squares of every parameter) of each rank."""
    if not world.distributed:
        return
    parameters = [p for m in modules for p in m.parameters()]
    device = parameters[0].device
    sums = torch.stack(
        [
            sum(p.detach().double().sum() for p in parameters),
            sum(p.detach().double().square().sum() for p in parameters),
        ]
    ).to(device)
    gathered = [torch.empty_like(sums) for _ in range(world.size)]
    dist.all_gather(gathered, sums)
    if any(not torch.allclose(g, gathered[0], rtol=1e-12, atol=0.0) for g in gathered):
        raise RuntimeError(
            f"the weights differ between the {world.size} ranks (checksums "
            f"{[g.tolist() for g in gathered]}); the gradient all-reduce did not run"
        )


LAUNCHER_PID = "WXENS_LAUNCHER_PID"
"""Set by :func:`launch` for the processes it starts: the process they must not outlive."""
PR_SET_PDEATHSIG = 1
"""Linux ``prctl`` option: the signal a process gets when its parent dies."""


def follow_launcher(environ: Mapping[str, str] = os.environ) -> None:
    """In a process :func:`launch` started: have Linux kill it when the launcher dies. A
    ``kill -9`` of ``wxens train --nproc`` left its processes training on their own and
    writing ``OUT/last.pt``, beside the run that resumed there. Nothing elsewhere."""
    launcher = environ.get(LAUNCHER_PID)
    if launcher is None or not sys.platform.startswith("linux"):
        return
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != int(launcher):  # it died before the request: follow it now
        os.kill(os.getpid(), signal.SIGKILL)


TORCHRUN_LOGS = "torch.distributed.elastic.multiprocessing"
ERROR_FILE = "TORCHELASTIC_ERROR_FILE"
"""Set by torchrun for each process it starts: the file whose JSON ``message`` it reads
back when the process fails (:class:`torch.distributed.elastic.multiprocessing.errors.
ProcessFailure`)."""


def tell_launcher(error: WxensError, environ: Mapping[str, str] = os.environ) -> None:
    """In a process of :func:`launch`: hand its refusal ``error`` (exit 2) to the launcher
    through torchrun's error file, which says it once (:func:`launch`), and leave it unsaid
    here: each of N processes printed the same refusal, then the launcher said \"run the same
    command again to resume\". Nothing elsewhere (a torchrun by hand: every process says it).
    """
    path = environ.get(ERROR_FILE)
    if LAUNCHER_PID not in environ or not path or error.exit_code != 2 or error.silent:
        return
    with open(path, "w") as file:
        json.dump({"message": str(error), "timestamp": int(time.time()), "wxens": True}, file)
    error.silent = True


def launch(nproc: int, command: Sequence[str], checkpoint: str | None = None) -> int:
    """Run ``python command...`` in ``nproc`` processes on this machine through torchrun
    (``torch.distributed.run --standalone``: a free local rendezvous port); returns 0, or
    128 + the signal that stopped the launch (Ctrl-C raises KeyboardInterrupt, SIGTERM
    :class:`~pipeline.signals.Terminated`); raises the refusal of the process that refused
    its input first (:func:`tell_launcher`), as an :class:`InputError`, or
    :class:`ProcessFailed` when a process failed otherwise (``checkpoint``: the file the run
    resumes from, whose absence it says)."""
    if nproc < 1:
        raise InputError(f"--nproc must be at least 1, got {nproc}")
    if "WORLD_SIZE" in os.environ:
        raise InputError(
            "--nproc given inside a torchrun process; run either torchrun or --nproc, not both"
        )
    os.environ[LAUNCHER_PID] = str(os.getpid())  # the processes inherit it: follow_launcher
    # its records of the SIGTERM it sends and of the exit code it saw (ProcessFailed says
    # it), and of the error file a refusal left (tell_launcher: the launcher says it)
    records = [
        logging.getLogger(f"{TORCHRUN_LOGS}.{name}") for name in ("api", "errors.error_handler")
    ]
    levels = [logger.level for logger in records]
    for logger in records:
        logger.setLevel(logging.CRITICAL)
    try:
        torchrun(["--standalone", "--nproc_per_node", str(nproc), *command])
    except ChildFailedError as failed:
        error = ProcessFailed(failed, nproc, checkpoint)
        data = failed.failures[error.rank].error_file_data
        if failed.failures[error.rank].exitcode == 2 and data.get("wxens"):
            raise InputError(data["message"]) from None  # what one process says: once
        raise error from None
    except SignalException as stop:  # torchrun has stopped the processes: no traceback
        if stop.sigval == signal.SIGINT:
            raise KeyboardInterrupt from None  # Ctrl-C: the CLI says "interrupted", exit 130
        if stop.sigval == signal.SIGTERM:
            raise Terminated from None  # the CLI says "terminated (SIGTERM)", exit 143
        return 128 + int(stop.sigval)  # as a shell reports a process that signal stopped
    finally:  # not for what this process starts later
        del os.environ[LAUNCHER_PID]
        for logger, level in zip(records, levels, strict=True):
            logger.setLevel(level)
    return 0


class ProcessFailed(WxensError):
    """A process of a :func:`launch` failed and torchrun stopped the others (exit 1). Its
    message names the process and how it ended: torchrun raised this as an exception whose
    report the launch swallowed, so a rank killed (out of memory, ``kill -9``) ended the
    run with exit 1 and no word of which or why."""

    exit_code = 1

    def __init__(self, failed: ChildFailedError, nproc: int, checkpoint: str | None = None):
        failures = failed.failures

        def cause(rank: int) -> tuple[int, int, int]:
            # the root cause first: killed (not by torchrun's SIGTERM), then an error of its
            # own (2, a refused input), then exit 1 (a bug, or PeerLost: another one died)
            code = failures[rank].exitcode
            order = 3 if code == -signal.SIGTERM else 0 if code < 0 else 2 if code == 1 else 1
            return order, failures[rank].timestamp, rank

        self.rank = rank = min(failures, key=cause)
        code = failures[rank].exitcode
        how = f"was killed by {failures[rank].signal_name()}" if code < 0 else f"exited {code}"
        if code == 2:  # a refusal (said above): the same command is refused again
            then = "fix what it refused (above) and run the command again"
        elif checkpoint is not None and not os.path.exists(checkpoint):
            then = "no checkpoint was written: run the same command again to train"
        else:
            then = "the last checkpoint stays in --out: run the same command again to resume"
            then += " from it"
        super().__init__(
            f"process {rank} of {nproc} {how}, and torchrun stopped the others; {then}"
        )
