"""Rank histograms, their flatness statistics and noise floors against independent
references (xskillscore, scipy) and limit cases."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.stats
import xarray as xr
import xskillscore as xs
from verification_cases import ensemble, iid_ensemble, point

from pipeline.errors import InputError
from verification import ranks as vr


def test_rank_histogram_matches_xskillscore_without_ties():
    rng = np.random.default_rng(9)
    forecast, truth = ensemble(rng, n_member=6)
    ours = vr.rank_histogram(forecast, truth, mean_over=("init_time", "longitude"))
    theirs = xs.rank_histogram(truth, forecast, dim=["init_time", "longitude"])
    assert list(ours["rank"].values) == list(range(7))
    np.testing.assert_array_equal(ours.transpose("latitude", "rank").values, theirs.values)


def test_rank_ties_are_broken_uniformly_and_reproducibly():
    members = xr.DataArray(np.zeros((30_000, 4)), dims=("x", "member"))
    truth = xr.DataArray(np.zeros(30_000), dims=("x",))
    counts = vr.rank_histogram(members, truth, mean_over="x", seed=11)
    assert counts.sum() == 30_000
    assert float(vr.rank_flatness(counts)["p_value"]) > 1e-3
    xr.testing.assert_equal(counts, vr.rank_histogram(members, truth, mean_over="x", seed=11))
    assert not counts.equals(vr.rank_histogram(members, truth, mean_over="x", seed=12))


def test_rank_histogram_excludes_nan_points():
    forecast, truth = point([1.0, np.nan, 3.0], 2.0)
    assert int(vr.rank_histogram(forecast, truth, mean_over="x").sum()) == 0
    forecast, truth = point([1.0, 4.0, 3.0], np.nan)
    assert int(vr.ranks(forecast, truth)[0]) == -1


def test_flatness_reliable_flat_under_dispersive_u_shaped():
    rng = np.random.default_rng(10)
    forecast, truth = iid_ensemble(rng, 20_000, 9)
    flat = vr.rank_flatness(vr.rank_histogram(forecast, truth, mean_over="x"))
    assert float(flat["p_value"]) > 0.001
    assert float(flat["delta"]) < 3.0
    narrow, truth = iid_ensemble(rng, 20_000, 9, spread=0.1)
    counts = vr.rank_histogram(narrow, truth, mean_over="x")
    u = vr.rank_flatness(counts)
    assert float(u["p_value"]) < 1e-6
    assert counts[0] > 5 * counts[4] and counts[-1] > 5 * counts[4]  # U shape
    wide, truth = iid_ensemble(rng, 20_000, 9, spread=10.0)
    dome = vr.rank_histogram(wide, truth, mean_over="x")
    assert dome[4] > 5 * dome[0]
    shifted, truth = iid_ensemble(rng, 20_000, 9, shift=2.0)
    slope = vr.rank_histogram(shifted, truth, mean_over="x")
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
    counts = vr.perfect_model_rank_histogram(forecast, truth, mean_over=over, stand_ins=3)
    assert counts.sizes == {"stand_in": 3, "latitude": 5, "rank": 6}
    members = forecast.transpose("init_time", "latitude", "longitude", "member").values
    valid = truth.transpose("init_time", "latitude", "longitude").notnull().values
    for k in range(3):
        below = (np.delete(members, k, axis=-1) < members[..., k : k + 1]).sum(-1)
        for j in range(5):
            expected = np.bincount(below[:, j][valid[:, j]], minlength=6)
            np.testing.assert_array_equal(counts.isel(stand_in=k, latitude=j).values, expected)
    # all members equal: every stand-in ties with the 5 others and takes ranks 0..5 uniformly
    tied = vr.perfect_model_rank_histogram(xr.zeros_like(forecast), truth, mean_over=over)
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
        real = vr.rank_max_min_ratio(vr.rank_histogram(forecast, truth, mean_over=("init", "x")))
        perfect = vr.perfect_model_rank_histogram(forecast, truth, mean_over=("init", "x"))
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
    real = float(vr.rank_max_min_ratio(vr.rank_histogram(forecast, truth, mean_over=("init", "x"))))
    perfect = vr.rank_max_min_ratio(
        vr.perfect_model_rank_histogram(forecast, truth, mean_over=("init", "x"))
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


def test_tie_breaks_belong_to_the_point_not_to_the_layout():
    """Ties at every point: the draw is keyed to each point's labels, so a transpose, a
    subset, reversed latitudes or dask chunks give the same rank at the same point."""
    shape = (3, 4, 5, 6)
    coords = {
        "init_time": pd.date_range("2020-01-01", periods=3, freq="6h"),
        "lead_time": pd.to_timedelta([1, 3, 6, 12], unit="h"),
        "latitude": np.linspace(50.0, 58.0, 5),
        "longitude": np.linspace(-8.0, 2.0, 6),
    }
    truth = xr.DataArray(np.zeros(shape), dims=tuple(coords), coords=coords)
    forecast = truth.expand_dims(member=8).copy()  # every member ties with the truth
    ranks = vr.ranks(forecast, truth, seed=3)
    assert len(np.unique(ranks)) == 9  # ties broken at random over 0..8
    layouts = {
        "transposed": (forecast.transpose("longitude", "member", ...), truth.T),
        "subset": (forecast.isel(lead_time=[3, 1]), truth.isel(lead_time=[3, 1])),
        "reversed": (forecast.isel(latitude=slice(None, None, -1)), truth[:, :, ::-1]),
        "chunked": (forecast.chunk(latitude=2), truth.chunk(latitude=2)),
        # an aligned truth's valid times, chunked whole, beside data chunked by init time
        "coordinate chunked apart": (
            forecast,
            truth.chunk(init_time=1).assign_coords(
                valid_time=(truth.init_time + truth.lead_time).chunk()
            ),
        ),
    }
    for name, (f, t) in layouts.items():
        other = vr.ranks(f, t, seed=3).compute().reset_coords(drop=True)
        xr.testing.assert_equal(other.transpose(*ranks.dims), ranks.sel(other.coords), name)
    assert not ranks.equals(vr.ranks(forecast, truth, seed=4))
