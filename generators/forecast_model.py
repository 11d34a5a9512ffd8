"""A checkpoint's forecast network, built (and compiled, on CUDA) once per process.

The forecast flow draws each batch of initial times in a task of its own, and a dask
forecast hands each batch to a worker as one is free: every task loads the checkpoint, and
each built the network again and, on CUDA, compiled it again (``torch.compile``: tens of
seconds a batch on a GPU). :func:`forecast_network` keeps the last network it built, keyed
by the checkpoint file's digest, the device and whether it is compiled, so the next batch
of the same forecast in the same process (a Prefect worker, a dask worker) reuses it. One
network is kept: a forecast from another checkpoint frees the last one's memory.
"""

from __future__ import annotations

import threading

import torch

from generators.checkpoint import Checkpoint
from generators.objective import ResidualGenerator

_lock = threading.Lock()  # a dask worker runs tasks in threads
_kept: dict[tuple[str, str, bool], ResidualGenerator] = {}


def forecast_network(
    checkpoint: Checkpoint, device: torch.device, compile: bool
) -> ResidualGenerator:
    """The EMA network of ``checkpoint`` in eval mode on ``device``, compiled when
    ``compile`` and the device is CUDA (``backbone.compile(dynamic=False)``; compiled on the
    first batch). Built once for a checkpoint file (its digest) and device; a checkpoint
    made in memory, with no digest, is built each time."""
    compiled = compile and device.type == "cuda"
    if not checkpoint.digest:
        return _built(checkpoint, device, compiled)
    key = (checkpoint.digest, str(device), compiled)
    with _lock:
        if key not in _kept:
            _kept.clear()  # one network held at a time
            _kept[key] = _built(checkpoint, device, compiled)
        return _kept[key]


def _built(checkpoint: Checkpoint, device: torch.device, compiled: bool) -> ResidualGenerator:
    return prepared(checkpoint.build_model(device=device), device, compiled)


def prepared(model: torch.nn.Module, device: torch.device, compile: bool) -> torch.nn.Module:
    """``model`` in eval mode on ``device``, its backbone compiled when ``compile`` and the
    device is CUDA (on a CPU compiling made the small models slower)."""
    model = model.to(device).eval()
    if compile and device.type == "cuda":
        model.backbone.compile(dynamic=False)  # compiled on the first batch
    return model
