"""The verification dashboard notebook, executed top to bottom on demo-like output."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.slow

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "verification_dashboard.ipynb"


def test_dashboard_notebook_executes_without_error(chain, monkeypatch, tmp_path):
    import nbformat
    from nbclient import NotebookClient

    from generators.correction.baseline_store import baseline_to_store
    from generators.correction.baselines import BaselineConfig
    from pipeline.forecast_store import open_forecast

    forecast = open_forecast(chain.forecast)
    leads = list(forecast.lead_time.values / np.timedelta64(1, "h"))
    reference = tmp_path / "persistence.zarr"
    config = BaselineConfig("2000-01-01", "2000-01-07", members=forecast.sizes["member"])
    inits = forecast.init_time.values
    baseline_to_store("persistence", chain.store, config, inits, leads, reference, progress=False)
    monkeypatch.setenv("WXENS_FORECAST", str(chain.forecast))
    monkeypatch.setenv("WXENS_TRUTH", str(chain.store))
    monkeypatch.setenv("WXENS_REFERENCE", str(reference))
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(
        notebook,
        timeout=600,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute()  # CellExecutionError on the first cell that raises

    outputs = [out for cell in notebook.cells if cell.cell_type == "code" for out in cell.outputs]
    assert not [out for out in outputs if out.output_type == "error"]
    # no warning to read past: tqdm.auto's "IProgress not found" in a kernel without
    # ipywidgets was printed under the first cell that opened a store
    streams = "".join(out.get("text", "") for out in outputs if out.output_type == "stream")
    assert "Warning" not in streams, streams
    figures = [out for out in outputs if "image/png" in out.get("data", {})]
    assert len(figures) >= 8  # plume, scores, SSR, ranks, reliability, spectra, maps, physics
    tables = "".join(out.get("data", {}).get("text/html", "") for out in outputs)
    assert "t2m_mean" in tables and "t2m_below_273p15" in tables  # the products' dataset
    assert "fair CRPS" in tables and "spread/skill" in tables
    assert "CRPS skill" in tables and "reference CRPS" in tables
    assert "<th>truth score</th><th>tolerance</th>" in tables  # physics: a row per check
