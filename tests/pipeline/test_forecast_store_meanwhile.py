"""Forecast stores written by two runs at once: what the log of the later one says."""

from __future__ import annotations

from pipeline.forecast_store import open_forecast, write_forecast
from tests.pipeline.test_forecast_store import PROVENANCE, ensemble


def test_a_batch_another_run_wrote_meanwhile_logs_one_line_not_an_empty_write(
    tmp_path, caplog
):
    """Two forecasts of overlapping initial times into one store: each batch the other run
    had written also logged "f.zarr (no initial time): overwrote 0 and appended 0 initial
    time(s)", a line per batch saying nothing."""
    path = tmp_path / "f.zarr"
    write_forecast(path, ensemble(["2019-03-22T00"], 1.0), PROVENANCE)
    with caplog.at_level("INFO", logger="pipeline.forecast_store"):
        written = write_forecast(path, ensemble(["2019-03-22T00"], 2.0), PROVENANCE, replace=False)
    messages = [r.getMessage() for r in caplog.records]
    assert len(written) == 0
    assert len(messages) == 1 and "written by another run meanwhile" in messages[0]
    assert float(open_forecast(path).t2m.min()) == 1.0  # kept as it was
