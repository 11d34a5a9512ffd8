"""Where the networks run: the device named in a config or on the command line, and the
bfloat16 autocast used on CUDA (training and sampling alike), and the host's cores and
memory this process may use."""

from __future__ import annotations

import os
from pathlib import Path

import psutil
import torch

from generators.device_names import DEVICES, check_device_name
from pipeline.errors import InputError


def resolve_device(name: str, option: str = "device:") -> torch.device:
    """``auto`` is CUDA when available, else CPU; ``cpu``, ``cuda``, ``cuda:N`` (and
    ``mps`` where PyTorch has it). Anything else, or a CUDA device this machine lacks, is
    an :class:`InputError` naming the device and the ones to use, as ``option`` (how the
    user gave it: ``device:`` in a config, ``--device`` on the command line)."""
    check_device_name(name, option)  # the name, as a config is checked: then this machine
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    given = f"{option} {name!r}"
    device = torch.device(name)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise InputError(
                f"{given} asked for but CUDA is not available; use {option} auto or cpu"
            )
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            raise InputError(
                f"{given}: this machine has {count} CUDA device(s), "
                f"cuda:0 to cuda:{count - 1}; use one of them, or auto"
            )
    elif device.type == "mps" and not torch.backends.mps.is_available():
        raise InputError(f"{given}: MPS is not available here; use {DEVICES}")
    return device


def autocast(device: torch.device, bf16: bool) -> torch.autocast:
    """bfloat16 autocast on CUDA when ``bf16``; a disabled context elsewhere."""
    return torch.autocast(
        device_type=device.type, dtype=torch.bfloat16, enabled=bf16 and device.type == "cuda"
    )


def usable_cores() -> int:
    """The CPU cores this process may run on: its affinity mask where the system has one
    (Linux: the cores a container or ``taskset`` gives it, fewer than the machine's), else
    the machine's count; at least 1. What ``--nproc`` on the CPU and the loader workers of
    a GPU run are sized by."""
    if hasattr(os, "sched_getaffinity"):  # not on macOS or Windows
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


def available_memory(device: torch.device) -> tuple[int, int]:
    """(device, host) bytes free now: ``torch.cuda.mem_get_info`` on CUDA (0 for the CPU,
    whose arrays count against the host) and the host's available memory (psutil), bounded
    by this process's cgroup limit in a container (:func:`cgroup_room`)."""
    host = int(psutil.virtual_memory().available)
    try:
        room = cgroup_room(Path("/proc/self/cgroup").read_text())
    except OSError:  # not Linux, or no /proc
        room = None
    host = host if room is None else min(host, room)
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0]), host
    return 0, host


CGROUP_V2 = Path("/sys/fs/cgroup")
CGROUP_V1 = Path("/sys/fs/cgroup/memory")
UNLIMITED = 2**60
"""Above this, a cgroup v1 limit means none (it reads 9223372036854771712)."""


def cgroup_room(cgroups: str, root: Path = CGROUP_V2, v1_root: Path = CGROUP_V1) -> int | None:
    """Bytes this process's memory cgroups (``cgroups``: the text of /proc/self/cgroup) and
    their parents let it take still: the least over those with a limit of the limit less
    the usage, the reclaimable page cache (``inactive_file``) not counted as used; None
    where none has a limit (or they cannot be read). psutil reports the machine's memory,
    which in a container can be many times what its limit allows."""
    rooms = []
    for line in cgroups.splitlines():
        if line.count(":") < 2:
            continue
        _, controllers, path = line.split(":", 2)
        if controllers == "":  # v2
            files, base = ("memory.max", "memory.current"), root
        elif "memory" in controllers.split(","):
            files, base = ("memory.limit_in_bytes", "memory.usage_in_bytes"), v1_root
        else:
            continue
        group = base / path.lstrip("/")
        while True:
            rooms.append(_room(group, *files))
            if group == base or base not in group.parents:
                break
            group = group.parent
    found = [r for r in rooms if r is not None]
    return min(found) if found else None


def _room(group: Path, limit_file: str, usage_file: str) -> int | None:
    try:
        limit = (group / limit_file).read_text().strip()
        if limit == "max" or int(limit) >= UNLIMITED:
            return None
        used = int((group / usage_file).read_text())
    except (OSError, ValueError):
        return None
    try:
        stat = dict(line.split() for line in (group / "memory.stat").read_text().splitlines())
        used -= int(stat.get("inactive_file", stat.get("total_inactive_file", 0)))
    except (OSError, ValueError):
        pass
    return max(0, int(limit) - used)
