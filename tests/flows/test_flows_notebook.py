"""The verification dashboard notebook, executed top to bottom on demo-like output."""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "verification_dashboard.ipynb"


def test_dashboard_notebook_executes_without_error(chain, monkeypatch, tmp_path):
    import nbformat
    from nbclient import NotebookClient

    monkeypatch.setenv("WXENS_FORECAST", str(chain.forecast))
    monkeypatch.setenv("WXENS_TRUTH", str(chain.store))
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
    figures = [out for out in outputs if "image/png" in out.get("data", {})]
    assert len(figures) >= 7  # scores, SSR, ranks, reliability, spectra, maps, physics
    tables = "".join(out.get("data", {}).get("text/html", "") for out in outputs)
    assert "fair CRPS" in tables and "spread/skill" in tables
