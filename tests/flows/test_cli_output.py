"""What the commands print, as an operator reads it: results on stdout, progress and log
lines on stderr, no progress bars in a log that is not a terminal, and ``-v`` showing
wxens's own debug records rather than every library's."""

from __future__ import annotations

import dask.array as da

from flows.cli import main
from pipeline.forecast_store import write_forecast
from pipeline.transaction import export
from tests.pipeline.test_forecast_store import PROVENANCE, ensemble
from verification.compute import compute_results


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
    assert "Completed" in err


def test_verify_progress_goes_to_stderr_not_stdout(capsys):
    """``wxens verify`` printed dask's progress bar on stdout, run into its scores table."""
    lazy = {"x": da.ones(10, chunks=5).sum()}
    assert compute_results(lazy, forecast_bytes=80, progress=True)["x"] == 10
    out, err = capsys.readouterr()
    assert out == ""
    assert "Completed" in err


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
