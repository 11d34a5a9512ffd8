"""Ensemble scores against independent references (xskillscore, properscoring, scores,
closed forms, brute force) and limit cases."""

from __future__ import annotations

import numpy as np
import pandas as pd
import properscoring
import pytest
import scipy.stats
import scores.probability
import xarray as xr
import xskillscore as xs

from pipeline.errors import InputError
from verification import events as ve
from verification import ranks as vr
from verification import scores as vs
from verification.aggregation import count_valid, latitude_weights, mean_over

ATOL = 1e-6


def ensemble(rng, n_init=4, n_member=7, n_lat=5, n_lon=6, spread=1.0):
    """A float64 forecast (init_time, member, latitude, longitude) and a truth."""
    lat = np.linspace(-60, 60, n_lat)
    lon = np.arange(n_lon) * 360.0 / n_lon
    coords = {
        "init_time": pd.date_range("2021-01-01", periods=n_init, freq="12h"),
        "latitude": lat,
        "longitude": lon,
    }
    truth = xr.DataArray(
        rng.normal(size=(n_init, n_lat, n_lon)),
        dims=("init_time", "latitude", "longitude"),
        coords=coords,
    )
    members = spread * rng.normal(size=(n_init, n_member, n_lat, n_lon))
    forecast = xr.DataArray(
        members, dims=("init_time", "member", "latitude", "longitude"), coords=coords
    ).assign_coords(member=np.arange(n_member))
    return forecast, truth


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


def point(members, y):
    forecast = xr.DataArray(np.asarray(members, float)[None, :], dims=("x", "member"))
    return forecast, xr.DataArray([float(y)], dims=("x",))


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


def test_misaligned_truth_is_a_clear_error():
    rng = np.random.default_rng(6)
    forecast, truth = ensemble(rng)
    with pytest.raises(InputError, match="align"):
        vs.fair_crps(forecast, truth.assign_coords(latitude=truth.latitude + 1))


def iid_ensemble(rng, n_points, n_member, spread=1.0, shift=0.0):
    """Truth and members exchangeable N(0, 1) draws at independent points (reliable)."""
    truth = xr.DataArray(rng.normal(size=n_points), dims=("x",))
    members = xr.DataArray(
        shift + spread * rng.normal(size=(n_points, n_member)), dims=("x", "member")
    )
    return members, truth


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


def test_rank_histogram_matches_xskillscore_without_ties():
    rng = np.random.default_rng(9)
    forecast, truth = ensemble(rng, n_member=6)
    ours = vr.rank_histogram(forecast, truth, over=("init_time", "longitude"))
    theirs = xs.rank_histogram(truth, forecast, dim=["init_time", "longitude"])
    assert list(ours["rank"].values) == list(range(7))
    np.testing.assert_array_equal(ours.transpose("latitude", "rank").values, theirs.values)


def test_rank_ties_are_broken_uniformly_and_reproducibly():
    members = xr.DataArray(np.zeros((30_000, 4)), dims=("x", "member"))
    truth = xr.DataArray(np.zeros(30_000), dims=("x",))
    counts = vr.rank_histogram(members, truth, over="x", seed=11)
    assert counts.sum() == 30_000
    assert float(vr.rank_flatness(counts)["p_value"]) > 1e-3
    xr.testing.assert_equal(counts, vr.rank_histogram(members, truth, over="x", seed=11))
    assert not counts.equals(vr.rank_histogram(members, truth, over="x", seed=12))


def test_rank_histogram_excludes_nan_points():
    forecast, truth = point([1.0, np.nan, 3.0], 2.0)
    assert int(vr.rank_histogram(forecast, truth, over="x").sum()) == 0
    forecast, truth = point([1.0, 4.0, 3.0], np.nan)
    assert int(vr.ranks(forecast, truth)[0]) == -1


def test_flatness_reliable_flat_under_dispersive_u_shaped():
    rng = np.random.default_rng(10)
    forecast, truth = iid_ensemble(rng, 20_000, 9)
    flat = vr.rank_flatness(vr.rank_histogram(forecast, truth, over="x"))
    assert float(flat["p_value"]) > 0.001
    assert float(flat["delta"]) < 3.0
    narrow, truth = iid_ensemble(rng, 20_000, 9, spread=0.1)
    counts = vr.rank_histogram(narrow, truth, over="x")
    u = vr.rank_flatness(counts)
    assert float(u["p_value"]) < 1e-6
    assert counts[0] > 5 * counts[4] and counts[-1] > 5 * counts[4]  # U shape
    wide, truth = iid_ensemble(rng, 20_000, 9, spread=10.0)
    dome = vr.rank_histogram(wide, truth, over="x")
    assert dome[4] > 5 * dome[0]
    shifted, truth = iid_ensemble(rng, 20_000, 9, shift=2.0)
    slope = vr.rank_histogram(shifted, truth, over="x")
    assert slope[0] > slope[4] > slope[-1]


def test_rank_max_min_ratio_of_known_counts():
    counts = xr.DataArray([[30, 60, 20], [10, 0, 10]], dims=("lead", "rank"))
    ratio = vr.rank_max_min_ratio(counts)
    assert ratio.values.tolist() == [3.0, np.inf]  # a rank never taken: infinitely uneven


def test_perfect_model_rank_histogram_ranks_each_stand_in_among_the_others():
    rng = np.random.default_rng(21)
    forecast, truth = ensemble(rng, n_member=6)
    truth = truth.where(rng.random(truth.shape) > 0.2)  # NaN truths are left out
    over = ("init_time", "longitude")
    counts = vr.perfect_model_rank_histogram(forecast, truth, over=over, stand_ins=3)
    assert counts.sizes == {"stand_in": 3, "latitude": 5, "rank": 6}
    members = forecast.transpose("init_time", "latitude", "longitude", "member").values
    valid = truth.transpose("init_time", "latitude", "longitude").notnull().values
    for k in range(3):
        below = (np.delete(members, k, axis=-1) < members[..., k : k + 1]).sum(-1)
        for j in range(5):
            expected = np.bincount(below[:, j][valid[:, j]], minlength=6)
            np.testing.assert_array_equal(counts.isel(stand_in=k, latitude=j).values, expected)
    # all members equal: every stand-in ties with the 5 others and takes ranks 0..5 uniformly
    tied = vr.perfect_model_rank_histogram(xr.zeros_like(forecast), truth, over=over)
    assert (tied.sum("rank") == valid.sum(axis=(0, 2))).all()
    assert float(vr.rank_flatness(tied.sum(("stand_in", "latitude")))["p_value"]) > 1e-3
    with pytest.raises(InputError, match="at least 3 members"):
        vr.perfect_model_rank_histogram(forecast.isel(member=[0, 1]), truth)


def test_perfect_model_floor_tracks_the_max_min_ratio_of_a_reliable_ensemble():
    """Ranks pooled over correlated points: a reliable ensemble's max/min ratio is far above
    1, and the floor says so; independent points bring both to 1; an under-dispersive
    ensemble stands far above its floor."""
    rng = np.random.default_rng(22)

    def draws(n_init, n_x, shared, n_draws):
        offset = rng.normal(size=(n_init, 1, n_draws))  # one value per init over all x
        return shared * offset + rng.normal(size=(n_init, n_x, n_draws))

    def ratios(values, spread=1.0):
        truth = xr.DataArray(values[..., 0], dims=("init", "x"))
        forecast = xr.DataArray(spread * values[..., 1:], dims=("init", "x", "member"))
        real = vr.rank_max_min_ratio(vr.rank_histogram(forecast, truth, over=("init", "x")))
        perfect = vr.perfect_model_rank_histogram(forecast, truth, over=("init", "x"))
        return float(real), float(vr.rank_max_min_ratio(perfect).median("stand_in"))

    real, floor = ratios(draws(2000, 50, 0.0, 10))
    assert real < 1.15 and floor < 1.15
    real, floor = ratios(draws(12, 2000, 3.0, 10))
    assert real > 2.0 and floor > 2.0
    real, floor = ratios(draws(2000, 50, 0.0, 10), spread=0.5)
    assert real > 3 * floor


def test_error_surrogate_rank_histogram_limit_cases():
    """Errors uniform over the domain give every point of a sample one rank (counts in
    multiples of the points); independent errors give a flat histogram; unverified
    samples and points drop out; the seed fixes the draw."""
    rng = np.random.default_rng(23)
    dims = ("lead_time", "init_time", "latitude", "longitude")
    coherent = xr.DataArray(rng.normal(size=(2, 30, 1, 1)) * np.ones((1, 1, 4, 5)), dims=dims)
    counts = vr.error_surrogate_rank_histogram(coherent, 7, replicas=3)
    assert counts.sizes == {"lead_time": 2, "replica": 3, "rank": 8}
    assert (counts.sum("rank") == 30 * 20).all()
    assert (counts % 20 == 0).all()
    independent = xr.DataArray(rng.normal(size=(1, 400, 5, 8)), dims=dims)
    flat = vr.error_surrogate_rank_histogram(independent, 9, replicas=2).sum(
        ("replica", "lead_time")
    )
    assert float(vr.rank_flatness(flat)["p_value"]) > 1e-3
    holes = independent.copy()
    holes[0, 3] = np.nan  # an unverified init time
    holes[0, 5, 2, 2] = np.nan  # a point missing once leaves every sample
    kept = vr.error_surrogate_rank_histogram(holes, 9, replicas=2)
    assert (kept.sum("rank") == 399 * 39).all()
    again = vr.error_surrogate_rank_histogram(holes, 9, replicas=2)
    xr.testing.assert_equal(kept, again)
    assert not kept.equals(vr.error_surrogate_rank_histogram(holes, 9, replicas=2, seed=1))
    with pytest.raises(InputError, match="at least 1 member and 1 replica"):
        vr.error_surrogate_rank_histogram(independent, 9, replicas=0)
    with pytest.raises(InputError, match="'time'"):
        vr.error_surrogate_rank_histogram(independent, 9, sample_dim="time")


def test_error_surrogate_floor_sees_domain_wide_errors_that_the_member_floor_misses():
    """The truth is off by one amount over the whole domain on each day, the members vary
    point by point with the same total variance. The members' perfect-model floor is near 1;
    a reliable ensemble would carry the errors' domain-wide part in its members too, and on
    12 days its histogram would be far rougher than this unreliable ensemble's."""
    rng = np.random.default_rng(24)
    n_init, n_x, m = 12, 2000, 10
    truth = xr.DataArray(
        3 * rng.normal(size=(n_init, 1)) + rng.normal(size=(n_init, n_x)), dims=("init", "x")
    )
    forecast = xr.DataArray(
        np.sqrt(10) * rng.normal(size=(n_init, n_x, m)), dims=("init", "x", "member")
    )
    real = float(vr.rank_max_min_ratio(vr.rank_histogram(forecast, truth, over=("init", "x"))))
    perfect = vr.rank_max_min_ratio(
        vr.perfect_model_rank_histogram(forecast, truth, over=("init", "x"))
    )
    error = forecast.mean("member") - truth
    surrogate = vr.error_surrogate_rank_histogram(
        error, m, sample_dim="init", field_dims=("x",), replicas=9
    )
    floor = float(vr.rank_max_min_ratio(surrogate).median("replica"))
    assert float(perfect.median("stand_in")) < 1.2
    assert floor > 2.0 * real


def test_chi_square_against_scipy():
    counts = xr.DataArray([30.0, 50.0, 20.0, 40.0], dims="rank")
    chi2, p = scipy.stats.chisquare(counts.values)
    flat = vr.rank_flatness(counts)
    assert float(flat["chi_square"]) == pytest.approx(chi2)
    assert float(flat["p_value"]) == pytest.approx(p)
    assert float(flat["delta"]) == pytest.approx(chi2 / 3)


def test_brier_score_matches_xskillscore_and_murphy_decomposition():
    rng = np.random.default_rng(12)
    forecast, truth = ensemble(rng, n_member=10)
    thresholds = [-0.5, 0.0, 1.0]
    ours = ve.brier_score(forecast, truth, thresholds)
    theirs = xs.threshold_brier_score(truth, forecast, thresholds, dim=[])
    np.testing.assert_allclose(ours.transpose(*theirs.dims).values, theirs.values, atol=ATOL)
    fair = ve.brier_score(forecast, truth, thresholds, fair=True)
    for tau in thresholds:
        xs_fair = xs.brier_score(truth > tau, (forecast > tau).astype(int), fair=True, dim=[])
        np.testing.assert_allclose(
            fair.sel(threshold=tau).values, xs_fair.transpose(*truth.dims).values, atol=ATOL
        )
    dims = list(truth.dims)
    table = ve.reliability(forecast, truth, thresholds, over=dims)
    assert int(table["count"].sum("forecast_probability")[0]) == truth.size
    murphy = ve.murphy_decomposition(table)
    np.testing.assert_allclose(murphy["brier_score"].values, ours.mean(dims).values, atol=1e-12)


def test_integral_of_brier_score_over_thresholds_is_crps():
    rng = np.random.default_rng(13)
    forecast, truth = point(rng.normal(size=6), 0.3)
    tau = np.linspace(-8, 8, 160_001)
    for fair, crps in ((False, vs.ecdf_crps), (True, vs.fair_crps)):
        bs = ve.brier_score(forecast, truth, tau, fair=fair).isel(x=0).values
        integral = np.trapezoid(bs, tau)
        assert integral == pytest.approx(float(crps(forecast, truth)[0]), abs=1e-3)


def test_reliability_of_exchangeable_ensemble_is_bayes_frequency():
    # Truth and members iid N(mu, 1) with mu ~ N(tau, 1): the event probability q is
    # uniform, so among forecasts with k of M members above tau the event frequency is
    # the Bayes estimate (k + 1) / (M + 2), the finite-ensemble "diagonal".
    rng = np.random.default_rng(14)
    n, m, tau = 200_000, 4, 0.5
    mu = xr.DataArray(rng.normal(tau, 1.0, size=n), dims=("x",))
    truth = xr.DataArray(mu + rng.normal(size=n), dims=("x",))
    forecast = mu + xr.DataArray(rng.normal(size=(n, m)), dims=("x", "member"))
    table = ve.reliability(forecast, truth, [tau], over="x").isel(threshold=0)
    np.testing.assert_allclose(
        table["observed_frequency"], (np.arange(m + 1) + 1) / (m + 2), atol=0.01
    )
    narrow = ve.reliability(mu + 0.2 * (forecast - mu), truth, [tau], over="x").isel(threshold=0)
    assert float(narrow["observed_frequency"][0]) > 0.1  # over-confident: events at p = 0


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
    lazy = vr.rank_histogram(chunked_f, chunked_t, over=agg, seed=3)
    assert lazy.chunks is not None
    xr.testing.assert_equal(lazy.compute(), vr.rank_histogram(forecast, truth, over=agg, seed=3))
    lazy = ve.reliability(chunked_f, chunked_t, [0.0, 0.5], over=agg)
    xr.testing.assert_equal(lazy.compute(), ve.reliability(forecast, truth, [0.0, 0.5], over=agg))
    lazy = ve.brier_score(chunked_f, chunked_t, [0.0], fair=True, mean_over=agg)
    xr.testing.assert_allclose(
        lazy.compute(), ve.brier_score(forecast, truth, [0.0], fair=True, mean_over=agg)
    )
    assert mean_over(chunked_t, "init_time").chunks is not None
