"""What the commands print, as an operator reads it: results on stdout, progress and log
lines on stderr, no progress bars in a log that is not a terminal, and ``-v`` showing
wxens's own debug records rather than every library's."""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import dask.array as da
import numpy as np
import pytest
import zarr

from flows import cli
from flows.cli import main
from pipeline.forecast_store import write_forecast
from pipeline.store_export import export
from pipeline.transaction import transaction
from tests.pipeline.test_forecast_store import PROVENANCE, ensemble
from verification import compute
from verification.compute import compute_results

ROOT = Path(__file__).resolve().parents[2]
WXENS = {"flows", "pipeline", "generators", "verification"}


def test_export_progress_goes_to_stderr_not_stdout(tmp_path, capsys):
    """``wxens export`` printed dask's progress bar on stdout, before its result line:
    ``wxens export ... > out.txt`` held "[####] | 100% Completed" and the line run
    together."""
    store = tmp_path / "f.zarr"
    write_forecast(store, ensemble(["2019-03-22T00"], 1.0), PROVENANCE)
    capsys.readouterr()
    export(store, tmp_path / "plain.zarr", progress=True)
    out, err = capsys.readouterr()
    assert out == ""
    assert re.search(r"export plain.zarr: 100%.*\| (\d+)/\1 \[\d\d:\d\d<\d\d:\d\d", err)  # ETA


def test_verify_progress_goes_to_stderr_not_stdout(capsys):
    """``wxens verify`` printed dask's progress bar on stdout, run into its scores table."""
    lazy = {"x": da.ones(10, chunks=5).sum()}
    assert compute_results(lazy, forecast_bytes=80, progress=True)["x"] == 10
    out, err = capsys.readouterr()
    assert out == ""
    assert re.search(r"scores: 100%.*\| (\d+)/\1 \[\d\d:\d\d<\d\d:\d\d", err)  # ETA


def test_verify_one_result_at_a_time_counts_the_results_done_of_all(monkeypatch, capsys):
    """Scored one result at a time (a forecast too large for the memory), dask's bar
    started over at 0 % for each result, with no sign of how many remained."""
    monkeypatch.setattr(compute, "LOCAL_MEMORY_SHARE", 0.0)
    lazy = {"x": da.ones(10, chunks=5).sum(), "y": da.ones(4, chunks=2).sum()}
    assert compute_results(lazy, forecast_bytes=80, progress=True) == {"x": 10, "y": 4}
    out, err = capsys.readouterr()
    assert out == ""
    assert re.search(r"scores: 100%.*\| 2/2 \[\d\d:\d\d<\d\d:\d\d, .*result", err)


def test_no_progress_bar_when_stderr_is_not_a_terminal(tmp_path, capsys):
    """``wxens ingest ... 2> ingest.log`` (or under cron, or ``| tee``) wrote every redraw
    of tqdm's and dask's bars, carriage returns and block characters, into the log, unless
    ``--no-progress`` was given; ``wxens run`` and ``wxens demo`` already showed bars only
    on a terminal. Every command now does (capsys's stderr is not one)."""
    store = tmp_path / "f.zarr"
    write_forecast(store, ensemble(["2019-03-22T00"], 1.0), PROVENANCE)
    capsys.readouterr()
    assert main(["export", str(store), "--out", str(tmp_path / "plain.zarr")]) == 0
    out, err = capsys.readouterr()
    assert "plain Zarr" in out
    assert "\r" not in err and "Completed" not in err


def test_verbose_shows_wxens_debug_records_not_every_libraries(tmp_path):
    """``wxens -v`` set the root logger to DEBUG: of the 48 lines ``-v forecast`` logged on
    the UK sample, 40 were numcodecs registering codecs, zarr opening keys and filelock
    taking locks, and the calibration table that "-v logs them all" promised was lost among
    them. ``-v`` is wxens's debug logging; libraries stay at INFO."""
    store = tmp_path / "f.zarr"
    write_forecast(store, ensemble(["2019-03-22T00"], 1.0), PROVENANCE)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    code = "import logging, sys; from flows.cli import main; " + (
        "rc = main(sys.argv[1:]); logging.getLogger('pipeline.x').debug('ours'); sys.exit(rc)"
    )
    run = subprocess.run(
        [sys.executable, "-c", code, "-v", "info", str(store)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    assert "DEBUG pipeline.x: ours" in run.stderr
    debug = [line for line in run.stderr.splitlines() if line.startswith("DEBUG ")]
    assert all(line.split()[1].split(".")[0] in WXENS for line in debug), debug


def test_a_refused_write_does_not_report_an_interrupted_one(tmp_path, caplog):
    """An ingest refused for NaNs logged "nan.zarr: removed 1 object(s) left by an
    interrupted write" before its error: nothing had been interrupted, the objects were the
    refused write's own, and the operator went looking for a killed run."""
    caplog.set_level(logging.INFO, logger="pipeline")
    path = tmp_path / "s.zarr"
    with transaction(path, "created"):  # a failed first write removes its whole store
        pass
    with pytest.raises(RuntimeError), transaction(path, "refused") as store:
        zarr.create_array(store, name="a", shape=(4096,), chunks=(4096,), dtype="f8")[:] = (
            np.random.default_rng(0).random(4096)
        )
        raise RuntimeError("refused")
    removed = [r.getMessage() for r in caplog.records if "removed" in r.getMessage()]
    assert removed and all("interrupted" not in m for m in removed), removed
    assert "this failed write" in removed[0]


def test_a_log_line_during_a_progress_bar_starts_its_own_line(monkeypatch, capsys):
    """On a terminal, a record logged while a bar was drawn was glued onto the bar:
    "persistence baseline:   0%|   | 0/3 [00:00<?, ?init/s]INFO pipeline.forecast_store:
    created forecast store ...". Records now clear the bar, take a line, and it is redrawn
    below them."""
    from tqdm import tqdm

    def run(args):
        with tqdm(total=2, file=sys.stderr, desc="work") as bar:
            bar.update()
            logging.getLogger("pipeline.x").warning("between")
            bar.update()

    command = SimpleNamespace(NAME="fake", HELP="", add_arguments=lambda p: None, run=run)
    monkeypatch.setattr(cli, "COMMANDS", [command])
    handler = logging.StreamHandler(sys.stderr)
    logging.getLogger().addHandler(handler)
    try:
        assert main(["fake"]) == 0
    finally:
        logging.getLogger().removeHandler(handler)
    err = capsys.readouterr().err
    assert "between" in err and "]between" not in err, repr(err)


def test_the_exit_leaves_the_heap_to_the_operating_system(tmp_path):
    """``wxens run`` printed its summary, then took 2 s more to exit (3 s on a busy
    machine): the interpreter's last garbage collections walked the heap of torch, Prefect,
    xarray and dask to free memory the process gives back anyway. The command freezes the
    heap at exit (``gc.freeze``), before those collections: 0.3 s. Seen from a handler that
    runs after the command's own, in a real ``python -m flows.cli`` process."""
    probe = (
        "import atexit, gc, runpy, sys; "
        "atexit.register(lambda: print('frozen', gc.get_freeze_count(), file=sys.stderr)); "
        "sys.argv = ['wxens', 'run', '--help']; runpy.run_module('flows.cli', run_name='__main__')"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    frozen = done.stderr.splitlines()[-1].split()
    assert frozen[0] == "frozen" and int(frozen[1]) > 10_000, done.stderr
