"""The host memory a step may take inside a container: its cgroup's memory limit, not the
machine's free memory that /proc/meminfo (psutil) reports. A derived batch fitted to a
256 GiB host's memory in an 8 GiB container is killed at its first fine-tune step."""

from __future__ import annotations

import torch

import generators.device
from generators.device import available_memory, cgroup_room


def test_a_cgroup_v2_limit_bounds_the_memory_available(tmp_path):
    group = tmp_path / "kubepods" / "pod1"
    group.mkdir(parents=True)
    (tmp_path / "memory.max").write_text("max\n")  # the root: no limit
    (tmp_path / "kubepods" / "memory.max").write_text(f"{64 * 2**30}\n")
    (tmp_path / "kubepods" / "memory.current").write_text(f"{10 * 2**30}\n")
    (group / "memory.max").write_text(f"{8 * 2**30}\n")
    (group / "memory.current").write_text(f"{3 * 2**30}\n")
    (group / "memory.stat").write_text(f"anon 1000\ninactive_file {2**30}\n")
    cgroups = "0::/kubepods/pod1\n"
    # 8 GiB less the 2 GiB in use (the inactive page cache can be reclaimed)
    assert cgroup_room(cgroups, tmp_path, v1_root=tmp_path / "none") == 6 * 2**30


def test_a_cgroup_v1_limit_bounds_the_memory_available(tmp_path):
    group = tmp_path / "docker" / "abc"
    group.mkdir(parents=True)
    (group / "memory.limit_in_bytes").write_text(f"{4 * 2**30}\n")
    (group / "memory.usage_in_bytes").write_text(f"{2**30}\n")
    (tmp_path / "memory.limit_in_bytes").write_text("9223372036854771712\n")  # unlimited
    (tmp_path / "memory.usage_in_bytes").write_text(f"{100 * 2**30}\n")
    cgroups = "12:pids:/\n4:memory:/docker/abc\n0::/\n"
    assert cgroup_room(cgroups, tmp_path / "none", v1_root=tmp_path) == 3 * 2**30
    # no limit anywhere: nothing to bound
    assert cgroup_room("4:memory:/\n", tmp_path / "none", v1_root=tmp_path / "none") is None


def test_the_host_memory_is_the_least_of_the_machine_s_and_the_cgroup_s(monkeypatch):
    monkeypatch.setattr(generators.device, "cgroup_room", lambda *args, **kw: 2**30)
    assert available_memory(torch.device("cpu")) == (0, 2**30)
