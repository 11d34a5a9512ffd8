"""Scores and physics checks on global latitude-longitude grids (poles, equator, both
longitude conventions) against independent numpy computations."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from verification_cases import at_leads

from pipeline.schema import EARTH_RADIUS, OMEGA
from verification.config import VerifyConfig
from verification.physics import Geostrophic
from verification.report import report_figures
from verification.scorecard import verify
from verification.spectra import MASKED_TRUTH


def global_levels(step: float = 5.0, n_times: int = 2) -> xr.Dataset:
    """Geopotential waves and their analytic geostrophic winds on a global grid with the
    poles and the equator, two times and two levels."""
    lat = np.arange(-90.0, 90.0 + step / 2, step)
    lon = np.arange(0.0, 360.0, step)
    phi, lam = np.deg2rad(lat)[:, None], np.deg2rad(lon)[None, :]
    z = 5.5e4 + 3000 * np.sin(2 * phi) ** 2 * np.cos(4 * lam)
    dz_dphi = 3000 * 4 * np.sin(2 * phi) * np.cos(2 * phi) * np.cos(4 * lam)
    dz_dlam = -3000 * 4 * np.sin(2 * phi) ** 2 * np.sin(4 * lam)
    f = 2 * OMEGA * np.sin(phi)
    with np.errstate(divide="ignore", invalid="ignore"):
        u = np.where(np.abs(phi) > 0.1, -dz_dphi / (f * EARTH_RADIUS), 0.0)
        v = np.where(np.abs(phi) > 0.1, dz_dlam / (f * EARTH_RADIUS * np.cos(phi)), 0.0)
    dims = ("time", "level", "latitude", "longitude")
    coords = {
        "time": pd.date_range("2020-01-01", periods=n_times, freq="6h"),
        "level": [500.0, 850.0],
        "latitude": lat,
        "longitude": lon,
    }

    def field(values: np.ndarray) -> np.ndarray:
        return np.broadcast_to(values, (n_times, 2, lat.size, lon.size)).copy()

    return xr.Dataset(
        {"z": (dims, field(z)), "u": (dims, field(u)), "v": (dims, field(v))}, coords=coords
    )


def test_geostrophic_on_a_global_grid_warns_of_no_division_at_equator_or_poles():
    # f = 0 on the equator row and cos = 0 at the poles: both outside the 20-80 degree
    # band the check judges, so they must not print RuntimeWarnings to the user.
    ds = global_levels()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        score = Geostrophic().score(ds).values
        score_lazy = Geostrophic().score(ds.chunk({"time": 1})).values
    assert np.all(score < 0.05), score
    np.testing.assert_allclose(score_lazy, score)


def test_scores_and_checks_of_a_forecast_chunked_in_space_are_those_of_one_chunk():
    # A Zarr ensemble of another producer may be chunked in latitude and longitude; the
    # spectra and checks take the whole grid at once, so verify must not pass those chunks
    # on (it stopped with dask's "consists of multiple chunks, but is also a core
    # dimension" ValueError) and must give the numbers of the unchunked forecast.
    truth = global_levels(step=10.0, n_times=8)
    truth = truth.assign(z=truth.z + 50 * np.sin(np.arange(8.0))[:, None, None, None])
    rng = np.random.default_rng(0)
    base = at_leads(truth, truth.time.values[:4], (6, 12))
    forecast = xr.concat(
        [base + rng.normal(0, 1, base.z.shape) for _ in range(4)], dim="member"
    ).transpose("init_time", "member", ...)
    config = VerifyConfig(physics_init_times=4, progress=False)
    whole = verify(forecast, truth, config)
    chunked = verify(
        forecast.chunk({"latitude": 5, "longitude": 9}),
        truth.chunk({"latitude": 4, "longitude": 12}),
        config,
    )
    for group in ("scorecard", "spectra", "physics"):
        xr.testing.assert_allclose(chunked[group].to_dataset(), whole[group].to_dataset())


def test_points_a_forecast_lacks_are_not_counted_as_missing_truth():
    # A complete truth and a forecast missing (NaN in every member) at some points: the
    # scorecard said "no truth" for those points, sending the user to the analysis.
    truth = global_levels(step=10.0, n_times=8)[["z"]]
    base = at_leads(truth, truth.time.values[:4], (6, 12))
    forecast = xr.concat([base + k for k in range(3)], dim="member").transpose("init_time", ...)
    holes = xr.zeros_like(base.z, dtype=bool)
    holes[0, 0, 0, 5, :10] = True  # 10 points of one field
    forecast = forecast.where(~holes)
    card = verify(forecast, truth, VerifyConfig(physics_init_times=0, progress=False))
    card = card["scorecard"].to_dataset().sel(variable="z500")
    assert card.n_missing_truth.values.tolist() == [0, 0]
    assert card.n_missing_forecast.values.tolist() == [10, 0]
    assert card.n_verified.values.tolist() == [4 * 19 * 36 - 10, 4 * 19 * 36]


def sea_and_land(step: float = 10.0, n_times: int = 12) -> xr.Dataset:
    """A complete t2m and an SST-like sst, NaN over a land band in the tropics (the
    latitude circles poleward of it all sea), on a global grid."""
    lat = np.arange(-85.0, 90.0, step)
    lon = np.arange(0.0, 360.0, step)
    phi, lam = np.deg2rad(lat)[:, None, None], np.deg2rad(lon)[None, None, :]
    noise = np.random.default_rng(0).normal(0, 0.5, (lat.size, n_times, lon.size))
    field = (280 + 20 * np.cos(phi) + 3 * np.cos(3 * lam) + noise).transpose(1, 0, 2)
    land = ((lam > 1.0) & (lam < 2.2) & (np.abs(phi) < 0.5)).transpose(1, 0, 2)
    dims = ("time", "latitude", "longitude")
    coords = {
        "time": pd.date_range("2020-01-01", periods=n_times, freq="6h"),
        "latitude": lat,
        "longitude": lon,
    }
    return xr.Dataset(
        {"t2m": (dims, field), "sst": (dims, np.where(land, np.nan, field))}, coords=coords
    )


@pytest.fixture(scope="module")
def sea_and_land_verified() -> tuple[xr.Dataset, xr.Dataset, VerifyConfig, xr.DataTree]:
    """The forecast (members fill the land), truth, config and tree of :func:`sea_and_land`."""
    truth = sea_and_land()
    truth = truth.assign({k: v.assign_attrs(units="K") for k, v in truth.data_vars.items()})
    rng = np.random.default_rng(1)
    base = at_leads(truth, truth.time.values[:4], (6, 12))
    members = [base + rng.normal(0, 0.5, base.t2m.shape) for _ in range(3)]
    forecast = xr.concat(members, dim="member").transpose("init_time", "member", ...)
    forecast["sst"] = forecast.sst.fillna(290.0).assign_attrs(units="K")
    config = VerifyConfig(physics_init_times=4, energy_score=False, progress=False)
    return forecast, truth, config, verify(forecast, truth, config)


def test_a_masked_field_has_no_spectrum_and_says_why_beside_a_complete_one(
    sea_and_land_verified,
):
    """The spectra of a field with NaN points: every latitude circle through land left out
    of the truth's zonal spectrum, the members' (a generator fills land) kept whole, drawn
    as a ratio of 1e4 while the physics check said n/a. Now NaN, with the check's reason."""
    forecast, truth, config, tree = sea_and_land_verified
    spectra = tree["spectra"].to_dataset()
    sst = spectra.sel(variable="sst")
    for name in ("forecast_power", "truth_power", "spectral_ratio"):
        assert sst[name].isnull().all(), name
    assert str(sst["no_spectrum"].values) == MASKED_TRUTH
    reasons = tree["physics"].to_dataset()["reason"].to_series()
    assert reasons["spectral_ratio sst"] == MASKED_TRUTH  # the table's n/a, the same words
    alone = verify(forecast[["t2m"]], truth[["t2m"]], config)["spectra"].to_dataset()
    t2m = spectra.sel(variable="t2m")
    for name in ("forecast_power", "truth_power", "spectral_ratio"):
        np.testing.assert_array_equal(t2m[name].values, alone[name].sel(variable="t2m").values)
    assert str(t2m["no_spectrum"].values) == ""


def test_the_report_draws_the_complete_spectrum_and_says_why_the_masked_has_none(
    sea_and_land_verified,
):
    """The report's spectrum figure: t2m's curves; sst's panels empty, saying it has no
    spectrum and why (they drew its NaN-dropped spectra, a ratio of 1e4)."""
    tree = sea_and_land_verified[-1]
    (shown,) = [f for f in report_figures(tree) if f.title == "Power spectra"]
    t2m_top, sst_top = (ax for ax in shown.figure.axes if ax.get_title() in ("t2m", "sst"))
    assert t2m_top.get_title() == "t2m" and sst_top.get_title() == "sst"
    assert len(t2m_top.lines) == 2 and not t2m_top.texts
    notes = [" ".join(t.get_text().split()) for t in sst_top.texts]
    assert notes == ["n/a: no spectrum: " + MASKED_TRUTH]
    assert not [ln for ln in sst_top.lines if np.isfinite(ln.get_ydata()).any()]
