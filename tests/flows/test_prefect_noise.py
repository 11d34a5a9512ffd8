"""What Prefect prints around a ``wxens run`` that starts its temporary API server."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.flows.conftest import prefect_env

pytestmark = pytest.mark.slow

GUIDE = "See https://www.prefect.io/docs/"


def test_the_temporary_server_line_leaves_out_the_web_guide_unless_verbose(tmp_path):
    """Every ``wxens run`` without a Prefect server printed a link to Prefect's guide to
    running a dedicated server: nothing a forecaster on an offline machine can open, and
    docs/flows.md says how. The address line stays (it explains the wait); ``-v`` keeps
    the link, as it keeps Prefect's tracebacks."""
    argv = [sys.executable, "-m", "flows.cli", "run", "--store", "gone.zarr"]
    argv += ["--checkpoint", "gone.pt", "--out", "f.zarr", "--scores", "s.nc"]
    env = prefect_env(tmp_path / "prefect")  # no PREFECT_API_URL: a temporary server

    def run(*options: str) -> str:
        done = subprocess.run(
            argv[:3] + list(options) + argv[3:],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 2, done.stderr  # the run itself fails: gone.zarr
        return done.stdout + done.stderr

    quiet = run()
    assert "Starting temporary server on http://127.0.0.1:" in quiet
    assert GUIDE not in quiet
    assert GUIDE in run("-v")
