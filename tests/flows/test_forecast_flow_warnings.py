"""The forecast flow's warnings about the checkpoint are said once a flow run, not once a
batch of initial times (each batch is a task that draws with the library's forecast)."""

from __future__ import annotations

import logging

import pytest

from tests.generators.test_forecast_calibration_log import SAMPLER, calibrated_checkpoint
from tests.generators.tiny import two_step_run


@pytest.mark.usefixtures("prefect_server")
def test_a_far_calibration_is_warned_once_a_flow_run_of_many_batches(tmp_path, caplog, monkeypatch):
    """A forecast flow of two batches (one initial time each) warned of spread factors far
    from 1 in each batch's task: the run's log said the same line twice."""
    from flows.steps import forecast

    monkeypatch.chdir(tmp_path)  # Prefect's results (.wxens) land here, not in the repository

    store = two_step_run(tmp_path)
    calibrated_checkpoint(tmp_path, factor=5.0).save(tmp_path / "far.pt")
    said: list[logging.LogRecord] = []
    heard = logging.Handler(logging.WARNING)
    heard.emit = said.append  # its own handler: caplog's may also sit on the root, or not
    logger = logging.getLogger("generators")  # Prefect's logging setup drops root handlers
    logger.addHandler(heard)
    try:
        with caplog.at_level(logging.WARNING, logger="generators"):
            done = forecast(
                str(tmp_path / "far.pt"),
                str(store.path),
                ["2000-01-08T00", "2000-01-08T06"],
                str(tmp_path / "f.zarr"),
                leads_hours=[6.0],
                members=2,
                batch_members=2,
                sampler=SAMPLER,
                device="cpu",
            )
    finally:
        logger.removeHandler(heard)
    assert len(done) == 2
    far = [r for r in said if "spread factors far from 1" in r.getMessage()]
    assert len(far) == 1, [r.getMessage() for r in far]
