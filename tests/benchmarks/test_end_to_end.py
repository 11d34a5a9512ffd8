"""The end-to-end benchmark's store is a global one the default config is derived from,
and the benchmark runs through (tiny sizes, no DDP: the DDP tests cover that engine)."""

from __future__ import annotations

import json

import numpy as np

from benchmarks.end_to_end import LEVELS, global_dataset, main, smooth_noise
from pipeline.store import ingest


def test_smooth_noise_has_unit_variance_and_the_ar1_lag_correlation():
    x = smooth_noise(np.random.default_rng(0), 400, (19, 36))
    assert abs(float(x.std()) - 1.0) < 0.1
    lag = np.mean(x[1:] * x[:-1]) / np.mean(x * x)
    assert abs(lag - 0.9) < 0.05


def test_the_benchmark_fields_ingest_as_a_global_store(tmp_path):
    source = tmp_path / "g.nc"
    global_dataset((10, 20), n_times=6, seed=1).to_netcdf(source)
    store = ingest(str(source), tmp_path / "g.zarr", progress=False)
    ds = store.dataset
    assert set(ds.data_vars) >= {"t2m", "msl", "u10", "v10", "z", "t"}
    assert list(ds["level"].values) == sorted(LEVELS)
    assert float(ds["longitude"][-1]) == 342.0 and ds.sizes["time"] == 6


def test_the_benchmark_runs_and_writes_its_figures(tmp_path):
    """Into a --workdir not made yet, as the docs' rerun lines give it (it raised
    FileNotFoundError from the temporary folder's creation)."""
    out = tmp_path / "e2e.json"
    main(
        ["--grid", "10x20", "--members", "2", "--days", "1", "--skip-ddp", "--device", "cpu"]
        + ["--workdir", str(tmp_path / "scratch" / "e2e"), "--out", str(out)]
    )
    result = json.loads(out.read_text())
    assert result["forecast"]["lead_steps"] == 4
    assert all(s > 0 for s in result["forecast"]["wall_s"].values())
    assert len(result["channels"]) == 8
