"""A score called from Python carries its own name, long_name and units, not the truth's:
xarray keeps the first input's attrs through ``apply_ufunc`` and means, so a spread-skill
ratio read as "2 metre temperature [K]" and rank counts as kelvin in a notebook's plot."""

import numpy as np
import pytest
import xarray as xr

from verification import scores
from verification.ranks import rank_histogram

T2M = {"units": "K", "long_name": "2 metre temperature"}


def _pair(chunked: bool) -> tuple[xr.DataArray, xr.DataArray]:
    rng = np.random.default_rng(0)
    dims = ("init_time", "latitude", "longitude")
    coords = {"latitude": [50.0, 51.0, 52.0], "longitude": [0.0, 1.0]}
    truth = xr.DataArray(rng.normal(280, 2, (4, 3, 2)), dims=dims, coords=coords, attrs=T2M)
    members = rng.normal(280, 2, (5, 4, 3, 2))
    forecast = xr.DataArray(members, dims=("member", *dims), coords=coords, attrs=T2M)
    if chunked:
        return forecast.chunk({"init_time": 2}), truth.chunk({"init_time": 2})
    return forecast, truth


@pytest.mark.parametrize("chunked", [False, True])
@pytest.mark.parametrize(
    ("name", "long_name", "units"),
    [
        ("fair_crps", "fair CRPS", "K"),
        ("ecdf_crps", "CRPS of the empirical distribution", "K"),
        ("ensemble_mean_rmse", "RMSE of the ensemble mean", "K"),
        ("ensemble_mean_error", "mean error of the ensemble mean", "K"),
        ("ensemble_spread", "ensemble spread", "K"),
        ("spread_skill_ratio", "spread-skill ratio", "1"),
    ],
)
def test_a_score_is_labelled_as_itself(chunked, name, long_name, units):
    forecast, truth = _pair(chunked)
    score = getattr(scores, name)(forecast, truth, mean_over=("init_time", "latitude"))
    assert score.name == name
    assert score.attrs == {"long_name": long_name, "units": units}
    assert forecast.attrs == T2M and truth.attrs == T2M  # the inputs keep theirs


def test_a_score_of_a_truth_without_units_has_none():
    forecast, truth = _pair(chunked=False)
    score = scores.fair_crps(forecast.drop_attrs(), truth.drop_attrs(), mean_over="init_time")
    assert score.attrs == {"long_name": "fair CRPS"}


@pytest.mark.parametrize("chunked", [False, True])
def test_rank_histogram_counts_are_dimensionless(chunked):
    forecast, truth = _pair(chunked)
    counts = rank_histogram(forecast, truth, mean_over=("init_time", "latitude", "longitude"))
    assert counts.attrs == {"long_name": "rank histogram counts", "units": "1"}
    assert int(counts.sum()) == 24
