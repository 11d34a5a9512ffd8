"""What the scores file and the report say about units, labels and leads, as a reader
opens them (the groups' attributes, the tables and captions)."""

from __future__ import annotations

import pytest
import xarray as xr
from verification_cases import balanced_members, oracle_forecast

from pipeline.sources.synthetic import SyntheticConfig, synthetic_dataset
from verification.config import VerifyConfig
from verification.scorecard import verify


@pytest.fixture(scope="module")
def mixed():
    """t2m (K) beside z (m2 s-2) and t on two levels: 3 members, 8 inits, 2 leads."""
    config = SyntheticConfig(n_lat=12, n_lon=16, n_times=16, levels=(500, 850))
    truth = synthetic_dataset(config).load()
    t2m = oracle_forecast(config, truth, 8, (6, 12), 3, seed=1)
    upper = balanced_members(config, truth, 8, (6, 12), seeds=(21, 22, 23))[["z", "t"]]
    forecast = xr.merge([t2m, upper.assign_coords(member=t2m.member)])
    return verify(forecast, truth, VerifyConfig(physics_init_times=4, progress=False))


def test_no_group_labels_every_variable_with_the_first_ones_name_and_units(mixed):
    """The stacked variables (t2m, z500, ...) once lent the first one's attributes to every
    result: rank counts, Brier scores and z500's maps read "2 metre temperature", "K"."""
    for group in mixed.children:
        ds = mixed[group].to_dataset()
        for name, da in ds.data_vars.items():
            where = f"/{group}/{name}"
            assert da.attrs.get("long_name") != "2 metre temperature", where
            assert "source_units" not in da.attrs, where
            assert da.attrs.get("units") not in ("K", "m2 s-2"), where
