"""Ctrl-C of ``wxens verify --local-cluster`` says "interrupted" in one line: it printed
some 90 lines of dask noise above it (a "Task exception was never retrieved ... AllExit"
traceback per abandoned gather, a KeyboardInterrupt traceback from each worker process,
which the terminal's Ctrl-C reaches too); SIGTERM, which takes the same path, the same
tracebacks from asyncio. A real process group, real signals."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from verification_cases import oracle_forecast

from pipeline.forecast_store import ForecastProvenance, write_forecast
from pipeline.sources.synthetic import SyntheticConfig, synthetic_dataset
from pipeline.store import ingest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def long_run(tmp_path_factory) -> tuple[Path, Path]:
    """``(forecast, analysis)``: an oracle t2m forecast (200 init times, leads 6 and 12 h,
    5 members) and its synthetic analysis (16 x 24), long enough to verify for the signal to
    land mid-computation; made once, only read (a stopped verify writes nothing)."""
    root = tmp_path_factory.mktemp("long-run")
    config = SyntheticConfig(n_lat=16, n_lon=24, n_times=208)
    analysis = root / "analysis.zarr"
    ingest(config.to_spec(), analysis, progress=False)
    forecast = oracle_forecast(config, synthetic_dataset(config).load(), 200, (6, 12), 5)
    provenance = ForecastProvenance(
        generator="oracle", checkpoint_digest="none", sampler="exact", nfe=0, seed=0
    )
    write_forecast(root / "forecast.zarr", forecast, provenance)
    return root / "forecast.zarr", analysis


@pytest.mark.parametrize(
    "signum, group, words, after, wait",
    [
        (signal.SIGINT, True, "interrupted", "dask dashboard", 2.0),  # the whole group
        (signal.SIGTERM, False, "terminated (SIGTERM)", "dask dashboard", 2.0),  # `timeout`
        # while the workers start: the half-started cluster closed at exit, after the last
        # line, with its log and an "Exception ignored in atexit callback" traceback
        (signal.SIGTERM, False, "terminated (SIGTERM)", "starting a dask LocalCluster", 0.2),
    ],
    ids=["ctrl-c", "sigterm", "sigterm-while-the-cluster-starts"],
)
def test_a_verify_on_a_local_cluster_stopped_says_so_alone(
    long_run, tmp_path, signum, group, words, after, wait
):
    forecast_store, analysis = long_run
    argv = ["verify", str(forecast_store), "--truth", str(analysis)]
    argv += ["--out", str(tmp_path / "scores.nc"), "--local-cluster", "--no-progress"]
    env = os.environ | {"PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "flows.cli", *argv, "--threads", "1"],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # a group of its own, as a terminal's foreground job
    )
    said = []
    while not any(after in line for line in said) and process.poll() is None:
        said.append(process.stderr.readline())
    time.sleep(wait)  # into the computation on the workers, or into their start
    assert process.poll() is None, "".join(said) + process.communicate()[1]
    if group:
        os.killpg(process.pid, signum)
    else:
        process.send_signal(signum)
    _, rest = process.communicate(timeout=60)
    after = rest.splitlines()
    assert process.returncode == 128 + signum, rest[-3000:]
    assert "Traceback" not in rest, rest[-3000:]
    assert after[-1] == f"wxens verify: {words}"
    assert after[-2].endswith("written only whole, at the end); rerun the same command to verify")
    assert len(after) <= 4, rest[-3000:]  # at most a line or two from dask, then those two
