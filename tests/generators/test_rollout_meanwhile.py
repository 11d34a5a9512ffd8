"""Two forecasts of overlapping initial times into one store: the later one reads the store
again before each batch and draws none of the initial times the other wrote meanwhile; the
claims a run leaves behind hold a later run up only while they may still be drawn. (Two
started together share the batches: tests/flows/test_flows_forecast_together.py, beside
the flow runs that do the same.)"""

from __future__ import annotations

import functools
import json
import logging
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
import xarray as xr

from flows.commands.forecast import summary
from generators.rollout_store import forecast_to_store
from pipeline.errors import time_text
from pipeline.forecast_claims import claims_path
from pipeline.forecast_store import open_forecast

from tiny import two_step_run

INITS = pd.date_range("2000-01-02T00", periods=8, freq="6h")
OTHERS = INITS[[4, 5, 7]]  # what the other run writes while the first draws INITS[2:4]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A checkpoint of two training steps on a synthetic store (:func:`tiny.two_step_run`)."""
    root = tmp_path_factory.mktemp("meanwhile")
    return root, two_step_run(root)


@pytest.fixture(scope="module")
def alone(trained) -> str:
    """The forecast of INITS drawn by one run alone (:func:`forecast_in`)."""
    root, store = trained
    forecast_in(root, store, INITS, str(root / "alone.zarr"))
    return str(root / "alone.zarr")


class AfterBatch(logging.Handler):
    """Calls ``then()`` once, when the forecast store logs the commit of the batch holding
    ``time`` (after its transaction): between two batches of a forecast, where a second
    process writing into the store would be."""

    def __init__(self, time: pd.Timestamp, then: Callable[[], object]):
        super().__init__(logging.INFO)
        self.time, self.then, self.called = time_text(time), then, False

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if not self.called and "appended" in message and self.time in message:
            self.called = True
            self.then()


def forecast_in(root: Path, store, inits: pd.DatetimeIndex, out: str):
    """Three members of ``inits`` at 12 h from the trained run, two initial times a batch."""
    options = dict(sampler="euler:nfe=2", seed=7, device="cpu", compile=False)
    return forecast_to_store(
        str(root / "run"), store, inits, [12.0], 3, out, batch_members=6, progress=False, **options
    )


def test_initial_times_another_run_wrote_meanwhile_are_not_drawn(trained, alone, caplog):
    """The later of two forecasts into one store read the store once, before its first
    batch, drew every batch, and discarded at the write those the other had written."""
    root, store = trained
    forecast = functools.partial(forecast_in, root, store)
    out = str(root / "both.zarr")
    other = AfterBatch(INITS[3], lambda: forecast(OTHERS, out))
    logger = logging.getLogger("pipeline.forecast_store")
    caplog.set_level("INFO", logger="pipeline.forecast_store")
    caplog.set_level("INFO", logger="generators.rollout_store")
    logger.addHandler(other)
    try:
        caplog.clear()
        run = forecast(INITS, out)  # two initial times a batch: the other writes after two
    finally:
        logger.removeHandler(other)
    assert other.called
    text = caplog.text
    assert "kept as they are" not in text, "drawn, then discarded at the write"
    assert f"2 initial times {time_text(INITS[4])}..{time_text(INITS[5])} written by" in text
    assert f"initial time {time_text(INITS[7])} written by another run meanwhile" in text
    assert list(run.init_times) == list(INITS[[0, 1, 2, 3, 6]])
    assert (run.skipped, run.written_by_another_run) == (0, 3)
    assert "5 initial times x 3 members" in summary(run)
    assert "; 3 written by another run meanwhile, kept" in summary(run)
    # INITS[6], drawn alone in its batch of two, has the members it has when drawn beside 7
    xr.testing.assert_identical(open_forecast(out).load(), open_forecast(alone).load())


@pytest.mark.parametrize("claimer", ["killed", "stuck"])
def test_a_claim_of_a_killed_or_stuck_run_does_not_stop_a_later_one(
    trained, alone, caplog, claimer
):
    """Claims left by a run killed before it removed them (its process gone) count for
    nothing: the later run draws every batch in order. A stuck run's (its process alive)
    put each batch off once; the later run draws them all then, never waiting for it."""
    root, store = trained
    pid = os.getpid()
    if claimer == "killed":
        ended = subprocess.Popen([sys.executable, "-c", "pass"])
        ended.wait()
        pid = ended.pid
    out = str(root / f"after_{claimer}.zarr")
    left = {"host": socket.gethostname(), "pid": pid, "init_times": [t.isoformat() for t in INITS]}
    claims_path(out).write_text(json.dumps({"a-run": left}))  # as the claimer left it
    caplog.set_level("INFO", logger="pipeline.forecast_claims")
    run = forecast_in(root, store, INITS, out)
    assert list(run.init_times) == list(INITS)
    put_off = "claimed by another run" in caplog.text
    assert put_off == (claimer == "stuck"), caplog.text
    if claimer == "killed":  # removed with this run's own
        assert not claims_path(out).exists()
    else:  # the stuck run's claim is its own to remove
        assert list(json.loads(claims_path(out).read_text())) == ["a-run"]
    xr.testing.assert_identical(open_forecast(out).load(), open_forecast(alone).load())


@pytest.mark.parametrize("hours_ago", [30, 0.25])
def test_a_claim_of_another_host_counts_until_a_day_after_it_was_taken(
    trained, alone, caplog, hours_ago
):
    """A run on another node of a shared file system crashed and left its claims: every
    later run here put each batch off ("claimed by another run (pid 4242 on node-b)"), and
    none removed them, forever: this host cannot ask about that process. A claim records
    when its run last took a batch; another host's, not taken again for a day, counts for
    nothing and goes with this run's claims. A younger one is put off as before, its age
    said."""
    root, store = trained
    out = str(root / f"after_node_b_{hours_ago}.zarr")
    taken = time.time() - hours_ago * 3600
    left = {"host": "node-b", "pid": 4242, "started": taken - 60, "taken": taken}
    left["init_times"] = [t.isoformat() for t in INITS]
    claims_path(out).write_text(json.dumps({"a-run-on-node-b": left}))
    caplog.set_level("INFO", logger="pipeline.forecast_claims")
    run = forecast_in(root, store, INITS, out)
    assert list(run.init_times) == list(INITS)
    if hours_ago > 24:
        assert "claimed by another run" not in caplog.text
        assert not claims_path(out).exists()  # removed with this run's own
    else:
        assert "claimed by another run (pid 4242 on node-b, 15 min ago)" in caplog.text
        assert list(json.loads(claims_path(out).read_text())) == ["a-run-on-node-b"]
    xr.testing.assert_identical(open_forecast(out).load(), open_forecast(alone).load())
