"""Two forecasts of one cycle into one store, started together, share the batches: two
``wxens forecast`` (each claims a batch before drawing it), and two Prefect ``forecast``
flow runs (a scheduled ``wxens run`` beside a retried one), though each of a flow's
batches is a task of its own. Both write the store one forecast alone draws."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import xarray as xr

from flows.cli import main as wxens
from pipeline.forecast_claims import claims_path
from pipeline.forecast_store import open_forecast
from pipeline.forecast_times import CYCLE_ATTR
from tests.generators.tiny import drawn_batches, two_step_run

ROOT = Path(__file__).resolve().parents[2]

CYCLE = "2000-01-02T00/2000-01-04T18/6h"  # 12 initial times: 12 batches of 8 members
NFE = 8
"""The sampler's steps: a batch takes a fraction of a second, and the runs, told to go
together, still draw side by side (at NFE 32 they drew side by side only because a batch
outlasted the seconds by which the end of their imports could differ)."""
OPTIONS = dict(members=8, sampler=f"euler:nfe={NFE}", seed=7, device="cpu", batch_members=8)
WHEN_TOLD = """
import os, sys, time
from pathlib import Path
import torch
{imports}
torch.set_num_threads(1)
folder, deadline = Path(sys.argv[1]), time.monotonic() + 300
(folder / f"ready-{{os.getpid()}}").touch()
while not (folder / "go").exists():
    assert time.monotonic() < deadline, "never told to go"
    time.sleep(0.01)
{run}
"""
"""A ``python -c`` script that imports what ``run`` runs, says so (a file ``ready-PID`` in
the folder ``argv[1]``), then waits for a file ``go`` there before ``run``: two started
together begin their forecasts together, not seconds of imports apart on a busy machine,
so each batch they draw is one the other may be drawing too (:func:`started_together`)."""
CLI_RUN = WHEN_TOLD.format(
    imports="from flows.cli import main\nimport flows.commands.forecast, generators.rollout_shard",
    run="sys.exit(main(sys.argv[2:]))",
)
"""``wxens ARGS`` when told: folder, then the command's arguments."""
FLOW_RUN = WHEN_TOLD.format(
    imports="from flows.pipelines import forecast",
    run="forecast(*sys.argv[2:4], sys.argv[4].split(','), sys.argv[5], leads_hours=[6.0, 12.0], "
    f"compile=False, **{OPTIONS})",
)
"""A forecast flow run when told: folder, checkpoint, store, initial times, out."""


def started_together(runs: list[subprocess.Popen], folder: Path) -> None:
    """Tell ``runs`` (each a :data:`WHEN_TOLD` script given ``folder``) to go once each has
    said it is ready; fails if one ends before it is, or none is in 300 s."""
    deadline = time.monotonic() + 300
    while len(list(folder.glob("ready-*"))) < len(runs):
        assert all(run.poll() is None for run in runs), "a run ended before it was ready"
        assert time.monotonic() < deadline, "the runs were not ready in 300 s"
        time.sleep(0.05)
    (folder / "go").touch()


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, list[str]]:
    """A checkpoint of two training steps on a synthetic store (:func:`two_step_run`) and
    the ``wxens forecast`` arguments of :data:`CYCLE` from it, less ``--out``."""
    root = tmp_path_factory.mktemp("together")
    store = two_step_run(root)
    argv = ["forecast", "--checkpoint", str(root / "run"), "--store", str(store.path)]
    argv += ["--init", CYCLE, "--members", "8", "--lead", "12h", "--sampler", f"euler:nfe={NFE}"]
    argv += ["--seed", "7", "--batch-members", "8", "--threads", "1", "--no-progress"]
    return root, argv


@pytest.fixture(scope="module")
def alone(trained) -> xr.Dataset:
    """The forecast of :data:`CYCLE` drawn by one ``wxens forecast`` alone, loaded: what the
    store of two drawn together is to equal (a cycle drawn alone once, not once a test)."""
    root, argv = trained
    assert wxens([*argv, "--out", str(root / "alone.zarr")]) == 0
    return open_forecast(root / "alone.zarr").load()


def test_two_forecasts_started_together_share_the_batches(trained, alone):
    """Two `wxens forecast` of one cycle into one store, started together, drew every batch
    side by side (24 batches for 12: twice the compute), one of the two discarded at the
    write. Now each initial time is drawn once (but for at most one batch each at the
    end, the other run's batch in hand), and the store is the one a forecast alone draws."""
    root, argv = trained
    folder = root / "cli_told"
    folder.mkdir()
    command = [sys.executable, "-c", CLI_RUN, str(folder), *argv, "--out"]
    env = os.environ | {"OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    out = str(root / "cli_together.zarr")
    runs = [
        subprocess.Popen(
            [*command, out], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        for _ in range(2)
    ]
    try:
        started_together(runs, folder)
    finally:
        if not (folder / "go").exists():
            for run in runs:  # this test's own processes
                run.kill()
    logs = [run.communicate(timeout=300)[0] for run in runs]  # the log, then the summary
    assert [run.returncode for run in runs] == [0, 0], logs
    written = [int(re.findall(r"(\d+) initial times? x", log)[-1]) for log in logs]
    assert sum(written) == 12, logs  # every initial time written exactly once
    assert sum(map(drawn_batches, logs)) <= 12 + 2, logs
    assert not claims_path(out).exists()  # each run removed its claims when it ended
    xr.testing.assert_identical(open_forecast(out).load(), alone)


def test_two_forecast_flow_runs_started_together_share_the_batches(trained, alone, spawn):
    """Each task of a flow claimed its one batch under a fresh run id and, put off, drew it
    at once all the same: two flow runs drew nearly every batch twice. Now the flow run
    claims each batch before its task and puts off those the other run holds; every
    initial time is written once and drawn about once, and the store is the one a
    forecast alone draws."""
    root, argv = trained
    out = root / "flows_together.zarr"
    start, end, _ = CYCLE.split("/")
    inits = pd.date_range(start, end, freq="6h")
    store = argv[argv.index("--store") + 1]
    folder = root / "flows_told"
    folder.mkdir()
    args = [str(folder), str(root / "run"), store, ",".join(t.isoformat() for t in inits)]
    logs = [root / f"flow{k}.log" for k in range(2)]
    began = time.monotonic()
    runs = [
        spawn([sys.executable, "-c", FLOW_RUN, *args, str(out)], cwd=root, log=log) for log in logs
    ]
    started_together(runs, folder)  # the spawned groups are stopped after the test
    codes = [run.wait(timeout=500) for run in runs]
    wall = time.monotonic() - began
    texts = [log.read_text(errors="replace") for log in logs]
    assert codes == [0, 0], texts
    writes = sum(len(re.findall(r"created forecast store|appended 1 initial", t)) for t in texts)
    each = [drawn_batches(text) for text in texts]
    drawn = sum(each)
    print(f"two flow runs: {drawn} batches drawn ({each}) for {len(inits)}, {wall:.0f} s")
    assert writes == len(inits), texts  # every initial time written once, by one of them
    assert drawn <= len(inits) + 3, texts  # not twice: a batch or so at the end at most
    assert not claims_path(out).exists()  # each flow run removed its claims when it ended
    drawn_alone = alone.copy()
    del drawn_alone.attrs[CYCLE_ATTR]  # a --init range records its cycle; the flow's list none
    xr.testing.assert_identical(open_forecast(out).load(), drawn_alone)
