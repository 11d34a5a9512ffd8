"""Where the networks run: the device named in a config or on the command line, and the
bfloat16 autocast used on CUDA (training and sampling alike)."""

from __future__ import annotations

import psutil
import torch

from pipeline.errors import InputError

DEVICES = "auto, cpu, cuda or cuda:N"
"""The device names wxens runs on, for messages."""


def resolve_device(name: str) -> torch.device:
    """``auto`` is CUDA when available, else CPU; ``cpu``, ``cuda``, ``cuda:N`` (and
    ``mps`` where PyTorch has it). Anything else, or a CUDA device this machine lacks, is
    an :class:`InputError` naming the device and the ones to use."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError, ValueError):
        raise InputError(f"device {name!r} is not a device name; use {DEVICES}") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise InputError(
                f"device {name!r} asked for but CUDA is not available; use device: auto or cpu"
            )
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            raise InputError(
                f"device {name!r}: this machine has {count} CUDA device(s), "
                f"cuda:0 to cuda:{count - 1}; use one of them, or auto"
            )
    elif device.type == "mps":
        if not torch.backends.mps.is_available():
            raise InputError(f"device {name!r}: MPS is not available here; use {DEVICES}")
    elif device.type != "cpu":
        raise InputError(f"device {name!r} is not supported by wxens; use {DEVICES}")
    return device


def autocast(device: torch.device, bf16: bool) -> torch.autocast:
    """bfloat16 autocast on CUDA when ``bf16``; a disabled context elsewhere."""
    return torch.autocast(
        device_type=device.type, dtype=torch.bfloat16, enabled=bf16 and device.type == "cuda"
    )


def available_memory(device: torch.device) -> tuple[int, int]:
    """(device, host) bytes free now: ``torch.cuda.mem_get_info`` on CUDA (0 for the CPU,
    whose arrays count against the host) and the host's available memory (psutil)."""
    host = int(psutil.virtual_memory().available)
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0]), host
    return 0, host
