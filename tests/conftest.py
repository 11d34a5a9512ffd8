"""Shared fixtures and the ``gpu`` marker's skip."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
UK_SAMPLE = REPO / "data" / "era5-t2m-uk-2019-03.grib"


def pytest_configure(config: pytest.Config) -> None:
    import torch

    # The tests use tiny tensors: a second intra-op thread only spins, and on a busy
    # 2-core CI machine it made the generator tests 6x slower (282 s against 42 s).
    torch.set_num_threads(1)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def uk_sample() -> Path:
    """The shipped ERA5 t2m sample (744 hourly 33 x 49 fields)."""
    return UK_SAMPLE
