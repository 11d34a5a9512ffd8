"""Ensemble scores against independent references (xskillscore, properscoring, scores,
closed forms, brute force) and limit cases."""

from __future__ import annotations

import numpy as np
import properscoring
import pytest
import scipy.stats
import scores.probability
import xarray as xr
import xskillscore as xs
from verification_cases import ensemble, iid_ensemble, point

from pipeline.errors import InputError
from verification import events as ve
from verification import kernels
from verification import ranks as vr
from verification import scores as vs
from verification.aggregation import count_valid, latitude_weights, mean_over

ATOL = 1e-6


def brute_force_crps(members, y, fair):
    """O(M²) pairwise CRPS of one point, valid members only (the reference form)."""
    x = np.asarray([v for v in members if not np.isnan(v)])
    m = len(x)
    pairs = np.abs(x[:, None] - x[None, :]).sum()
    return np.abs(x - y).mean() - pairs / (2 * m * (m - 1) if fair else 2 * m * m)


def gaussian_crps(mu, sigma, y):
    """Closed-form CRPS of N(mu, sigma²) (Gneiting et al. 2005)."""
    z = (y - mu) / sigma
    return sigma * (
        z * (2 * scipy.stats.norm.cdf(z) - 1) + 2 * scipy.stats.norm.pdf(z) - 1 / np.sqrt(np.pi)
    )


@pytest.mark.parametrize(
    ("y", "members", "ecdf", "fair"),
    [
        (2, [0, 4, 3, 7], 1.125, 2 / 3),
        (3, [1, -1, 2, 4], 1.0, 2 / 3),
        (1, [0, 1, 4, np.nan], 4 / 9, 0.0),
        (0, [0, 1], 0.25, None),
        (2, [0, 1], 1.25, None),
        (0, [-1, 1], 0.5, None),
        (0, [0, 0, 1], 1 / 9, None),
        (1, [0, 0, 1], 4 / 9, None),
        (0, [-1, 0, 0, 1], 1 / 8, None),
    ],
)
def test_crps_known_values(y, members, ecdf, fair):
    forecast, truth = point(members, y)
    assert float(vs.ecdf_crps(forecast, truth)[0]) == pytest.approx(ecdf, abs=1e-12)
    if fair is not None:
        assert float(vs.fair_crps(forecast, truth)[0]) == pytest.approx(fair, abs=1e-12)


def test_crps_nan_truth_and_no_valid_member_give_nan():
    forecast, truth = point([1, 2, 3, 4], np.nan)
    assert np.isnan(vs.ecdf_crps(forecast, truth)[0])
    forecast, truth = point([np.nan, np.nan], 1.0)
    assert np.isnan(vs.fair_crps(forecast, truth)[0])


def test_one_member_gives_absolute_error():
    rng = np.random.default_rng(1)
    forecast, truth = ensemble(rng, n_member=1)
    expected = np.abs(forecast.isel(member=0, drop=True) - truth)
    for score in (vs.fair_crps, vs.ecdf_crps):
        xr.testing.assert_allclose(
            score(forecast, truth), expected.rename(None), atol=1e-12, check_dim_order=False
        )


def test_crps_matches_xskillscore_properscoring_and_brute_force():
    rng = np.random.default_rng(2)
    forecast, truth = ensemble(rng, n_member=9)
    ours = vs.ecdf_crps(forecast, truth)
    theirs = xs.crps_ensemble(truth, forecast, dim=[])
    np.testing.assert_allclose(ours.values, theirs.transpose(*ours.dims).values, atol=ATOL)
    ps = properscoring.crps_ensemble(truth.values, forecast.transpose(..., "member").values)
    np.testing.assert_allclose(ours.values, ps, atol=ATOL)
    fair = vs.fair_crps(forecast, truth)
    f = forecast.transpose(..., "member").values
    brute = np.vectorize(lambda i, j, k: brute_force_crps(f[i, j, k], truth.values[i, j, k], True))(
        *np.indices(truth.shape)
    )
    np.testing.assert_allclose(fair.values, brute, atol=1e-10)


def test_fair_crps_matches_scores_with_nan_members():
    rng = np.random.default_rng(3)
    forecast, truth = ensemble(rng, n_member=8)
    forecast = forecast.where(rng.random(forecast.shape) > 0.2)  # NaN members, >= 2 valid kept
    forecast = forecast.where(forecast.count("member") >= 2, 0.0)
    for method, ours in (("fair", vs.fair_crps), ("ecdf", vs.ecdf_crps)):
        theirs = scores.probability.crps_for_ensemble(
            forecast, truth, "member", method=method, preserve_dims="all"
        )
        np.testing.assert_allclose(
            ours(forecast, truth).values, theirs.transpose(*truth.dims).values, atol=ATOL
        )


def test_fair_crps_of_large_sampled_gaussian_is_closed_form():
    assert gaussian_crps(1.0, 1.0, 1.02) == pytest.approx(0.23385455, abs=1e-8)
    rng = np.random.default_rng(4)
    mu, sigma = 2.0, 3.0
    y = np.linspace(-6, 10, 40)
    members = rng.normal(mu, sigma, size=(40, 20000))
    forecast = xr.DataArray(members, dims=("x", "member"))
    ours = vs.fair_crps(forecast, xr.DataArray(y, dims=("x",))).values
    np.testing.assert_allclose(ours, gaussian_crps(mu, sigma, y), rtol=0.02, atol=0.02)


def test_mean_over_is_cos_latitude_weighted_and_skips_nan_truth():
    rng = np.random.default_rng(5)
    forecast, truth = ensemble(rng)
    truth = truth.where(rng.random(truth.shape) > 0.1)
    pointwise = vs.fair_crps(forecast, truth)
    got = vs.fair_crps(forecast, truth, mean_over=("init_time", "latitude", "longitude"))
    w = np.broadcast_to(np.cos(np.deg2rad(truth.latitude.values))[None, :, None], truth.shape)
    valid = ~np.isnan(pointwise.values)
    expected = (pointwise.values[valid] * w[valid]).sum() / w[valid].sum()
    assert float(got) == pytest.approx(expected, rel=1e-12)
    assert int(count_valid(truth, truth.dims)) == valid.sum() < truth.size
    assert np.isfinite(float(got))


def test_latitude_weights_have_mean_one_and_follow_cos():
    lat = xr.DataArray([-75.0, -45.0, -15.0, 15.0, 45.0, 75.0], dims="latitude")
    w = latitude_weights(lat)
    assert float(w.mean()) == pytest.approx(1.0)
    assert float(w[2] / w[0]) == pytest.approx(np.cos(np.deg2rad(15)) / np.cos(np.deg2rad(75)))


def test_mean_over_unknown_dim_is_a_clear_error():
    rng = np.random.default_rng(6)
    forecast, truth = ensemble(rng)
    with pytest.raises(InputError, match="lead_time"):
        vs.fair_crps(forecast, truth, mean_over="lead_time")
    with pytest.raises(InputError, match="member dim"):
        vs.fair_crps(truth, truth)


@pytest.mark.parametrize("score", [vs.fair_crps, vs.spread_skill_ratio, vr.rank_histogram])
def test_datasets_given_for_variables_are_refused_naming_the_variable_to_pick(score):
    """fair_crps(pair.forecast, pair.truth), the aligned Datasets, ended in xarray's "the
    first argument to .rename must be a dictionary"."""
    forecast, truth = ensemble(np.random.default_rng(6))
    with pytest.raises(InputError, match=r"forecast is a Dataset \(t2m\).*forecast\.t2m"):
        score(forecast.to_dataset(name="t2m"), truth.to_dataset(name="t2m"))


def test_a_latitude_without_values_is_not_weighted_by_its_positions():
    """cos(0°), cos(1°), ... of the row numbers was taken as the area weight."""
    rng = np.random.default_rng(6)
    forecast, truth = ensemble(rng)
    bare = {"forecast": forecast.drop_vars("latitude"), "truth": truth.drop_vars("latitude")}
    with pytest.raises(InputError, match="latitude has no coordinate values"):
        vs.fair_crps(bare["forecast"], bare["truth"], mean_over=("latitude", "longitude"))
    vs.fair_crps(bare["forecast"], bare["truth"], mean_over="longitude")  # no weights: fine


def test_misaligned_truth_is_a_clear_error():
    rng = np.random.default_rng(6)
    forecast, truth = ensemble(rng)
    with pytest.raises(InputError, match="align"):
        vs.fair_crps(forecast, truth.assign_coords(latitude=truth.latitude + 1))


def test_spread_skill_ratio_of_reliable_ensemble_is_one_with_finite_factor():
    rng = np.random.default_rng(7)
    forecast, truth = iid_ensemble(rng, 200_000, 5)
    ssr = float(vs.spread_skill_ratio(forecast, truth, mean_over="x"))
    assert ssr == pytest.approx(1.0, abs=0.01)
    spread = float(vs.ensemble_spread(forecast, truth, mean_over="x"))
    skill = float(vs.ensemble_mean_rmse(forecast, truth, mean_over="x"))
    assert spread / skill == pytest.approx(np.sqrt(5 / 6), abs=0.01)  # WeatherBench 2's 0.91
    under, truth = iid_ensemble(rng, 50_000, 5, spread=0.5)
    assert float(vs.spread_skill_ratio(under, truth, mean_over="x")) < 0.7


def test_ensemble_mean_rmse_and_spread_against_numpy():
    rng = np.random.default_rng(8)
    forecast, truth = ensemble(rng)
    dims = ("init_time", "longitude")
    rmse = vs.ensemble_mean_rmse(forecast, truth, mean_over=dims)
    expected = np.sqrt(((forecast.mean("member") - truth) ** 2).mean(dims))
    xr.testing.assert_allclose(rmse, expected.rename("ensemble_mean_rmse"))
    spread = vs.ensemble_spread(forecast, truth, mean_over=dims)
    xr.testing.assert_allclose(
        spread, np.sqrt(forecast.var("member", ddof=1).mean(dims)).rename("ensemble_spread")
    )


def test_ensemble_mean_error_is_the_signed_error_of_the_mean():
    rng = np.random.default_rng(18)
    forecast, truth = ensemble(rng)
    truth = truth.where(rng.random(truth.shape) > 0.1)  # NaN truths drop out
    dims = ("init_time", "longitude")
    bias = vs.ensemble_mean_error(forecast, truth, mean_over=dims)
    expected = (forecast.mean("member") - truth).mean(dims, skipna=True)
    xr.testing.assert_allclose(bias, expected.rename("ensemble_mean_error"))
    # too warm by 0.5 everywhere: the bias moves by exactly +0.5, the RMSE grows
    warmer = vs.ensemble_mean_error(forecast + 0.5, truth, mean_over=dims)
    xr.testing.assert_allclose(warmer, bias + 0.5)
    perfect_mean = forecast - forecast.mean("member") + truth
    assert np.abs(vs.ensemble_mean_error(perfect_mean, truth, mean_over=dims)).max() < 1e-12


def test_energy_score_reduces_to_crps_in_one_dimension_and_brute_force_in_two():
    rng = np.random.default_rng(15)
    forecast, truth = ensemble(rng, n_member=5)
    f1 = forecast.expand_dims(channel=["a"])
    t1 = truth.expand_dims(channel=["a"])
    xr.testing.assert_allclose(
        vs.energy_score(f1, t1, fair=False), vs.ecdf_crps(forecast, truth).rename("energy_score")
    )
    xr.testing.assert_allclose(
        vs.energy_score(f1, t1, fair=True), vs.fair_crps(forecast, truth).rename("energy_score")
    )
    x = rng.normal(size=(6, 2))
    y = rng.normal(size=2)
    f2 = xr.DataArray(x, dims=("member", "channel"))
    t2 = xr.DataArray(y, dims=("channel",))
    dist = np.linalg.norm(x[:, None] - x[None], axis=-1).sum()
    expected = np.linalg.norm(x - y, axis=-1).mean() - dist / (2 * 6 * 5)
    assert float(vs.energy_score(f2, t2)) == pytest.approx(expected, abs=1e-12)


def test_one_component_energy_score_kernel_equals_the_pair_sum():
    """One component goes through the sorted members of the CRPS: the same numbers as the
    pair sum over (i, j) to rounding, on values far from 0 (standardised temperatures), and
    NaN where a member or the truth is."""
    rng = np.random.default_rng(17)
    x = rng.normal(56.0, 0.3, size=(400, 12, 1)) + rng.normal(0.0, 2.0, size=(400, 1, 1))
    y = rng.normal(56.0, 2.0, size=(400, 1))
    x[3, 5, 0], y[7, 0] = np.nan, np.nan
    pairs = np.abs(x[..., :, None, 0] - x[..., None, :, 0]).sum(axis=(-2, -1))
    for fair, denominator in ((True, 2 * 12 * 11), (False, 2 * 12 * 12)):
        expected = np.abs(x[..., 0] - y).mean(axis=-1) - pairs / denominator
        np.testing.assert_allclose(kernels.energy_score(x, y, fair=fair), expected, rtol=1e-12)


def test_dask_chunked_input_gives_in_memory_numbers():
    rng = np.random.default_rng(16)
    forecast, truth = ensemble(rng, n_init=6, n_member=5)
    forecast = forecast.round(1)  # ties between members and truth
    truth = truth.round(1).where(rng.random(truth.shape) > 0.05)
    chunked_f = forecast.chunk({"init_time": 2, "member": 2, "latitude": 3})
    chunked_t = truth.chunk({"init_time": 3, "longitude": 3})
    agg = ("init_time", "latitude")
    for score in (
        vs.fair_crps,
        vs.ecdf_crps,
        vs.ensemble_mean_rmse,
        vs.ensemble_mean_error,
        vs.ensemble_spread,
        vs.spread_skill_ratio,
    ):
        lazy = score(chunked_f, chunked_t, mean_over=agg)
        assert lazy.chunks is not None
        xr.testing.assert_allclose(
            lazy.compute(), score(forecast, truth, mean_over=agg), rtol=1e-12
        )
    lazy = vr.rank_histogram(chunked_f, chunked_t, mean_over=agg, seed=3)
    assert lazy.chunks is not None
    xr.testing.assert_equal(
        lazy.compute(), vr.rank_histogram(forecast, truth, mean_over=agg, seed=3)
    )
    lazy = ve.reliability(chunked_f, chunked_t, [0.0, 0.5], mean_over=agg)
    xr.testing.assert_equal(
        lazy.compute(), ve.reliability(forecast, truth, [0.0, 0.5], mean_over=agg)
    )
    lazy = ve.brier_score(chunked_f, chunked_t, [0.0], fair=True, mean_over=agg)
    xr.testing.assert_allclose(
        lazy.compute(), ve.brier_score(forecast, truth, [0.0], fair=True, mean_over=agg)
    )
    assert mean_over(chunked_t, "init_time").chunks is not None


def test_moments_of_members_with_nans_match_numpys_nan_functions_without_warnings():
    """Points with 0, 1 or several valid members: the mean and variance are
    ``np.nanmean`` / ``np.nanvar(ddof=1)``'s (NaN with fewer than 2), computed under
    ``np.errstate`` only: no warning, and the process's warning filters untouched (dask
    runs these kernels in threads, where swapping the filters is not safe)."""
    import warnings

    from verification import kernels

    rng = np.random.default_rng(5)
    members = rng.normal(size=(6, 40, 5))
    members[members > 0.8] = np.nan
    members[0, :3] = np.nan  # no valid member
    members[1, :3, 1:] = np.nan  # one valid member
    truth = rng.normal(size=(6, 40))
    filters = list(warnings.filters)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        squared_error, variance = kernels.ensemble_moments(members, truth)
        error = kernels.ensemble_mean_error(members, truth)
    assert warnings.filters == filters
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mean, var = np.nanmean(members, axis=-1), np.nanvar(members, axis=-1, ddof=1)
    np.testing.assert_allclose(error, mean - truth, rtol=1e-12)
    np.testing.assert_allclose(squared_error, (mean - truth) ** 2, rtol=1e-12)
    np.testing.assert_allclose(variance, var, rtol=1e-12)
    assert np.isnan(variance[0, :3]).all() and np.isnan(variance[1, :3]).all()
