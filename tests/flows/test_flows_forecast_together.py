"""Two Prefect ``forecast`` flow runs of one cycle into one store, started together (a
scheduled ``wxens run`` beside a retried one): they share the batches as two ``wxens
forecast`` do, though each of a flow's batches is a task of its own."""

from __future__ import annotations

import re
import sys
import time

import pandas as pd
import xarray as xr

from flows.cli import main as wxens
from pipeline.forecast_claims import claims_path
from pipeline.forecast_store import open_forecast
from pipeline.forecast_times import CYCLE_ATTR
from tests.generators.tiny import drawn_batches, two_step_run

CYCLE = "2000-01-02T00/2000-01-04T18/6h"  # 12 initial times: 12 batches of 8 members
OPTIONS = dict(members=8, sampler="euler:nfe=32", seed=7, device="cpu", batch_members=8)
FLOW_RUN = (
    "import sys, torch; from flows.pipelines import forecast; torch.set_num_threads(1); "
    "forecast(*sys.argv[1:3], sys.argv[3].split(','), sys.argv[4], leads_hours=[6.0, 12.0], "
    f"compile=False, **{OPTIONS})"
)
"""A forecast flow run in a process of its own: checkpoint, store, initial times, out."""


def test_two_forecast_flow_runs_started_together_share_the_batches(tmp_path, spawn):
    """Each task of a flow claimed its one batch under a fresh run id and, put off, drew it
    at once all the same: two flow runs drew nearly every batch twice. Now the flow run
    claims each batch before its task and puts off those the other run holds; every
    initial time is written once and drawn about once, and the store is the one a
    forecast alone draws."""
    store = two_step_run(tmp_path)
    out, alone = tmp_path / "together.zarr", tmp_path / "alone.zarr"
    start, end, _ = CYCLE.split("/")
    inits = pd.date_range(start, end, freq="6h")
    args = [str(tmp_path / "run"), str(store.path), ",".join(t.isoformat() for t in inits)]
    logs = [tmp_path / f"flow{k}.log" for k in range(2)]
    began = time.monotonic()
    runs = [
        spawn([sys.executable, "-c", FLOW_RUN, *args, str(out)], cwd=tmp_path, log=log)
        for log in logs
    ]
    codes = [run.wait(timeout=500) for run in runs]
    wall = time.monotonic() - began
    texts = [log.read_text(errors="replace") for log in logs]
    assert codes == [0, 0], texts
    writes = sum(len(re.findall(r"created forecast store|appended 1 initial", t)) for t in texts)
    drawn = sum(map(drawn_batches, texts))
    print(f"two flow runs: {drawn} batches drawn for {len(inits)}, {wall:.0f} s")
    assert writes == len(inits), texts  # every initial time written once, by one of them
    assert drawn <= len(inits) + 3, texts  # not twice: a batch or so at the end at most
    assert not claims_path(out).exists()  # each flow run removed its claims when it ended
    argv = ["forecast", "--checkpoint", args[0], "--store", args[1], "--init", CYCLE]
    argv += ["--members", "8", "--lead", "12h", "--sampler", "euler:nfe=32", "--seed", "7"]
    argv += ["--batch-members", "8", "--threads", "1", "--no-progress", "--out", str(alone)]
    assert wxens(argv) == 0
    drawn_alone = open_forecast(alone).load()
    del drawn_alone.attrs[CYCLE_ATTR]  # a --init range records its cycle; the flow's list none
    xr.testing.assert_identical(open_forecast(out).load(), drawn_alone)
