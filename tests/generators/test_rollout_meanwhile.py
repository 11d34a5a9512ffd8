"""Two forecasts of overlapping initial times into one store: the later one reads the store
again before each batch and draws none of the initial times the other wrote meanwhile."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pandas as pd
import pytest
import xarray as xr

from flows.commands.forecast import summary
from generators.rollout_store import forecast_to_store
from pipeline.errors import time_text
from pipeline.forecast_store import open_forecast

from tiny import two_step_run

INITS = pd.date_range("2000-01-02T00", periods=8, freq="6h")
OTHERS = INITS[[4, 5, 7]]  # what the other run writes while the first draws INITS[2:4]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A checkpoint of two training steps on a synthetic store (:func:`tiny.two_step_run`)."""
    root = tmp_path_factory.mktemp("meanwhile")
    return root, two_step_run(root)


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


def test_initial_times_another_run_wrote_meanwhile_are_not_drawn(trained, caplog):
    """The later of two forecasts into one store read the store once, before its first
    batch, drew every batch, and discarded at the write those the other had written."""
    root, store = trained

    def forecast(inits: pd.DatetimeIndex, out: str):
        options = dict(sampler="euler:nfe=2", seed=7, device="cpu", compile=False)
        return forecast_to_store(
            str(root / "run"),
            store,
            inits,
            [12.0],
            3,
            out,
            batch_members=6,
            progress=False,
            **options,
        )

    reference = str(root / "alone.zarr")
    forecast(INITS, reference)
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
    xr.testing.assert_identical(open_forecast(out).load(), open_forecast(reference).load())
