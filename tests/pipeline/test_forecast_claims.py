"""Claims under one run id shared by the parts of a run: the forecast flow claims a batch,
then its task claims it again under the flow run's id."""

from __future__ import annotations

import json
import os
import socket

import pandas as pd

from pipeline.forecast_claims import Claims, claims_path, is_alive, read_claims, this_process

BATCH = pd.date_range("2000-01-02T00", periods=2, freq="6h")


def test_a_part_of_a_run_takes_at_once_the_batch_its_run_claimed(tmp_path, caplog):
    """Another live run claims the batch; the flow run, put off once, claims it when asked
    again. Its task (the same run id, a Claims of its own) put it off a second time, and
    said so, before drawing it: now it takes what its run holds at once, silently."""
    out = str(tmp_path / "f.zarr")
    other = {"host": socket.gethostname(), "pid": os.getpid(), "init_times": [BATCH[0].isoformat()]}
    claims_path(out).write_text(json.dumps({"another-run": other}))  # alive: this process
    flow = Claims(out)
    assert not flow.take(BATCH, BATCH)  # put off once
    assert flow.take(BATCH, BATCH)  # asked again: claimed
    caplog.set_level("INFO", logger="pipeline.forecast_claims")
    caplog.clear()
    assert Claims(out, run=flow.run).take(BATCH, BATCH)
    assert caplog.text == ""
    assert read_claims(out)[flow.run]["init_times"] == [t.isoformat() for t in BATCH]


def test_a_claim_whose_pid_a_later_process_took_counts_for_nothing(tmp_path):
    """A claim records its process's start time: a live process given the dead claimer's
    pid (here this one, started long after the claim says) does not keep the claim alive,
    so the batch is not put off and the claim goes with this run's."""
    out = str(tmp_path / "f.zarr")
    reused = {**this_process(), "init_times": [BATCH[0].isoformat()]}
    reused["started"] -= 3600.0
    claims_path(out).write_text(json.dumps({"a-dead-run": reused}))
    assert not is_alive(reused)
    assert is_alive(this_process())
    run = Claims(out)
    assert run.take(BATCH, BATCH)  # not put off
    run.release()
    assert not claims_path(out).exists()
