"""A forecaster's commands where an administrator shared the store and the run read-only
(:func:`read_only` of the root conftest): what only reads works, what must write there
is refused at once, naming the path and the fix."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def test_run_with_a_home_it_cannot_write_names_prefect_home_before_any_work(
    tmp_path: Path, read_only
) -> None:
    """``wxens run`` without ``PREFECT_API_URL`` starts Prefect's temporary server, whose
    database lives in ``~/.prefect``. With a home the user cannot write (a service
    account's, a shared one) that server never started: up to 300 s of waiting, then
    thousands of lines of SQLite tracebacks. It is refused before anything starts."""
    home = tmp_path / "home"
    home.mkdir()
    as_user = read_only(home)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env |= {"HOME": str(home), "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "5"}
    argv = ["run", "--store", "s.zarr", "--checkpoint", "run", "--init", "2000-01-08T00"]
    done = subprocess.run(
        [sys.executable, "-m", "flows.cli", *argv, "--scores", "s.nc", "--out", "f.zarr"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        **as_user,
    )
    assert done.returncode == 2, done.stderr[-2000:]
    last = done.stderr.strip().splitlines()[-1]
    assert str(home / ".prefect") in last and "PREFECT_HOME" in last, last
    assert "Traceback" not in done.stderr
