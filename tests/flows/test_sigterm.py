"""SIGTERM (what ``timeout``, SLURM, Kubernetes, systemd and a cancelled Prefect run send)
stops a command as Ctrl-C does: it killed the process at once, exit 143 without a word,
and ``wxens train`` lost every step since its last checkpoint. Real processes, real
signals."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from importlib.metadata import entry_points
from pathlib import Path

import pandas as pd
import pytest

from flows.cli import build_parser
from flows.cli import main as wxens
from flows.commands import run as run_command
from generators.checkpoint import load_checkpoint
from pipeline.forecast_store import complete_init_times, is_forecast_store
from pipeline.signals import sigterm_raises
from pipeline.store import ingest
from tests.flows.conftest import stop_process_group

ROOT = Path(__file__).resolve().parents[2]
STOPS = [(signal.SIGTERM, "terminated (SIGTERM)", 143), (signal.SIGINT, "interrupted", 130)]
"""Each signal that stops a command, its words and its exit code."""
SIGNALS = pytest.mark.parametrize(("sig", "line", "code"), STOPS)


def started(argv: list[str], ready) -> subprocess.Popen:
    """``wxens argv`` in a process of its own, once ``ready()`` (or after 60 s)."""
    env = os.environ | {"PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    env.pop("WORLD_SIZE", None)
    command = [sys.executable, "-m", "flows.cli", *argv]
    process = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not ready() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    return process


def terminated(process: subprocess.Popen, command: str) -> None:
    """SIGTERM ``process`` (alone, as ``timeout`` does); it says so in one line, exit 143."""
    assert process.poll() is None, process.communicate()[1][-3000:]
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 143, stderr[-3000:]
    assert "Traceback" not in stderr, stderr[-3000:]
    assert stderr.splitlines()[-1] == f"wxens {command}: terminated (SIGTERM)"


def logged_steps(run: Path) -> list[int]:
    log = run / "log.jsonl"
    lines = log.read_text().splitlines() if log.exists() else []
    return [json.loads(line)["step"] for line in lines if line.endswith("}")]


def test_sigterm_mid_training_checkpoints_the_step_reached_and_a_rerun_resumes(tmp_path, caplog):
    spec = "synthetic:n_lat=8,n_lon=8,n_times=60,step=6h"
    store = ingest(spec, tmp_path / "s.zarr", variables=["t2m"], progress=False)
    run = tmp_path / "run"
    argv = ["train", "--store", str(store.path), "--out", str(run), "--no-progress"]
    argv += ["--threads", "1", "--set", "checkpoint_every=20"]
    argv += ["--set", "fine_tune.steps=1"]  # the rerun's one step after its main phase
    process = started(
        [*argv, "--set", "steps=100000"], lambda: max(logged_steps(run), default=0) > 20
    )
    seen = max(logged_steps(run))
    terminated(process, "train")
    reached = load_checkpoint(run / "last.pt").step
    assert reached >= seen > 20  # past the last periodic checkpoint it had written
    caplog.set_level(logging.INFO, logger="generators.train")
    assert wxens([*argv, "--set", f"steps={reached + 1}"]) == 0
    assert f"at step {reached}" in caplog.text  # "resuming RUN at step N"
    assert load_checkpoint(run / "last.pt").step == reached + 2


def test_sigterm_mid_ingest_leaves_a_store_a_rerun_completes(tmp_path, capsys, store_content):
    spec = "synthetic:n_lat=32,n_lon=64,n_times=8000,step=6h"
    store = tmp_path / "s.zarr"
    argv = ["ingest", spec, "--store", str(store), "--variables", "t2m", "--no-progress"]
    argv += ["--threads", "1"]
    process = started(argv, lambda: (store / "refs").exists())
    time.sleep(1.0)  # into its writes
    terminated(process, "ingest")
    assert wxens(argv) == 0
    ingest(spec, tmp_path / "whole.zarr", variables=["t2m"], progress=False)
    resumed, whole = store_content(store), store_content(tmp_path / "whole.zarr")
    for content in resumed, whole:
        content["/"][0].pop("history")  # when each was created
    assert resumed == whole


def test_a_forked_child_still_dies_of_sigterm():
    """A process forked inside :func:`sigterm_raises` (a DataLoader worker) inherits the
    handler; it must die of the signal, not raise in a process that is not the CLI's."""
    with sigterm_raises():
        pid = os.fork()
        if pid == 0:  # the child: wait to be terminated; exit 0 would mean it survived
            try:
                time.sleep(30)
            finally:
                os._exit(0)
        time.sleep(0.2)
        os.kill(pid, signal.SIGTERM)
        _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGTERM


def test_a_command_the_tests_start_takes_sigint_as_one_started_at_a_terminal():
    """The tests that send SIGINT stand for Ctrl-C at a terminal. A test run started in the
    background of a script (``pytest ... &``, as runs side by side are) has SIGINT ignored,
    as a shell starts such a job; each command it started inherited that, and kept it
    ignored, as Python does: the signal was lost, ``wxens run`` went on to exit 0, and the
    tests below failed. ``tests/conftest.py`` sets SIGINT back for the session."""
    said = "import signal; print(signal.getsignal(signal.SIGINT) is signal.default_int_handler)"
    started = subprocess.run([sys.executable, "-c", said], capture_output=True, text=True)
    assert started.stdout.strip() == "True", started.stdout + started.stderr


@pytest.mark.slow
def test_a_signal_to_the_group_of_wxens_run_stops_it_at_once_and_a_rerun_completes(
    tmp_path, tiny_model, monkeypatch, prefect_server, temporary_server_env
):
    """SIGTERM or SIGINT to the whole process group of ``wxens run`` mid-forecast (Ctrl-C at
    a terminal, ``kill -- -PGID``) reached Prefect's temporary server too, which stopped;
    the command then spent minutes retrying to report its runs crashed to it, and ended in
    connection tracebacks and exit 1. Now the server outlives the signal: the runs are
    recorded Crashed, one line and 130 or 143 follow within seconds, a rerun completes.
    Prefect's "Crash detected!" and "Finished in state Crashed" lines of the task, the
    subflow and the flow (six) and its "Stopping temporary server" after the CLI's line
    are left out (``-v`` keeps them: the test below).

    SIGTERM as its first batch starts, then SIGINT to the run started again (it resumes the
    forecast) once one more batch is written, landing in the next: each with a temporary
    server of its own; one rerun then completes what both left (SIGTERM stops as SIGINT
    does: :class:`Terminated` is a KeyboardInterrupt). The interrupted run once said only
    "wxens run: interrupted"; before that line it now says the step it stopped in, what that
    kept (the forecast store read back) and the steps to come; the rerun draws only the rest
    and verifies, and then every step is done. The rerun is not about the temporary server:
    the session's."""
    store, model = tiny_model  # read, not written
    out, scores = tmp_path / "f.zarr", tmp_path / "s.nc"
    # 12 initial times, 128 members: 4 a batch (512 drawn at once), 3 batches; 20 Euler
    # steps: seconds a batch, time enough for each signal to land mid-forecast
    inits = "2000-01-07T00/2000-01-09T18/6h"
    ours = ["run", "--store", str(store), "--init", inits, "--checkpoint", str(model / "last.pt")]
    ours += ["--sampler", "euler:nfe=20", "--members", "128", "--lead", "12h"]
    ours += ["--out", str(out), "--scores", str(scores), "--threads", "1"]
    argv = [sys.executable, "-m", "flows.cli", *ours]
    env = {"PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    written = 0
    for sig, line, code in STOPS:
        home = tmp_path / f"prefect-{sig.name}"  # no PREFECT_API_URL: a temporary server
        before = written

        def ready(said: str, sig=sig, before=before) -> bool:
            if sig == signal.SIGTERM:  # as its first batch starts
                return in_forecast(said)
            return is_forecast_store(out) and len(complete_init_times(out)) > before

        process, stderr = signalled_mid_forecast(
            argv, temporary_server_env(home) | env, tmp_path, sig, ready
        )
        assert process.returncode == code, stderr[-3000:]
        assert "Traceback" not in stderr, stderr[-3000:]
        prefect_lines = ["Crash detected!", "Finished in state Crashed(", "Stopping temporary"]
        assert stderr.splitlines()[-1] == f"wxens run: {line}", stderr[-3000:]
        assert not any(text in stderr for text in prefect_lines), stderr[-3000:]
        assert run_states(home) == {"CRASHED"}  # recorded, though not printed
        written = len(complete_init_times(out)) if is_forecast_store(out) else 0
        assert written < 12
    f, s = re.escape(str(out)), re.escape(str(scores))
    kept = re.fullmatch(  # the line before the last, of the run stopped in its 2nd batch or 3rd
        rf"WARNING flows\.commands\.run: interrupted: stopped in forecast \({f}\): "
        rf"{f}: (\d+) of 12 initial times written, kept \(each batch is committed whole\); "
        rf"rerun the same command to draw the rest; still to come: verification \({s}\)",
        stderr.splitlines()[-2],
    )
    assert kept, stderr[-3000:]
    assert int(kept.group(1)) == written and 0 <= before < written < 12
    rerun = subprocess.run(
        argv, cwd=tmp_path, env=prefect_server.env | env, capture_output=True, text=True
    )
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    skipped = f"{out}: {written} of 12 initial time(s) already complete, skipped"
    assert skipped in rerun.stderr, rerun.stderr[-3000:]  # what was kept, not drawn
    assert list(complete_init_times(out)) == list(pd.date_range(*inits.split("/")[:2], freq="6h"))
    assert scores.is_file()
    monkeypatch.chdir(tmp_path)  # where the run recorded which inputs its scores are of
    done = run_command.kept(build_parser().parse_args(ours))
    assert done == f"every step done (forecast ({out}), verification ({scores})); nothing to resume"


def signalled_mid_forecast(
    argv: list[str], env: dict[str, str], cwd: Path, sig: int, ready
) -> tuple[subprocess.Popen, str]:
    """``argv`` started in a session of its own, ``sig`` sent to its whole group (as Ctrl-C
    at a terminal or ``kill -- -PGID``) once ``ready(output so far)``, mid-forecast; the
    process once it ended (within 60 s, else the wait fails) and its output."""
    log = cwd / "run.log"
    with log.open("w") as sink:
        process = subprocess.Popen(
            argv, cwd=cwd, env=env, stdout=sink, stderr=sink, start_new_session=True
        )
    try:
        deadline = time.monotonic() + 300
        while not ready(log.read_text()):
            assert process.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        os.killpg(process.pid, sig)
        process.wait(timeout=60)
    finally:
        stop_process_group(process)
    return process, log.read_text()


def in_forecast(said: str) -> bool:
    """Whether the output ``said`` so far has the "forecast: ..." line logged as the
    forecast's first batch starts."""
    return "generators.rollout - forecast:" in said


def run_states(home: Path) -> set[str]:
    """The states of the flow runs that Prefect's temporary server recorded in its database
    under ``home`` (its default: sqlite, ``prefect.db``)."""
    with contextlib.closing(sqlite3.connect(home / "prefect.db")) as database:
        return {state for (state,) in database.execute("SELECT state_type FROM flow_run")}


def test_prefect_s_records_of_an_interrupt_are_left_out(tmp_path):
    """The filters that keep Prefect's crash and server-stop lines of an interrupted run off
    the console drop those records alone, and the CLI takes them off with ``-v`` (the runs
    above, interrupted without it, show them at work)."""
    import logging

    from flows.cli import RUN_LOGGERS, WXENS_LOGGERS, _dispatch, without_interrupt_crash
    from flows.settings import without_server_stop

    def record(message: str) -> logging.LogRecord:
        return logging.LogRecord("prefect.flow_runs", logging.ERROR, "", 0, message, (), None)

    aborted = "Execution was aborted by an interrupt signal."
    assert not without_interrupt_crash(record(f"Crash detected! {aborted}"))
    assert not without_interrupt_crash(record(f"Finished in state Crashed('{aborted}')"))
    failed = "Crash detected! Execution was interrupted by an unexpected exception: ValueError"
    assert without_interrupt_crash(record(failed))
    assert not without_server_stop(record("Stopping temporary server on http://127.0.0.1:1"))
    assert without_server_stop(record("Starting temporary server on http://127.0.0.1:1"))
    loggers = [logging.getLogger(name) for name in RUN_LOGGERS]
    before = [without_interrupt_crash in logger.filters for logger in loggers]
    levels = {name: logging.getLogger(name).level for name in WXENS_LOGGERS}
    missing = str(tmp_path / "none.zarr")
    try:
        assert _dispatch(["info", missing]) == 2
        assert all(without_interrupt_crash in logger.filters for logger in loggers)
        assert _dispatch(["-v", "info", missing]) == 2
        assert not any(without_interrupt_crash in logger.filters for logger in loggers)
    finally:  # as other tests in this process found them
        for logger, had in zip(loggers, before, strict=True):
            (logger.addFilter if had else logger.removeFilter)(without_interrupt_crash)
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


@pytest.mark.parametrize(
    "place",
    ["gc.callbacks.append(callback); gc.collect()", "Dropped()", "weakref.ref(Kept(), callback)"],
    ids=["gc-callback", "del", "weakref-callback"],
)
@pytest.mark.parametrize(("sig", "raised"), [(signal.SIGTERM, "Terminated"), (signal.SIGINT, "")])
def test_a_signal_that_comes_in_a_gc_callback_still_stops_the_command(place, sig, raised):
    """A signal handled while Python runs a garbage-collector callback (``distributed``
    registers one), a ``__del__`` or a weakref callback raised there, where Python prints
    "Exception ignored in" and drops the exception: ``wxens verify --local-cluster`` stopped
    by SIGTERM ran to its end, exit 0, so did ``wxens forecast`` by Ctrl-C. It is sent again
    once out of there, and stops the block as anywhere else."""
    code = f"""
import gc, os, signal, time, weakref
from pipeline.signals import sigterm_raises
sent = []
def callback(phase=None, info=None):  # the signal arrives, and is handled, in here
    if phase != "stop" and not sent:
        sent.append(os.kill(os.getpid(), {int(sig)}))
        for _ in range(1000):
            pass
class Dropped:
    def __del__(self):
        callback()
class Kept:  # no __del__: the callback of a weak reference to it
    pass
try:
    with sigterm_raises():
        {place}
        time.sleep(5)
    print("ran to its end")
except KeyboardInterrupt as stop:
    print("stopped by", type(stop).__name__)
"""
    env = os.environ | {"PYTHONPATH": str(ROOT)}
    env.pop("WORLD_SIZE", None)
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.stdout.strip() == f"stopped by {raised or 'KeyboardInterrupt'}", done.stderr
    assert "Exception ignored" not in done.stderr


@SIGNALS
def test_a_signal_while_the_console_script_imports_stops_it_in_one_line(sig, line, code):
    """The ``wxens`` script's first half second is its imports, before the CLI's handlers:
    Ctrl-C there ended in an import's traceback, SIGTERM killed it silently (-15). The
    signal is sent once numpy is loaded (its extension mapped), mid-import."""
    (installed,) = entry_points(group="console_scripts", name="wxens")
    assert installed.value == "flows.entry:main"  # the installed `wxens`, as below
    env = os.environ | {"PYTHONPATH": str(ROOT)}
    script = "import sys; from flows.entry import main; sys.exit(main())"
    argv = [sys.executable, "-c", script, "info", "--help"]
    process = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    maps = Path(f"/proc/{process.pid}/maps")
    deadline = time.monotonic() + 30
    while "_multiarray_umath" not in maps.read_text() and time.monotonic() < deadline:
        assert process.poll() is None, "it ended before numpy was loaded"
        time.sleep(0.002)
    process.send_signal(sig)
    stderr = process.communicate(timeout=60)[1].decode()
    assert (process.returncode, stderr) == (code, f"wxens: {line}\n")


PYTHON_CALL = """
import sys
from flows.pipelines import forecast

store, model = sys.argv[1:]
inits = [f"2000-01-0{day}T{hour:02d}" for day in (8, 9) for hour in (0, 6, 12, 18)]
forecast(model, store, inits, "f.zarr", members=64, sampler="euler:nfe=40", device="cpu")
"""
"""A script that calls a flow as a Python function (no ``wxens`` command): 8 initial
times of 64 members and 40 Euler steps, seconds of work on the tiny model."""


@pytest.mark.slow
def test_ctrl_c_to_a_python_script_calling_a_flow_leaves_its_temporary_server_up(
    tmp_path, tiny_model, temporary_server_env
):
    """A script that imports :mod:`flows.pipelines` and calls a flow (docs/flows.md: "each
    flow's Python signature ... is the reference list") gets Prefect's temporary server as
    ``wxens run`` does. It started in the script's process group, so Ctrl-C at a terminal
    stopped it with the script, which then retried for minutes (202 s measured) to report
    its run to the server gone, ended in connection tracebacks, exit 1, and left the run
    recorded Running. Importing the flows now starts that server in a group of its own:
    the script stops on its KeyboardInterrupt and the run is recorded Crashed."""
    store, model = tiny_model
    env = temporary_server_env(tmp_path / "prefect")  # no PREFECT_API_URL: a temporary one
    env |= {"PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    argv = [sys.executable, "-c", PYTHON_CALL, str(store), str(model / "last.pt")]
    process, output = signalled_mid_forecast(argv, env, tmp_path, signal.SIGINT, in_forecast)
    assert process.returncode in (1, -signal.SIGINT), output[-3000:]
    assert "KeyboardInterrupt" in output, output[-3000:]
    assert "Connection refused" not in output, output[-3000:]
    assert run_states(tmp_path / "prefect") == {"CRASHED"}
