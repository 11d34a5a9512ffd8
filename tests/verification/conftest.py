"""Fixtures of the verification tests (their builders: :mod:`verification_cases`)."""

from __future__ import annotations

import pytest

from pipeline.sources.synthetic import SyntheticConfig, synthetic_dataset


@pytest.fixture(scope="session")
def small_synthetic():
    config = SyntheticConfig(n_lat=16, n_lon=24, n_times=24)
    return config, synthetic_dataset(config).load()
