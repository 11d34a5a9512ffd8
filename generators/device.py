"""Where the networks run: the device named in a config or on the command line, and the
bfloat16 autocast used on CUDA (training and sampling alike)."""

from __future__ import annotations

import torch

from pipeline.errors import InputError


def resolve_device(name: str) -> torch.device:
    """``auto`` is CUDA when available, else CPU; anything else as torch reads it."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InputError(
            f"device {name!r} asked for but CUDA is not available; use device: auto or cpu"
        )
    return device


def autocast(device: torch.device, bf16: bool) -> torch.autocast:
    """bfloat16 autocast on CUDA when ``bf16``; a disabled context elsewhere."""
    return torch.autocast(
        device_type=device.type, dtype=torch.bfloat16, enabled=bf16 and device.type == "cuda"
    )
