"""A split forecast whose workers or ranks see other files at its paths is refused before
any member is drawn. Each process here has a working directory of its own, and the paths
run through a link to ``/proc/self/cwd``: the same path names a different folder in each
process, as it does on machines without a shared file system."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from flows.cli import main as wxens
from generators.checkpoint import load_checkpoint
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


def forecast(
    root: Path, store: str, run: str = "here/run", out: str = "here/out.zarr"
) -> list[str]:
    """``wxens forecast`` arguments whose output ``out`` (and checkpoint ``run``) go through
    ``here`` by default."""
    return [
        "forecast",
        *("--checkpoint", str(root / run), "--store", str(store)),
        *("--members", "2", "--init", "2000-01-02T00", "--lead", "12h"),
        *("--sampler", "euler:nfe=2", "--device", "cpu", "--no-progress"),
        *("--out", str(root / out)),
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


@pytest.fixture(scope="module")
def other_worker(places):
    """A 1-worker :func:`cluster_of` whose worker starts in ``other``, which holds another
    checkpoint at ``run`` than ``client`` does (the run's, its step changed: another file);
    yields the cluster and the two checkpoints' digests (the client's, the other)."""
    root, _ = places
    other = load_checkpoint(root / "run").replace(step=3).save(root / "other" / "run" / "last.pt")
    cwd = os.getcwd()
    with contextlib.ExitStack() as stack:
        os.chdir(root / "other")  # the worker process starts here
        try:
            cluster = stack.enter_context(cluster_of(1))
        finally:
            os.chdir(cwd)
        yield cluster, load_checkpoint(root / "client" / "run").digest, other.digest


def test_a_dask_worker_that_loads_another_checkpoint_at_the_path_is_refused(
    places, other_worker, monkeypatch, capsys
):
    """The worker saw a checkpoint, the store and the marker at the paths, and drew its
    members from another model into this machine's store. Now its batch is refused,
    naming the worker, the checkpoint and both digests, before it writes."""
    root, store = places
    cluster, ours, theirs = other_worker
    monkeypatch.chdir(root / "client")
    [worker] = cluster.scheduler_info["workers"]
    address = cluster.scheduler_address
    code = wxens([*forecast(root, store, out="digest.zarr"), "--dask-scheduler", address])
    said = capsys.readouterr().err
    assert code == 2, said
    assert theirs != ours
    refused = f"dask worker {worker} does not see this machine's files: checkpoint="
    assert f"{refused} (--checkpoint) {root}/here/run/last.pt is another file" in said, said
    assert f"(sha256 {theirs}, not {ours})" in said
    assert "mount one shared file system at the same path on every machine" in said
    assert not (root / "digest.zarr").exists()  # nothing drawn from the other model
    assert not [n for n in os.listdir(root) if n.startswith(MARKER_PREFIX)]


def stopped_while_a_late_worker_joins(cluster, late: Path, joined: list) -> threading.Thread:
    """A thread (not started) that, once the worker of ``cluster`` is drawing a batch,
    stops it (SIGSTOP: busy, it leaves the next batch to the late worker), starts a ``dask
    worker`` process in ``late`` (appended to ``joined``, with its address), and lets the
    first worker go on (SIGCONT) once a task has failed."""
    scheduler = cluster.scheduler
    [(first, state)] = list(scheduler.workers.items())

    def drawing() -> bool:
        return any(t.state == "processing" for t in list(scheduler.tasks.values()))

    def stop_then_join() -> None:
        try:
            while True:  # stopped drawing one: not between two batches
                while not drawing():
                    time.sleep(0.01)
                os.kill(state.pid, signal.SIGSTOP)
                time.sleep(0.2)  # a batch it had ended just before is heard of
                if state.processing:
                    break
                os.kill(state.pid, signal.SIGCONT)
            command = [sys.executable, "-m", "distributed.cli.dask_worker", "--nthreads", "1"]
            joined.append(
                subprocess.Popen(
                    [*command, "--no-nanny", "--no-dashboard", cluster.scheduler_address],
                    cwd=late,
                    env={**os.environ, "PYTHONPATH": str(ROOT)},
                    stderr=subprocess.DEVNULL,
                )
            )
            deadline = time.monotonic() + 60
            while not any(t.state == "erred" for t in list(scheduler.tasks.values())):
                assert time.monotonic() < deadline
                time.sleep(0.05)
            joined.extend(set(scheduler.workers) - {first})
        finally:
            os.kill(state.pid, signal.SIGCONT)

    return threading.Thread(target=stop_then_join, daemon=True)


@pytest.mark.timeout(120)
def test_a_dask_worker_that_joins_after_the_check_is_refused(
    places, other_worker, monkeypatch, capsys
):
    """A worker that connected after the up-front check (a cluster scaled up mid-forecast)
    was never checked: with a copy of the checkpoint in its own folder, it wrote its
    batches into the store there, and the forecast ended well. Now its first batch is
    refused, naming it, and it writes nothing. The client here shares the first worker's
    folder; ``--recompute``: the client claims nothing, so a first worker stopped holding
    the store's lock holds up no one but the other writers."""
    root, store = places
    cluster, _, _ = other_worker
    late = root / "late"
    shutil.copytree(root / "other" / "run", late / "run")  # the checkpoint the client loads
    monkeypatch.chdir(root / "other")
    joined: list = []
    joining = stopped_while_a_late_worker_joins(cluster, late, joined)
    inits = ["--init", "2000-01-02T00/2000-01-02T18/6h", "--batch-members", "2", "--recompute"]
    address = ["--dask-scheduler", cluster.scheduler_address]
    try:
        joining.start()
        code = wxens([*forecast(root, store, out="here/late.zarr"), *inits, *address])
        joining.join(timeout=60)
    finally:
        for process in joined[:1]:
            process.terminate()
            process.wait(timeout=30)
    said = capsys.readouterr().err
    assert code == 2, said
    assert len(joined) == 2, joined  # the late worker's process, and its address
    refused = f"dask worker {joined[1]} does not see this machine's files: out= (--out)"
    assert f"{refused}: the marker {root}/here/{MARKER_PREFIX}" in said, said
    assert "is not there" in said
    assert os.listdir(late) == ["run"]  # nothing drawn into the late worker's own folder
    assert (root / "other" / "late.zarr").is_dir()  # the first worker's batch, here
    assert not [n for n in os.listdir(root / "other") if n.startswith(MARKER_PREFIX)]


def test_a_torchrun_rank_that_sees_other_files_at_the_paths_is_refused(places):
    """Rank 1 wrote its initial times into its own folder, and the launch ended well; and
    drew them from another model where its checkpoint at the path was another file. Each
    rank loads the checkpoint at ``here/run`` (one it lacks was refused, if not why):
    rank 0 a copy of the run, rank 1 the run with its step changed (another sha256)."""
    root, store = places
    shutil.copytree(root / "run", root / "rank-0" / "run")
    ours = load_checkpoint(root / "run").digest
    theirs = load_checkpoint(root / "run").replace(step=3).save(root / "rank-1/run/last.pt").digest
    command = [*forecast(root, store), "--init", "2000-01-02T00", "2000-01-02T12"]
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
    assert theirs != ours
    another = f"checkpoint= (--checkpoint) {root}/here/run/last.pt is another file"
    assert f"{another} (sha256 {theirs}, not {ours})" in done.stderr, done.stderr[-3000:]
    assert "or run every rank on one machine" in done.stderr, done.stderr[-3000:]
    assert "rank 0 on" not in done.stderr
    assert os.listdir(root / "rank-1") == ["run"]  # nothing drawn into its own folder
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
