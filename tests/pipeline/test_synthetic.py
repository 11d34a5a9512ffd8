"""The synthetic source against theory: AR(1) law, exact conditional law, oracle ensemble,
hypsometric and geostrophic balance, spec parsing and CF metadata.

References in these tests are written independently of pipeline.sources.synthetic: integer
advection is checked with np.roll, balance with centred finite differences, constants
retyped from their published values.
"""

from __future__ import annotations

import dataclasses
import datetime

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from scipy import stats

from pipeline.errors import InputError
from pipeline.schema import VARIABLES
from pipeline.sources.synthetic import (
    SyntheticConfig,
    SyntheticSource,
    conditional_moments,
    oracle_ensemble,
    t2m_climatology,
)

R_D = 287.05
OMEGA = 7.292e-5
RADIUS = 6_371_000.0


def _t2m(config: SyntheticConfig) -> xr.DataArray:
    return SyntheticSource(config).open()["t2m"].load()


def _east_speed_for_cells(config: SyntheticConfig, cells: float) -> float:
    """Wind (m s-1) that moves a field ``cells`` grid columns east per step at mid-latitude."""
    dlon = np.deg2rad((config.lon_max - config.lon_min) / (config.n_lon - 1))
    mid = np.deg2rad(0.5 * (config.lat_min + config.lat_max))
    return cells * RADIUS * np.cos(mid) * dlon / config.step.total_seconds()


# --- the surface process ------------------------------------------------------------------


def test_anomaly_is_stationary_ar1_advected_by_whole_cells():
    base = SyntheticConfig(
        n_lat=16, n_lon=24, n_times=3000, rho=0.7, sigma=2.0, advection_v=0.0,
        diurnal_amplitude=0.0, temperature_gradient=0.0, t2m_mean=280.0, seed=11,
    )  # fmt: skip
    config = dataclasses.replace(base, advection_u=_east_speed_for_cells(base, 2))
    a = _t2m(config).values.astype(np.float64) - 280.0  # climatology is the constant 280 K

    assert abs(a.mean()) < 0.15
    assert a.std() == pytest.approx(2.0, rel=0.02)
    for k in (1, 2, 3):
        shifted = np.roll(a[:-k], 2 * k, axis=2)  # S^k: 2k columns east
        lagged = np.corrcoef(a[k:].ravel(), shifted.ravel())[0, 1]
        assert lagged == pytest.approx(0.7**k, abs=0.02)
    # Without undoing the advection the same-point lag correlation is clearly lower.
    assert np.corrcoef(a[1:].ravel(), a[:-1].ravel())[0, 1] < 0.7 - 0.1


def test_climatology_has_meridional_gradient_and_diurnal_cycle_peaking_at_15_local():
    config = SyntheticConfig(
        n_lat=8, n_lon=12, n_times=24, step="1h", rho=0.0, sigma=1e-3,
        diurnal_amplitude=4.0, temperature_gradient=0.5, t2m_mean=285.0,
    )  # fmt: skip
    t2m = _t2m(config)
    lat, lon = t2m.latitude.values, t2m.longitude.values
    # Over a whole day the diurnal cycle averages out: the mean is the meridional profile.
    daily = t2m.mean("time").values
    expected_profile = 285.0 - 0.5 * (lat - 50.0)
    np.testing.assert_allclose(
        daily, np.broadcast_to(expected_profile[:, None], daily.shape), atol=0.01
    )
    # The warmest hour at each longitude is 15 local solar time = 15 - lon/15 UTC.
    warmest_utc = t2m.time.dt.hour.values[t2m.isel(latitude=0).argmax("time").values]
    np.testing.assert_allclose((warmest_utc + lon / 15.0 - 15.0 + 12) % 24 - 12, 0.0, atol=0.51)
    amplitude = 0.5 * (t2m.max("time") - t2m.min("time")).values
    assert amplitude.min() > 4.0 * np.cos(np.pi / 24) - 0.01 and amplitude.max() < 4.0 + 0.01
    np.testing.assert_allclose(t2m_climatology(config, t2m.time).values, t2m.values, atol=0.01)


@pytest.fixture(scope="module")
def truth_config() -> SyntheticConfig:
    # Fractional advection (both axes), diurnal cycle and meridional gradient all on.
    return SyntheticConfig(n_lat=16, n_lon=24, n_times=600, correlation_length_km=300.0, seed=5)


@pytest.fixture(scope="module")
def truth(truth_config) -> xr.DataArray:
    return _t2m(truth_config)


@pytest.mark.parametrize("k", [1, 4])
def test_truth_standardised_by_exact_conditional_law_is_standard_normal(truth, truth_config, k):
    lead = f"{6 * k}h"
    mean, std = conditional_moments(truth.isel(time=slice(0, -k)), lead, truth_config)
    np.testing.assert_allclose(std.values, 3.0 * np.sqrt(1 - 0.8 ** (2 * k)))
    z = (truth - mean) / std  # aligned on valid time
    assert z.sizes["time"] == truth.sizes["time"] - k
    assert abs(float(z.mean())) < 0.03
    assert float(z.std()) == pytest.approx(1.0, abs=0.02)
    # KS on nearly independent samples: every k-th time, points ~3 correlation lengths apart.
    sample = z.isel(time=slice(0, None, k), latitude=slice(0, None, 4), longitude=slice(0, None, 6))
    assert stats.kstest(sample.values.ravel(), "norm").pvalue > 1e-3

    # The test can fail: a mean that ignores advection leaves far more than unit variance.
    clim = t2m_climatology(truth_config, truth.time)
    anomaly = (truth - clim).isel(time=slice(0, -k)).values
    no_advection = clim.isel(time=slice(k, None)).values + 0.8**k * anomaly
    assert float(((truth.values[k:] - no_advection) / std.values).std()) > 1.1


def test_oracle_ensemble_draws_from_the_conditional_law(truth, truth_config):
    k, m = 2, 32
    init = truth.isel(time=slice(0, 300, 3))
    members = oracle_ensemble(init, "12h", m, 7, truth_config)
    mean, std = conditional_moments(init, "12h", truth_config)
    assert members.dims == ("member", "time", "latitude", "longitude")
    assert members.dtype == np.float32
    np.testing.assert_array_equal(members.time.values, init.time.values + np.timedelta64(12, "h"))
    np.testing.assert_array_equal(members.init_time.values, init.time.values)

    z = ((members - mean) / std).values
    assert abs(z.mean()) < 0.02
    assert z.std() == pytest.approx(1.0, abs=0.02)
    assert float(members.std("member", ddof=1).mean()) == pytest.approx(
        3.0 * np.sqrt(1 - 0.8 ** (2 * k)), rel=0.03
    )

    # Calibrated against the truth: E[(mean - y)^2] = (M+1)/M E[s^2]  (spread-skill = 1).
    y = truth.sel(time=members.time)
    skill2 = float(((members.mean("member") - y) ** 2).mean())
    spread2 = float(members.var("member", ddof=1).mean())
    assert np.sqrt((m + 1) / m * spread2 / skill2) == pytest.approx(1.0, abs=0.03)

    # Members carry the truth's spatial correlation, not just its pointwise law.
    def lag1_east(x):
        return np.corrcoef(x[..., 1:].ravel(), x[..., :-1].ravel())[0, 1]

    residual_truth = (y - mean).values
    residual_members = (members - mean).values
    assert lag1_east(residual_members) == pytest.approx(lag1_east(residual_truth), abs=0.05)


def test_oracle_ensemble_is_seeded_and_handles_limits(truth, truth_config):
    state = truth.isel(time=10)  # scalar time: no time dim in the output
    a = oracle_ensemble(state, "24h", 5, 1, truth_config)
    assert a.dims == ("member", "latitude", "longitude")
    assert a.time.values == truth.time.values[14]
    np.testing.assert_array_equal(
        a.values, oracle_ensemble(state, "24h", 5, 1, truth_config).values
    )
    assert not np.array_equal(a.values, oracle_ensemble(state, "24h", 5, 2, truth_config).values)
    # Any duration type names the same lead.
    for lead in (np.timedelta64(24, "h"), pd.Timedelta(days=1), datetime.timedelta(hours=24)):
        np.testing.assert_array_equal(
            oracle_ensemble(state, lead, 5, 1, truth_config).values, a.values
        )
    # Lead 0: the law is a point mass at the state itself.
    zero = oracle_ensemble(truth.to_dataset(name="t2m").isel(time=[3, 4]), "0h", 3, 0, truth_config)
    np.testing.assert_allclose(
        zero.values, np.broadcast_to(truth.values[3:5], zero.shape), atol=1e-4
    )


@pytest.mark.parametrize(
    ("lead", "words"),
    [("5h", "whole multiple"), ("-6h", "whole multiple"), (6, "no unit"), ("soon", "duration")],
)
def test_oracle_rejects_bad_leads(truth, truth_config, lead, words):
    with pytest.raises(InputError, match=words):
        oracle_ensemble(truth.isel(time=0), lead, 3, 0, truth_config)


def test_oracle_rejects_bad_states(truth, truth_config):
    with pytest.raises(InputError, match="latitude"):
        conditional_moments(truth.isel(time=0).isel(latitude=slice(1, None)), "6h", truth_config)
    with pytest.raises(InputError, match="time"):
        conditional_moments(truth.isel(time=0).drop_vars("time"), "6h", truth_config)
    with pytest.raises(InputError, match="no t2m"):
        conditional_moments(xr.Dataset({"x": truth}), "6h", truth_config)
    with pytest.raises(InputError, match="NaN"):
        conditional_moments(truth.isel(time=0).where(truth.latitude < 60), "6h", truth_config)
    with pytest.raises(InputError, match="n_members"):
        oracle_ensemble(truth.isel(time=0), "6h", 0, 0, truth_config)


# --- balanced upper air ---------------------------------------------------------------------


def _upper(n_lat: int, n_lon: int, **kwargs) -> xr.Dataset:
    config = SyntheticConfig(n_lat=n_lat, n_lon=n_lon, n_times=3, seed=2, **kwargs)
    return SyntheticSource(config).open()[["z", "t", "u", "v"]].load().astype(np.float64)


def test_upper_air_is_hypsometric_to_float32_precision_with_realistic_magnitudes():
    ds = _upper(16, 24, levels=(250, 500, 850))
    for top, bottom in ((500, 850), (250, 500)):
        thickness = ds.z.sel(level=top) - ds.z.sel(level=bottom)
        layer_t = 0.5 * (ds.t.sel(level=top) + ds.t.sel(level=bottom))
        residual = thickness - R_D * layer_t * np.log(bottom / top)
        assert float(abs(residual).max() / abs(thickness).min()) < 1e-6
    z500, z850 = ds.z.sel(level=500), ds.z.sel(level=850)
    assert 5.0e4 < float(z500.min()) and float(z500.max()) < 6.0e4
    assert 1.0e4 < float(z850.min()) and float(z850.max()) < 1.8e4
    speed = np.hypot(ds.u, ds.v)
    assert 10.0 < float(speed.max()) < 60.0
    assert float(ds.v.std()) > 3.0  # waves, not just a zonal flow
    assert float(abs(ds.z.isel(time=2) - ds.z.isel(time=0)).mean()) > 50.0  # evolves in time


def _ageostrophic_fraction(ds: xr.Dataset) -> float:
    """rms |V - V_g(centred differences of z)| / rms |V| over interior points."""
    phi = np.deg2rad(ds.latitude.values)[:, None]
    lam = np.deg2rad(ds.longitude.values)
    z = ds.z.values
    dz_dphi = (z[..., 2:, 1:-1] - z[..., :-2, 1:-1]) / (phi[2:] - phi[:-2])
    dz_dlam = (z[..., 1:-1, 2:] - z[..., 1:-1, :-2]) / (lam[2:] - lam[:-2])
    f = 2 * OMEGA * np.sin(phi[1:-1])
    u_fd = -dz_dphi / (f * RADIUS)
    v_fd = dz_dlam / (f * RADIUS * np.cos(phi[1:-1]))
    u, v = ds.u.values[..., 1:-1, 1:-1], ds.v.values[..., 1:-1, 1:-1]
    return float(np.sqrt(((u - u_fd) ** 2 + (v - v_fd) ** 2).mean() / (u**2 + v**2).mean()))


def test_upper_air_is_geostrophic_up_to_second_order_discretisation_error():
    fractions = [_ageostrophic_fraction(_upper(n, m)) for n, m in ((16, 24), (32, 48), (64, 96))]
    assert fractions[1] < 0.01
    assert fractions[0] / fractions[1] > 3.0 and fractions[1] / fractions[2] > 3.0  # ~4: O(dx^2)


def test_southern_hemisphere_keeps_westerlies_and_balance():
    ds = _upper(32, 48, lat_min=-70.0, lat_max=-30.0)
    assert float(ds.u.mean()) > 5.0
    assert _ageostrophic_fraction(ds) < 0.02


# --- the source: determinism, spec, metadata ------------------------------------------------


def test_same_seed_same_data_different_seed_different():
    def load(seed):
        return (
            SyntheticSource(SyntheticConfig(n_lat=8, n_lon=10, n_times=4, seed=seed)).open().load()
        )

    a, b, c = load(3), load(3), load(4)
    xr.testing.assert_identical(a, b)
    for name in ("t2m", "z", "u"):
        assert not np.allclose(a[name].values, c[name].values)


def test_spec_parsing_and_round_trip():
    config = SyntheticConfig.from_spec(
        "synthetic:n_lat=16,n_lon=24,n_times=120,step=6h,seed=3,levels=850/250/500,lon_min=-10"
    )
    assert (config.n_lat, config.n_lon, config.n_times, config.seed) == (16, 24, 120, 3)
    assert config.step == pd.Timedelta(hours=6)
    assert config.levels == (250, 500, 850)
    assert config.lon_min == -10.0
    assert SyntheticConfig.from_spec("synthetic") == SyntheticConfig()
    assert SyntheticConfig.from_spec(config.to_spec()) == config
    assert SyntheticSource.claims("synthetic") and SyntheticSource.claims("synthetic:seed=1")
    assert not SyntheticSource.claims("synthetic.grib") and not SyntheticSource.claims("data/x.nc")


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ("synthetic:n_lad=16", "unknown key .n_lad.; valid keys: n_lat, n_lon"),
        ("synthetic:n_lat", "is not key=value; valid keys"),
        ("synthetic:n_lat=abc", "n_lat='abc' is not an integer"),
        ("synthetic:n_lat=2.5", "n_lat"),
        ("synthetic:n_lat=2", "n_lat=2 is invalid; it must be at least 4"),
        ("synthetic:step=soon", "step='soon' is not a duration"),
        ("synthetic:step=-6h", "step"),
        ("synthetic:levels=500", "at least two distinct pressure levels"),
        ("synthetic:levels=500/500", "at least two distinct"),
        ("synthetic:rho=1", "rho"),
        ("synthetic:lat_min=-20,lat_max=20", "one hemisphere"),
        ("synthetic:lat_min=60,lat_max=40", "lat_min=60.0 must be below lat_max=40.0"),
        ("synthetic:lon_min=0,lon_max=360", "span less than 360"),
        ("synthetic:seed=1,seed=2", "given twice"),
        ("synthetic:n_lat=1000,n_lon=1000,n_times=1000", "GiB"),
    ],
)
def test_bad_specs_raise_input_errors_naming_the_key(spec, words):
    with pytest.raises(InputError, match=words):
        SyntheticConfig.from_spec(spec)


def test_open_returns_canonical_lazy_float32_dataset_with_cf_metadata():
    config = SyntheticConfig(n_lat=8, n_lon=10, n_times=5)
    ds = SyntheticSource(config).open()
    assert set(ds.data_vars) == {"t2m", "z", "t", "u", "v"}
    assert ds.t2m.dims == ("time", "latitude", "longitude")
    for name in ("z", "t", "u", "v"):
        assert ds[name].dims == ("time", "level", "latitude", "longitude")
    for name, var in ds.data_vars.items():
        assert var.dtype == np.float32
        assert var.attrs["units"] == VARIABLES[name].units
        assert var.attrs["long_name"] == VARIABLES[name].long_name
        assert var.chunks is not None and set(var.chunks[0]) == {1}  # dask, one step a chunk
    assert ds.latitude.attrs["units"] == "degrees_north"
    assert ds.longitude.attrs["units"] == "degrees_east"
    assert ds.level.attrs["units"] == "hPa"
    assert np.all(np.diff(ds.latitude) > 0) and np.all(np.diff(ds.longitude) > 0)
    assert list(ds.level.values) == [500, 850]
    assert pd.DatetimeIndex(ds.time.values).equals(
        pd.date_range("2000-01-01", periods=5, freq="6h")
    )
    assert SyntheticConfig.from_spec(ds.attrs["synthetic_spec"]) == config
    assert SyntheticConfig.from_spec(SyntheticSource(config).description) == config


def test_a_refusal_labelled_by_a_synthetic_source_leads_with_what_is_wrong(tmp_path):
    """The source labels the refusals of its data (--start/--end, --select, --variables):
    by the keys the user gave, not by a ~600-character listing of every field first."""
    pytest.importorskip("pipeline.sources.files")  # ingest imports every built-in source
    from pipeline.store import ingest

    with pytest.raises(InputError) as err:
        ingest("synthetic:n_times=2", tmp_path / "a.zarr", time=slice("1990-01-01", "1990-01-02"))
    assert str(err.value).startswith("synthetic:n_times=2: no time in 1990-01-01..1990-01-02")
    assert SyntheticSource(SyntheticConfig()).description == "synthetic"


def test_resolve_source_finds_the_synthetic_source():
    pytest.importorskip("pipeline.sources.files")  # resolve_source imports every built-in source
    from pipeline.sources import resolve_source

    source = resolve_source("synthetic:n_lat=8,n_lon=10,seed=4")
    assert isinstance(source, SyntheticSource)
    assert source.config == SyntheticConfig(n_lat=8, n_lon=10, seed=4)


def test_ingest_stores_the_same_data(tmp_path):
    store_module = pytest.importorskip("pipeline.store")
    spec = "synthetic:n_lat=8,n_lon=10,n_times=6,seed=9"
    store = store_module.ingest(spec, tmp_path / "synthetic.zarr", progress=False)
    expected = SyntheticSource.from_spec(spec).open()
    stored = store_module.open_store(tmp_path / "synthetic.zarr").dataset
    for name in expected.data_vars:
        np.testing.assert_array_equal(stored[name].values, expected[name].values)
    assert store.path == tmp_path / "synthetic.zarr"
