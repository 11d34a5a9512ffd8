"""Fixtures of the verification tests (their builders: :mod:`verification_cases`)."""

from __future__ import annotations

import pytest
from verification_cases import oracle_forecast

from pipeline.forecast_store import ForecastProvenance, write_forecast
from pipeline.sources.synthetic import SyntheticConfig, synthetic_dataset
from pipeline.store import ingest


@pytest.fixture(scope="session")
def small_synthetic():
    config = SyntheticConfig(n_lat=16, n_lon=24, n_times=24)
    return config, synthetic_dataset(config).load()


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    """A t2m forecast store (6 init times, leads 6 and 12 h, 3 oracle members) and its
    analysis store (synthetic, 8 x 12): ``(forecast, analysis)`` paths."""
    root = tmp_path_factory.mktemp("run")
    config = SyntheticConfig(n_lat=8, n_lon=12, n_times=12)
    analysis = root / "analysis.zarr"
    ingest(config.to_spec(), analysis, progress=False)
    forecast = oracle_forecast(config, synthetic_dataset(config).load(), 6, (6, 12), 3, seed=1)
    provenance = ForecastProvenance(
        generator="oracle", checkpoint_digest="none", sampler="exact", nfe=0, seed=1
    )
    store = root / "forecast.zarr"
    write_forecast(store, forecast, provenance)
    return store, analysis
