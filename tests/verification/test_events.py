"""Brier score, reliability and the Murphy decomposition against independent references
(xskillscore) and identities (the Brier score integrated over thresholds is the CRPS)."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
import xskillscore as xs
from verification_cases import ensemble, point

from verification import events as ve
from verification import scores as vs

ATOL = 1e-6


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
    table = ve.reliability(forecast, truth, thresholds, mean_over=dims)
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
    table = ve.reliability(forecast, truth, [tau], mean_over="x").isel(threshold=0)
    np.testing.assert_allclose(
        table["observed_frequency"], (np.arange(m + 1) + 1) / (m + 2), atol=0.01
    )
    narrow = ve.reliability(mu + 0.2 * (forecast - mu), truth, [tau], mean_over="x").isel(
        threshold=0
    )
    assert float(narrow["observed_frequency"][0]) > 0.1  # over-confident: events at p = 0
