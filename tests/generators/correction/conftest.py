"""The truth store of the bias-correction tests (``warm.warm_forecast`` forecasts it)."""

from __future__ import annotations

import pytest

from pipeline.store import ingest


@pytest.fixture()
def analysis(tmp_path):
    return ingest(
        "synthetic:n_lat=4,n_lon=5,n_times=40,step=6h,seed=3",
        tmp_path / "truth.zarr",
        variables=["t2m"],
        progress=False,
    )
