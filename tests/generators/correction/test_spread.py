"""Spread factors in numpy: the SSR against verification's, recovery of a known inflation,
application keeping the mean, and the sampler check."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from generators.correction.spread import (
    PooledMoments,
    SpreadCalibration,
    fit_spread_factors,
    scale_spread,
    spread_skill_ratio,
)
from pipeline.errors import InputError
from verification.scores import spread_skill_ratio as verification_ssr

LATITUDE = np.linspace(40.0, 60.0, 4)
DIMS = ("init", "member", "channel", "latitude", "longitude")


def expected_ssr(scale: float, m: int) -> float:
    """SSR of members mu + s e_m against truth mu + e (e ~ N(0, 1)): the spread is s and the
    ensemble mean's error has variance 1 + s^2 / m, so SSR = sqrt((m+1)/m) s / sqrt(1 + s^2/m)."""
    return np.sqrt((m + 1) / m) * scale / np.sqrt(1 + scale**2 / m)


def dispersed(
    scales: list[float], n: int = 300, m: int = 20, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Truth y = mu + e and members mu + scale_c * e_m, e ~ N(0, 1)."""
    rng = np.random.default_rng(seed)
    mu = rng.normal(size=(n, len(scales), 4, 5))
    truth = mu + rng.normal(size=mu.shape)
    members = mu[:, None] + np.asarray(scales)[None, None, :, None, None] * rng.normal(
        size=(n, m, *mu.shape[1:])
    )
    return members, truth


def test_ssr_agrees_with_the_verification_module():
    members, truth = dispersed([0.5, 1.0, 2.0], n=40, m=7)
    expected = verification_ssr(
        xr.DataArray(members, dims=DIMS, coords={"latitude": LATITUDE}),
        xr.DataArray(truth, dims=DIMS[:1] + DIMS[2:], coords={"latitude": LATITUDE}),
        mean_over=("init", "latitude", "longitude"),
    )
    np.testing.assert_allclose(
        spread_skill_ratio(members, truth, LATITUDE), expected.values, rtol=1e-10
    )


def test_the_fit_recovers_a_known_inflation():
    members, truth = dispersed([0.5, 2.0])
    factors, before, after = fit_spread_factors([PooledMoments.of(members, truth, LATITUDE)])
    expected = [expected_ssr(0.5, 20), expected_ssr(2.0, 20)]  # 0.509, 1.871
    np.testing.assert_allclose(before[0], expected, rtol=0.04)
    np.testing.assert_allclose(factors[0], 1 / np.asarray(expected), rtol=0.04)
    np.testing.assert_allclose(after[0], [1.0, 1.0], rtol=1e-6)
    scaled = scale_spread(members, factors[0])  # the members the factors make
    np.testing.assert_allclose(spread_skill_ratio(scaled, truth, LATITUDE), after[0], rtol=1e-6)


def test_moments_pooled_batch_by_batch_are_those_of_all_members_at_once():
    """A calibration holds one forecast batch at a time: pooling batches must give the
    moments (hence the SSR) of the whole set, masked points included."""
    members, truth = dispersed([0.5, 2.0])
    members[:, :, 0, 0, :2] = truth[:, 0, 0, :2][:, None] = np.nan  # a masked corner
    whole = PooledMoments.of(members, truth, LATITUDE)
    pooled = PooledMoments(LATITUDE)
    for start in range(0, len(members), 7):
        pooled.add(members[start : start + 7], truth[start : start + 7])
    np.testing.assert_allclose(pooled.means(), whole.means(), rtol=1e-12)
    np.testing.assert_allclose(
        pooled.spread_skill_ratio(),
        verification_ssr(
            xr.DataArray(members, dims=DIMS, coords={"latitude": LATITUDE}),
            xr.DataArray(truth, dims=DIMS[:1] + DIMS[2:], coords={"latitude": LATITUDE}),
            mean_over=("init", "latitude", "longitude"),
        ),
        rtol=1e-10,
    )


def test_shared_channels_take_one_factor_that_makes_their_mean_squared_ssr_one():
    members, truth = dispersed([0.5, 2.0, 1.0])
    moments = PooledMoments.of(members, truth, LATITUDE)
    factors, before, after = fit_spread_factors([moments], shared=[0, 2])
    k = 1 / np.sqrt(np.mean(before[0, [0, 2]] ** 2))
    np.testing.assert_allclose(factors[0], [k, 1 / before[0, 1], k])
    np.testing.assert_allclose(np.mean(after[0, [0, 2]] ** 2), 1.0, rtol=0.02)
    np.testing.assert_allclose(after[0, 1], 1.0, rtol=1e-6)


def test_applying_keeps_the_mean_and_scales_the_spread(caplog):
    calibration = SpreadCalibration(
        channels=("t2m", "z500"),
        leads_hours=(6.0,),
        factors=np.array([[2.0, 0.5]]),
        ssr_before=np.array([[0.5, 2.0]]),
        ssr_after=np.ones((1, 2)),
        period="2019-03-18 to 2019-03-21",
        members=20,
        n_inits=16,
    )
    members = np.random.default_rng(0).standard_normal((3, 10, 2, 4, 5)).astype(np.float32)
    out = calibration.apply(members, 6.0)
    assert out.dtype == members.dtype
    np.testing.assert_allclose(out.mean(axis=1), members.mean(axis=1), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(
        out.std(axis=1), members.std(axis=1) * np.array([2.0, 0.5])[:, None, None], rtol=1e-5
    )
    # past the fitted leads: the nearest's factors, and a warning with the fix
    np.testing.assert_array_equal(calibration.apply(members, 12.0), out)
    with caplog.at_level("WARNING"):
        calibration.note_unfitted([6.0, 12.0])
    assert "leads 12 h are outside the calibrated leads (6 to 6 h)" in caplog.text
    assert "wxens calibrate --lead" in caplog.text
    again = SpreadCalibration.from_dict(calibration.to_dict())
    np.testing.assert_array_equal(again.factors, calibration.factors)
    assert "| 6 | z500 | 0.500 | 2.000 | 1.000 |" in calibration.report()


def one_channel() -> SpreadCalibration:
    """A calibration of t2m at 6 h by ``euler:nfe=2``, factor 1."""
    ones = np.ones((1, 1))
    return SpreadCalibration(
        ("t2m",), (6.0,), ones, ones, ones, "p", 4, 4, "euler:nfe=2,noise_scale=1.0"
    )


def test_the_sampler_check_compares_the_recorded_spec():
    calibration = one_channel()
    calibration.check_sampler("euler:nfe=2,noise_scale=1.0")
    with pytest.raises(InputError, match="fitted on forecasts of euler:nfe=2.*--no-calibration"):
        calibration.check_sampler("euler:nfe=4,noise_scale=1.0")


def test_the_balance_check_refuses_the_other_kind_of_forecast():
    plain = one_channel()
    plain.check_balance(False)
    with pytest.raises(InputError, match="without balanced upper air.*calibrate --balance"):
        plain.check_balance(True)
    balanced = SpreadCalibration.from_dict({**plain.to_dict(), "balance": True})
    balanced.check_balance(True)
    with pytest.raises(
        InputError,
        match=r"with balanced upper air.*Forecast with balance=True \(--balance\).*refit it "
        r"\(wxens calibrate\)",
    ):
        balanced.check_balance(False)
    assert SpreadCalibration.from_dict(plain.to_dict()).balance is False


def test_leads_between_fitted_ones_take_factors_linear_in_lead():
    """A forecast's every native step between calibrated leads: k interpolated linearly
    (12 h between 6 h and 18 h: halfway); before the first lead, the first's."""
    calibration = SpreadCalibration(
        channels=("t2m", "z500"),
        leads_hours=(18.0, 6.0),  # any order
        factors=np.array([[0.5, 1.5], [1.0, 0.5]]),
        ssr_before=np.ones((2, 2)),
        ssr_after=np.ones((2, 2)),
        period="p",
        members=4,
        n_inits=4,
    )
    np.testing.assert_allclose(calibration.factors_for(12.0), [0.75, 1.0])
    np.testing.assert_allclose(calibration.factors_for(9.0), [0.875, 0.75])
    np.testing.assert_array_equal(calibration.factors_for(3.0), [1.0, 0.5])
    np.testing.assert_array_equal(calibration.factors_for(18.0), [0.5, 1.5])


def test_the_report_says_why_upper_air_shares_one_factor_without_balance_too():
    """A model calibrated without ``--balance`` showed one factor for all its upper air under
    the header "one factor for the balanced ...", which read as if it were a balanced fit's
    doing. Every fit ties them, to keep the relations the members were drawn with: the
    report says so."""
    shared = ("z500", "z850", "t500", "t850")
    calibration = SpreadCalibration(
        ("t2m", *shared), (6.0,), *[np.ones((1, 5))] * 3, "p", 4, 4, shared=shared
    )
    lines = calibration.report().splitlines()
    assert "balanced" not in lines[0]
    assert lines[1] == (
        "One factor per lead for z500, z850, t500, t850 (the channels wxens forecast --balance "
        "ties), with or without --balance: scaled alike, the members keep the hypsometric "
        "relations they were drawn with, which a factor each would break."
    )  # and the geostrophic where the winds are tied too (not on a global grid)
    winds = SpreadCalibration(
        ("t2m", *shared, "u500", "v500"), (6.0,), *[np.ones((1, 7))] * 3, "p", 4, 4,
        shared=(*shared, "u500", "v500"),
    )  # fmt: skip
    assert "keep the hypsometric and geostrophic relations" in winds.report().splitlines()[1]
