"""Data-parallel training: two gloo processes started by ``wxens train --nproc 2`` (torchrun)
take the optimiser steps of one process on the same global batch, rank 0 alone writes, and
their checkpoint resumes in one process."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import torch
import torch.multiprocessing as mp
from torch.distributed.elastic.multiprocessing.errors import ChildFailedError, ProcessFailure

from flows.cli import main as wxens
from generators.checkpoint import load_checkpoint
from generators.config import load_train_config
from generators.distributed import (
    ProcessFailed,
    World,
    shard_seed,
    world_from_env,
)
from generators.shared_paths import MARKER_PREFIX
from generators.train import Trainer, learning_rate, train
from pipeline.errors import InputError
from pipeline.store import ingest
from tests.generators.ranks_disagree import DIGESTS, disagreeing_rank

ROOT = Path(__file__).resolve().parents[2]
CONFIG = """\
model: {kind: flow_matching, backbone: {widths: [8, 16], attention_heads: 0, embedding_dim: 16}}
data: {channels: [t2m], history: 2, leads: [1], train: {end: 2000-02-10}}
optim: {lr: 1.0e-3, warmup_steps: 2}
steps: 3
batch_size: 4
ema_decay: 0.9
checkpoint_every: 3
validate_every: 1
device: cpu
"""


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return ingest(
        "synthetic:n_lat=8,n_lon=8,n_times=160,step=6h,seed=3",
        tmp_path_factory.mktemp("ddp") / "syn.zarr",
        variables=["t2m"],
        progress=False,
    )


def reference_steps(trainer: Trainer, steps: range, world_size: int) -> None:
    """``steps`` optimiser steps in this one process on the global batch of ``world_size``
    ranks: the mean of the shards' losses, one backward, clip, AdamW, EMA (plain torch,
    no process group)."""
    config = trainer.config
    for step in steps:
        trainer.optimizer.zero_grad(set_to_none=True)
        for group in trainer.optimizer.param_groups:
            group["lr"] = learning_rate(config, step)
        trainer.model.train()
        for rank in range(world_size):
            batch, generator = trainer.shard(step, rank, config.batch_size // world_size)
            (trainer.model.loss(batch, generator=generator) / world_size).backward()
        torch.nn.utils.clip_grad_norm_(trainer.model.parameters(), config.optim.grad_clip)
        trainer.optimizer.step()
        trainer.ema.update(trainer.model, step)


def assert_same_weights(state: dict, module: torch.nn.Module) -> None:
    expected = module.state_dict()
    assert state.keys() == expected.keys()
    for name, value in state.items():
        torch.testing.assert_close(value, expected[name], rtol=1e-4, atol=1e-6, msg=name)


@pytest.fixture(scope="module")
def nproc_run(store, tmp_path_factory) -> tuple[subprocess.CompletedProcess, Path, Path]:
    """One `wxens train --nproc 2` of :data:`CONFIG`, shared by the tests that only read
    what it printed and wrote (a launch is two torch processes started: tens of seconds on
    2 cores): its finished process, its OUT and its config's path."""
    root = tmp_path_factory.mktemp("nproc")
    config_path = root / "c.yaml"
    config_path.write_text(CONFIG)
    out = root / "ddp"
    env = os.environ | {"PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    env.pop("WORLD_SIZE", None)
    command = [sys.executable, "-m", "flows.cli", "train", "--store", str(store.path)]
    command += ["--config", str(config_path), "--out", str(out), "--nproc", "2", "--no-progress"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    return done, out, config_path


def test_two_processes_train_like_one_on_the_global_batch_and_resume_in_one(
    store, nproc_run, tmp_path
):
    done, trained, config_path = nproc_run
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("checkpoint ") == 1  # rank 0 alone prints
    out = tmp_path / "ddp"  # a copy: the resume below writes into it
    shutil.copytree(trained, out)
    log_lines = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log_lines] == [1, 2, 3]  # rank 0 alone logs
    assert all(r["validation_loss"] is None for r in log_lines)  # no validation period

    config = load_train_config(config_path)
    reference = Trainer(store, config, tmp_path / "reference", resume=False)
    first, second = (reference.shard(0, rank, 2)[0].target for rank in (0, 1))
    assert not torch.equal(first, second)  # the ranks draw distinct samples
    reference_steps(reference, range(3), world_size=2)
    checkpoint = load_checkpoint(out)
    assert checkpoint.step == 3
    assert_same_weights(checkpoint.model_state, reference.model)
    assert_same_weights(checkpoint.ema_state, reference.ema.module)

    # resumed by one process: steps 3 and 4 on the whole global batch, drawn as rank 0's
    config5 = load_train_config(config_path, ["steps=5"])
    result = train(store, config5, out, progress=False, world=World())
    assert result.step == 5
    reference.config = config5
    reference_steps(reference, range(3, 5), world_size=1)
    assert_same_weights(load_checkpoint(out).model_state, reference.model)


def test_nproc_refuses_a_batch_that_does_not_split_and_a_missing_store(store, tmp_path, capsys):
    config_path = tmp_path / "c.yaml"
    config_path.write_text(CONFIG)
    args = ["train", "--store", str(store.path), "--config", str(config_path)]
    args += ["--out", str(tmp_path / "x"), "--nproc", "3"]
    assert wxens(args) == 2
    assert "batch_size 4 does not split over 3 processes" in capsys.readouterr().err
    with pytest.raises(SystemExit) as refused:  # by the parser
        wxens(args[:-1] + ["0"])
    assert refused.value.code == 2
    assert "argument --nproc: must be at least 1, got 0" in capsys.readouterr().err
    args[2] = str(tmp_path / "missing.zarr")
    assert wxens(args[:-1] + ["2"]) == 2  # refused before any process starts
    assert "missing.zarr: no such store" in capsys.readouterr().err


def test_the_world_comes_from_torchruns_environment():
    assert world_from_env({}) == World(0, 1, 0)
    world = world_from_env({"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1"})
    assert (world.rank, world.size, world.local_rank, world.is_main) == (3, 4, 1, False)
    with pytest.raises(InputError, match="RANK=None is not a rank"):
        world_from_env({"WORLD_SIZE": "2"})
    # rank 0 draws what one process always drew; the shards of a step differ
    assert shard_seed(5, 7, 0) == 5 * 1_000_003 + 7
    # distinct in the low 32 bits, the only ones a torch generator keeps
    seeds = [shard_seed(5, 7, r) for r in range(4)] + [shard_seed(5, 8, 0)]
    assert len({s % 2**32 for s in seeds}) == 5


def test_ranks_that_disagree_on_step_or_weights_stop(tmp_path):
    """Two gloo ranks at different steps, then with different weights: each rank gets the
    error naming the steps, then the one saying the weights differ (the ranks run
    :mod:`tests.generators.ranks_disagree`, light to import, not this module). Then, as the
    ranks of a split forecast, rank 1 with another checkpoint file at the path (its sha256):
    it drew members from another model; now each rank gets the error naming rank 1, the
    path and both digests."""
    rendezvous = f"file://{tmp_path / 'rendezvous'}"
    mp.spawn(disagreeing_rank, args=(rendezvous, str(tmp_path)), nprocs=2)
    ours, theirs = DIGESTS
    another = (
        f"rank 1 on {os.uname().nodename} does not see rank 0's files: checkpoint= "
        f"(--checkpoint) {tmp_path} is another file (sha256 {theirs}, not {ours}); "
    )
    for rank in (0, 1):
        errors = json.loads((tmp_path / f"rank{rank}.json").read_text())
        step_error, weights_error, checkpoint_error = errors
        assert "found runs/x at different steps [0, 3]" in step_error
        assert "the weights differ between the 2 ranks" in weights_error
        assert checkpoint_error.startswith(another), checkpoint_error
        assert "rank 0 on" not in checkpoint_error  # rank 0's own is the one compared to
        assert "or run every rank on one machine" in checkpoint_error
    assert not [n for n in os.listdir(tmp_path) if n.startswith(MARKER_PREFIX)]


def test_a_rank_without_torchruns_meeting_point_is_refused(store, tmp_path, monkeypatch):
    """RANK and WORLD_SIZE set by hand, without torchrun's MASTER_ADDR and MASTER_PORT:
    torch's own ValueError came out as a traceback."""
    for name in ("MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(name, raising=False)
    config_path = tmp_path / "c.yaml"
    config_path.write_text(CONFIG)
    with pytest.raises(InputError, match="MASTER_ADDR and MASTER_PORT are not: start"):
        train(store, load_train_config(config_path), tmp_path / "x", world=World(0, 2, 0))


def started_nproc_training(store, tmp_path: Path, **popen) -> tuple[subprocess.Popen, Path]:
    """`wxens train --nproc 2` of a long run, in a process of its own (``popen``: its
    keywords), once it has written its first checkpoint (or after 120 s); its OUT."""
    config_path = tmp_path / "c.yaml"
    config_path.write_text(CONFIG.replace("steps: 3", "steps: 100000"))
    out = tmp_path / "ddp"
    env = os.environ | {"PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    env.pop("WORLD_SIZE", None)
    command = [sys.executable, "-m", "flows.cli", "train", "--store", str(store.path)]
    command += ["--config", str(config_path), "--out", str(out), "--nproc", "2", "--no-progress"]
    launch = subprocess.Popen(command, env=env, **popen)
    deadline = time.monotonic() + 120
    while not (out / "last.pt").exists() and time.monotonic() < deadline:
        time.sleep(0.5)
    return launch, out


def test_ctrl_c_stops_nproc_training_as_interrupted_with_a_checkpoint(store, tmp_path):
    """Ctrl-C of `wxens train --nproc 2`: the launcher printed torchrun's SignalException
    traceback and exited 1, and rank 1 said it had written a checkpoint."""
    launch, out = started_nproc_training(
        store, tmp_path, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    os.killpg(launch.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
    _, stderr = launch.communicate(timeout=120)
    assert launch.returncode == 130, stderr[-3000:]
    assert "wxens train: interrupted" in stderr and "Traceback" not in stderr, stderr[-3000:]
    assert stderr.count("interrupted: step") == 1  # rank 0 alone writes
    assert load_checkpoint(out).step > 0


def test_the_processes_of_nproc_die_with_a_killed_launcher(store, tmp_path):
    """kill -9 of `wxens train --nproc 2` left both processes training on their own to the
    end, writing OUT/last.pt beside any rerun resumed there."""
    launch, _ = started_nproc_training(store, tmp_path, stderr=subprocess.DEVNULL)
    ranks = psutil.Process(launch.pid).children()
    assert len(ranks) == 2
    launch.kill()
    launch.wait()

    def gone(process: psutil.Process) -> bool:
        try:
            return process.status() == psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return True

    deadline = time.monotonic() + 30
    while not all(gone(r) for r in ranks) and time.monotonic() < deadline:
        time.sleep(0.5)
    alive = [r for r in ranks if not gone(r)]
    for rank in alive:  # this test's own processes, by id
        rank.kill()
    assert not alive, "the ranks outlived their launcher"


def test_threads_go_to_the_processes_without_torchruns_banner(store, tmp_path, monkeypatch):
    """`--nproc 2 --threads 1` printed torchrun's four-line warning that it set
    OMP_NUM_THREADS to 1 for each process, though --threads had said how many."""
    config_path = tmp_path / "c.yaml"
    config_path.write_text(CONFIG)
    monkeypatch.setenv("OMP_NUM_THREADS", "")  # so that teardown restores it
    monkeypatch.delenv("OMP_NUM_THREADS")
    seen = {}

    def launch(nproc, command, checkpoint=None):
        seen.update(threads=os.environ.get("OMP_NUM_THREADS"), command=command)
        return 0

    monkeypatch.setattr("generators.distributed.launch", launch)
    args = ["train", "--store", str(store.path), "--config", str(config_path)]
    assert wxens([*args, "--out", str(tmp_path / "x"), "--nproc", "2", "--threads", "1"]) == 0
    assert seen["threads"] == "1" and "--threads" in seen["command"]


def test_a_killed_rank_stops_nproc_training_naming_it_in_one_line(store, tmp_path):
    """kill -9 of one process of `wxens train --nproc 2`: the launcher exited 1 without a
    word of which process or why (torchrun's report was swallowed), after rank 0 printed
    gloo's 37-line traceback ending "GLHF!"."""
    launch, out = started_nproc_training(store, tmp_path, stderr=subprocess.PIPE, text=True)
    ranks = sorted(psutil.Process(launch.pid).children(), key=lambda p: p.pid)
    assert len(ranks) == 2
    ranks[1].kill()  # this test's own process, by id
    _, stderr = launch.communicate(timeout=120)
    assert launch.returncode == 1, stderr[-3000:]
    assert "wxens train: error: process 1 of 2 was killed by SIGKILL" in stderr, stderr[-3000:]
    assert "run the same command again to resume" in stderr
    assert "Traceback" not in stderr and "GLHF" not in stderr, stderr[-3000:]
    # one line: not rank 0's "another process stopped" nor torchrun's own log records of
    # the SIGTERM it sent and the exit code it saw, before it
    assert stderr.count("error:") == 1, stderr[-3000:]
    assert "closing signal" not in stderr and "exitcode" not in stderr, stderr[-3000:]
    assert load_checkpoint(out).step > 0


def train_with_nproc(
    store, tmp_path: Path, nproc: int, *more: str
) -> subprocess.CompletedProcess:
    """``wxens train --nproc N`` of :data:`CONFIG` into ``tmp_path/o``, a process of its own
    (outside any launch: no WORLD_SIZE), one thread each; ``more``: further arguments."""
    config_path = tmp_path / "c.yaml"
    config_path.write_text(CONFIG)
    env = os.environ | {"PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    env.pop("WORLD_SIZE", None)
    command = [sys.executable, "-m", "flows.cli", "train", "--store", str(store.path)]
    command += ["--config", str(config_path), "--out", str(tmp_path / "o"), "--nproc", str(nproc)]
    return subprocess.run(
        [*command, *more], env=env, capture_output=True, text=True, timeout=300
    )


def test_nproc_training_logs_each_line_once(nproc_run):
    """`wxens train --nproc 2`: every INFO line (the states read, the steps) came once per
    process, alike, though rank 0 alone is to print; the checkpoint written is said once."""
    done = nproc_run[0]
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stderr.count("of states into memory") == 1, done.stderr
    assert done.stderr.count("checkpoint of step 3 written to") == 1, done.stderr


def test_a_refusal_in_the_processes_of_nproc_is_said_once_without_resume_advice(
    store, tmp_path
):
    """`wxens train --nproc 2 --set data.channels=[t2m,q]` (refused by the processes, on the
    store): each process printed the refusal, then the launcher said "process 0 of 2 exited
    2 ... the last checkpoint stays in --out: run the same command again to resume from it",
    though nothing was trained and the same command is refused again."""
    done = train_with_nproc(store, tmp_path, 2, "--set", "data.channels=[t2m,q]")
    assert done.returncode == 2, done.stderr[-3000:]
    assert done.stderr.count("has no channel(s) ['q']") == 1, done.stderr
    assert done.stderr.count("error:") == 1 and "resume" not in done.stderr, done.stderr
    assert "error.json" not in done.stderr, done.stderr  # torchrun's records of it


def test_a_failed_process_advises_a_resume_only_where_a_checkpoint_was_written(tmp_path):
    """A process of `wxens train --nproc 2` killed before the first checkpoint: the launcher
    said "the last checkpoint stays in --out: run the same command again to resume from it"
    of an --out that held none."""
    checkpoint = tmp_path / "last.pt"
    killed = ChildFailedError("train", {1: ProcessFailure(1, 1, -signal.SIGKILL, "")})
    failed = str(ProcessFailed(killed, 2, str(checkpoint)))
    assert "process 1 of 2 was killed by SIGKILL" in failed
    assert "no checkpoint was written: run the same command again to train" in failed
    assert "resume" not in failed
    checkpoint.touch()
    assert "run the same command again to resume" in str(ProcessFailed(killed, 2, str(checkpoint)))


def test_the_log_lines_of_a_torchrun_process_name_its_rank():
    from flows.cli import log_format

    assert log_format({}) == "%(levelname)s %(name)s: %(message)s"
    assert log_format({"RANK": "0", "WORLD_SIZE": "1"}) == log_format({})
    assert "[rank 1] %(name)s" in log_format({"RANK": "1", "WORLD_SIZE": "2"})


def test_nproc_refuses_more_cpu_processes_than_cores(store, tmp_path, capsys, monkeypatch):
    """`--nproc 64` on a 2-core machine started 64 trainers, half a gigabyte each."""
    config_path = tmp_path / "c.yaml"
    config_path.write_text(CONFIG)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0}, raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 1)
    args = ["train", "--store", str(store.path), "--config", str(config_path)]
    assert wxens([*args, "--out", str(tmp_path / "x"), "--nproc", "2"]) == 2
    err = capsys.readouterr().err
    assert "--nproc 2 on the CPU, but this machine gives wxens 1 core: more" in err, err
    assert "use --nproc 1 or fewer" in err
    assert not (tmp_path / "x" / "last.pt").exists()


@pytest.mark.parametrize("device", [None, "cuda"])
def test_nproc_refused_on_the_cpu_leaves_no_derived_config(
    store, tmp_path, capsys, monkeypatch, device
):
    """`--nproc 3` on 2 cores (or `--nproc 2 --set device=cuda` without CUDA) derived and
    timed a config, printed it, then refused and left OUT/config.yaml, which the rerun with
    a valid --nproc took as its own (a batch and memory share sized for 3 processes)."""
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0}, raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    out = tmp_path / "x"
    args = ["train", "--store", str(store.path), "--out", str(out), "--set", "steps=3"]
    args += ["--nproc", "2"] + ([] if device is None else ["--set", f"device={device}"])
    assert wxens(args) == 2
    captured = capsys.readouterr()
    assert "--nproc 2" in captured.err or "CUDA is not available" in captured.err
    assert "batch_size" not in captured.out  # refused before the derivation
    assert not (out / "config.yaml").exists()


def test_torchrun_training_without_a_config_is_refused_before_deriving(
    store, tmp_path, capsys, monkeypatch
):
    """`torchrun --nproc_per_node 2 -m flows.cli train --store S --out R --budget 1min`:
    each process derived and timed a config of its own (112 and 134 steps), both wrote
    R/config.yaml, and the run hung without a word."""
    # rank 0: another rank quiets wxens's INFO logs for the rest of this test process
    for name, value in {"RANK": "0", "WORLD_SIZE": "2", "LOCAL_RANK": "0"}.items():
        monkeypatch.setenv(name, value)
    out = tmp_path / "x"
    args = ["train", "--store", str(store.path), "--out", str(out), "--set", "steps=3"]
    assert wxens(args) == 2
    captured = capsys.readouterr()
    assert "each of the 2 processes of torchrun would derive" in captured.err, captured.err
    assert "--config" in captured.err and "--nproc 2" in captured.err
    assert "batch_size" not in captured.out and not (out / "config.yaml").exists()


def test_nproc_1_trains_in_the_process_it_starts(store, tmp_path):
    """`wxens train --nproc 1`: the one process (WORLD_SIZE=1) took OUT's lock, which the
    launcher held, and was refused: "another process is writing it"."""
    done = train_with_nproc(store, tmp_path, 1)
    assert done.returncode == 0, done.stderr[-3000:]
    assert load_checkpoint(tmp_path / "o").step == 3
