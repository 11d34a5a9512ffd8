"""A score called from Python carries its own name, long_name and units, not the truth's:
xarray keeps the first input's attrs through ``apply_ufunc`` and means, so a spread-skill
ratio read as "2 metre temperature [K]" and rank counts as kelvin in a notebook's plot."""

import numpy as np
import pytest
import xarray as xr

from verification import events, ranks, scores
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


def _channels(chunked: bool) -> tuple[xr.DataArray, xr.DataArray]:
    """The pair with a ``channel`` dim of two components, as energy_score takes."""
    forecast, truth = _pair(chunked)
    return (
        xr.concat([forecast, forecast + 1], "channel").assign_attrs(T2M),
        xr.concat([truth, truth - 1], "channel").assign_attrs(T2M),
    )


def _every_other_score(chunked: bool) -> dict[str, xr.DataArray | xr.Dataset]:
    """Each public score function outside the registry, on the pair, by its name."""
    forecast, truth = _pair(chunked)
    over = ("init_time", "latitude")
    table = events.reliability(forecast, truth, 280.0, mean_over=over)
    counts = rank_histogram(forecast, truth, mean_over=over)
    error = forecast.mean("member") - truth
    return {
        "energy_score": scores.energy_score(*_channels(chunked), mean_over=over),
        "fair_crps_by_point": scores.fair_crps_by_point(forecast, truth),
        "brier_score": events.brier_score(forecast, truth, 280.0, mean_over=over),
        "reliability": table,
        "murphy_decomposition": events.murphy_decomposition(table),
        "ranks": ranks.ranks(forecast, truth),
        "perfect_model_rank_histogram": ranks.perfect_model_rank_histogram(
            forecast, truth, mean_over=over
        ),
        "error_surrogate_rank_histogram": ranks.error_surrogate_rank_histogram(
            error, 5, replicas=1
        ),
        "rank_flatness": ranks.rank_flatness(counts),
        "rank_max_min_ratio": ranks.rank_max_min_ratio(counts),
    }


@pytest.mark.parametrize("chunked", [False, True])
def test_every_other_score_is_labelled_as_itself_not_as_the_truth(chunked):
    """energy_score, the Brier score, the reliability table and the rank statistics came
    back as "2 metre temperature [K]" (the truth's attrs) or as rank counts."""
    for function, result in _every_other_score(chunked).items():
        arrays = result.data_vars.values() if isinstance(result, xr.Dataset) else [result]
        for array in arrays:
            said = f"{function}: {array.name} has {array.attrs}"
            wrong = (None, T2M["long_name"], "rank histogram counts")
            assert array.attrs.get("long_name") not in wrong, said
            assert array.attrs.get("units") == ("K" if function in UNITS_K else "1"), said


UNITS_K = {"energy_score", "fair_crps_by_point"}
