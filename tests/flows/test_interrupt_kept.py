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
from pathlib import Path

import pandas as pd
import yaml

from flows.cli import main as wxens
from pipeline.analysis_store import read_state
from pipeline.errors import StoreError
from pipeline.forecast_store import complete_init_times, is_forecast_store
from tests.flows.conftest import SYNTHETIC, TINY_TRAINING

ROOT = Path(__file__).resolve().parents[2]


def interrupted(argv: list[str], ready) -> list[str]:
    """Start ``wxens argv``, send SIGINT (Ctrl-C) once ``ready()``; its lines on stderr
    after the signal. It must have stopped as interrupted, exit 130, without a traceback."""
    env = os.environ | {"PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    env.pop("WORLD_SIZE", None)
    command = [sys.executable, "-m", "flows.cli", *argv, "--threads", "1", "--no-progress"]
    process = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not ready() and time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()[1][-3000:]
        time.sleep(0.05)
    assert process.poll() is None, process.communicate()[1][-3000:]
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr[-3000:]
    assert "Traceback" not in stderr, stderr[-3000:]
    lines = stderr.splitlines()
    assert lines[-1] == f"wxens {argv[0]}: interrupted"  # still the last line, as it was
    return lines


def test_an_interrupted_forecast_says_how_many_initial_times_it_kept(tmp_path):
    store, model = tmp_path / "truth.zarr", tmp_path / "model"
    assert wxens(["ingest", SYNTHETIC, "--store", str(store), "--no-progress"]) == 0
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(TINY_TRAINING))
    train = ["train", "--store", str(store), "--config", str(tmp_path / "tiny.yaml")]
    assert wxens([*train, "--out", str(model), "--no-progress"]) == 0
    out = tmp_path / "f.zarr"
    inits = "2000-01-06T00/2000-01-07T18/6h"  # 8, one a batch: 8 members of 8
    argv = ["forecast", "--checkpoint", str(model / "last.pt"), "--store", str(store)]
    argv += ["--init", inits, "--members", "8", "--batch-members", "8", "--lead", "12h"]
    argv += ["--sampler", "euler:nfe=200", "--out", str(out)]

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


def test_an_interrupted_ingest_says_how_many_times_it_kept(tmp_path):
    """An ingest that appends to a store, stopped once it has grown the time axis: the
    times of the store written (those of the first ingest, and any block committed since)
    of all it now has."""
    spec = "synthetic:n_lat=64,n_lon=128,n_times=6000,step=6h"
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
    assert 100 <= written < state["n_times"] == 6000
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
