"""``--threads N`` bounds what the command starts, not only torch: a user sharing a machine
gives ``--threads 1`` and expects about one core busy."""

from __future__ import annotations

import dask
import pytest
import torch
import zarr

from flows.cluster import LocalClusterConfig, dask_client, local_cluster_config
from flows.threads import set_threads


@pytest.fixture
def restore_threads():
    """Put back what :func:`set_threads` changes, for the tests after this one."""
    torch_threads = torch.get_num_threads()
    zarr_workers = zarr.config.get("threading.max_workers")
    dask_workers = dask.config.get("num_workers", None)
    yield
    set_threads(None)
    torch.set_num_threads(torch_threads)
    zarr.config.set({"threading.max_workers": zarr_workers})
    dask.config.set(num_workers=dask_workers)


def test_threads_bound_torch_zarr_and_dask_threads(restore_threads):
    set_threads(1)
    assert torch.get_num_threads() == 1
    assert zarr.config.get("threading.max_workers") == 1
    assert dask.config.get("num_workers") == 1


def test_threads_give_the_local_cluster_one_worker_of_that_many_threads(restore_threads):
    assert local_cluster_config() == LocalClusterConfig()  # not given: the default, 2 x 1
    set_threads(3)
    config = local_cluster_config()
    assert (config.n_workers, config.threads_per_worker) == (1, 3)
    set_threads(None)
    assert local_cluster_config() == LocalClusterConfig()


def test_the_cluster_started_by_a_flow_task_has_the_bounded_shape(restore_threads):
    set_threads(1)
    with dask_client(None) as client:
        assert sum(client.nthreads().values()) == 1


@pytest.mark.parametrize("cluster", [[], ["--local-cluster"]])
def test_verify_takes_threads(monkeypatch, monthly_store, restore_threads, cluster):
    """wxens verify computes with dask's threads, one per core, or with --local-cluster on
    2 worker processes, and had no --threads to keep it to a share of a shared machine."""
    import verification.run
    from flows.cli import main

    seen = []

    def verify_store(*args, scheduler=None, **kwargs):
        seen.append((dask.config.get("num_workers"), local_cluster_config().n_workers))
        raise KeyboardInterrupt  # stop before any work

    monkeypatch.setattr(verification.run, "verify_store", verify_store)
    out = str(monthly_store.path.parent / "scores.nc")
    main(["verify", "f.zarr", "--truth", str(monthly_store.path), "--out", out, "--threads", "1",
          *cluster])  # fmt: skip
    assert seen == [(1, 1)]


def test_verify_threads_leave_torch_unloaded(tmp_path):
    """wxens verify loads no torch (1.1 s and 140 MB more at peak); --threads loaded it."""
    import subprocess
    import sys

    code = (
        "import sys; from flows.threads import set_threads; set_threads(1, torch=False); "
        "print('torch' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.stdout.strip() == "False", done.stderr


def test_the_log_counts_one_worker_and_one_thread_in_the_singular(caplog):
    """--threads 1 logged 'starting a dask LocalCluster: 1 workers x 1 threads'."""
    import logging

    caplog.set_level(logging.INFO, logger="flows.cluster")
    with dask_client(None, LocalClusterConfig(1, 1, processes=False)):
        pass
    assert "starting a dask LocalCluster: 1 worker x 1 thread (threads)" in caplog.text


def test_the_bounded_cluster_workers_keep_zarr_codec_threads_to_n(restore_threads):
    """Its worker process read and wrote Zarr with a codec pool of one thread per core."""
    set_threads(1)
    with dask_client(None) as client:
        seen = client.run(lambda: __import__("zarr").config.get("threading.max_workers"))
    assert list(seen.values()) == [1]


@pytest.mark.parametrize(
    "argv",
    [
        ["ingest", "in.nc", "--store", "s.zarr"],
        ["baseline", "persistence", "--store", "s.zarr", "--train", "2000-01-01/2000-01-09"]
        + ["--init", "2000-01-10T00", "--lead", "6h", "--out", "b.zarr"],
        ["bias-correct", "f.zarr", "--truth", "s.zarr", "--out", "c.zarr", "--bias-weight", "0.2"],
        ["export", "s.zarr", "--out", "plain.zarr"],
    ],
    ids=lambda argv: argv[0],
)
def test_the_commands_that_read_and_write_stores_take_threads_first(
    argv, monkeypatch, tmp_path, capsys, restore_threads
):
    """ingest, baseline, bias-correct and export had no --threads, though they decode and
    compress on Zarr's codec pool and dask's threads: it is applied before anything else
    (here before the inputs, which do not exist, are found missing)."""
    import importlib

    from flows.cli import main

    applied = []
    command = importlib.import_module(f"flows.commands.{argv[0].replace('-', '_')}")
    monkeypatch.setattr(command, "set_threads", lambda n, torch=True: applied.append(n))
    monkeypatch.chdir(tmp_path)
    assert main([*argv, "--threads", "1"]) == 2
    assert applied == [1]
