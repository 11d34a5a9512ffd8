"""Ctrl-C of a command that works for long: before the CLI's last line it says what was
kept and how to go on. It said "wxens CMD: interrupted" alone, though each ingest block
and forecast batch written is a commit kept, and the same command resumes. Real
processes, real signals; the numbers said are checked against the store read back."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from flows.cli import main as wxens
from pipeline.analysis_store import read_state
from pipeline.errors import StoreError
from pipeline.forecast_store import complete_init_times, is_forecast_store

ROOT = Path(__file__).resolve().parents[2]


def command(argv: list[str], env: Mapping[str, str]) -> tuple[list[str], dict[str, str]]:
    """``wxens argv`` on one thread, without progress bars (``run`` and ``demo`` show none
    without a terminal), in a process of its own, and its environment: ``env``."""
    quiet = [] if argv[0] in ("run", "demo") else ["--no-progress"]
    env = {**env, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    env.pop("WORLD_SIZE", None)
    return [sys.executable, "-m", "flows.cli", *argv, "--threads", "1", *quiet], env


def interrupted(argv: list[str], ready, env=os.environ, cwd=None, log=None) -> list[str]:
    """Start ``wxens argv`` (in ``env``, in ``cwd``), send SIGINT (Ctrl-C) once ``ready()``;
    its lines on stderr after the signal. It must have stopped as interrupted, exit 130,
    without a traceback. ``log``: a file its stderr goes to as it runs (``ready`` may
    read it)."""
    args, env = command(argv, env)
    sink = log.open("w") if log else subprocess.PIPE
    process = subprocess.Popen(args, env=env, cwd=cwd, stderr=sink, text=True)

    def said() -> str:  # its stderr, once it has ended
        return log.read_text() if log else process.communicate()[1]

    deadline = time.monotonic() + 120
    while not ready() and time.monotonic() < deadline:
        assert process.poll() is None, said()[-3000:]
        time.sleep(0.05)
    assert process.poll() is None, said()[-3000:]
    process.send_signal(signal.SIGINT)
    stderr = process.communicate(timeout=120)[1]
    if log:
        sink.close()
        stderr = log.read_text()
    assert process.returncode == 130, stderr[-3000:]
    assert "Traceback" not in stderr, stderr[-3000:]
    lines = stderr.splitlines()
    assert lines[-1] == f"wxens {argv[0]}: interrupted"  # still the last line, as it was
    return lines


def test_an_interrupted_forecast_says_how_many_initial_times_it_kept(tmp_path, tiny_model):
    store, model = tiny_model
    out = tmp_path / "f.zarr"
    inits = "2000-01-06T00/2000-01-07T18/6h"  # 8, one a batch: 8 members of 8
    argv = ["forecast", "--checkpoint", str(model / "last.pt"), "--store", str(store)]
    argv += ["--init", inits, "--members", "8", "--batch-members", "8", "--lead", "12h"]
    argv += ["--sampler", "euler:nfe=80", "--out", str(out)]  # ~0.5 s a batch: 6 after the 2nd

    def two_written() -> bool:
        return is_forecast_store(out) and len(complete_init_times(out)) >= 2

    said = interrupted(argv, two_written)
    kept = re.fullmatch(
        rf"WARNING flows\.commands\.forecast: interrupted: {re.escape(str(out))}: (\d+) of 8 "
        r"initial times written, kept \(each batch is committed whole\); rerun the same "
        r"command to draw the rest",
        said[-2],
    )
    assert kept, said[-3:]
    written = len(complete_init_times(out))
    assert int(kept.group(1)) == written and 2 <= written < 8
    assert wxens([*argv, "--no-progress"]) == 0  # the rerun draws the rest
    assert list(complete_init_times(out)) == list(pd.date_range(*inits.split("/")[:2], freq="6h"))


def test_a_forecast_interrupted_in_its_first_batch_leaves_no_folder_it_made(
    tmp_path, tiny_model
):
    """``--out new/f.zarr``, ``new/`` absent, stopped by Ctrl-C in its first batch: nothing
    written, but ``new/`` was left behind with the lock and claims files the run's claim on
    its first batch had made there. A run that made no store leaves nothing it made."""
    store, model = tiny_model
    out, log = tmp_path / "new" / "f.zarr", tmp_path / "forecast.log"
    argv = ["forecast", "--checkpoint", str(model / "last.pt"), "--store", str(store)]
    argv += ["--init", "2000-01-06T00", "--members", "8", "--lead", "12h"]
    argv += ["--sampler", "euler:nfe=5000", "--out", str(out)]

    def drawing() -> bool:  # its "forecast: ..." line comes just before the first batch
        return "forecast: 1 initial time" in log.read_text()

    said = interrupted(argv, drawing, log=log)
    assert "interrupted: nothing written to" in said[-2], said[-3:]
    assert sorted(tmp_path.iterdir()) == [log]


# ``wxens run`` says which steps it kept, and its rerun skips them: checked on the run that
# tests/flows/test_sigterm.py signals mid-forecast (one run of it checks both)


def test_an_interrupted_ingest_says_how_many_times_it_kept(tmp_path):
    """An ingest that appends to a store, stopped once it has grown the time axis: the
    times of the store written (those of the first ingest, and any block committed since)
    of all it now has."""
    spec = "synthetic:n_lat=64,n_lon=128,n_times=3000,step=6h"  # 1 block (~90 MiB) to append
    store = tmp_path / "s.zarr"
    argv = ["ingest", spec, "--store", str(store), "--variables", "t2m"]
    assert wxens([*argv, "--end", "2000-01-25T18", "--no-progress"]) == 0  # 100 times

    def grown() -> bool:
        try:
            return read_state(store)["n_times"] > 100
        except StoreError:  # the first commit of the store, in hand
            return False

    said = interrupted(argv, grown)
    kept = re.fullmatch(
        rf"WARNING flows\.commands\.ingest: interrupted: {re.escape(str(store))}: (\d+) of "
        r"(\d+) times written, kept \(each block is committed whole\); rerun the same "
        r"command to write the rest",
        said[-2],
    )
    assert kept, said[-3:]
    state = read_state(store)
    written = sum(j - i for i, j in state["written"])
    assert (int(kept.group(1)), int(kept.group(2))) == (written, state["n_times"])
    assert 100 <= written < state["n_times"] == 3000
    assert wxens([*argv, "--no-progress"]) == 0  # the rerun writes the rest
    assert read_state(store)["complete"]


def test_what_was_kept_failing_to_read_leaves_the_interrupted_line_alone(capsys):
    # kept() reads the store back after the interrupt; a store it cannot read, or a second
    # Ctrl-C while it reads, must not turn the one line into a traceback
    from argparse import Namespace

    from flows.cli import _interrupted

    def unreadable(args):
        raise KeyboardInterrupt

    args = Namespace(command="forecast", verbose=False, kept=unreadable, run=wxens)
    assert _interrupted(args, "interrupted", 130) == 130
    assert capsys.readouterr().err.splitlines() == ["wxens forecast: interrupted"]


def test_an_error_raised_in_handling_an_interrupt_is_taken_for_the_interrupt():
    # Prefect's task engine, interrupted while it created a task run, raised "ValueError:
    # Task run is not set" in handling the KeyboardInterrupt; the flow re-raised it wrapped
    from flows.cli import interrupt_behind
    from pipeline.signals import Terminated

    for signal_raised in (KeyboardInterrupt, Terminated):
        try:
            try:
                raise signal_raised
            except KeyboardInterrupt:
                raise ValueError("Task run is not set")  # noqa: B904 (as Prefect raises it)
        except ValueError as err:
            wrapped = RuntimeError("the flow run failed")
            wrapped.__cause__ = err
            assert type(interrupt_behind(wrapped)) is signal_raised
    looped = ValueError("a failure of its own")
    looped.__context__ = RuntimeError("before it")
    looped.__context__.__context__ = looped
    assert interrupt_behind(looped) is None
