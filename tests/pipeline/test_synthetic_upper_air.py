"""The stochastic balanced upper air against theory: the wave states follow the stated OU
law step by step, projection recovers them from the fields, and the oracle ensemble draws
balanced members from their exact conditional law (moments, calibration, balance).

References are independent of the implementation where it matters: the one-step law is
estimated by regression of each wave's next state on its state (only |phi P| = phi and the
innovation variance are known in advance), calibration is judged against the truth.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import xarray as xr
from scipy import stats

from pipeline.errors import InputError
from pipeline.sources.synthetic import (
    SyntheticConfig,
    synthetic_dataset,
    upper_air_oracle_ensemble,
)
from pipeline.sources.synthetic.upper_air import (
    balanced_upper_air,
    conditional_wave_law,
    project_states,
    wave_states,
)
from verification.physics import Geostrophic, Hypsometric

PHI, SIGMA = 0.9, 1.2


@pytest.fixture(scope="module")
def config() -> SyntheticConfig:
    return SyntheticConfig(
        n_lat=12, n_lon=16, n_times=1500, levels=(300, 500, 850), seed=7,
        upper_air_phi=PHI, upper_air_sigma=SIGMA,
    )  # fmt: skip


@pytest.fixture(scope="module")
def truth(config) -> xr.Dataset:
    return synthetic_dataset(config)[["z", "t", "u", "v"]].load()


def test_projection_recovers_the_states_from_the_stored_fields(config, truth):
    states = project_states(config, truth.z.values, truth.t.values)
    expected = wave_states(config)
    assert np.abs(states - expected).max() < 1e-4 * np.abs(expected).mean()
    refit = balanced_upper_air(config, states)
    np.testing.assert_allclose(refit["u"], truth.u.values, atol=1e-3)


def test_the_one_step_transition_has_the_stated_law(config, truth):
    states = project_states(config, truth.z.values, truth.t.values)
    now, later = states[:-1], states[1:]
    innovation_std = SIGMA * np.sqrt((1 - PHI**2) / 2)
    for w in range(config.n_waves):
        beta = np.vdot(now[:, w], later[:, w]) / np.vdot(now[:, w], now[:, w])  # LS, complex
        assert abs(beta) == pytest.approx(PHI, abs=0.03)
        residual = later[:, w] - beta * now[:, w]
        parts = np.concatenate([residual.real, residual.imag]) / innovation_std
        assert parts.std() == pytest.approx(1.0, abs=0.06)
        assert stats.kstest(parts, "norm").pvalue > 1e-3
        lag = np.corrcoef(residual.real[1:], residual.real[:-1])[0, 1]
        assert abs(lag) < 0.1  # white innovations
        # the law the oracle uses has that mean (phi P times the state) and std
        mean, std = conditional_wave_law(config, np.ones(config.n_waves), 1)
        assert std == pytest.approx(innovation_std)
        assert abs(mean[w] - beta) < 0.03
    # stationary: every real part has variance sigma^2 / 2
    assert np.concatenate([states.real, states.imag]).std() == pytest.approx(
        SIGMA / np.sqrt(2), rel=0.1
    )


@pytest.mark.parametrize("k", [1, 4])
def test_oracle_members_have_the_analytic_moments(config, truth, k):
    n = 4000
    state = truth.isel(time=100)
    members = upper_air_oracle_ensemble(state, f"{6 * k}h", n, 3, config)
    assert members.z.dims == ("member", "level", "latitude", "longitude")
    assert members.time.values == truth.time.values[100 + k]
    drawn = project_states(config, members.z.values, members.t.values)  # (member, wave)
    mean, std = conditional_wave_law(config, wave_states(config)[100], k)
    assert std == pytest.approx(SIGMA * np.sqrt((1 - PHI ** (2 * k)) / 2))
    tolerance = 4 * std / np.sqrt(n)
    np.testing.assert_allclose(drawn.mean(0).real, mean.real, atol=tolerance)
    np.testing.assert_allclose(drawn.mean(0).imag, mean.imag, atol=tolerance)
    variance_se = 4 * std**2 * np.sqrt(2 / n)
    np.testing.assert_allclose(drawn.real.var(0, ddof=1), std**2, atol=variance_se)
    np.testing.assert_allclose(drawn.imag.var(0, ddof=1), std**2, atol=variance_se)
    # the members' mean field is the balanced field of the mean state (fields are affine)
    expected = balanced_upper_air(config, mean[None], np.float64)["z"][0]
    spread = float(members.z.std("member").max())
    np.testing.assert_allclose(members.z.mean("member"), expected, atol=4 * spread / np.sqrt(n))


def test_oracle_members_are_calibrated_against_the_truth(config, truth):
    m = 20
    state = truth.isel(time=slice(0, 1400, 7))
    members = upper_air_oracle_ensemble(state, "12h", m, 5, config)
    y = truth.sel(time=members.time)
    for name in ("z", "t", "u", "v"):
        skill2 = float(((members[name].mean("member") - y[name]) ** 2).mean())
        spread2 = float(members[name].var("member", ddof=1).mean())
        assert np.sqrt((m + 1) / m * spread2 / skill2) == pytest.approx(1.0, abs=0.08), name


def test_oracle_members_are_as_balanced_as_the_truth(config, truth):
    state = truth.isel(time=slice(0, 40, 4))
    members = upper_air_oracle_ensemble(state, "24h", 6, 1, config)
    forecast = members.rename(time="valid").drop_vars("init_time")
    target = truth.sel(time=members.time.values).rename(time="valid")
    for check in (Hypsometric(), Geostrophic()):
        for result in check(forecast, target):
            assert result.verdict == "pass", result.label
            # the same floor as the truth's (float32 rounding; the finite differences'
            # discretisation error, which varies with the waves' amplitudes)
            np.testing.assert_allclose(
                result.member_score.values, result.truth_score, rtol=0.5, atol=2e-6
            )
    noisy = forecast.assign(u=forecast.u + 2.0)  # the test can fail: unbalanced winds
    assert Geostrophic()(noisy, target)[0].verdict == "fail"


def test_deterministic_limit_and_bad_states(truth, config):
    fixed = dataclasses.replace(config, upper_air_phi=1.0, n_times=8)
    fixed_truth = synthetic_dataset(fixed)[["z", "t", "u", "v"]].load()
    members = upper_air_oracle_ensemble(fixed_truth.isel(time=[1, 2]), "12h", 3, 0, fixed)
    np.testing.assert_allclose(
        members.z.values, np.broadcast_to(fixed_truth.z.values[3:5], members.z.shape), atol=0.05
    )
    with pytest.raises(InputError, match="lacks"):
        upper_air_oracle_ensemble(truth[["z"]].isel(time=0), "6h", 2, 0, config)
    with pytest.raises(InputError, match="levels"):
        upper_air_oracle_ensemble(truth.isel(time=0, level=[0, 1]), "6h", 2, 0, config)
    with pytest.raises(InputError, match="upper_air_phi"):
        SyntheticConfig.from_spec("synthetic:upper_air_phi=1.5")
