"""The cores this process may use (:func:`generators.device.usable_cores`): what sizes
``wxens train --nproc`` on the CPU and the loader workers of a GPU run alike."""

from __future__ import annotations

import os

import pytest
import torch

from generators.batch_ahead import MAX_WORKERS, loader_workers
from generators.device import usable_cores
from generators.distributed import World


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="no affinity mask here")
def test_the_cores_are_those_of_the_affinity_mask_not_the_machine():
    """``taskset -c 0`` (or a container's cpuset) gives the process one core of many."""
    before = os.sched_getaffinity(0)
    try:
        os.sched_setaffinity(0, {min(before)})
        assert usable_cores() == 1
        assert loader_workers(torch.device("cuda"), World(size=1)) == 0  # one left to the rank
    finally:
        os.sched_setaffinity(0, before)
    assert usable_cores() == len(before)


def test_without_an_affinity_mask_the_machines_cores_are_used(monkeypatch):
    """macOS has no ``os.sched_getaffinity``: ``wxens train --nproc`` counted the machine's
    cores there, while a GPU run's loader workers failed with an AttributeError."""
    monkeypatch.delattr(os, "sched_getaffinity", raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 4)
    assert usable_cores() == 4
    assert loader_workers(torch.device("cuda"), World(size=1)) == min(MAX_WORKERS, 3)
    assert loader_workers(torch.device("cuda"), World(size=2)) == 1  # 2 cores a rank
    monkeypatch.setattr(os, "cpu_count", lambda: None)  # undetermined
    assert usable_cores() == 1
