"""What the quality studies read off a scorecard: the interval of the CRPS difference with a
reference resamples the forecast and the reference together, the spread-skill interval
brackets a reliable ensemble's ratio, the error-surrogate rank floor (its median and every
replica) is there only when asked, and the mean error of the initial times of one hour
averages exactly those."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from verification_cases import oracle_forecast

from verification import kernels
from verification import scores as vs
from verification.comparison import against_reference, interval_card
from verification.config import VerifyConfig
from verification.kernels import crps_ensemble
from verification.output import write_scores
from verification.resampling import score_parts
from verification.scorecard import verify

GRID = ("latitude", "longitude")
QUIET = dict(physics_init_times=0, energy_score=False, progress=False)


def ensemble(members: np.ndarray, truth: np.ndarray, inits: pd.DatetimeIndex):
    """Members (N, M, H, W) and truth (N, H, W) as DataArrays on a small UK-like grid."""
    coords = {"init_time": inits, "latitude": np.linspace(50, 58, 4)}
    f = xr.DataArray(members, dims=("init_time", "member", *GRID), coords=coords)
    return f, xr.DataArray(truth, dims=("init_time", *GRID), coords=coords)


def test_the_paired_interval_resamples_the_forecast_with_its_reference():
    rng = np.random.default_rng(2)
    mu = rng.normal(size=(16, 4, 5)) * np.repeat(rng.uniform(0.5, 2, 4), 4)[:, None, None]
    truth = mu + rng.normal(size=mu.shape)
    members = mu[:, None] + rng.normal(size=(16, 20, 4, 5))
    config = VerifyConfig(interval_draws=2000, **QUIET)

    four_days = pd.date_range("2019-03-22", periods=16, freq="6h")
    f, y = ensemble(members, truth, four_days)
    parts = score_parts(f, y, mean_over=GRID)
    # a reference worse by 0.1 at every initial time: the paired difference is exactly -0.1
    paired = xr.Dataset({"forecast": parts.fair_crps, "reference": parts.fair_crps + 0.1})
    got = against_reference(paired, parts, 20, config)
    np.testing.assert_allclose(
        [got.fair_crps_minus_reference_low, got.fair_crps_minus_reference_high], (-0.1, -0.1)
    )
    ssr = float(vs.spread_skill_ratio(f, y, mean_over=("init_time", *GRID)))
    bounds = interval_card(parts, 20, config)
    low, high = float(bounds.spread_skill_ratio_low), float(bounds.spread_skill_ratio_high)
    assert low < ssr < high and low < 1.0 < high  # a reliable ensemble

    # one day: one block, which every resample repeats; no interval rather than [x, x]
    one_day = pd.date_range("2019-03-22", periods=16, freq="1h")
    f, y = ensemble(members, truth, one_day)
    parts = score_parts(f, y, mean_over=GRID)
    bounds = interval_card(parts, 20, config)
    assert np.isnan(bounds.to_array()).all()
    itself = xr.Dataset({"forecast": parts.fair_crps, "reference": parts.fair_crps})
    got = against_reference(itself, parts, 20, config)
    assert np.isnan(got.fair_crps_minus_reference_low) and np.isnan(
        got.fair_crps_minus_reference_high
    )
    assert float(got.fair_crps_skill_score) == 0.0


def test_the_error_surrogate_floor_is_there_unless_skipped(small_synthetic, tmp_path):
    config, truth = small_synthetic
    forecast = oracle_forecast(config, truth, 6, (6,), 5)
    alone = verify(forecast, truth, VerifyConfig(error_surrogate_replicas=0, **QUIET))
    assert "rank_max_min_error_surrogate" not in alone["scorecard"]
    assert "rank_floor" not in alone.children
    tree = verify(forecast, truth, VerifyConfig(error_surrogate_replicas=4, **QUIET))
    card = tree["scorecard"]
    assert (card["rank_max_min_error_surrogate"] >= 1).all()
    # every replica's ratio, of which the scorecard holds the median
    replicas = tree["rank_floor"]["rank_max_min_error_surrogate"]
    assert replicas.sizes["replica"] == 4 and (replicas >= 1).all()
    np.testing.assert_allclose(
        replicas.median("replica"), card["rank_max_min_error_surrogate"], rtol=1e-12
    )
    # and it is written with the scores
    written = xr.open_datatree(write_scores(tree, tmp_path / "scores.nc"))
    xr.testing.assert_allclose(written["rank_floor"].to_dataset(), tree["rank_floor"].to_dataset())


def test_the_mean_error_of_one_initial_hour_averages_its_initial_times():
    # members offset by +1 K at 00 UTC and -2 K at 12 UTC initial times, around the truth
    rng = np.random.default_rng(4)
    inits = pd.date_range("2019-03-22", periods=6, freq="12h")  # 00, 12, 00, 12, ...
    lead = pd.Timedelta(hours=6)
    grid = {"latitude": np.linspace(50, 58, 4), "longitude": np.arange(5.0)}
    fields = rng.normal(size=(6, 4, 5))
    truth = xr.Dataset({"t2m": (("time", *GRID), fields)}, coords={"time": inits + lead, **grid})
    offset = np.where(inits.hour == 0, 1.0, -2.0)[:, None, None, None]
    noise = rng.normal(size=(6, 8, 4, 5))
    members = fields[:, None] + offset + noise - noise.mean(axis=1, keepdims=True)
    forecast = xr.Dataset(
        {"t2m": (("init_time", "member", *GRID), members)},
        coords={"init_time": inits, **grid},
    ).expand_dims(lead_time=[lead], axis=2)
    config = VerifyConfig(scores=("ensemble_mean_error",), interval_level=0, **QUIET)

    def mean_error(hour: int | None = None) -> float:
        chosen = forecast if hour is None else forecast.sel(init_time=inits[inits.hour == hour])
        return verify(chosen, truth, config)["scorecard"]["ensemble_mean_error"].item()

    np.testing.assert_allclose([mean_error(0), mean_error(12)], [1.0, -2.0], atol=1e-12)
    assert mean_error() == pytest.approx(-0.5, abs=1e-12)


def test_intervals_of_one_block_say_they_measure_no_sampling_uncertainty(caplog):
    """Two initial times of one day (a long forecast drawn twice a day), or one initial
    time, are one 1D block: every resample is the whole sample, and verify printed
    0.1826 [0.1826, 0.1826] at every lead as if the score were certain, without a word;
    the intervals are n/a and a warning says why (for one initial time, where no block
    would give one, an info line)."""
    rng = np.random.default_rng(3)
    truth = rng.normal(size=(2, 4, 5))
    f, y = ensemble(
        truth[:, None] + rng.normal(size=(2, 8, 4, 5)),
        truth,
        pd.date_range("2019-03-26", periods=2, freq="12h"),
    )
    with caplog.at_level("WARNING"):
        bounds = interval_card(score_parts(f, y, mean_over=GRID), 8, VerifyConfig(**QUIET))
    assert np.isnan(bounds.to_array()).all()
    assert "the 2 initial times fall in one 1D block" in caplog.text
    assert "are n/a" in caplog.text
    assert "--interval-block" in caplog.text


def test_one_initial_time_has_no_interval_and_no_warning(caplog):
    """wxens run verifies the latest initial time by default: every run warned that its one
    initial time fell in one block, and advised a shorter --interval-block, which wxens run
    does not take and which cannot split one initial time; its intervals are n/a quietly."""
    rng = np.random.default_rng(3)
    truth = rng.normal(size=(1, 4, 5))
    f, y = ensemble(
        truth[:, None] + rng.normal(size=(1, 8, 4, 5)), truth, pd.DatetimeIndex(["2019-03-29"])
    )
    with caplog.at_level("INFO"):
        bounds = interval_card(score_parts(f, y, mean_over=GRID), 8, VerifyConfig(**QUIET))
    assert np.isnan(bounds.to_array()).all()
    assert not [r for r in caplog.records if r.levelname == "WARNING"], caplog.text
    assert "one initial time: the block-bootstrap intervals are n/a" in caplog.text


def test_a_reference_missing_some_forecasts_is_compared_on_the_points_both_hold(
    small_synthetic, caplog
):
    """Another producer's ensemble NaN at some initial times (runs it lacks, written as
    NaN) and points: verify scored the reference on what it held and the forecast on all
    of its initial times, so the skill score compared two different samples without a word
    (on the UK sample, -1.125 against -1.244 on the initial times both held). Both are
    scored on the points both hold, and a warning says so."""
    config, truth = small_synthetic
    settings = VerifyConfig(**QUIET)
    forecast = oracle_forecast(config, truth, 12, (6,), 8)
    reference = oracle_forecast(config, truth, 12, (6,), 8, seed=7, spread_factor=0.2)
    gaps = reference.copy(deep=True)
    gaps["t2m"][:4] = np.nan  # four runs the producer lacks
    gaps["t2m"][:, :, :, :3, :] = np.nan  # and three rows of its grid
    with caplog.at_level("WARNING"):
        card = verify(forecast, truth, settings, reference=gaps)["scorecard"].to_dataset()
    held = {"init_time": slice(4, None), "latitude": slice(3, None)}
    alone = verify(forecast.isel(held), truth, settings)["scorecard"].to_dataset()
    other = verify(reference.isel(held), truth, settings)["scorecard"].to_dataset()
    np.testing.assert_allclose(card.reference_fair_crps, other.fair_crps, rtol=1e-6)
    np.testing.assert_allclose(
        card.fair_crps_skill_score, 1 - alone.fair_crps / other.fair_crps, rtol=1e-6
    )
    np.testing.assert_array_equal(card.n_verified_with_reference, alone.n_verified)
    assert "the reference holds no value at" in caplog.text
    # a reference holding every point: no warning, every point paired
    caplog.clear()
    with caplog.at_level("WARNING"):
        whole = verify(forecast, truth, settings, reference=reference)["scorecard"]
    assert "the reference holds no value" not in caplog.text
    np.testing.assert_array_equal(whole.n_verified_with_reference, whole.n_verified)


def test_one_block_with_a_reference_warns_once(small_synthetic, caplog):
    """The intervals of the forecast and of its difference with a reference are n/a for the
    same reason: verify printed the same warning twice."""
    config, truth = small_synthetic  # hourly initial times: one day, one block
    forecast = oracle_forecast(config, truth, 4, (6,), 5)
    with caplog.at_level("WARNING"):
        verify(forecast, truth, VerifyConfig(**QUIET), reference=forecast)
    assert caplog.text.count("fall in one 1D block") == 1, caplog.text


def test_a_reference_adds_one_crps_pass_of_its_own_and_none_of_the_forecasts(
    small_synthetic, monkeypatch
):
    """On dask the forecast's pointwise fair CRPS is one computation that its score, its
    per-init parts and the paired comparison share; the reference adds only its own."""
    config, truth = small_synthetic
    forecast = oracle_forecast(config, truth, 6, (6,), 5).chunk({"init_time": 2})
    reference = oracle_forecast(config, truth, 6, (6,), 5, seed=7, spread_factor=0.2)
    points = []

    def counted(members, truth, *, fair):
        if fair:
            points.append(truth.size)
        return crps_ensemble(members, truth, fair=fair)

    monkeypatch.setattr(kernels, "crps_ensemble", counted)
    settings = VerifyConfig(scores=("fair_crps",), **QUIET)
    verify(forecast, truth, settings)
    alone = sum(points)
    points.clear()
    verify(forecast, truth, settings, reference=reference.chunk({"init_time": 2}))
    assert sum(points) == 2 * alone


def test_truth_missing_at_some_valid_times_is_warned_of_once_with_a_reference(
    small_synthetic, caplog
):
    """The reference is scored at the forecast's valid times: verify printed the truth's
    missing valid times twice, the second time as 'the forecast needs' too."""
    config, truth = small_synthetic
    forecast = oracle_forecast(config, truth, 12, (6,), 5)
    reference = oracle_forecast(config, truth, 12, (6,), 5, seed=7)
    valid = forecast.init_time.values + forecast.lead_time.values[0]  # one lead
    gappy = truth.drop_sel(time=valid[3:5])
    with caplog.at_level("WARNING"):
        verify(forecast, gappy, VerifyConfig(**QUIET), reference=reference)
    assert caplog.text.count("the truth lacks 2 of the") == 1, caplog.text


def test_a_reference_lacking_leads_or_variables_names_the_fix_for_those(small_synthetic):
    """Three runs of other leads and variables: a reference without one of the forecast's
    leads or variables was refused with the fix for missing initial times ("verify the
    forecast on what the reference holds (init_times= (--init ...))"), which cannot select
    a lead or a variable. Each missing kind names its own way out, and what both hold."""
    from pipeline.errors import InputError

    config, truth = small_synthetic
    forecast = oracle_forecast(config, truth, 4, (6, 12), 5)
    settings = VerifyConfig(**QUIET)
    with pytest.raises(InputError) as lead:
        verify(forecast, truth, settings, reference=forecast.isel(lead_time=[1]))
    said = str(lead.value)
    assert "lacks 1 lead_time value(s) of the forecast (6 h)" in said
    assert "--init" not in said and "both hold 12 h" in said
    assert "forecast.sel(lead_time=" in said
    two = xr.merge([forecast, forecast.t2m.rename("tx")])
    with pytest.raises(InputError) as variable:
        verify(two, truth.assign(tx=truth.t2m), settings, reference=forecast)
    said = str(variable.value)
    assert "lacks 1 variable value(s) of the forecast (tx)" in said
    assert "--init" not in said and "--variables" in said and "both hold t2m" in said
