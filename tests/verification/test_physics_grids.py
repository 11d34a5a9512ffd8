"""Physics checks on grids laid out other ways than wxens writes them: the balance of an
analytically geostrophic field does not depend on the order of the longitudes; a polar
cap on global longitudes has no zonal spectrum, and says so."""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from pipeline.schema import EARTH_RADIUS, OMEGA
from verification.physics import Geostrophic, SpectralRatio, geostrophic_wind


def balanced_global(lon: np.ndarray) -> xr.Dataset:
    """``z`` of a zonal jet and a wavenumber-3 wave on a 2.5° global grid, with its exact
    geostrophic wind ``u, v`` (NaN on the equator)."""
    lat = np.arange(-87.5, 87.6, 2.5)
    la, lo = np.deg2rad(lat)[:, None], np.deg2rad(lon)[None, :]
    a, b = 3e4, 2e3
    z = a * np.sin(la) ** 2 + b * np.cos(la) * np.sin(3 * lo)
    f = 2 * OMEGA * np.sin(la)
    with np.errstate(divide="ignore", invalid="ignore"):
        u = -(2 * a * np.sin(la) * np.cos(la) - b * np.sin(la) * np.sin(3 * lo)) / (
            f * EARTH_RADIUS
        )
        v = 3 * b * np.cos(la) * np.cos(3 * lo) / (f * EARTH_RADIUS * np.cos(la))
    dims = ("latitude", "longitude")
    return xr.Dataset(
        {"z": (dims, z), "u": (dims, u), "v": (dims, v)},
        coords={"latitude": lat, "longitude": lon},
    )


def test_geostrophic_wind_on_descending_global_longitudes():
    # A global grid whose longitudes descend (as given by some files) wraps around as well
    # as an ascending one: the sign of the longitude step must not be lost, or v_g flips
    # and the truth itself scores as unbalanced (inflating the tolerance of every member).
    for lon in (np.arange(0, 360, 2.5), np.arange(0, 360, 2.5)[::-1]):
        ds = balanced_global(lon)
        ug, vg = geostrophic_wind(ds["z"])
        band = (np.abs(ds["latitude"]) >= 20) & (np.abs(ds["latitude"]) <= 80)
        np.testing.assert_allclose(ug.where(band), ds["u"].where(band), rtol=0, atol=0.2)
        np.testing.assert_allclose(vg.where(band), ds["v"].where(band), rtol=0, atol=0.2)


def test_spectral_ratio_on_a_polar_cap_is_n_a_not_a_failure():
    # Zonal spectra average |latitude| <= 60; a cap poleward of it gave NaN scores as a
    # computed result, so every member (the truth itself among them) read as failing.
    rng = np.random.default_rng(0)
    inits = pd.date_range("2000-01-01", periods=6, freq="12h")
    coords = {
        "init_time": inits,
        "lead_time": pd.to_timedelta([6, 12], "h"),
        "latitude": np.arange(62.5, 88, 2.5),
        "longitude": np.arange(0, 360, 5.0),
    }
    shape = tuple(len(v) for v in coords.values())
    truth = xr.Dataset({"t2m": (tuple(coords), 280 + rng.normal(size=shape))}, coords=coords)
    truth = truth.assign_coords(valid_time=truth.init_time + truth.lead_time)
    forecast = xr.concat([truth, truth + 3 * rng.normal(size=shape)], "member")
    results = SpectralRatio()(forecast.assign_coords(member=[0, 1]), truth)
    assert results and not any(r.computed for r in results)
    assert all("60" in r.reason for r in results)


def test_a_level_the_members_lack_is_not_said_to_lack_truth():
    # The forecast holds z at 500 hPa only (NaN at 850); the truth holds both levels. The
    # 850 hPa part cannot be computed, and the reason must not blame the truth.
    truth = xr.concat([balanced_global(np.arange(0, 360, 2.5))] * 2, "level")
    truth = truth.assign_coords(level=[500.0, 850.0])
    forecast = truth.expand_dims(member=[0, 1]).copy(deep=True)
    forecast["z"] = forecast["z"].where(forecast["level"] == 500.0)
    results = {r.part: r for r in Geostrophic()(forecast, truth)}
    assert results["500 hPa"].computed and bool(results["500 hPa"].passed.all())
    assert not results["850 hPa"].computed
    assert results["850 hPa"].reason != "no truth at these valid times"
    assert "members hold no values" in results["850 hPa"].reason


def test_a_forecast_on_one_longitude_is_verified_with_the_grid_checks_n_a(small_synthetic):
    # A transect (one longitude) has no zonal derivative and no spectrum: verify crashed
    # (ValueError in the spectra, IndexError in the geostrophic wind) instead of saying so.
    from verification_cases import at_leads

    from verification.config import VerifyConfig
    from verification.scorecard import verify

    _, truth = small_synthetic
    inits = pd.DatetimeIndex(truth.time.values[:6])
    members = at_leads(truth, inits, (6, 12)).expand_dims(member=[0, 1])
    config = VerifyConfig(
        physics_init_times=4, energy_score=False, progress=False, interval_level=0
    )
    tree = verify(members.isel(longitude=[3]), truth, config)
    physics = tree["physics"].to_dataset()
    reasons = dict(zip(physics["not_computed"].values, physics["reason"].values, strict=True))
    assert "longitudes" in reasons["geostrophic"] and "8 x 8" in reasons["spectral_ratio"]
    assert "spectra" not in tree.children
    assert bool(physics.sel(check="hypsometric 850-500 hPa")["passed"].all())


def test_the_truths_own_spectral_score_does_not_split_the_hours_of_day():
    # Forecasts 6 h apart at one lead: valid times 06, 12, 18, 00, ... The truth's own score
    # compared its even and odd samples in valid-time order, 06/18 UTC against 12/00 UTC,
    # and read a diurnal cycle of large-scale power (shared by members and truth, and left
    # out of the tolerance) as its own inconsistency: above its tolerance.
    rng = np.random.default_rng(3)
    inits = pd.date_range("2000-01-01", periods=24, freq="6h")
    lat, lon = np.linspace(30, 60, 16), np.linspace(-20, 20, 16)
    valid = inits + pd.Timedelta("6h")
    wave = np.sin(2 * np.pi * np.arange(16) / 16)[None, :] * np.ones((16, 1))
    amplitude = np.where(valid.hour.isin([0, 12]), 4.0, 1.0)  # large scales by hour
    values = amplitude[:, None, None] * wave + 0.3 * rng.normal(size=(24, 16, 16))
    dims = ("init_time", "lead_time", "latitude", "longitude")
    coords = {
        "init_time": inits,
        "lead_time": pd.to_timedelta([6], "h"),
        "latitude": lat,
        "longitude": lon,
    }
    truth = xr.Dataset({"t2m": (dims, 280 + values[:, None])}, coords=coords)
    truth = truth.assign_coords(valid_time=truth.init_time + truth.lead_time)
    forecast = truth.expand_dims(member=[0, 1])
    results = {r.part: r for r in SpectralRatio()(forecast, truth) if r.computed}
    assert "large scales" in results
    for result in results.values():
        assert result.truth_score <= 1.0, (result.part, result.truth_score)
        assert result.verdict == "pass"
