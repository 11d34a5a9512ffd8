"""What Prefect prints around a ``wxens run`` that starts its temporary API server."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

GUIDE = "See https://www.prefect.io/docs/"
STOPPING = "Stopping temporary server on http://127.0.0.1:"


def failing_run(workdir: Path, env: dict[str, str], *options: str) -> subprocess.Popen:
    """``python -m flows.cli [OPTIONS] run`` of a store that is not there, started in
    ``workdir`` in ``env``: that of Prefect's temporary server (no ``PREFECT_API_URL``, a
    Prefect home of its own in ``workdir``): the run itself fails; :func:`ended` waits."""
    argv = [sys.executable, "-m", "flows.cli", *options, "run", "--store", "gone.zarr"]
    argv += ["--checkpoint", "gone.pt", "--out", "f.zarr", "--scores", "s.nc"]
    return subprocess.Popen(
        argv,
        cwd=workdir,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def ended(run: subprocess.Popen) -> subprocess.CompletedProcess:
    """The run of :func:`failing_run`, to its end: exit 2."""
    stdout, stderr = run.communicate(timeout=300)
    done = subprocess.CompletedProcess(run.args, run.returncode, stdout, stderr)
    assert done.returncode == 2, done.stderr
    return done


def test_the_temporary_server_lines_leave_out_the_guide_and_the_stop_unless_verbose(
    tmp_path, temporary_server_env
):
    """Every ``wxens run`` without a Prefect server printed a link to Prefect's guide to
    running a dedicated server: nothing a forecaster on an offline machine can open, and
    docs/flows.md says how. And "INFO prefect: Stopping temporary server on ..." came
    after the error of a run that failed, so the error was not the last line (after an
    interrupt the CLI already left it out). The address line stays (it explains the wait);
    ``-v`` keeps the link and the stop, as it keeps Prefect's tracebacks."""
    # the two runs side by side: each spends its time starting Python and a server
    runs = tuple(
        failing_run(tmp_path / name, temporary_server_env(tmp_path / name / "prefect"), *options)
        for name, options in (("quiet", ()), ("verbose", ("-v",)))
    )
    try:
        quiet, verbose = (ended(run) for run in runs)
    finally:
        for run in runs:
            run.kill()  # one still running if the other failed; else a no-op
    assert "Starting temporary server on http://127.0.0.1:" in quiet.stdout + quiet.stderr
    assert GUIDE not in quiet.stdout + quiet.stderr
    assert STOPPING not in quiet.stderr, quiet.stderr
    last = quiet.stderr.splitlines()[-1]
    assert last.startswith("wxens run: error: gone.zarr: no such store"), quiet.stderr
    assert GUIDE in verbose.stdout + verbose.stderr
    assert STOPPING in verbose.stderr
