"""The forecast flow's warning about initial times in the checkpoint's training period:
once per flow run, about all its initial times, not once per batch."""

from __future__ import annotations

import sys

import pandas as pd

from tests.generators.tiny import drawn_batches, two_step_run

TRAINED_ON = "forecast weather of the training period"
FLOW_RUN = (
    "import sys; from flows.pipelines import forecast; "
    "forecast(*sys.argv[1:3], sys.argv[3].split(','), sys.argv[4], members=2, "
    "batch_members=2, sampler='euler:nfe=2', device='cpu', compile=False)"
)
"""A forecast flow run in a process of its own (one initial time per batch): checkpoint,
store, initial times, out."""


def test_a_forecast_flow_warns_once_about_the_training_period(tmp_path, spawn):
    """Each batch's task warned about its own initial times: a run of 36 batches printed
    the warning 36 times. The flow warns once, about all of them, as `wxens forecast`."""
    store = two_step_run(tmp_path)  # trained on the whole store
    inits = pd.date_range("2000-01-02T00", periods=3, freq="6h")
    args = [str(tmp_path / "run"), str(store.path), ",".join(t.isoformat() for t in inits)]
    log = tmp_path / "flow.log"
    run = spawn([sys.executable, "-c", FLOW_RUN, *args, str(tmp_path / "f.zarr")],
                cwd=tmp_path, log=log)
    assert run.wait(timeout=300) == 0, log.read_text(errors="replace")[-3000:]
    text = log.read_text(errors="replace")
    assert drawn_batches(text) == 3, text
    assert text.count(TRAINED_ON) == 1, text
    assert "3 of 3 initial times" in text, text
