"""The dashboard notebook opens every forecast its first cell says it does: a wxens store,
or a NetCDF / GRIB / WeatherBench 2 ensemble (its code cells run here in IPython, without a
kernel; tests/flows/test_flows_notebook.py runs the whole notebook on a forecast store)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from verification_cases import oracle_forecast

from pipeline.sources.synthetic import SyntheticConfig, synthetic_dataset
from pipeline.store import ingest

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "verification_dashboard.ipynb"


def test_the_dashboard_verifies_a_netcdf_ensemble(tmp_path, monkeypatch):
    """It opened the forecast with open_forecast, which refuses anything but a store."""
    shell = pytest.importorskip("IPython.core.interactiveshell").InteractiveShell.instance()
    config = SyntheticConfig(n_lat=8, n_lon=10, n_times=12)
    truth = synthetic_dataset(config)[["t2m"]].load()
    truth_path = tmp_path / "truth.nc"
    truth.to_netcdf(truth_path)
    ingest(str(truth_path), tmp_path / "truth.zarr", progress=False)
    forecast = oracle_forecast(config, truth, 3, (6, 12), 4)
    forecast.to_netcdf(tmp_path / "ensemble.nc")
    monkeypatch.setenv("WXENS_FORECAST", str(tmp_path / "ensemble.nc"))
    monkeypatch.setenv("WXENS_TRUTH", str(tmp_path / "truth.zarr"))
    monkeypatch.setenv("WXENS_REFERENCE", str(tmp_path / "none.zarr"))
    monkeypatch.chdir(tmp_path)
    run_notebook_cells(shell)
    assert shell.user_ns["tree"].attrs["n_members"] == 4
    # the products of the latest initial time, as numpy computes them from its members
    ns = shell.user_ns
    members = ns["forecast"]["t2m"].isel(init_time=-1).transpose("member", ...).values
    products = ns["products"].isel(init_time=0)
    np.testing.assert_allclose(products["t2m_mean"], members.mean(0), rtol=1e-6)
    np.testing.assert_allclose(products["t2m_below_273p15"], (members < 273.15).mean(0))
    # the plume has a line per member and the truth's dots
    lines = [line.get_gid() for line in ns["plume"].axes[0].get_lines()]
    assert lines.count("member") == 4 and "truth" in lines


def run_notebook_cells(shell) -> None:
    """The notebook's code cells, in order, in ``shell``; each must succeed."""
    shell.user_ns["display"] = lambda *objects: None
    cells = json.loads(NOTEBOOK.read_text())["cells"]
    for cell in (c for c in cells if c["cell_type"] == "code"):
        source = "".join(cell["source"]).replace("%matplotlib inline", "")
        result = shell.run_cell(source, store_history=False)
        assert result.success, f"{source[:200]}\n{result.error_in_exec!r}"


def test_the_dashboard_reads_paths_given_from_the_repository_root(tmp_path, monkeypatch, capsys):
    """A kernel runs in notebooks/: WXENS_FORECAST=forecasts/x.zarr, set where the README's
    commands ran (the repository root), was looked for in notebooks/ and not found; a
    reference that is not there is said to be absent rather than left out without a word."""
    shell = pytest.importorskip("IPython.core.interactiveshell").InteractiveShell.instance()
    config = SyntheticConfig(n_lat=8, n_lon=10, n_times=12)
    truth = synthetic_dataset(config)[["t2m"]].load()
    truth.to_netcdf(tmp_path / "truth.nc")
    ingest(str(tmp_path / "truth.nc"), tmp_path / "stores" / "truth.zarr", progress=False)
    (tmp_path / "forecasts").mkdir()
    oracle_forecast(config, truth, 3, (6, 12), 4).to_netcdf(tmp_path / "forecasts" / "ens.nc")
    monkeypatch.setenv("WXENS_FORECAST", "forecasts/ens.nc")
    monkeypatch.setenv("WXENS_TRUTH", "stores/truth.zarr")
    monkeypatch.setenv("WXENS_REFERENCE", "forecasts/typo.zarr")
    (tmp_path / "notebooks").mkdir()
    monkeypatch.chdir(tmp_path / "notebooks")
    run_notebook_cells(shell)
    assert shell.user_ns["tree"].attrs["n_members"] == 4
    assert "no reference ensemble: nothing at" in capsys.readouterr().out


@pytest.mark.parametrize("corrected", [True, False], ids=["corrected", "no-correction"])
def test_the_dashboard_opens_the_forecast_the_demo_verified(tmp_path, monkeypatch, corrected):
    """wxens demo scores its corrected store when wxens tune chose a correction (its printed
    table and report); the dashboard opened the raw forecast.zarr, and its scorecard
    disagreed with the demo's (fair CRPS 0.842 against 0.822 K at 6 h)."""
    shell = pytest.importorskip("IPython.core.interactiveshell").InteractiveShell.instance()
    demo = tmp_path / "wxens-demo"
    for name in ("forecast.zarr", "era5-uk.zarr", *(["corrected.zarr"] if corrected else [])):
        (demo / name).mkdir(parents=True)
    for name in ("WXENS_FORECAST", "WXENS_TRUTH", "WXENS_REFERENCE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    first = next(c for c in json.loads(NOTEBOOK.read_text())["cells"] if c["cell_type"] == "code")
    result = shell.run_cell("".join(first["source"]).replace("%matplotlib inline", ""))
    assert result.success, result.error_in_exec
    expected = "corrected.zarr" if corrected else "forecast.zarr"
    assert shell.user_ns["FORECAST"].resolve() == (demo / expected).resolve()
