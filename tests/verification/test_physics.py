"""Physics checks: known values, balanced synthetic fields pass, perturbed ones fail."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.stats
import xarray as xr
from conftest import at_leads, balanced_members, oracle_forecast

from pipeline.adapters import align_with_truth
from pipeline.errors import InputError
from pipeline.schema import G0
from pipeline.sources.synthetic import SyntheticConfig, synthetic_dataset
from verification.physics import (
    Geostrophic,
    Hypsometric,
    PhysicalBounds,
    SpectralRatio,
    TendencyDistribution,
    geostrophic_wind,
    wasserstein_1,
)
from verification.spectra import (
    band_power,
    is_global,
    isotropic_power_spectrum,
    zonal_power_spectrum,
)

LEADS = (6, 12, 18)


def test_geostrophic_wind_known_value():
    # A height falling 60 m per 1000 km northward at 45 N gives u_g = 5.71 m/s.
    lat = np.linspace(40, 50, 21)
    y = np.deg2rad(lat - 45.0) * 6_371_000.0
    z = xr.DataArray(
        np.broadcast_to((G0 * -60e-6 * y)[:, None], (21, 8)),
        dims=("latitude", "longitude"),
        coords={"latitude": lat, "longitude": np.arange(8.0)},
    )
    ug, vg = geostrophic_wind(z)
    assert float(ug.sel(latitude=45.0).mean()) == pytest.approx(5.71, abs=0.01)
    np.testing.assert_allclose(vg.values, 0.0, atol=1e-12)


def test_hypsometric_known_thickness_scores_zero():
    thickness = 4038.3 * G0  # T = 260 K between 850 and 500 hPa
    coords = {"level": [500.0, 850.0], "latitude": [40.0, 50.0], "longitude": [0.0, 1.0]}
    z = xr.DataArray(
        np.array([thickness, 0.0])[:, None, None] * np.ones((2, 2, 2)),
        dims=tuple(coords),
        coords=coords,
    )
    t = xr.full_like(z, 260.0)
    assert np.log(850 / 500) == pytest.approx(0.530628, abs=1e-6)
    assert float(Hypsometric().score(xr.Dataset({"z": z, "t": t}))) < 1e-4
    assert float(Hypsometric().score(xr.Dataset({"z": z, "t": t + 5}))) > 0.015


@pytest.fixture(scope="module")
def upper_air(small_synthetic):
    config, truth = small_synthetic
    members = balanced_members(config, truth, 4, LEADS, seeds=(11, 12, 13))
    return align_with_truth(members, truth)


def test_balanced_synthetic_members_pass(upper_air):
    for check in (Hypsometric(), Geostrophic(), PhysicalBounds()):
        assert check.applies(upper_air.forecast)
        result = check(upper_air.forecast, upper_air.truth)
        assert bool(result.passed.all()), (check.name, result.member_score.values, result.tolerance)
        assert result.truth_score <= result.tolerance


def perturb(ds: xr.Dataset, member: int, name: str, noise: float, seed: int = 0) -> xr.Dataset:
    out = ds.copy(deep=True)
    rng = np.random.default_rng(seed)
    field = out[name].values
    field[:, member] += rng.normal(0.0, noise, field[:, member].shape).astype(field.dtype)
    out[name] = (out[name].dims, field)
    return out


def test_perturbed_members_fail(upper_air):
    forecast, truth = upper_air.forecast, upper_air.truth
    noisy_z = perturb(forecast, 1, "z", 300.0)
    for check in (Hypsometric(), Geostrophic()):
        passed = check(noisy_z, truth).passed.values
        assert passed.tolist() == [True, False, True], check.name
    noisy_wind = perturb(forecast, 2, "u", 5.0)
    assert Geostrophic()(noisy_wind, truth).passed.values.tolist() == [True, True, False]
    hot = forecast.copy(deep=True)
    hot["t"] = hot["t"].where(~((hot.member == 0) & (hot.latitude > 60)), 400.0)
    result = PhysicalBounds()(hot, truth)
    assert result.passed.values.tolist() == [False, True, True]
    assert 0 < float(result.member_score[0]) < 0.5


def test_zonal_spectrum_obeys_parseval_and_finds_the_wave():
    lon = np.arange(0, 360, 2.5)
    lat = np.array([0.0])
    rng = np.random.default_rng(0)
    values = rng.normal(size=(1, lon.size)) + 3 * np.cos(np.deg2rad(7 * lon))
    field = xr.DataArray(
        values, dims=("latitude", "longitude"), coords={"latitude": lat, "longitude": lon}
    )
    assert is_global(field.longitude)
    spectrum = zonal_power_spectrum(field)
    circumference = 2 * np.pi * 6_371_000.0
    assert float(spectrum.sum()) / circumference == pytest.approx(
        float((field**2).mean()), rel=1e-10
    )
    assert int(np.argmax(spectrum.values[1:])) + 1 == 7


def test_isotropic_spectrum_peaks_at_the_plane_wave_wavenumber():
    lat = np.linspace(50, 58, 33)
    lon = np.linspace(-10, 2, 49)
    dx = 6_371.0 * np.cos(np.deg2rad(54.0)) * np.deg2rad(0.25)  # km
    k_true = 6 / (48 * dx)  # six wavelengths across the box, cycles per km
    x = np.arange(49) * dx
    field = xr.DataArray(
        np.broadcast_to(np.cos(2 * np.pi * k_true * x), (33, 49)),
        dims=("latitude", "longitude"),
        coords={"latitude": lat, "longitude": lon},
    )
    assert not is_global(field.longitude)
    spectrum = isotropic_power_spectrum(field)
    peak = float(spectrum.wavenumber[int(np.argmax(spectrum.values))])
    step = float(spectrum.wavenumber[0])
    assert abs(peak - k_true) <= step
    bands = band_power(spectrum)
    assert list(bands.band.values) == ["large", "medium", "small"]


def test_wasserstein_matches_scipy():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=4096), rng.normal(0.3, 1.5, size=4096)
    assert wasserstein_1(a, b, n_quantiles=4096) == pytest.approx(
        scipy.stats.wasserstein_distance(a, b), rel=1e-3
    )


@pytest.fixture(scope="module")
def oracle():
    config = SyntheticConfig(n_lat=16, n_lon=24, n_times=56, seed=2)
    truth = synthetic_dataset(config).load()
    forecast = oracle_forecast(config, truth, 48, LEADS, 6, seed=5)
    return align_with_truth(forecast, truth)


def test_oracle_members_pass_spectral_and_tendency_checks(oracle):
    for check in (SpectralRatio(), TendencyDistribution()):
        assert check.applies(oracle.forecast)
        result = check(oracle.forecast, oracle.truth, oracle.initial)
        assert bool(result.passed.all()), (check.name, result.member_score.values, result.tolerance)


def smooth(ds: xr.Dataset, member: int) -> xr.Dataset:
    """Replace one member by a 5x5 running mean of itself (blurred, no small scales)."""
    out = ds.copy(deep=True)
    blurred = out["t2m"].rolling(latitude=5, longitude=5, center=True, min_periods=1).mean()
    out["t2m"] = out["t2m"].where(out.member != member, blurred)
    return out


def test_smoothed_noisy_and_jumpy_members_fail(oracle):
    forecast, truth = oracle.forecast, oracle.truth
    result = SpectralRatio()(smooth(forecast, 0), truth)
    assert not bool(result.passed[0]) and bool(result.passed[1:].all())
    result = SpectralRatio()(perturb(forecast, 3, "t2m", 1.5), truth)
    assert not bool(result.passed[3]) and bool(result.passed[:3].all())
    jumpy = forecast.copy(deep=True)
    initial = oracle.initial["t2m"].expand_dims(lead_time=forecast.lead_time)
    jumpy["t2m"] = jumpy["t2m"].where(jumpy.member != 2, initial + 2.5 * (jumpy["t2m"] - initial))
    result = TendencyDistribution()(jumpy, truth, oracle.initial)
    assert result.passed.values.tolist() == [True, True, False, True, True, True]


def test_checks_that_do_not_apply_say_so(oracle):
    assert not Hypsometric().applies(oracle.forecast)
    assert not Geostrophic().applies(oracle.forecast)
    with pytest.raises(InputError, match="initial"):
        TendencyDistribution()(oracle.forecast, oracle.truth)


def test_tendency_uses_the_initial_state(small_synthetic):
    config, truth = small_synthetic
    persistence = at_leads(truth[["t2m"]], truth.time.values[:8], (0,)).expand_dims(member=[0, 1])
    persistence = persistence.transpose("init_time", "member", ...)
    later = at_leads(truth[["t2m"]], truth.time.values[:8], (6,)).assign_coords(
        lead_time=[pd.Timedelta(hours=6)]
    )
    forecast = xr.concat(
        [persistence, later.expand_dims(member=[0, 1]).transpose("init_time", "member", ...)],
        "lead_time",
    )
    aligned = align_with_truth(forecast, truth)
    result = TendencyDistribution()(aligned.forecast, aligned.truth, aligned.initial)
    np.testing.assert_allclose(result.member_score.values, 0.0, atol=1e-6)  # the truth itself
