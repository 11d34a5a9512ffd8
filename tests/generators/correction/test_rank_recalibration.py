"""Rank-histogram recalibration: the statistics against a loop over the points, the remap
against a per-point inverse CDF built with np.interp, its limit cases (a reliable
ensemble is left nearly as it is, an under-dispersed one is flattened), causality, the
xarray path against the array path, and ``wxens bias-correct --rank-weight`` end to end."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from warm import warm_forecast

from flows.cli import main
from generators.correction.bias import DecayingAverageBias, bias_correct
from generators.correction.ranks import (
    DecayingAverageRanks,
    gaussian_mean_excess,
    prior,
    rank_statistics,
    remap,
)
from pipeline.errors import InputError
from pipeline.forecast_store import ForecastProvenance, open_forecast, write_forecast

LATITUDE = np.array([50.0, 54.0, 58.0])


def test_statistics_match_a_loop_over_the_points():
    rng = np.random.default_rng(0)
    m = 6
    members = rng.normal(size=(2, m, 3, 4))
    truth = rng.normal(scale=2.0, size=(2, 3, 4))
    truth[0, 1, 2] = np.nan  # unknown: left out of the weights
    truth[1] = np.nan  # nothing known: NaN statistics
    got = rank_statistics(members, truth, LATITUDE)
    assert np.isnan(got[1]).all()
    c = np.cos(np.deg2rad(LATITUDE))
    expected, total = np.zeros(m + 3), 0.0
    for i in range(3):
        for j in range(4):
            y = truth[0, i, j]
            if np.isnan(y):
                continue
            x = members[0, :, i, j]
            rank = int(np.sum(x < y))
            expected[rank] += c[i]
            if rank == 0:
                expected[m + 1] += c[i] * (x.min() - y) / x.std(ddof=1)
            if rank == m:
                expected[m + 2] += c[i] * (y - x.max()) / x.std(ddof=1)
            total += c[i]
    np.testing.assert_allclose(got[0], expected / total, rtol=1e-12)
    assert got[0, m + 1] > 0 and got[0, m + 2] > 0  # the wide truth leaves both ends


def test_the_gaussian_prior_is_what_a_reliable_gaussian_ensemble_shows():
    """Statistics of exchangeable normal members and truth, drawn with another generator
    than the prior's: flat shares and the tabulated mean excess beyond the extremes."""
    rng = np.random.default_rng(11)
    m = 20
    members = rng.normal(size=(1000, m, 10, 10))
    truth = rng.normal(size=(1000, 10, 10))
    stats = np.nanmean(rank_statistics(members, truth, np.zeros(10)), axis=0)
    np.testing.assert_allclose(stats[: m + 1], 1 / (m + 1), rtol=0.06)
    for tail in (m + 1, m + 2):
        assert stats[tail] / (1 / (m + 1)) == pytest.approx(gaussian_mean_excess(m), rel=0.06)
    assert gaussian_mean_excess(50) == pytest.approx(0.43, abs=0.01)


def inverse_cdf_reference(x: np.ndarray, table: np.ndarray) -> np.ndarray:
    """One point's members x (M,) remapped by building F' = G∘F with np.interp over a fine
    grid of values and inverting it at k/(M+1): an independent construction of
    :func:`remap`."""
    m = len(x)
    xs, s = np.sort(x), x.std(ddof=1)
    q = table[: m + 1]
    g = np.concatenate([[0.0], np.cumsum(q)])
    mean_low, mean_high = table[m + 1] / q[0], table[m + 2] / q[m]
    values = np.linspace(xs[0] - 30 * s, xs[-1] + 30 * s, 400_001)
    level = np.interp(values, xs, np.arange(1, m + 1) / (m + 1))  # F inside the members
    inner = np.interp(level, np.arange(m + 2) / (m + 1), g)  # G (linear within a rank)
    below = g[1] * np.exp(-(xs[0] - values) / (s * mean_low))  # exponential tails
    above = 1 - (1 - g[m]) * np.exp(-(values - xs[-1]) / (s * mean_high))
    cdf = np.where(values < xs[0], below, np.where(values > xs[-1], above, inner))
    new = np.interp(np.arange(1, m + 1) / (m + 1), cdf, values)
    out = np.empty_like(x)
    out[np.argsort(x)] = new
    return out


def test_remap_matches_the_inverse_cdf_reference_and_keeps_every_members_rank():
    rng = np.random.default_rng(2)
    m = 8
    members = rng.gamma(2.0, size=(3, m, 2, 3))
    table = prior(m) + np.concatenate([rng.uniform(-0.05, 0.1, m + 1), [0.02, 0.05]])
    table = np.broadcast_to(table / table[: m + 1].sum(), (3, m + 3))  # shares sum to 1
    got = remap(members, table)
    for n, i, j in np.ndindex(3, 2, 3):
        expected = inverse_cdf_reference(members[n, :, i, j], table[n])
        np.testing.assert_allclose(got[n, :, i, j], expected, atol=2e-3)
    np.testing.assert_array_equal(np.argsort(got, axis=1), np.argsort(members, axis=1))


def test_the_prior_table_leaves_the_members_where_they_are():
    rng = np.random.default_rng(3)
    members = rng.normal(size=(4, 10, 3, 5))
    np.testing.assert_allclose(remap(members, np.broadcast_to(prior(10), (4, 13))), members)


def test_an_underdispersed_ensemble_is_flattened_from_its_verified_past():
    """Members with half the spread of the truth's law: the raw rank histogram is a deep U
    (max/min above 5); remapped from the verified forecasts before each one, the
    second half's histogram is nearly flat (the exponential tails only approximate the
    Gaussian ones: the ranks next to the ends are 15 % too full) and the spread-skill ratio
    near 1. A forecast with no verified predecessor is left bit for bit."""
    rng = np.random.default_rng(4)
    inits = pd.date_range("2019-03-01", periods=60, freq="6h")
    leads = pd.to_timedelta([6], unit="h")
    m, shape = 20, (len(inits), 1, 20, 30)
    truth = rng.normal(size=shape)
    members = rng.normal(scale=0.5, size=(shape[0], m, *shape[1:]))
    latitude = np.linspace(50.0, 58.0, 20)
    correction = DecayingAverageBias.with_weights(0.01, None, 0.1)  # bias ~ 0 here
    corrected = correction.correct(members, truth, inits, leads, latitude)
    np.testing.assert_array_equal(corrected[0], members[0])  # nothing verified yet

    def ratio_and_ssr(x):
        later = slice(30, None)
        counts = np.bincount(
            (x[later] < truth[later][:, None]).sum(axis=1).ravel(), minlength=m + 1
        )
        spread = x[later].var(axis=1, ddof=1).mean()
        error = ((x[later].mean(axis=1) - truth[later]) ** 2).mean()
        return counts.max() / counts.min(), np.sqrt((m + 1) / m * spread / error)

    raw_ratio, raw_ssr = ratio_and_ssr(members)
    ratio, ssr = ratio_and_ssr(corrected)
    assert raw_ratio > 5 and raw_ssr < 0.6
    assert ratio < 1.5 and 0.9 < ssr < 1.1


def test_only_forecasts_verified_by_the_initial_time_shape_its_remap():
    rng = np.random.default_rng(5)
    inits = pd.date_range("2019-03-01", periods=12, freq="6h")
    leads = pd.to_timedelta([6, 24], unit="h")
    members = rng.normal(size=(12, 10, 2, 4, 5))
    truth = rng.normal(scale=2.0, size=(12, 2, 4, 5))
    correction = DecayingAverageBias.with_weights(0.5, None, 0.3)
    base = correction.correct(members, truth, inits, leads, LATITUDE[[0, 0, 1, 2]])
    t = 7
    changed = truth.copy()
    for n, s in enumerate(inits):
        for li, lead in enumerate(leads):
            if s + lead > inits[t]:
                changed[n, li] += 50.0  # not verified by inits[t]
    moved = correction.correct(members, changed, inits, leads, LATITUDE[[0, 0, 1, 2]])
    np.testing.assert_array_equal(moved[t], base[t])
    assert not np.allclose(base[5:, :, 0], members[5:, :, 0])  # remapped from init 1 on


def test_the_xarray_path_remaps_as_the_array_path_does(analysis):  # noqa: F811
    forecast = warm_forecast(analysis, 1.0, members=6).chunk({"init_time": 1, "lead_time": 1})
    rng = np.random.default_rng(6)
    forecast["t2m"] = forecast.t2m * rng.uniform(0.5, 1.5, size=(1, 6, 1, 1, 1))
    correction = DecayingAverageBias.with_weights(0.3, 0.5, 0.2)
    result = bias_correct(forecast, analysis.dataset, correction)
    x = forecast.t2m.load()
    truth = analysis.dataset.t2m.sel(time=x["init_time"] + x["lead_time"])
    expected = correction.correct(
        x.values,
        truth.transpose("init_time", "lead_time", ...).values,
        pd.DatetimeIndex(x["init_time"].values),
        pd.TimedeltaIndex(x["lead_time"].values),
        x["latitude"].values,
    )
    np.testing.assert_allclose(result.forecast.t2m.transpose(*x.dims).values, expected, atol=1e-9)
    table = result.rank_table.t2m
    assert table.dims == ("init_time", "lead_time", "rank_statistic")
    assert table.isel(init_time=0).isnull().all()  # nothing verified before the first
    assert json.loads(result.forecast.attrs["wxens_bias_correction"])["ranks"]["weight"] == 0.2


@pytest.mark.parametrize("w", [0.0, 1.5])
def test_a_rank_weight_outside_0_1_is_refused(w):
    with pytest.raises(InputError, match="rank-recalibration weight must be in"):
        DecayingAverageRanks(w)


def test_a_single_member_is_refused():
    with pytest.raises(InputError, match="needs at least 2 members, got 1"):
        rank_statistics(np.zeros((2, 1, 3, 4)), np.zeros((2, 3, 4)), LATITUDE)


def test_cli_rank_weight_is_recorded_reported_and_checked(analysis, tmp_path, capsys):  # noqa: F811
    raw, out = tmp_path / "raw.zarr", tmp_path / "remapped.zarr"
    provenance = ForecastProvenance("flow_matching", "0123456789abcdef", "euler:nfe=2", 2, 0)
    write_forecast(raw, warm_forecast(analysis, 1.5, members=8), provenance)
    args = ["bias-correct", str(raw), "--truth", str(analysis.path), "--out", str(out)]
    args += ["--bias-weight", "0.2"]
    assert main([*args, "--spread-weight", "0.7", "--rank-weight", "0.1"]) == 0
    printed = capsys.readouterr().out
    assert "rank weight 0.1" in printed
    assert "share of truths beyond the recent members (reliable: 0.222) by lead 6 h" in printed
    recorded = ForecastProvenance.from_attrs(open_forecast(out).attrs).bias_correction
    assert recorded["ranks"]["weight"] == 0.1
    assert main(["info", str(out)]) == 0
    assert "members remapped by the recent rank histogram, weight 0.1" in capsys.readouterr().out
    assert main([*args, "--spread-weight", "0.7", "--rank-weight", "0.2"]) == 2  # another one
    bad = [*args[:5], str(tmp_path / "x.zarr"), "--bias-weight", "0.2", "--rank-weight", "2"]
    assert main(bad) == 2
    assert "rank-recalibration weight must be in [0, 1] (0: off), got 2" in capsys.readouterr().err
    assert not (tmp_path / "x.zarr").exists()
