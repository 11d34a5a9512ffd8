"""Physics checks: known values, balanced synthetic fields pass, perturbed ones fail, per
level, layer and band; partial truth, lead 0 and one initial time give n/a, never a failure."""

from __future__ import annotations

import re
import sys
import tracemalloc

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from dask.callbacks import Callback
from verification_cases import at_leads, balanced_members, oracle_forecast

from pipeline.alignment import align_with_truth
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
from verification.physics.spectral import sampling_noise
from verification.physics.tendency import distances_to_truth
from verification.spectra import (
    band_power,
    is_global,
    isotropic_power_spectrum,
    zonal_power_spectrum,
)

LEADS = (6, 12, 18)


def by_label(results) -> dict:
    return {r.label: r for r in results}


def single(results):
    (result,) = results
    return result


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
    score = Hypsometric().score(xr.Dataset({"z": z, "t": t}))
    assert score.part.values.tolist() == ["850-500 hPa"]
    assert float(score.sel(part="850-500 hPa")) < 1e-4
    assert float(Hypsometric().score(xr.Dataset({"z": z, "t": t + 5})).max()) > 0.015


@pytest.fixture(scope="module")
def upper_air(small_synthetic):
    config, truth = small_synthetic
    members = balanced_members(config, truth, 4, LEADS, seeds=(11, 12, 13))
    return align_with_truth(members, truth)


def test_balanced_synthetic_members_pass(upper_air):
    for check in (Hypsometric(), Geostrophic(), PhysicalBounds()):
        assert check.applies(upper_air.forecast)
        for result in check(upper_air.forecast, upper_air.truth):
            assert result.verdict == "pass", (result.label, result.member_score.values)
            assert result.truth_score <= result.tolerance


class Computes(Callback):
    """Counts the dask computes (graph executions) started while it is active."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def _start(self, dsk) -> None:
        self.count += 1


@pytest.mark.parametrize(
    "check",
    [Hypsometric(), Geostrophic(), PhysicalBounds(), SpectralRatio(), TendencyDistribution()],
    ids=lambda check: check.name,
)
def test_a_check_on_dask_data_reads_it_once_and_judges_it_as_in_memory(upper_air, check):
    inputs = (upper_air.forecast, upper_air.truth, upper_air.initial)
    lazy = [ds.chunk({"init_time": 1}) for ds in inputs]  # as a store opened in a notebook
    with Computes() as computes:
        on_dask = check(*lazy)
    assert computes.count == 1  # not one pass over the store per level, layer or band
    in_memory = check(*inputs)
    assert [r.label for r in on_dask] == [r.label for r in in_memory]
    assert any(r.computed for r in in_memory)
    for a, b in zip(on_dask, in_memory, strict=True):
        xr.testing.assert_identical(a.member_score, b.member_score)
        np.testing.assert_array_equal([a.truth_score, a.tolerance], [b.truth_score, b.tolerance])
        assert a.reason == b.reason


def read_bytes(check, inputs, dim) -> tuple[int, int]:
    """(bytes per index along ``dim``, bytes of the rest) of the variables ``check`` reads."""
    names = check.reads(inputs[0])
    per, rest = 0, 0
    for da in (ds[n] for ds in inputs for n in names if n in ds.data_vars):
        if dim in da.dims:
            per += da.nbytes // da.sizes[dim]
        else:
            rest += da.nbytes
    return per, rest


@pytest.mark.parametrize(
    ("check", "extra_reads"),
    [
        (Hypsometric(), 1),  # which levels the members hold: one field of each, one read
        (Geostrophic(), 0),
        (PhysicalBounds(), 0),
        (SpectralRatio(), 0),
        (TendencyDistribution(), 1),  # the truth where some member is, and the initial
    ],
    ids=lambda value: getattr(value, "name", str(value)),
)
def test_a_check_on_dask_data_larger_than_its_budget_is_judged_in_blocks_as_in_memory(
    upper_air, check, extra_reads
):
    """A forecast store larger than memory was loaded whole; blocks of initial times
    (members, for the tendencies) whose inputs fit ``block_bytes`` give one pass's
    results: sums of floats to round-off, the rest exactly."""
    inputs = (upper_air.forecast, upper_air.truth, upper_air.initial)
    lazy = [ds.chunk({"init_time": 1}) for ds in inputs]
    dim = "member" if isinstance(check, TendencyDistribution) else "init_time"
    per_index, whole = read_bytes(check, inputs, dim)
    with Computes() as computes:
        blocked = check(*lazy, block_bytes=whole + per_index)  # one index at a time
    assert computes.count == upper_air.forecast.sizes[dim] + extra_reads
    in_memory = check(*inputs)
    assert [r.label for r in blocked] == [r.label for r in in_memory]
    assert any(r.computed for r in in_memory)
    exact = isinstance(check, TendencyDistribution)
    for a, b in zip(blocked, in_memory, strict=True):
        if exact:
            xr.testing.assert_identical(a.member_score, b.member_score)
        else:
            xr.testing.assert_allclose(a.member_score, b.member_score, rtol=1e-12, atol=0)
            xr.testing.assert_identical(a.member_score.isnull(), b.member_score.isnull())
        np.testing.assert_allclose(
            [a.truth_score, a.tolerance], [b.truth_score, b.tolerance], rtol=0 if exact else 1e-12
        )
        assert a.reason == b.reason


@pytest.mark.parametrize("check", [Geostrophic(), TendencyDistribution()], ids=lambda c: c.name)
def test_a_check_in_blocks_on_a_terminal_counts_the_blocks_done_of_all(
    upper_air, check, monkeypatch, capsys
):
    """A check of a large lazy forecast read it block after block for minutes with no sign
    of how many blocks remained: on a terminal, a bar of the blocks done of all, with its
    ETA (none in a log file: capsys's stderr, until it says it is a terminal)."""
    inputs = (upper_air.forecast, upper_air.truth, upper_air.initial)
    dim = "member" if isinstance(check, TendencyDistribution) else "init_time"
    per_index, whole = read_bytes(check, inputs, dim)
    lazy = [ds.chunk({"init_time": 1}) for ds in inputs]
    check(*lazy, block_bytes=whole + per_index)
    assert "blocks" not in capsys.readouterr().err
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    check(*lazy, block_bytes=whole + per_index)  # one index a block
    n = upper_air.forecast.sizes[dim]
    err = capsys.readouterr().err
    assert re.search(rf"{check.name} blocks: 100%.*\| {n}/{n} \[\d\d:\d\d<\d\d:\d\d", err)


def test_the_tendency_check_in_blocks_of_members_computes_the_truths_distances_once(
    upper_air, monkeypatch
):
    """Each block of members computed the truth's half/half distances again (O(init
    times² × grid) a case, the most of the time when initial times outnumber a block's
    members): once per case and variable, as in one pass, however many blocks."""
    calls = []
    halves_distance = TendencyDistribution._halves_distance

    def counted(self, change, inits):
        calls.append(change.name)
        return halves_distance(self, change, inits)

    monkeypatch.setattr(TendencyDistribution, "_halves_distance", counted)
    check = TendencyDistribution()
    inputs = (upper_air.forecast, upper_air.truth, upper_air.initial)
    check(*inputs)
    one_pass = len(calls)
    assert one_pass > 0
    calls.clear()
    per_index, whole = read_bytes(check, inputs, "member")
    lazy = [ds.chunk({"init_time": 1}) for ds in inputs]
    check(*lazy, block_bytes=whole + per_index)  # one member a block
    assert upper_air.forecast.sizes["member"] > 1
    assert len(calls) == one_pass


@pytest.mark.parametrize("check", [Geostrophic(), SpectralRatio()], ids=lambda c: c.name)
def test_a_check_on_dask_data_holds_a_block_of_it_in_memory_not_all(check):
    """Peak memory of a check on a lazily read forecast of 25 MB: with a 2 MB budget a
    fraction of the forecast, where one pass loads it all (and more). Its time goes with
    the blocks (one an initial time, each judged in xarray's overhead under tracemalloc);
    a block and its intermediates peak near 5 initial times' worth, so 14 initial times of
    a 64 x 96 grid hold the fraction near 0.4 (18: a third, 5 s more; 10: 0.5, too close)."""
    config = SyntheticConfig(n_lat=64, n_lon=96, n_times=40)
    truth = synthetic_dataset(config).load()
    aligned = align_with_truth(balanced_members(config, truth, 14, LEADS, (11, 12, 13)), truth)
    lazy = [ds.chunk({"init_time": 1}) for ds in (aligned.forecast, aligned.truth)]
    size = aligned.forecast.nbytes

    def peak(block_bytes: int) -> int:
        tracemalloc.start()
        try:
            check(*lazy, block_bytes=block_bytes)
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    assert peak(2 * size) > size  # one pass: the whole forecast in memory
    assert peak(2 * 2**20) < size / 2


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
        for result in check(noisy_z, truth):
            assert result.passed.values.tolist() == [True, False, True], result.label
    noisy_wind = perturb(forecast, 2, "u", 5.0)
    for result in Geostrophic()(noisy_wind, truth):
        assert result.passed.values.tolist() == [True, True, False], result.label
    hot = forecast.copy(deep=True)
    hot["t"] = hot["t"].where(~((hot.member == 0) & (hot.latitude > 60)), 400.0)
    results = by_label(PhysicalBounds()(hot, truth))
    assert set(results) == {"physical_bounds t", "physical_bounds u", "physical_bounds v"} | {
        "physical_bounds wind speed u/v"
    }
    result = results["physical_bounds t"]
    assert result.passed.values.tolist() == [False, True, True]
    assert 0 < float(result.member_score[0]) < 0.5
    assert results["physical_bounds u"].verdict == "pass"


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


@pytest.mark.parametrize(
    ("spectrum", "lon"),
    [(zonal_power_spectrum, np.arange(0, 360, 15.0)), (isotropic_power_spectrum, np.arange(12.0))],
)
def test_spectra_of_a_field_chunked_in_its_grid_equal_those_in_memory(spectrum, lon):
    """A field opened with dask chunks across its grid (xr.open_zarr(..., chunks=...))
    stopped with dask's 'consists of multiple chunks, but is also a core dimension'; the
    grid is taken as one chunk, as the members are for the scores."""
    lat = np.linspace(30.0, 60.0, 8)
    field = xr.DataArray(
        np.random.default_rng(1).normal(size=(3, lat.size, lon.size)),
        dims=("lead_time", "latitude", "longitude"),
        coords={"latitude": lat, "longitude": lon},
    )
    lazy = spectrum(field.chunk(lead_time=1, latitude=3, longitude=5))
    xr.testing.assert_allclose(lazy.compute(), spectrum(field), rtol=1e-12)


def test_wasserstein_is_the_exact_distance_of_the_sorted_samples():
    """Against the closed form for equal sizes, mean |sort(a) - sort(b)|: 512 quantiles put
    a member with 1 % of its values far out (a walkthrough's 360 K cells) 7 % above it."""
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=4096), rng.normal(0.3, 1.5, size=4096)
    a[:41] = 80.0  # 1 % of the values far out
    exact = np.abs(np.sort(a) - np.sort(b)).mean()
    assert wasserstein_1(a, b) == pytest.approx(exact, rel=1e-12)
    assert np.isnan(wasserstein_1(np.array([np.nan]), b))


def test_member_distances_equal_wasserstein_of_each_member():
    """The truth sorted once and the closed form of equal sizes (float32 members, as a
    forecast store holds) give each member's :func:`wasserstein_1`; a member with fewer
    values (NaN where the truth has one) goes through it."""
    rng = np.random.default_rng(3)
    truth = rng.normal(size=2000).astype(np.float32)
    members = rng.normal(0.2, 1.3, size=(5, 2000)).astype(np.float32)
    members[1, :20] = 60.0  # far out
    members[3, :7] = np.nan  # fewer values than the truth
    expected = [wasserstein_1(m, truth) for m in members]
    np.testing.assert_allclose(distances_to_truth(members, truth), expected, rtol=1e-12)


@pytest.fixture(scope="module")
def oracle():
    config = SyntheticConfig(n_lat=16, n_lon=24, n_times=56, seed=2)
    truth = synthetic_dataset(config).load()
    forecast = oracle_forecast(config, truth, 48, LEADS, 6, seed=5)
    return align_with_truth(forecast, truth)


def test_oracle_members_pass_spectral_and_tendency_checks(oracle):
    for check in (SpectralRatio(), TendencyDistribution()):
        assert check.applies(oracle.forecast)
        results = check(oracle.forecast, oracle.truth, oracle.initial)
        assert any(r.computed for r in results), check.name
        for result in results:
            assert result.verdict in ("pass", "n/a"), (result.label, result.member_score.values)


def smooth(ds: xr.Dataset, member: int) -> xr.Dataset:
    """Replace one member by a 5x5 running mean of itself (blurred, no small scales)."""
    out = ds.copy(deep=True)
    blurred = out["t2m"].rolling(latitude=5, longitude=5, center=True, min_periods=1).mean()
    out["t2m"] = out["t2m"].where(out.member != member, blurred)
    return out


def test_smoothed_noisy_and_jumpy_members_fail(oracle):
    forecast, truth = oracle.forecast, oracle.truth
    small = by_label(SpectralRatio()(smooth(forecast, 0), truth))["spectral_ratio small scales"]
    assert not bool(small.passed[0]) and bool(small.passed[1:].all())
    small = by_label(SpectralRatio()(perturb(forecast, 3, "t2m", 1.5), truth))
    small = small["spectral_ratio small scales"]
    assert not bool(small.passed[3]) and bool(small.passed[:3].all())
    jumpy = forecast.copy(deep=True)
    initial = oracle.initial["t2m"].expand_dims(lead_time=forecast.lead_time)
    jumpy["t2m"] = jumpy["t2m"].where(jumpy.member != 2, initial + 2.5 * (jumpy["t2m"] - initial))
    result = single(TendencyDistribution()(jumpy, truth, oracle.initial))
    assert result.label == "tendency_distribution t2m"
    assert result.passed.values.tolist() == [True, True, False, True, True, True]


def test_tendency_tolerance_is_the_median_over_circular_cuts_into_halves():
    """Changes equal to the init's index (0, 1, 2, 3) at every point: cutting the circle
    after 1 gives {0, 1} against {2, 3} (W1 2), after 2 {1, 2} against {3, 0} (W1 1); the
    median is 1.5. One cut (cuts=1) is the first half against the second: 2."""
    change = xr.DataArray(
        np.broadcast_to(np.arange(4.0)[:, None, None], (4, 2, 2)),
        dims=("init_time", "latitude", "longitude"),
    )
    inits, v = np.arange(4), change.values
    cut_1 = wasserstein_1(v[[0, 1]].ravel(), v[[2, 3]].ravel())
    cut_2 = wasserstein_1(v[[1, 2]].ravel(), v[[3, 0]].ravel())
    assert (cut_1, cut_2) == pytest.approx((2.0, 1.0), rel=0.1)  # 512 quantiles of 8 values
    got = TendencyDistribution()._halves_distance(change, inits)
    assert got == pytest.approx((cut_1 + cut_2) / 2, rel=1e-12)
    assert TendencyDistribution(cuts=1)._halves_distance(change, inits) == cut_1


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
    result = single(TendencyDistribution()(aligned.forecast, aligned.truth, aligned.initial))
    np.testing.assert_allclose(result.member_score.values, 0.0, atol=1e-6)  # the truth itself


@pytest.fixture(scope="module")
def three_levels():
    """Balanced members (other seeds' waves) on 500/700/850 hPa, 48 longitudes."""
    config = SyntheticConfig(n_lat=24, n_lon=48, n_times=12, levels=(500, 700, 850), seed=1)
    truth = synthetic_dataset(config)[["z", "t", "u", "v"]].load()
    members = balanced_members(config, truth, 4, (6, 12), seeds=(11, 12, 13))
    return align_with_truth(members, truth)


def at_level(ds: xr.Dataset, names, level, member, change) -> xr.Dataset:
    """``ds`` with ``change`` applied to ``names`` of one member at one level only."""
    out = ds.copy()
    where = (out.member == member) & (out.level == level)
    for name in names:
        out[name] = out[name].where(~where, change(out[name])).transpose(*ds[name].dims)
    return out


def test_geostrophic_fails_winds_displaced_at_one_level_only(three_levels):
    forecast, truth = three_levels.forecast, three_levels.truth
    displaced = at_level(forecast, ("u", "v"), 500, 1, lambda w: w.roll(longitude=20))
    results = by_label(Geostrophic()(displaced, truth))
    assert list(results) == ["geostrophic 500 hPa", "geostrophic 700 hPa", "geostrophic 850 hPa"]
    assert results["geostrophic 500 hPa"].passed.values.tolist() == [True, False, True]
    assert results["geostrophic 700 hPa"].verdict == "pass"
    assert results["geostrophic 850 hPa"].verdict == "pass"
    for result in results.values():
        assert result.truth_score <= result.tolerance  # the truth passes its own check


def test_geostrophic_score_is_the_mean_ageostrophic_over_the_mean_wind(three_levels):
    # A uniform wind of 10 m/s added to perfectly balanced fields: |V - Vg| = 10 everywhere.
    truth = three_levels.truth.isel(init_time=[0], lead_time=[0])
    windy = truth.assign(u=truth["u"] + 10.0)
    exact = Geostrophic().score(truth)
    within = (np.abs(truth.latitude) >= 20) & (np.abs(truth.latitude) <= 80)
    weights = np.cos(np.deg2rad(truth.latitude)).where(within)
    speed = (
        np.hypot(windy["u"], windy["v"])
        .weighted(weights.fillna(0))
        .mean(["init_time", "lead_time", "latitude", "longitude"])
    )
    expected = 10.0 / speed.values
    np.testing.assert_allclose(Geostrophic().score(windy).values, expected, rtol=0.05)
    assert float(exact.max()) < 0.02


def test_hypsometric_judges_every_adjacent_layer(three_levels):
    forecast, truth = three_levels.forecast, three_levels.truth
    results = by_label(Hypsometric()(forecast, truth))
    assert list(results) == ["hypsometric 850-700 hPa", "hypsometric 700-500 hPa"]
    assert all(r.verdict == "pass" for r in results.values())
    lifted = at_level(forecast, ("z",), 500, 2, lambda z: z + 300.0)  # 30 m too high at 500
    results = by_label(Hypsometric()(lifted, truth))
    assert results["hypsometric 700-500 hPa"].passed.values.tolist() == [True, True, False]
    assert results["hypsometric 850-700 hPa"].verdict == "pass"


def scale_small_scales(da: xr.DataArray, factor: float, cutoff: float = 0.35) -> xr.DataArray:
    """``da`` with the power of every wavenumber above ``cutoff`` x Nyquist times ``factor``."""
    fy = np.fft.fftfreq(da.sizes["latitude"])[:, None] / 0.5
    fx = np.fft.fftfreq(da.sizes["longitude"])[None, :] / 0.5
    gain = np.where(np.hypot(fy, fx) >= cutoff, np.sqrt(factor), 1.0)

    def apply(values):
        return np.real(np.fft.ifft2(np.fft.fft2(values) * gain)).astype(values.dtype)

    dims = ["latitude", "longitude"]
    out = xr.apply_ufunc(apply, da, input_core_dims=[dims], output_core_dims=[dims])
    return out.transpose(*da.dims)


@pytest.fixture(scope="module")
def oracle_large():
    config = SyntheticConfig(n_lat=32, n_lon=48, n_times=28, seed=2)
    truth = synthetic_dataset(config)[["t2m"]].load()
    return align_with_truth(oracle_forecast(config, truth, 24, (6, 24), 4, seed=5), truth)


@pytest.mark.parametrize("factor", [6.0, 2.0, 0.5])
def test_spectral_check_fails_a_2x_or_larger_small_scale_excess_or_deficit(oracle_large, factor):
    forecast, truth = oracle_large.forecast, oracle_large.truth
    good = by_label(SpectralRatio()(forecast, truth))["spectral_ratio small scales"]
    assert good.verdict == "pass" and good.truth_score <= good.tolerance
    changed = forecast.assign(t2m=scale_small_scales(forecast["t2m"], factor))
    small = by_label(SpectralRatio()(changed, truth))["spectral_ratio small scales"]
    assert small.verdict == "fail" and not bool(small.passed.any())


def test_checks_cope_with_truth_missing_for_late_leads(oracle):
    # The truth ends before the last init times' later leads (forecasts of the last days).
    last = oracle.forecast.init_time.values[-3]
    truth = oracle.truth.where(oracle.truth.valid_time <= last)
    for check in (PhysicalBounds(), SpectralRatio(), TendencyDistribution()):
        results = check(oracle.forecast, truth, oracle.initial)
        assert results and all(r.verdict in ("pass", "n/a") for r in results), check.name


def test_lead_zero_and_one_init_time_are_not_applicable_with_the_reason(oracle):
    lead0 = oracle.forecast.isel(lead_time=[0]).assign_coords(lead_time=[pd.Timedelta(0)])
    truth0 = oracle.initial.expand_dims(lead_time=lead0.lead_time)
    result = single(TendencyDistribution()(lead0, truth0, oracle.initial))
    assert result.verdict == "n/a" and "lead 0" in result.reason
    assert np.isnan(result.member_score).all() and not result.computed
    one = {"init_time": [5], "lead_time": [0]}
    forecast, truth, initial = (
        oracle.forecast.isel(one),
        oracle.truth.isel(one),
        oracle.initial.isel(init_time=[5]),
    )
    result = single(TendencyDistribution()(forecast, truth, initial))
    assert result.verdict == "n/a" and "single initial time" in result.reason
    (result,) = SpectralRatio()(forecast, truth)
    assert result.verdict == "n/a" and "too few valid times" in result.reason


def test_masked_truth_makes_spectra_not_applicable_and_no_truth_is_said(oracle):
    land = oracle.truth.where(oracle.truth.longitude < 0)  # a land-only analysis, say
    (result,) = SpectralRatio()(oracle.forecast.chunk(), land)  # lazy, as read from a store
    assert result.verdict == "n/a" and "masked field" in result.reason
    assert result.member_score.chunks is None and np.isnan(float(result.member_score.median()))
    nothing = oracle.truth.where(oracle.truth.latitude > 90)
    results = PhysicalBounds()(oracle.forecast, nothing) + SpectralRatio()(oracle.forecast, nothing)
    assert [r.reason for r in results] == ["no truth at these valid times"] * 2


def test_masked_forecast_against_a_complete_truth_is_judged_on_its_points_only(oracle):
    # A land-only model's members (NaN over the sea) verified against the complete
    # analysis: the spectra were "fail" with NaN scores, and the tendencies compared the
    # members' land changes with the truth's land and sea changes.
    land = oracle.forecast.longitude < 0
    members, truth = oracle.forecast.where(land), oracle.truth
    results = SpectralRatio()(members, truth)
    assert [(r.verdict, "masked field" in r.reason) for r in results] == [("n/a", True)]
    on_land = single(TendencyDistribution()(members, truth.where(land), oracle.initial))
    result = single(TendencyDistribution()(members, truth, oracle.initial))
    assert result.truth_score == on_land.truth_score
    np.testing.assert_array_equal(result.member_score.values, on_land.member_score.values)


def turned(ds: xr.Dataset, degrees: dict[int, float]) -> xr.Dataset:
    """Winds turned by the given angle per level (cross-isobar flow, as friction turns it)."""
    out = ds.copy()
    for level, angle in degrees.items():
        c, s = np.cos(np.deg2rad(angle)), np.sin(np.deg2rad(angle))
        at = ds.level == level
        out["u"] = out["u"].where(~at, c * ds["u"] - s * ds["v"])
        out["v"] = out["v"].where(~at, s * ds["u"] + c * ds["v"])
    return out


def test_ageostrophic_lower_levels_in_the_truth_do_not_hide_an_upper_level_fault(three_levels):
    # The truth's 850 and 700 hPa winds cross the isobars (ageostrophic fractions near 0.5
    # and 0.35); one member's 500 hPa winds are displaced by 5 grid points. Pooled over
    # levels, the truth's tolerance would absorb it; judged per level, 500 hPa fails.
    angles = {850: 30.0, 700: 20.0, 500: 5.0}
    truth, forecast = turned(three_levels.truth, angles), turned(three_levels.forecast, angles)
    displaced = at_level(forecast, ("u", "v"), 500, 1, lambda w: w.roll(longitude=5))
    results = by_label(Geostrophic()(displaced, truth))
    assert results["geostrophic 850 hPa"].truth_score > 0.4
    assert results["geostrophic 500 hPa"].passed.values.tolist() == [True, False, True]
    assert results["geostrophic 700 hPa"].verdict == "pass"
    assert results["geostrophic 850 hPa"].verdict == "pass"


def test_spectral_sampling_noise_counts_independent_valid_times_only():
    rng = np.random.default_rng(3)
    n = 4000
    times = pd.date_range("2000-01-01", periods=n, freq="6h").values
    white = rng.normal(size=(n, 1))
    expected = white.std() * np.sqrt(2.0 / n)
    assert sampling_noise(white, times)[0] == pytest.approx(expected, rel=0.1)
    twice = np.repeat(white, 2, axis=0)  # every valid time from two initial times
    assert sampling_noise(twice, np.repeat(times, 2))[0] == pytest.approx(expected, rel=0.1)
    ar1 = np.zeros((n, 1))  # AR(1), r = 0.8: N_eff = N (1 - r) / (1 + r) = N / 9
    for i in range(1, n):
        ar1[i] = 0.8 * ar1[i - 1] + white[i]
    expected = ar1.std() * np.sqrt(2.0 * 9 / n)
    assert sampling_noise(ar1, times)[0] == pytest.approx(expected, rel=0.15)


def test_hypsometric_steps_over_a_middle_level_the_members_lack(three_levels):
    # Members with no t at 700 hPa (NaN throughout) against a truth on 850/700/500: the
    # layer mean of 850-700 was t at 850 alone (a skipna mean), silently. The column must be
    # judged as the one layer 850-500 hPa, members and truth alike, the layers 700 bounds n/a.
    forecast, truth = three_levels.forecast, three_levels.truth
    forecast = forecast.assign(t=forecast["t"].where(forecast["level"] != 700))
    results = by_label(Hypsometric()(forecast, truth))
    thick = results["hypsometric 850-500 hPa"]
    assert thick.computed and thick.verdict == "pass"
    for layer in ("850-700", "700-500"):
        assert not results[f"hypsometric {layer} hPa"].computed
        assert "700 hPa" in results[f"hypsometric {layer} hPa"].reason
        assert "850-500 hPa" in results[f"hypsometric {layer} hPa"].reason

    def numpy_score(ds):  # R_d T̄ ln(850/500), T̄ the mean of the two levels, cos-lat weights
        z, t = ds["z"].transpose(..., "level", "latitude", "longitude"), ds["t"]
        t = t.transpose(*z.dims).values
        z = z.values
        i850, i500 = list(ds["level"].values).index(850), list(ds["level"].values).index(500)
        thickness = z[..., i500, :, :] - z[..., i850, :, :]
        residual = thickness - 287.05 * 0.5 * (t[..., i850, :, :] + t[..., i500, :, :]) * np.log(
            850 / 500
        )
        w = np.broadcast_to(np.cos(np.deg2rad(ds["latitude"].values))[:, None], residual.shape[-2:])
        axes = tuple(range(residual.ndim - 2, residual.ndim))
        lead = residual.ndim - 2
        w = np.broadcast_to(w, residual.shape)
        keep = tuple(range(1 if "member" in ds["z"].dims else 0, lead))
        r2 = (w * residual**2).sum(axes + keep) / w.sum(axes + keep)
        z2 = (w * thickness**2).sum(axes + keep) / w.sum(axes + keep)
        return np.sqrt(r2 / z2)

    members = forecast.transpose("member", ...)
    np.testing.assert_allclose(
        thick.member_score.transpose("member").values, numpy_score(members), rtol=1e-5
    )
    assert thick.truth_score == pytest.approx(float(numpy_score(truth)), rel=1e-5)
