"""Decaying-average bias correction and spread scaling: the recursion against its closed
form, causality, the limit cases, the xarray wrapper and ``wxens bias-correct`` end to
end."""

from __future__ import annotations

import json
import re
import shutil

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from warm import warm_forecast

from flows.cli import main
from generators.correction.bias import DecayingAverageBias, bias_correct, bias_correct_store
from generators.correction.spec import CorrectionSpec
from generators.correction.spread_scaling import DecayingAverageSpread
from generators.correction.tuned import checkpoint_digest, save_tuned
from pipeline.errors import InputError
from pipeline.forecast_store import ForecastProvenance, open_forecast, write_forecast
from tests.conftest import on_a_terminal

INITS = pd.date_range("2019-03-22", periods=14, freq="6h")  # 3.5 days, 4 times of day
LEADS = pd.to_timedelta([1, 24, 36], unit="h")


def closed_form(errors: np.ndarray, inits, leads, w: float) -> np.ndarray:
    """b_t = sum_k w (1 - w)^(K-1-k) e_k over the K verified forecasts of the same lead and
    time of day, oldest first (the recursion unrolled), by brute force; errors (N, L)."""
    out = np.zeros_like(errors)
    for n, t in enumerate(inits):
        for li, lead in enumerate(leads):
            past = [
                j
                for j, s in enumerate(inits)
                if s.time() == t.time() and s + lead <= t and not np.isnan(errors[j, li])
            ]
            past.sort(key=lambda j: inits[j])
            k = len(past)
            for i, j in enumerate(past):
                out[n, li] += w * (1 - w) ** (k - 1 - i) * errors[j, li]
    return out


@pytest.mark.parametrize("w", [0.2, 0.7])
def test_recursion_matches_the_closed_form_with_gaps(w):
    rng = np.random.default_rng(0)
    errors = rng.normal(size=(len(INITS), len(LEADS), 2, 3))
    errors[5, 1, 0, 0] = np.nan  # an unverified point is skipped there only
    order = rng.permutation(len(INITS))  # any init order
    got = DecayingAverageBias(w).bias(errors[order], INITS[order], LEADS)
    for i, j in np.ndindex(2, 3):
        expected = closed_form(errors[:, :, i, j], INITS, LEADS, w)[order]
        np.testing.assert_allclose(got[:, :, i, j], expected, atol=1e-12)


def test_only_forecasts_verified_by_the_initial_time_count():
    rng = np.random.default_rng(1)
    errors = rng.normal(size=(len(INITS), len(LEADS)))
    correction = DecayingAverageBias(0.5)
    base = correction.bias(errors, INITS, LEADS)
    t = 9  # day 3, 06 UTC
    changed = errors.copy()
    future = np.array([s + lead > INITS[t] for s in INITS for lead in LEADS]).reshape(errors.shape)
    changed[future] += 100.0  # errors not yet verified at INITS[t]
    np.testing.assert_array_equal(correction.bias(changed, INITS, LEADS)[t], base[t])
    # the first forecast of each time of day, and the 36 h lead on day 2, have no predecessor
    assert np.all(base[:4] == 0) and np.all(base[4:8, 2] == 0)
    assert np.all(base[4:8, :2] != 0)


def test_weight_one_takes_the_last_error_and_a_constant_bias_is_learnt():
    errors = np.full((len(INITS), 1), 2.0)
    leads = LEADS[:1]
    np.testing.assert_array_equal(DecayingAverageBias(1.0).bias(errors, INITS, leads)[4:], 2.0)
    b = DecayingAverageBias(0.2).bias(errors, INITS, leads)[:, 0]
    days = np.arange(len(INITS)) // 4  # predecessors of the same time of day
    np.testing.assert_allclose(b, 2.0 * (1 - 0.8**days))


@pytest.mark.parametrize("w", [0.0, -0.1, 1.5])
def test_weight_outside_0_1_is_refused(w):
    with pytest.raises(InputError, match="bias-correction weight must be in"):
        DecayingAverageBias(w)
    with pytest.raises(InputError, match="spread weight must be in"):
        DecayingAverageBias.with_weights(0.2, w)


LATITUDE = np.array([50.0, 55.0, 60.0])


def test_spread_factor_is_the_ratio_of_the_two_closed_forms():
    """k = sqrt(M/(M+1) sum_g c_g A[e^2] / sum_g c_g A[s^2]), A the unrolled recursion,
    a point whose truth is missing skipped in both averages, k = 1 with no predecessor."""
    rng = np.random.default_rng(4)
    shape = (len(INITS), len(LEADS), 3, 2)
    errors, variances = rng.normal(size=shape), rng.uniform(0.5, 2.0, size=shape)
    errors[6, 0, 1, 1] = np.nan
    members, w = 10, 0.6
    got = DecayingAverageSpread(w).factor(errors, variances, INITS, LEADS, LATITUDE, members)
    c = np.cos(np.deg2rad(LATITUDE))
    squared, spread = np.zeros(shape[:2]), np.zeros(shape[:2])
    for i, j in np.ndindex(3, 2):
        masked = np.where(np.isnan(errors[:, :, i, j]), np.nan, variances[:, :, i, j])
        squared += c[i] * closed_form(errors[:, :, i, j] ** 2, INITS, LEADS, w)
        spread += c[i] * closed_form(masked, INITS, LEADS, w)
    with np.errstate(invalid="ignore"):
        expected = np.where(spread > 0, np.sqrt(members / (members + 1) * squared / spread), 1.0)
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    assert np.all(got[:4] == 1.0) and np.all(got[4:8, 2] == 1.0)  # no predecessor yet
    changed = errors.copy()
    changed[9:] *= 10.0  # not verified by INITS[9] at any lead
    moved = DecayingAverageSpread(w).factor(changed, variances, INITS, LEADS, LATITUDE, members)
    np.testing.assert_array_equal(moved[9], got[9])


def test_spread_scaling_brings_an_underdispersed_ensemble_to_a_unit_spread_skill_ratio():
    """Members 5 K too warm with half the spread their mean's error calls for, the bias
    taken out by the last error (w = 1, which leaves an error of variance 2): the spread
    follows the bias-corrected error, not the raw one, so the corrected ensemble's
    spread-skill ratio from the sixth day on is near 1 (near 0.5 / sqrt(2) before; the
    first day's uncorrected 5 K errors widen the spread of the next few days by design),
    and its ensemble mean is that of the bias correction."""
    rng = np.random.default_rng(5)
    inits = pd.date_range("2019-03-01", periods=40, freq="6h")
    leads = pd.to_timedelta([6], unit="h")
    m, shape = 20, (len(inits), 1, 30, 40)
    truth = rng.normal(size=shape)
    center = truth + 5.0 + rng.normal(size=shape)  # error of the mean: 5 + N(0, 1)
    deviations = rng.normal(scale=0.5, size=(shape[0], m, *shape[1:]))
    deviations -= deviations.mean(axis=1, keepdims=True)
    members = center[:, None] + deviations
    latitude = np.linspace(50.0, 58.0, 30)
    correction = DecayingAverageBias.with_weights(1.0, 0.7)
    corrected = correction.correct(members, truth, inits, leads, latitude)
    biased_only = DecayingAverageBias(1.0).correct(members, truth, inits, leads, latitude)
    np.testing.assert_allclose(corrected.mean(axis=1), biased_only.mean(axis=1), atol=1e-12)

    def ssr(x):
        later = slice(20, None)  # from the sixth day on
        spread = x[later].var(axis=1, ddof=1).mean()
        error = ((x[later].mean(axis=1) - truth[later]) ** 2).mean()
        return np.sqrt((m + 1) / m * spread / error)

    assert 0.3 < ssr(biased_only) < 0.42
    assert 0.93 < ssr(corrected) < 1.07


def test_bias_correct_removes_a_constant_warm_bias_and_keeps_the_spread(analysis):
    forecast = warm_forecast(analysis, 2.0)
    corrected, bias, factor, _ = bias_correct(forecast, analysis.dataset, DecayingAverageBias(1.0))
    assert factor is None
    error = corrected.t2m.mean("member") - (forecast.t2m.mean("member") - 2.0)
    # 6 h lead: from the second day on every forecast has a verified predecessor
    np.testing.assert_allclose(error.isel(lead_time=0, init_time=slice(4, None)), 0.0, atol=1e-9)
    np.testing.assert_allclose(error.isel(init_time=slice(0, 4)), 2.0, atol=1e-9)  # first day
    np.testing.assert_allclose(bias.t2m.isel(lead_time=0, init_time=slice(4, None)), 2.0, atol=1e-9)
    spread = corrected.t2m.std("member").drop_vars("valid_time")
    xr.testing.assert_allclose(spread, forecast.t2m.std("member"))
    assert json.loads(corrected.attrs["wxens_bias_correction"])["weight"] == 1.0


def test_cli_writes_a_corrected_store_and_refuses_bad_input(analysis, tmp_path, capsys):
    raw, out = tmp_path / "raw.zarr", tmp_path / "corrected.zarr"
    run = tmp_path / "run"
    run.mkdir()
    (run / "last.pt").write_bytes(b"the checkpoint the forecast came from")
    digest = checkpoint_digest(run)
    provenance = ForecastProvenance("flow_matching", digest, "euler:nfe=2", 2, 0)
    write_forecast(raw, warm_forecast(analysis, 1.5), provenance)
    truth = str(analysis.path)
    # no weight given and none tuned: nothing to correct with, said so
    assert main(["bias-correct", str(raw), "--truth", truth, "--out", str(out)]) == 2
    assert "give --checkpoint K" in capsys.readouterr().err
    tuned = [
        "bias-correct",
        str(raw),
        "--truth",
        truth,
        "--out",
        str(out),
        "--checkpoint",
        str(run),
    ]
    assert main(tuned) == 2
    err = capsys.readouterr().err
    assert "has no tuned correction" in err
    # the command's flag, not the flow's parameter (bias_correction) a served run names
    assert "first, or give --bias-weight W; nothing written" in err and "parameter" not in err
    save_tuned(run, CorrectionSpec(0.0), {})
    assert main(tuned) == 0  # tune chose none: the forecast as it is (test_bias_correct_inputs)
    shutil.rmtree(out)
    # the stored choice is the default
    save_tuned(run, CorrectionSpec(0.2), {})
    assert main(tuned) == 0
    assert "mean |bias| removed by lead" in capsys.readouterr().out
    got = open_forecast(out)
    recorded = ForecastProvenance.from_attrs(got.attrs)
    assert recorded.bias_correction["weight"] == 0.2
    assert recorded.checkpoint_digest == provenance.checkpoint_digest
    late = got.t2m.isel(init_time=slice(-4, None)).mean("member")
    before = open_forecast(raw).t2m.isel(init_time=slice(-4, None)).mean("member")
    # the last day's forecasts have 3 verified predecessors each: 1.5 * 0.8^3 K remains
    np.testing.assert_allclose(late - (before - 1.5), 1.5 * 0.8**3, atol=1e-4)
    # a rerun overwrites its own store; another weight, or a corrected input, is refused
    assert main(tuned) == 0
    args = ["bias-correct", str(raw), "--truth", truth, "--out", str(out), "--bias-weight", "0.5"]
    assert main(args) == 2
    corrected = ["bias-correct", str(out), "--truth", truth, "--out", str(tmp_path / "x.zarr")]
    assert main([*corrected, "--bias-weight", "0.2"]) == 2
    assert (
        main(
            ["bias-correct", str(raw), "--truth", truth, "--out", str(raw), "--bias-weight", "0.2"]
        )
        == 2
    )
    # the directory trained again: its choice, tuned for the checkpoint that made raw, still
    # corrects raw (the new checkpoint's forecasts ignore it: test_bias_correct_inputs)
    (run / "last.pt").write_bytes(b"a checkpoint trained since")
    assert main(tuned) == 0
    err = capsys.readouterr().err
    assert "already bias-corrected" in err and "is the forecast store itself" in err
    assert not (tmp_path / "x.zarr").exists()
    assert "wxens_bias_correction" not in open_forecast(raw).attrs or not json.loads(
        open_forecast(raw).attrs["wxens_bias_correction"]
    )


def test_cli_spread_weight_is_recorded_and_another_one_refused(analysis, tmp_path, capsys):
    raw, out = tmp_path / "raw.zarr", tmp_path / "scaled.zarr"
    provenance = ForecastProvenance("flow_matching", "0123456789abcdef", "euler:nfe=2", 2, 0)
    write_forecast(raw, warm_forecast(analysis, 1.5), provenance)
    args = ["bias-correct", str(raw), "--truth", str(analysis.path), "--out", str(out)]
    args += ["--bias-weight", "0.2"]
    assert main([*args, "--spread-weight", "0.7"]) == 0
    assert "t2m: mean spread factor by lead 6 h" in capsys.readouterr().out
    recorded = ForecastProvenance.from_attrs(open_forecast(out).attrs).bias_correction
    assert recorded["spread"]["weight"] == 0.7
    assert main(["info", str(out)]) == 0
    described = capsys.readouterr().out
    assert "16 complete of 16 written: 2000-01-02T00:00 .. 2000-01-05T18:00" in described
    assert "bias       decaying average, weight 0.2, by lead" in described
    assert "spread-skill ratio, weight 0.7" in described
    assert "calibration none" in described
    assert main([*args, "--spread-weight", "0.5"]) == 2  # another correction into that store
    assert main(args) == 2
    bad = [*args[:5], str(tmp_path / "x.zarr"), "--bias-weight", "0.2", "--spread-weight", "1.5"]
    assert main(bad) == 2
    assert "spread weight must be in [0, 1] (0: off), got 1.5" in capsys.readouterr().err
    assert not (tmp_path / "x.zarr").exists()


def test_the_xarray_wrapper_scales_the_spread_as_the_array_correction_does(analysis):
    forecast = warm_forecast(analysis, 1.0)
    rng = np.random.default_rng(6)
    forecast["t2m"] = forecast.t2m + rng.normal(size=forecast.t2m.shape[:1] + (1, 2, 4, 5))
    correction = DecayingAverageBias.with_weights(0.3, 0.5)
    corrected, bias, factor, _ = bias_correct(forecast, analysis.dataset, correction)
    x = forecast.t2m.transpose("init_time", "member", "lead_time", "latitude", "longitude")
    valid = x["init_time"] + x["lead_time"]  # (init_time, lead_time)
    truth = analysis.dataset.t2m.sel(time=valid).transpose(*bias.t2m.dims)
    expected = correction.correct(
        x.values,
        truth.values,
        pd.DatetimeIndex(x["init_time"].values),
        pd.TimedeltaIndex(x["lead_time"].values),
        x["latitude"].values,
    )
    np.testing.assert_allclose(corrected.t2m.transpose(*x.dims).values, expected, atol=1e-9)
    assert factor.t2m.dims == ("init_time", "lead_time")
    assert np.all(factor.t2m.isel(init_time=slice(0, 4)) == 1.0)  # first day: unchanged
    assert not np.allclose(factor.t2m.isel(init_time=slice(4, None)), 1.0)
    recorded = json.loads(corrected.attrs["wxens_bias_correction"])
    assert recorded["weight"] == 0.3 and recorded["spread"]["weight"] == 0.5


def test_a_variable_the_truth_lacks_is_refused(analysis):
    forecast = warm_forecast(analysis, 1.0).rename(t2m="z500")
    with pytest.raises(InputError, match=r"\['z500'\] missing"):
        bias_correct(forecast, analysis.dataset, DecayingAverageBias(0.2))


def test_the_newest_forecasts_truth_yet_to_come_is_no_warning(analysis, caplog):
    # every operational run corrects the newest cycles, whose truth has not arrived: the
    # alignment warned each time that it lacked them ('scored as missing'); a gap inside the
    # truth's period still warns
    forecast = warm_forecast(analysis, 2.0)
    last = forecast.init_time.values[-3]  # the 2 newest cycles' 24 h truth is not in yet
    truth = analysis.dataset.sel(time=slice(None, last))
    with caplog.at_level("WARNING", logger="pipeline.alignment"):
        bias_correct(forecast, truth, DecayingAverageBias(1.0))
    assert "lacks" not in caplog.text
    gap = truth.drop_sel(time=truth.time.values[10])
    with caplog.at_level("WARNING", logger="pipeline.alignment"):
        bias_correct(forecast, gap, DecayingAverageBias(1.0))
    assert "the truth lacks 1 of the" in caplog.text


def test_a_rerun_rewrites_only_the_initial_times_whose_correction_changed(
    analysis, tmp_path, caplog
):
    # a daily `wxens run` corrects the whole history again: every initial time was written
    # again each day, the store's cost (and its history's) growing with the history
    raw, out, fresh = (tmp_path / name for name in ("raw.zarr", "out.zarr", "fresh.zarr"))
    provenance = ForecastProvenance("flow_matching", "abc", "euler:nfe=2", 2, 0)
    forecast = warm_forecast(analysis, 1.5)
    write_forecast(raw, forecast.isel(init_time=slice(0, 12)), provenance)
    spec, truth = CorrectionSpec(0.2), analysis.path
    bias_correct_store(raw, truth, out, spec)
    # the next day: 4 new cycles, and cycle 4 drawn again (warmer members)
    redrawn = forecast.isel(init_time=[4, 12, 13, 14, 15])
    write_forecast(raw, redrawn + 0.5 * (redrawn.init_time == redrawn.init_time[0]), provenance)
    with caplog.at_level("INFO", logger="pipeline.forecast_store"):
        bias_correct_store(raw, truth, out, spec)
    # cycle 4 and cycle 8, whose bias (by time of day) learnt from its errors, change
    assert "overwrote 2 and appended 4 initial time(s); kept 10 as they were" in caplog.text
    bias_correct_store(raw, truth, fresh, spec)
    xr.testing.assert_identical(open_forecast(out).load(), open_forecast(fresh).load())


def test_bias_correct_on_a_terminal_shows_a_bar_of_its_passes_with_an_eta(analysis, tmp_path):
    """``wxens bias-correct`` of a large store read the members for minutes with nothing
    on the terminal, and had no --no-progress: each pass over them (the moments, the write)
    is a bar of its tasks done of all, with an ETA, on stderr; none with --no-progress."""
    raw = tmp_path / "raw.zarr"
    provenance = ForecastProvenance("flow_matching", "0123456789abcdef", "euler:nfe=2", 2, 0)
    write_forecast(raw, warm_forecast(analysis, 1.5), provenance)
    argv = ["bias-correct", str(raw), "--truth", str(analysis.path), "--bias-weight", "0.2"]
    code, out, shown = on_a_terminal([*argv, "--out", str(tmp_path / "bc.zarr")])
    assert code == 0, shown
    assert re.search(r"bias-correct: +\d+%.*\| \d+/(\d+) \[\d\d:\d\d<(\?|\d\d:\d\d), ", shown)
    assert "task/s" not in out
    code, _, shown = on_a_terminal([*argv, "--out", str(tmp_path / "quiet.zarr"), "--no-progress"])
    assert code == 0, shown
    assert "bias-correct:" not in shown
