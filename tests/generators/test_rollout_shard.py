"""Forecasts split over processes: two torchrun ranks (gloo) and a two-worker dask cluster
each write a store equal, members and provenance, to the one-process run with the seed."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import dask
import pandas as pd
import pytest
import xarray as xr
from distributed import Client, LocalCluster

from flows.cli import WXENS_LOGGERS
from flows.cli import main as wxens
from flows.commands.options import quiet_other_ranks
from generators.data.forecast import OWN_SHARD_LOGGER
from generators.rollout_deal import shard_init_times
from generators.rollout_shard import forecast_sharded
from pipeline.errors import InputError
from pipeline.forecast_store import open_forecast, provenance
from tests.flows.conftest import QUIET_CLUSTER
from tests.generators.worker_logs import heard, listen

from tiny import two_step_run

ROOT = Path(__file__).resolve().parents[2]
INITS = "2000-01-02T00/2000-01-02T18/6h"  # four initial times


@pytest.fixture(scope="module")
def one_process(tmp_path_factory):
    """A checkpoint of two training steps and its one-process forecast: 4 initial times x
    3 members, 2 initial times per batch (``--batch-members 6``)."""
    root = tmp_path_factory.mktemp("shard")
    store = two_step_run(root)
    command = [
        "forecast",
        *("--checkpoint", str(root / "run"), "--store", str(store.path), "--members", "3"),
        *("--init", INITS, "--lead", "12h", "--sampler", "euler:nfe=2", "--seed", "7"),
        *("--batch-members", "6", "--device", "cpu", "--no-progress"),
    ]
    assert wxens([*command, "--out", str(root / "one.zarr")]) == 0
    return root, command


@contextlib.contextmanager
def cluster_of(workers: int) -> Iterator[LocalCluster]:
    """A ``LocalCluster`` of ``workers`` worker processes of 1 thread, this checkout on their
    path, with :data:`QUIET_CLUSTER`'s settings (profiler off, slower tick and monitors: no
    test reads what those serve) to cut the CPU it spends besides the forecast."""
    with pytest.MonkeyPatch.context() as patch, dask.config.set(QUIET_CLUSTER):
        patch.setenv("PYTHONPATH", str(ROOT))  # the workers import this checkout
        with LocalCluster(
            n_workers=workers, threads_per_worker=1, dashboard_address=":0"
        ) as cluster:
            yield cluster


@pytest.fixture(scope="module")
def two_workers() -> Iterator[str]:
    """The address of a 2-worker :func:`cluster_of` shared by the tests that only draw on
    it, none scaling it, stopping a worker or timing its tasks: one start, and one import
    of the library a worker, instead of one a test."""
    with cluster_of(2) as cluster:
        yield cluster.scheduler_address


@pytest.fixture(scope="module")
def shared_one_worker() -> Iterator[LocalCluster]:
    """A 1-worker :func:`cluster_of` kept for the module (see :func:`one_worker`)."""
    with cluster_of(1) as cluster:
        yield cluster


@pytest.fixture
def one_worker(shared_one_worker) -> LocalCluster:
    """A 1-worker :func:`cluster_of` shared by the tests that watch its scheduler but
    neither scale it nor stop its worker: one start, and one import of the library in its
    worker, instead of one a test. Handed over once it holds no task of an earlier test
    and its one worker, so that what a test sees of the scheduler is its own forecast's."""
    scheduler = shared_one_worker.scheduler
    deadline = time.monotonic() + 60
    while scheduler.tasks or len(scheduler.workers) != 1:
        assert time.monotonic() < deadline, (dict(scheduler.tasks), scheduler.workers)
        time.sleep(0.05)
    return shared_one_worker


def assert_same_store(path: Path, reference: Path) -> None:
    sharded = open_forecast(path).load()
    assert sharded.sizes["init_time"] == 4
    xr.testing.assert_identical(sharded, open_forecast(reference).load())
    assert provenance(path) == provenance(reference)


def scaled_once_a_task_runs(cluster, workers: int) -> threading.Thread:
    """A thread (not started) that scales ``cluster`` to ``workers`` once a task of it is
    being processed: workers joining or leaving a forecast under way."""

    def scale() -> None:
        while not any(t.state == "processing" for t in list(cluster.scheduler.tasks.values())):
            time.sleep(0.05)
        cluster.scale(workers)

    return threading.Thread(target=scale, daemon=True)


def test_shards_deal_whole_batches_round_robin():
    inits = pd.date_range("2000-01-01", periods=7, freq="6h")
    shards = [shard_init_times(inits, rank, 2, per_batch=2) for rank in range(2)]
    assert list(shards[0]) == list(inits[[0, 1, 4, 5]])
    assert list(shards[1]) == list(inits[[2, 3, 6]])
    assert shard_init_times(inits[:2], 1, 2, per_batch=2).empty  # fewer batches than ranks
    with pytest.raises(InputError, match="shard 2 of 2"):
        shard_init_times(inits, 2, 2)


def torchrun(arguments: list[str]) -> subprocess.CompletedProcess:
    """``torchrun --nproc_per_node 2 -m flows.cli ARGUMENTS`` (gloo, on the CPU)."""
    launch = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    return subprocess.run(
        [*launch, "--nproc_per_node", "2", "-m", "flows.cli", *arguments],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_two_torchrun_ranks_write_the_one_process_store(one_process):
    """Rank 0 logs the forecast (how the initial times were dealt, the states read, the
    batches, the store): each INFO line came once per rank. The warning about the training
    period came once per rank too, each of its own shard: rank 0 says it once, of every
    initial time, as one process does."""
    root, command = one_process
    out = root / "ranks.zarr"
    done = torchrun([*command, "--out", str(out)])
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("4 initial times") == 1, done.stdout  # rank 0 reports alone
    lines = done.stderr.splitlines()
    dealt = "forecast: 4 initial times over 2 torchrun ranks (2 + 2)"
    assert f"INFO [rank 0] generators.rollout_shard: {dealt}" in lines, done.stderr
    assert not [line for line in lines if line.startswith("INFO [rank 1]")], done.stderr
    assert any(line.startswith("INFO [rank 0] generators.rollout: ") for line in lines)
    assert not [line for line in lines if line.startswith("WARNING [rank 1]")], done.stderr
    trained_on = "WARNING [rank 0] generators.in_sample: 4 of 4 initial times"
    assert sum(line.startswith(trained_on) for line in lines) == 1, done.stderr
    assert_same_store(out, root / "one.zarr")


def test_a_rank_other_than_0_keeps_its_errors_and_its_own_shards_warnings(monkeypatch, caplog):
    """A rank's warnings repeated rank 0's (the training period's, a checkpoint's): it now
    says its errors, and its warnings about initial times of its own shard, only."""
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    names = [*WXENS_LOGGERS, OWN_SHARD_LOGGER]
    levels = {name: logging.getLogger(name).level for name in names}
    generators = logging.getLogger("generators")  # Prefect's setup drops root handlers
    generators.addHandler(caplog.handler)
    try:
        quiet_other_ranks(verbose=False)
        logging.getLogger("generators.in_sample").warning("training period")
        logging.getLogger(OWN_SHARD_LOGGER).warning("NaN in this shard")
        logging.getLogger("generators.rollout_shard").error("rank 1 failed")
    finally:
        generators.removeHandler(caplog.handler)
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)
    said = [r.getMessage() for r in dict.fromkeys(caplog.records)]  # once, where root has it too
    assert said == ["NaN in this shard", "rank 1 failed"]


def test_a_rerun_deals_the_initial_times_left_to_every_rank(one_process):
    """After a sharded forecast in which rank 0 failed, rank 1 having drawn its own, a rerun
    dealt all four initial times again and each rank skipped its own: rank 0 drew what was
    left alone while rank 1 waited."""
    root, command = one_process
    out = root / "rerun.zarr"
    first = [*command, "--batch-members", "3", "--out", str(out)]  # one initial time a batch
    assert wxens([*first, "--init", "2000-01-02T06", "2000-01-02T18"]) == 0  # rank 1's
    done = torchrun(first)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "2 initial times over 2 torchrun ranks (1 + 1)" in done.stderr, done.stderr[-3000:]
    assert "already holds 2 of the 4 initial times" in done.stderr
    assert_same_store(out, root / "one.zarr")


def test_two_dask_workers_write_the_one_process_store(one_process, two_workers, caplog):
    root, command = one_process
    out = root / "workers.zarr"
    with caplog.at_level("INFO", logger="generators"):
        assert wxens([*command, "--out", str(out), "--dask-scheduler", two_workers]) == 0
    assert (
        "forecast: 4 initial times in 2 batches of up to 2 initial times, each to a dask worker "
        "as one is free (2 workers at the start)"
    ) in caplog.text, caplog.text
    assert_same_store(out, root / "one.zarr")


@pytest.mark.timeout(120)
def test_a_worker_that_joins_after_the_forecast_began_draws_batches(one_process, caplog):
    """A cluster of one worker, a second added once the first batch is under way: the
    work was dealt once, to the workers there at the start, and the second sat idle. Each
    batch is now a task of its own, handed to a free worker: both draw batches, and the
    store is the one-process store."""
    from distributed import get_task_stream

    root, command = one_process
    out = root / "joined.zarr"
    one_a_batch = [*command, "--batch-members", "3"]  # 4 batches of one initial time
    with cluster_of(1) as cluster:
        joining = scaled_once_a_task_runs(cluster, 2)
        with Client(cluster) as client, get_task_stream(client) as stream:
            joining.start()
            with caplog.at_level("INFO", logger="generators"):
                address = ["--dask-scheduler", cluster.scheduler_address]
                assert wxens([*one_a_batch, "--out", str(out), *address]) == 0
            joining.join(timeout=30)
    tasks = [task for task in stream.data if str(task["key"]).startswith("forecast_to_store")]
    drawn = [task["worker"] for task in tasks]
    assert len(drawn) == 4 and len(set(drawn)) == 2, stream.data
    assert "4 initial times in 4 batches of up to 1 initial time" in caplog.text, caplog.text
    assert "(1 worker at the start)" in caplog.text
    assert_same_store(out, root / "one.zarr")


def test_a_batch_result_is_let_go_as_its_task_ends(one_process, one_worker):
    """The client held every batch's result until the last ended: a worker that died
    late took the results it held with it, and dask drew them again (each rerun found its
    batch written and counted it 'written before a dask worker died'). Each result is
    taken as its task ends: the scheduler holds at most the one just ended."""
    root, command = one_process
    out = root / "let_go.zarr"
    one_a_batch = [*command, "--batch-members", "3"]  # 4 batches of one initial time
    held, done = [0], threading.Event()
    scheduler = one_worker.scheduler

    def count_the_results_held() -> None:
        while not done.is_set():
            tasks = list(scheduler.tasks.values())
            held[0] = max(held[0], sum(t.state == "memory" for t in tasks))
            time.sleep(0.01)

    counting = threading.Thread(target=count_the_results_held, daemon=True)
    counting.start()
    address = ["--dask-scheduler", one_worker.scheduler_address]
    assert wxens([*one_a_batch, "--out", str(out), *address]) == 0
    done.set()
    counting.join(timeout=10)
    assert 1 <= held[0] <= 2, held  # all 4 held until the end before
    assert_same_store(out, root / "one.zarr")


def test_workers_a_batch_leaves_idle_are_explained(one_process, two_workers, caplog):
    """3 initial times on 2 workers logged "(3 + 0)", read as a fault: the three made one
    batch, and a batch goes whole to one worker (so that the members are those one process
    draws). The line says so, and which batch members deal them 2 + 1; the store is still
    the one-process store."""
    root, command = one_process
    out = root / "one_batch.zarr"
    three = ["--init", "2000-01-02T00/2000-01-02T12/6h", "--batch-members", "9"]
    address = two_workers
    with caplog.at_level("INFO", logger="generators"):
        assert wxens([*command, *three, "--out", str(out), "--dask-scheduler", address]) == 0
    assert (
        "forecast: 3 initial times in 1 batch of up to 3 initial times, each to a dask worker as "
        "one is free (2 workers at the start: 1 batch of up to 3 initial times x 3 members, "
        "and one dask worker draws a batch whole, so that its members are "
        "those one process draws; batch members 6 deal them 2 + 1)"
    ) in caplog.text, caplog.text
    reference = open_forecast(root / "one.zarr").isel(init_time=slice(3)).load()
    xr.testing.assert_identical(open_forecast(out).load(), reference)
    assert provenance(out) == provenance(root / "one.zarr")


def said_and_heard(address: str, caplog, draw) -> tuple[list[str], list[str]]:
    """What the ``generators`` loggers said in this process (the client's) and in the workers
    of the cluster at ``address`` while ``draw(client)`` ran."""
    logger = logging.getLogger("generators")  # Prefect's logging setup drops root handlers
    logger.addHandler(caplog.handler)
    try:
        with Client(address) as client, caplog.at_level("INFO", logger="generators"):
            client.run(listen)
            draw(client)
            on_workers = [m for said in client.run(heard).values() for m in said]
    finally:
        logger.removeHandler(caplog.handler)
    return [r.getMessage() for r in dict.fromkeys(caplog.records)], on_workers


def test_a_dask_forecast_warns_of_the_training_period_on_the_client_once(
    one_process, two_workers, caplog
):
    """Initial times in the training period over dask were warned about by each worker's
    task, of its own batch, in the workers' logs, which the user's terminal (the client's)
    does not show. The client says it once, of every initial time asked; the workers, whose
    other lines are heard, do not."""
    root, command = one_process
    argv = [*command, "--out", str(root / "warned.zarr"), "--dask-scheduler", two_workers]
    said, on_workers = said_and_heard(two_workers, caplog, lambda _: wxens(argv))
    warned = [m for m in said if "of the training period" in m]
    assert len(warned) == 1, said
    assert warned[0].startswith("4 of 4 initial times (2000-01-02T00:00 to 2000-01-02T18:00)")
    assert any(m.startswith("forecast: 2 initial times") for m in on_workers), on_workers
    assert not [m for m in on_workers if "training period" in m], on_workers


def test_a_dask_forecast_told_not_to_warn_of_the_training_period_does_not(
    one_process, two_workers, caplog
):
    """``warn_trained_on=False`` (the forecast flow, which says it once itself): neither the
    client nor its workers say it, so the flow's run does not say it twice."""
    root, _ = one_process
    args = (root / "run", root / "syn.zarr", pd.date_range("2000-01-02", periods=4, freq="6h"))
    options = dict(sampler="euler:nfe=2", device="cpu", batch_members=6, progress=False)

    def draw(client) -> None:
        out = str(root / "told.zarr")
        forecast_sharded(*args, [12.0], 3, out, client=client, warn_trained_on=False, **options)

    said, on_workers = said_and_heard(two_workers, caplog, draw)
    assert any(m.startswith("forecast: 4 initial times in 2 batches") for m in said), said
    assert any(m.startswith("forecast: 2 initial times") for m in on_workers), on_workers
    assert not [m for m in said + on_workers if "training period" in m], (said, on_workers)


def test_a_rank_that_fails_fails_the_launch_with_its_error(one_process):
    # rank 0 draws 2000-01-01T00, which has no history in the store; rank 1 has what it needs
    root, command = one_process
    command = [*command, "--init", "2000-01-01T00", "2000-01-02T00", "--batch-members", "3"]
    done = torchrun([*command, "--out", str(root / "failed.zarr")])
    assert done.returncode != 0  # within the timeout: rank 1 did not wait for rank 0
    errors = [line for line in done.stderr.splitlines() if "wxens forecast: error:" in line]
    assert errors and all("2000-01-01T00:00 lack the states" in e for e in errors)
    # rank 1 says rank 0's error in one line too, not as a RuntimeError's traceback
    assert len(errors) == 2 and any("rank 0 failed: " in e for e in errors), done.stderr
    assert "[rank1]: Traceback" not in done.stderr


def test_torchruns_variables_without_its_meeting_point_are_refused(
    one_process, monkeypatch, capsys
):
    """RANK, WORLD_SIZE and LOCAL_RANK set by hand without MASTER_ADDR: one line, exit 2,
    not torch's traceback."""
    root, command = one_process
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_RANK", "0")
    monkeypatch.setenv("MASTER_PORT", "29500")
    monkeypatch.delenv("MASTER_ADDR", raising=False)
    assert wxens([*command, "--out", str(root / "alone.zarr")]) == 2
    assert "MASTER_ADDR is not: start the processes with torchrun" in capsys.readouterr().err
    assert not (root / "alone.zarr").exists()


def test_a_world_size_without_a_rank_is_refused_as_training_refuses_it(monkeypatch):
    """WORLD_SIZE alone (left over in a shell) made `wxens forecast` run every initial
    time in one process without a word, where `wxens train` refuses it."""
    from generators.rollout_shard import launched_by_torchrun

    for name in ("RANK", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(InputError, match="WORLD_SIZE='2' is set but RANK=None is not a rank"):
        launched_by_torchrun()
    monkeypatch.delenv("WORLD_SIZE")
    assert not launched_by_torchrun()


def test_a_dask_rerun_deals_the_initial_times_left_to_every_worker(
    one_process, two_workers, caplog
):
    """As the ranks' rerun: after a worker had failed, the other having drawn its own, a
    rerun dealt all four initial times again, and the worker that held its shard already
    skipped it while the other drew the rest alone."""
    root, command = one_process
    out = root / "workers_rerun.zarr"
    first = [*command, "--batch-members", "3", "--out", str(out)]  # one initial time a batch
    assert wxens([*first, "--init", "2000-01-02T06", "2000-01-02T18"]) == 0  # worker 1's
    with caplog.at_level("INFO", logger="generators"):
        assert wxens([*first, "--dask-scheduler", two_workers]) == 0
    assert "2 initial times in 2 batches of up to 1 initial time" in caplog.text, caplog.text
    assert_same_store(out, root / "one.zarr")


def killed_after_its_first_commit() -> None:
    """Run on a dask worker (``Client.run``): the worker kills itself (SIGKILL) as soon as
    its first forecast commit is made, before its task ends; the nanny starts a fresh one."""
    import generators.rollout_store

    write = generators.rollout_store.write_forecast

    def written_then_killed(*args, **kwargs):
        write(*args, **kwargs)
        os.kill(os.getpid(), signal.SIGKILL)

    generators.rollout_store.write_forecast = written_then_killed


@pytest.mark.timeout(180)
def test_a_task_rerun_under_recompute_keeps_what_its_dead_worker_wrote(one_process, capsys):
    """--recompute over a store holding 1 of 4 initial times, one initial time a batch;
    the worker dies right after committing its first batch and dask reruns that task. The
    rerun drew the dead worker's initial time again (the same members, committed twice);
    it now keeps it, counted in the summary, and still draws the one held before the run."""
    from pipeline.transaction import commits

    root, command = one_process
    out = root / "recompute_died.zarr"
    one_a_batch = [*command, "--batch-members", "3", "--out", str(out)]
    assert wxens([*one_a_batch, "--init", "2000-01-02T12"]) == 0  # held before the run
    with cluster_of(1) as cluster:
        with Client(cluster) as client:
            client.run(killed_after_its_first_commit)
            address = ["--dask-scheduler", cluster.scheduler_address]
            assert wxens([*one_a_batch, "--recompute", *address]) == 0
    messages = [message for _, message, _ in commits(out)]
    inits = pd.date_range("2000-01-02", periods=4, freq="6h")
    drawn = {t: messages.count(f"forecast initial time {t:%Y-%m-%dT%H:%M}") for t in inits}
    assert list(drawn.values()) == [1, 1, 2, 1], messages  # 12 UTC: before and by this run
    assert "1 written by this run before a dask worker died" in capsys.readouterr().out
    assert_same_store(out, root / "one.zarr")


def test_the_summary_says_which_initial_times_a_dead_worker_wrote():
    """A dask worker died after writing 2 of its initial times; dask reran its task on
    another worker, which found them in the store and drew the other 3. The summary called
    the 2 "already in the store, kept (--recompute draws them again)", as if an earlier run
    had written them and they needed drawing again; 1 the store held before stays so."""
    from flows.commands.forecast import summary
    from generators.rollout_store import ForecastRun
    from pipeline.forecast_provenance import ForecastProvenance

    drawn = tuple(pd.date_range("2000-01-02", periods=3, freq="6h"))
    run = ForecastRun(
        "f.zarr", drawn, (6.0,), 2, ForecastProvenance("fm", "d", "euler:nfe=2", 2, 0), None
    )
    line = summary(dataclasses.replace(run, skipped=1, written_before_a_worker_died=2))
    assert line.startswith("f.zarr: 3 initial times x 2 members x 1 lead (euler, NFE 2"), line
    assert line.endswith(
        "; 2 written by this run before a dask worker died, kept in the store (the rerun of "
        "its task drew only the missing ones); 1 already in the store, kept (--recompute "
        "draws them again)"
    ), line
    assert "died" not in summary(dataclasses.replace(run, skipped=1))
    retired = summary(dataclasses.replace(run, written_before_a_worker_retired=2))
    assert retired.endswith(
        "; 2 written by this run before a dask worker retired, kept in the store"
    ), retired
    assert "died" not in retired
    assert summary(run).endswith("seed 0, uncalibrated)")


def test_a_failing_rank_says_its_error_before_it_waits_for_the_others(
    one_process, monkeypatch, caplog
):
    """The docs: a rank whose input is refused prints its error at once, then waits for the
    others to finish their own initial times; not only when they have all finished."""
    import generators.rollout_shard as shard

    said_before_waiting = []

    class World:  # two ranks, already joined; this is rank 0
        is_initialized = staticmethod(lambda: True)
        get_rank = staticmethod(lambda: 0)
        get_world_size = staticmethod(lambda: 2)
        broadcast_object_list = staticmethod(lambda objects, src: None)

        @staticmethod
        def all_gather_object(runs, run):  # where rank 0 waits for rank 1
            said_before_waiting.append("refused here" in caplog.text)
            runs[:] = [run, None]

    def refused(*args, **kwargs):
        raise InputError("refused here")

    monkeypatch.setattr(shard, "dist", World)
    # each rank loads the checkpoint; paths "s", "o" name no files: the check of them (and
    # of the checkpoint's sha256) is test_shared_paths.py's and test_train_ddp.py's
    monkeypatch.setattr(shard, "check_ranks_see", lambda checkpoint, store, out, digest: None)
    monkeypatch.setattr(shard, "left_to_draw", lambda inits, out, options: inits)
    monkeypatch.setattr(shard, "forecast_to_store", refused)
    monkeypatch.setenv("LOCAL_RANK", "0")
    inits, run = pd.date_range("2000-01-02", periods=2, freq="6h"), one_process[0] / "run"
    with caplog.at_level("INFO", logger="generators"):
        with pytest.raises(InputError, match="refused here"):
            shard._forecast_on_ranks(run, "s", inits, [6.0], 3, "o", device="cpu")
    assert said_before_waiting == [True]


@contextlib.contextmanager
def dask_processes(root: Path, *which: str) -> Iterator[str]:
    """Real ``dask scheduler`` (and ``dask worker``) processes on 127.0.0.1, this checkout
    on their path, stopped after the block; yields the scheduler's address."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    file = root / f"scheduler-{time.monotonic_ns()}.json"
    started = []
    try:
        for kind in which:
            command = [sys.executable, "-m", f"distributed.cli.dask_{kind}", "--host", "127.0.0.1"]
            command += ["--scheduler-file", str(file), "--no-dashboard"]
            command += ["--port", "0"] if kind == "scheduler" else ["--nthreads", "1"]
            started.append(subprocess.Popen(command, env=env, stderr=subprocess.DEVNULL))
            while kind == "scheduler" and not file.exists():
                assert started[0].poll() is None, "dask scheduler did not start"
                time.sleep(0.1)
        yield json.loads(file.read_text())["address"]
    finally:
        for process in reversed(started):
            process.terminate()
            process.wait(timeout=30)


@pytest.mark.timeout(90)  # it waited for good
def test_a_scheduler_without_workers_is_refused_after_a_bounded_wait(
    one_process, monkeypatch, caplog, capsys
):
    """A scheduler no worker had connected to: the forecast logged its initial times dealt
    "over 1 dask worker (1)" and waited for good, silently. It says it waits, for a bounded
    time, then stops with the address and how to start a worker; nothing written."""
    from flows import cluster as flows_dask

    root, command = one_process
    monkeypatch.setattr(flows_dask, "WORKER_WAIT_S", 2, raising=False)
    with dask_processes(root, "scheduler") as address:
        with caplog.at_level("INFO", logger="flows.cluster"):
            started = time.monotonic()
            out = ["--out", str(root / "none.zarr"), "--dask-scheduler", address]
            assert wxens([*command, *out]) == 2
    assert time.monotonic() - started < 30
    assert f"waiting for a dask worker at {address} (up to 2 s)" in caplog.text
    err = capsys.readouterr().err
    assert f"no dask worker connected to the scheduler at '{address}' in 2 s" in err, err
    assert f"`dask worker {address}`" in err
    assert not (root / "none.zarr").exists()


def test_a_worker_that_connects_while_the_forecast_waits_draws_it(one_process, caplog):
    root, command = one_process
    out = root / "late_worker.zarr"
    with dask_processes(root, "scheduler", "worker") as address:  # the worker starts late
        with caplog.at_level("INFO"):
            assert wxens([*command, "--out", str(out), "--dask-scheduler", address]) == 0
    assert f"waiting for a dask worker at {address}" in caplog.text  # it had not connected
    assert "4 initial times in 2 batches" in caplog.text
    assert "(1 worker at the start)" in caplog.text
    assert_same_store(out, root / "one.zarr")


@pytest.mark.timeout(120)  # it waited for good
def test_a_forecast_whose_workers_all_left_stops_naming_the_scheduler(
    one_process, monkeypatch, capsys
):
    """Every worker of the cluster gone mid-run (killed, scaled down): the batches stayed
    queued on the scheduler and the forecast waited for good, silently. It waits a bounded
    time for a worker, then stops, exit 2, naming the scheduler and how to go on; what was
    written is a valid store."""

    import generators.rollout_dask
    from pipeline.forecast_store import complete_init_times

    root, command = one_process
    out = root / "workers_gone.zarr"
    monkeypatch.setattr(generators.rollout_dask, "WORKERS_GONE_S", 2)
    with cluster_of(1) as cluster:
        scaled_once_a_task_runs(cluster, 0).start()
        address = cluster.scheduler_address
        one_a_batch = [*command, "--batch-members", "3", "--out", str(out)]
        assert wxens([*one_a_batch, "--dask-scheduler", address]) == 2
    err = capsys.readouterr().err
    assert f"every dask worker at '{address}' left and none connected in 2 s" in err, err
    assert f"`dask worker {address}` and rerun the same command" in err
    if out.exists():  # what a worker wrote before it left stays readable
        inits = pd.date_range("2000-01-02", periods=4, freq="6h")
        assert set(complete_init_times(out)) <= set(inits)


def test_batches_are_not_handed_out_after_one_failed(one_process, one_worker, capsys):
    """A sampler only the workers parse, refused: every batch was handed out, and failed,
    after the first had (an analysis store moved away mid-run: every batch left). The
    batches left are not handed out; the error is said once, exit 2."""
    from distributed import get_task_stream

    root, command = one_process
    out = root / "refused.zarr"
    one_a_batch = [*command, "--batch-members", "3", "--sampler", "euler:nfe=0"]  # 4 batches
    with Client(one_worker) as client, get_task_stream(client) as stream:
        address = ["--dask-scheduler", one_worker.scheduler_address]
        assert wxens([*one_a_batch, "--out", str(out), *address]) == 2
    tasks = [task for task in stream.data if str(task["key"]).startswith("forecast_to_store")]
    assert len(tasks) == 1, stream.data
    err = capsys.readouterr().err
    assert err.count("euler sampler: nfe must be at least 1, got 0") == 1, err


def test_a_worker_that_left_is_told_apart_from_one_that_joined():
    """A batch a task finds written when it begins was written by the worker that died
    drawing it only if a worker left: written by another forecast into the store, it was
    counted 'written before a dask worker died' though none had."""

    from generators.rollout_dask import _Ended

    with LocalCluster(n_workers=1, processes=False, dashboard_address=":0") as cluster:
        with Client(cluster) as client:
            ended = _Ended(client, bar=None, first_ended=lambda: None)
            cluster.scale(2)
            client.wait_for_workers(2, timeout=30)
            assert len(ended._seen_workers()) == 2  # one joined
            assert not ended.a_worker_died and not ended.a_worker_retired


def test_a_retired_worker_is_told_apart_from_one_that_died():
    """A worker scaled down (retired by the scheduler, as an autoscaler does) counted as
    dead: the initial times its moved task found written were 'written by this run before
    a dask worker died'. The scheduler's removal event says whether it expected it."""

    from generators.rollout_dask import _Ended

    with cluster_of(3) as cluster:
        with Client(cluster) as client:
            client.wait_for_workers(3, timeout=30)
            ended = _Ended(client, bar=None, first_ended=lambda: None)
            retiring, killed, _ = sorted(client.nthreads())
            client.retire_workers([retiring])
            ended._seen_workers()
            assert ended.a_worker_retired and not ended.a_worker_died
            os.kill(client.run(os.getpid, workers=[killed])[killed], signal.SIGKILL)
            deadline = time.monotonic() + 30
            while killed in client.nthreads():
                assert time.monotonic() < deadline
                time.sleep(0.1)
            ended._seen_workers()
            assert ended.a_worker_died


def test_the_workers_are_asked_of_the_scheduler_not_of_the_clients_cache():
    """`Client.scheduler_info()` returns the client's cache, which its own refresh (every
    2 s) leaves without workers: a dask forecast read that as every worker gone and warned
    so, its workers busy and present (the qa probe). Here the refresh runs every 5 ms,
    where one read in about 40 of the cache found no worker."""
    import dask

    from generators.rollout_dask import _workers

    with dask.config.set({"distributed.client.scheduler-info-interval": "5ms"}):
        with LocalCluster(n_workers=1, processes=False, dashboard_address=":0") as cluster:
            with Client(cluster) as client:
                seen = [len(_workers(client)) for _ in range(3000)]
    assert set(seen) == {1}


def test_a_batch_is_claimed_only_when_a_worker_is_free_to_draw_it(one_process):
    """The next batch was claimed as soon as the last was handed out, then waited, claimed
    and undrawn, for a worker to be free: a second forecast into the store put it off,
    came back to it after its own batches, found it still claimed and not written, and
    drew it too. While the one worker draws the first batch, only that batch is claimed."""
    from pipeline.forecast_claims import read_claims

    root, command = one_process
    out = root / "claimed.zarr"
    one_a_batch = [*command, "--batch-members", "3", "--out", str(out)]  # 4 batches
    seen: dict[str, object] = {}
    with cluster_of(1) as cluster:

        def claims_while_the_first_batch_is_drawn() -> None:
            while not (tasks := [t for t in list(cluster.scheduler.tasks.values())
                                 if t.state == "processing"]):  # fmt: skip
                time.sleep(0.02)
            time.sleep(0.3)  # the client has gone on to the next batch by now
            claims = read_claims(out).values()
            seen["claimed"] = {t for claim in claims for t in claim["init_times"]}
            seen["still drawn"] = tasks[0].state == "processing"

        watching = threading.Thread(target=claims_while_the_first_batch_is_drawn, daemon=True)
        watching.start()
        assert wxens([*one_a_batch, "--dask-scheduler", cluster.scheduler_address]) == 0
        watching.join(timeout=30)
    assert seen["still drawn"], seen  # read while the first batch was drawn
    assert len(seen["claimed"]) == 1, seen  # 2 before: the next batch waited claimed
    assert_same_store(out, root / "one.zarr")
