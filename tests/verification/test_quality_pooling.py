"""The quality benchmark's cross-validation pooling equals scoring all folds at once, its
leave-one-fold-out calibration never fits a fold's factor on that fold, and its bootstrap
intervals resample the model and the baseline together; its bias by initial hour averages
the right initial times; its rank-floor cells read the replicas they summarise; its
correction specs parse as wxens bias-correct's flags."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest

from benchmarks.quality import (
    correction_label,
    leave_one_fold_out_factors,
    parse_correction,
    pooled,
    scores,
)
from benchmarks.quality_markdown import bias_by_init_hour, bootstrap_intervals, rank_floor_markdown
from generators.correction.spread import fit_spread_factors


def test_pooled_folds_score_like_their_concatenation():
    rng = np.random.default_rng(0)
    latitude = np.linspace(50, 58, 4)
    sizes = (3, 5)  # initial times per fold
    members = [rng.normal(size=(n, 6, 4, 5)) * (1 + i) for i, n in enumerate(sizes)]
    truth = [rng.normal(size=(n, 4, 5)) for n in sizes]
    folds = [{"leads": {"1": scores(m, y, latitude)}} for m, y in zip(members, truth, strict=True)]
    whole = scores(np.concatenate(members), np.concatenate(truth), latitude)
    got = pooled(folds)["leads"]["1"]
    assert got["ssr"] == pytest.approx(whole["ssr"], rel=1e-6)
    assert got["fair_crps"] == pytest.approx(whole["fair_crps"], rel=1e-6)
    assert got["inits"] == 8


def test_each_folds_factor_comes_from_the_other_folds_only():
    rng = np.random.default_rng(1)
    latitude = np.linspace(50, 58, 4)

    def fold(n: int, spread: float) -> tuple[np.ndarray, np.ndarray]:
        """Members (n, 8, L=2, C=1, 4, 5) with `spread` times the truth's noise."""
        mu = rng.normal(size=(n, 2, 1, 4, 5))
        return mu[:, None] + spread * rng.normal(size=(n, 8, *mu.shape[1:])), mu + rng.normal(
            size=mu.shape
        )

    folds = [fold(30, 0.5), fold(30, 0.5), fold(30, 2.0)]
    factors = leave_one_fold_out_factors(folds, latitude)
    # fold 0's factor is the fit on folds 1 and 2 together
    members = np.concatenate([folds[1][0], folds[2][0]])
    truth = np.concatenate([folds[1][1], folds[2][1]])
    expected, _, _ = fit_spread_factors(
        [members[:, :, lead] for lead in range(2)], [truth[:, lead] for lead in range(2)], latitude
    )
    np.testing.assert_allclose(factors[0], expected)
    # the over-dispersed fold is left out of its own fit: under-dispersed folds call for k > 1
    assert np.all(factors[2] > 1.5) and np.all(factors[0] < 1)
    # changing a fold leaves its own factor as it was
    again = leave_one_fold_out_factors([fold(30, 5.0), *folds[1:]], latitude)
    np.testing.assert_array_equal(again[0], factors[0])


def test_bootstrap_intervals_pair_the_model_with_the_baseline():
    rng = np.random.default_rng(2)
    latitude = np.linspace(50, 58, 4)
    mu = rng.normal(size=(16, 4, 5)) * np.repeat(rng.uniform(0.5, 2, 4), 4)[:, None, None]
    truth = mu + rng.normal(size=mu.shape)
    leads = {"1": scores(mu[:, None] + rng.normal(size=(16, 20, 4, 5)), truth, latitude)}
    # a baseline worse by 0.1 at every initial time: the paired difference is exactly -0.1
    worse = copy.deepcopy(leads)
    worse["1"]["per_init"]["fair_crps"] = [v + 0.1 for v in worse["1"]["per_init"]["fair_crps"]]
    four_days = pd.date_range("2019-03-22", periods=16, freq="6h")
    got = bootstrap_intervals(leads, worse, four_days)["1"]
    np.testing.assert_allclose(got["fair_crps_minus_baseline"], (-0.1, -0.1))
    low, high = got["ssr"]
    assert low < leads["1"]["ssr"] < high and low < 1.0 < high  # a reliable ensemble
    # one day: every resample is the whole sample, and the per-init means give back the SSR
    one_day = pd.date_range("2019-03-22", periods=16, freq="1h")
    got = bootstrap_intervals(leads, leads, one_day)["1"]
    np.testing.assert_allclose(got["ssr"], (leads["1"]["ssr"],) * 2, rtol=1e-9)
    np.testing.assert_allclose(got["fair_crps_minus_baseline"], (0.0, 0.0), atol=1e-12)


def test_bias_by_init_hour_averages_each_hours_initial_times():
    # members offset by +1 K at 00 UTC and -2 K at 12 UTC initial times, around the truth
    rng = np.random.default_rng(4)
    latitude = np.linspace(50, 58, 4)
    inits = pd.date_range("2019-03-22", periods=6, freq="12h")  # 00, 12, 00, 12, ...
    truth = rng.normal(size=(6, 4, 5))
    offset = np.where(inits.hour == 0, 1.0, -2.0)[:, None, None, None]
    noise = rng.normal(size=(6, 8, 4, 5))
    members = truth[:, None] + offset + noise - noise.mean(axis=1, keepdims=True)
    got = bias_by_init_hour({"6": scores(members, truth, latitude)}, inits)
    np.testing.assert_allclose(got["6"], [1.0, -2.0], atol=1e-12)
    assert scores(members, truth, latitude)["mean_error"] == pytest.approx(-0.5, abs=1e-12)


def test_rank_floor_cells_read_the_replicas():
    replicas = [1.2, 1.6, 1.8, 2.0, 1.4]
    with_floor = {"rank_max_min": 1.6, "rank_max_min_error_surrogate": replicas}
    payload = {
        "models": {"a": {"leads": {"1": with_floor}}, "b": {"leads": {"1": {"rank_max_min": 3.0}}}}
    }
    lines = rank_floor_markdown(payload, ["1"])
    # median 1.6; 3 of 5 replicas at least as uneven as 1.6; 3 of 5 above the target 1.5
    assert [line for line in lines if line.startswith("| a |")] == [
        "| a | 1.60 / 1.60 (0.60; 0.60) |"
    ]
    assert not any(line.startswith("| b |") for line in lines)  # scored before the floor existed
    assert rank_floor_markdown({"models": {"b": payload["models"]["b"]}}, ["1"]) == []


def test_scores_carry_the_error_surrogate_floor_only_when_asked():
    rng = np.random.default_rng(3)
    latitude = np.linspace(50, 58, 4)
    members, truth = rng.normal(size=(6, 5, 4, 3)), rng.normal(size=(6, 4, 3))
    assert "rank_max_min_error_surrogate" not in scores(members, truth, latitude)
    floor = scores(members, truth, latitude, error_surrogate_replicas=4)
    assert len(floor["rank_max_min_error_surrogate"]) == 4
    assert all(ratio >= 1 for ratio in floor["rank_max_min_error_surrogate"])


def test_correction_specs_parse_as_the_bias_correct_flags():
    assert parse_correction("0") is None
    chain = parse_correction("0.2:0.7:0.1")
    assert (chain.weight, chain.spread.weight, chain.ranks.weight) == (0.2, 0.7, 0.1)
    assert parse_correction("0.2::0.1").spread is None
    assert correction_label("0.2::0.1") == "bias-corrected (w 0.2), rank-recalibrated (w 0.1)"
    for bad in ("0:0.7", "x", "0.2:0.7:0.1:1"):
        with pytest.raises(SystemExit, match=bad):
            parse_correction(bad)
