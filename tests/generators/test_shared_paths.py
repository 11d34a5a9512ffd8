"""A split forecast whose workers or ranks see other files at its paths is refused before
any member is drawn. Each process here has a working directory of its own, and the paths
run through a link to ``/proc/self/cwd``: the same path names a different folder in each
process, as it does on machines without a shared file system."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from flows.cli import main as wxens
from generators.shared_paths import MARKER_PREFIX, marker_for, what_is_amiss
from tests.generators.test_rollout_shard import ROOT, cluster_of

from tiny import two_step_run


@pytest.fixture(scope="module")
def places(tmp_path_factory):
    """A checkpoint and analysis store, seen alike by every process; ``here``, a link to
    each process's own working directory; ``client`` (rank 0's) holds a copy of the run."""
    root = tmp_path_factory.mktemp("shared")
    store = two_step_run(root)
    (root / "here").symlink_to("/proc/self/cwd")
    for folder in ("client", "rank-0", "worker", "rank-1"):
        (root / folder).mkdir()
    shutil.copytree(root / "run", root / "client" / "run")
    return root, store.path


def forecast(root: Path, store: str, run: str = "here/run") -> list[str]:
    """``wxens forecast`` arguments whose output (and checkpoint ``run``) go through
    ``here``."""
    return [
        "forecast",
        *("--checkpoint", str(root / run), "--store", str(store)),
        *("--members", "2", "--init", "2000-01-02T00", "--lead", "12h"),
        *("--sampler", "euler:nfe=2", "--device", "cpu", "--no-progress"),
        *("--out", str(root / "here" / "out.zarr")),
    ]


def test_a_dask_worker_that_sees_other_files_at_the_paths_is_refused(places, monkeypatch, capsys):
    """The worker wrote the whole forecast into its own folder, and the forecast ended
    well: the store this machine reads did not exist. Now refused, naming the worker."""
    root, store = places
    monkeypatch.chdir(root / "worker")  # the worker process starts here
    with cluster_of(1) as cluster:
        monkeypatch.chdir(root / "client")
        [worker] = cluster.scheduler_info["workers"]
        code = wxens([*forecast(root, store), "--dask-scheduler", cluster.scheduler_address])
    said = capsys.readouterr().err
    assert code == 2, said
    refused = f"dask worker {worker} does not see this machine's files: checkpoint="
    assert f"{refused} (--checkpoint) {root}/here/run" in said
    assert f"out= (--out): the marker {root}/here/{MARKER_PREFIX}" in said
    assert "mount one shared file system at the same path on every machine" in said
    assert "leave dask_scheduler= (--dask-scheduler) out" in said
    assert os.listdir(root / "worker") == []  # nothing drawn into the worker's own folder
    assert not [n for n in os.listdir(root / "client") if n.startswith(MARKER_PREFIX)]


def test_a_torchrun_rank_that_sees_other_files_at_the_paths_is_refused(places):
    """Rank 1 wrote its initial times into its own folder, and the launch ended well (each
    rank loads the checkpoint: one it lacks was refused, if not why)."""
    root, store = places
    command = [*forecast(root, store, run="run"), "--init", "2000-01-02T00", "2000-01-02T12"]
    launch = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    done = subprocess.run(
        [*launch, "--nproc_per_node", "2", str(ROOT / "tests/generators/rank_cwd.py")]
        + [str(root), *command, "--batch-members", "2"],  # one initial time a rank
        env={**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode != 0, done.stderr[-3000:]
    host = os.uname().nodename
    refused = f"rank 1 on {host} does not see rank 0's files: out= (--out): the marker"
    assert f"{refused} {root}/here/{MARKER_PREFIX}" in done.stderr, done.stderr[-3000:]
    assert "or run every rank on one machine" in done.stderr, done.stderr[-3000:]
    assert os.listdir(root / "rank-1") == []
    assert not [n for n in os.listdir(root / "rank-0") if n.startswith(MARKER_PREFIX)]


def test_a_marker_rank_0_cannot_write_refuses_every_rank_at_once(places):
    """Rank 0 raised where it could not write the marker (a folder no one may write in),
    and the other ranks waited at the broadcast until the group's timeout. Now every rank
    raises the same InputError naming the folder and the fix. The tests run as root, whom a
    chmod does not stop: the marker goes in ``/sys``, which the kernel lets no one add a
    file to."""
    root, store = places
    with pytest.raises(OSError) as unwritable:  # EACCES here, EROFS where /sys is mounted ro
        Path("/sys/wxens-probe").write_text("")
    launch = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    done = subprocess.run(
        [*launch, "--nproc_per_node", "2", str(ROOT / "tests/generators/rank_marker.py")]
        + [str(root / "run"), str(store), "/sys/wxens-out.zarr"],
        env={**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    said = sorted(line for line in done.stdout.splitlines() if line.startswith("rank "))
    refusal = "InputError: out= (--out): cannot write the marker /sys/" + MARKER_PREFIX
    assert [line.split(": ", 1)[0] for line in said] == ["rank 0", "rank 1"], done.stderr[-3000:]
    assert all(line.split(": ", 1)[1].startswith(refusal) for line in said), said
    assert said[0].split(": ", 1)[1] == said[1].split(": ", 1)[1]  # the same message
    assert f"({unwritable.value.strerror})" in said[0]
    assert "in a folder this user can write" in said[0]


def test_urls_are_not_checked_an_object_store_is_the_same_from_everywhere(tmp_path):
    with marker_for("s3://bucket/out.zarr") as marker:
        assert marker is None
    assert what_is_amiss(None, {"store= (--store)": "s3://bucket/uk.zarr"}) == []
    assert what_is_amiss(None, {"store= (--store)": str(tmp_path / "uk.zarr")}) == [
        f"store= (--store) {tmp_path}/uk.zarr does not exist"
    ]
