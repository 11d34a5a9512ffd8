"""The forecast-time balance operator against the balanced synthetic truth: it leaves a
balanced state as it is (to round-off and its winds' discretisation error), makes perturbed
states hypsometric and geostrophic, changes each channel in proportion to its error scale,
and its derivative is fourth-order accurate inside."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage

from generators.balance import UpperAirBalance, balanced_channels, derivative, shapiro_filter
from generators.correction.spread import PooledMoments, fit_spread_factors, scale_spread
from pipeline.errors import InputError
from pipeline.schema import R_DRY
from pipeline.sources.synthetic import SyntheticConfig, synthetic_dataset
from verification.physics import Geostrophic, Hypsometric

LEVELS = (300, 500, 850)
CHANNELS = ["t2m"] + [f"{v}{p}" for v in "ztuv" for p in LEVELS]


@pytest.fixture(scope="module")
def truth():
    config = SyntheticConfig(
        n_lat=24, n_lon=36, n_times=4, levels=LEVELS, seed=7, upper_air_phi=0.9
    )
    return synthetic_dataset(config).load()


def stack(ds) -> torch.Tensor:
    """(time, C, H, W) states of CHANNELS."""
    parts = [ds.t2m.values[:, None]] + [
        ds[v].sel(level=p).values[:, None] for v in "ztuv" for p in LEVELS
    ]
    return torch.from_numpy(np.concatenate(parts, axis=1).astype(np.float32))


def unstack(states: torch.Tensor, like):
    out = like.copy(deep=True)
    for v in "ztuv":
        for p in LEVELS:
            out[v].loc[{"level": p}] = states[:, CHANNELS.index(f"{v}{p}")].numpy()
    return out


def operator(truth, scale=None) -> UpperAirBalance:
    scale = np.ones(len(CHANNELS)) if scale is None else scale
    return UpperAirBalance(CHANNELS, scale, truth.latitude.values, truth.longitude.values)


def test_a_balanced_state_is_left_as_it_is(truth):
    states = stack(truth)
    out = operator(truth)(states)
    z, t = [CHANNELS.index(f"z{p}") for p in LEVELS], [CHANNELS.index(f"t{p}") for p in LEVELS]
    torch.testing.assert_close(out[:, z + t + [0]], states[:, z + t + [0]], atol=0.05, rtol=0)
    winds = [CHANNELS.index(f"{v}{p}") for v in "uv" for p in LEVELS]
    error = (out[:, winds] - states[:, winds]).square().mean().sqrt()
    assert float(error / states[:, winds].square().mean().sqrt()) < 0.01  # 4th order: < 1 %


def test_perturbed_states_come_out_balanced_as_the_truth(truth):
    """Errors at the scales a model resolves (noise smoothed over ~3 cells), independent
    per channel: the projection restores hypsometric balance, the winds geostrophy."""
    rng = np.random.default_rng(0)
    smooth = ndimage.gaussian_filter(rng.normal(0, 1, (4, 12, 24, 36)), (0, 0, 3, 3))
    smooth /= smooth.std()
    scale = np.array([30.0] * 3 + [0.5] * 3 + [2.0] * 6)[None, :, None, None]
    noisy = stack(truth)
    noisy[:, 1:] += torch.from_numpy((smooth * scale).astype(np.float32))
    unbalanced = unstack(noisy, truth)
    balanced = unstack(operator(truth)(noisy), truth)
    for check in (Hypsometric(), Geostrophic()):
        truth_scores = check.score(truth)
        assert (check.score(unbalanced) > 2 * truth_scores).all(), check.name
        tolerance = np.maximum(check.factor * truth_scores, check.floor)
        assert (check.score(balanced) <= tolerance).all(), check.name


def test_the_projection_moves_channels_in_proportion_to_their_error_scale(truth):
    states = stack(truth)
    states[:, CHANNELS.index("z500")] += 150.0  # the 850-500 and 500-300 layers disagree
    tight = np.ones(len(CHANNELS))
    tight[[CHANNELS.index(f"t{p}") for p in LEVELS]] = 1e-3  # temperatures nearly certain
    out = operator(truth, tight)(states)
    t500 = CHANNELS.index("t500")
    assert float((out[:, t500] - states[:, t500]).abs().max()) < 1e-3
    z = [CHANNELS.index(f"z{p}") for p in LEVELS]
    thickness = out[:, z[1]] - out[:, z[2]]
    layer_t = 0.5 * (out[:, CHANNELS.index("t500")] + out[:, CHANNELS.index("t850")])
    residual = thickness - R_DRY * layer_t * np.log(850 / 500)
    assert float(residual.abs().max()) < 0.1
    # equal weights (1 m2 s-2, 1 K): t takes the change, 76 times cheaper per K
    even = operator(truth)(states)
    assert float((even[:, t500] - states[:, t500]).abs().mean()) > 0.02


def test_the_derivative_is_fourth_order_inside():
    def error(n: int) -> float:
        x = np.linspace(0.0, 2.0, n)
        f = torch.from_numpy(np.sin(3 * x))[None]
        d = derivative(f, x[1] - x[0], -1)[0, 2:-2].numpy()
        return float(np.abs(d - 3 * np.cos(3 * x[2:-2])).max())

    assert error(41) / error(81) > 12  # ~16 for fourth order


def test_bad_channels_and_grids_are_refused(truth):
    """(A grid across the equator is not: its winds are kept, tests/generators/
    test_balance_global.py.)"""
    lat, lon = truth.latitude.values, truth.longitude.values
    with pytest.raises(InputError, match="z and t on at least two"):
        UpperAirBalance(["t2m", "z500", "z850", "t500"], np.ones(4), lat, lon)
    with pytest.raises(InputError, match="regular"):
        UpperAirBalance(CHANNELS, np.ones(13), np.r_[lat[:-1], lat[-1] + 5], lon)


def test_balanced_channels_are_those_the_operator_ties(truth):
    lat = truth.latitude.values
    assert balanced_channels(CHANNELS, lat) == tuple(range(1, 13))
    assert balanced_channels(["t2m", "z500", "z850", "t500", "t850", "u500"], lat) == (1, 2, 3, 4)
    assert balanced_channels(["t2m", "z500", "t500", "u500", "v500"], lat) == ()  # one level


def test_one_calibration_factor_keeps_members_balanced(truth):
    """Balanced members, their spread scaled by a spread calibration: with the balanced
    channels sharing one factor they stay fixed points of the balance (the relations are
    linear); with a factor per channel (what the fit gives them otherwise) they do not."""
    rng = np.random.default_rng(1)
    smooth = ndimage.gaussian_filter(rng.normal(0, 1, (4, 12, 24, 36)), (0, 0, 3, 3))
    scale = np.array([30.0] * 3 + [0.5] * 3 + [2.0] * 6)[None, :, None, None] / smooth.std()
    noisy = stack(truth)
    noisy[:, 1:] += torch.from_numpy((smooth * scale).astype(np.float32))
    balance = operator(truth)
    members = balance(noisy).double().numpy()[None]  # one initial time, 4 members
    observed = stack(truth).double().numpy()[:1]
    tied = balanced_channels(CHANNELS, truth.latitude.values)
    for shared, stays_balanced in ((tied, True), ((), False)):
        moments = PooledMoments.of(members, observed, truth.latitude.values)
        factors, _, _ = fit_spread_factors([moments], shared)
        assert (np.unique(factors[0, 1:]).size == 1) is stays_balanced
        scaled = torch.from_numpy(scale_spread(members, factors[0])[0]).float()
        moved = (balance(scaled) - scaled)[:, 1:].square().mean(dim=(0, 2, 3)).sqrt()
        size = scaled[:, 1:].std(dim=(0, 2, 3))
        assert bool((moved < 0.01 * size).all()) is stays_balanced, (moved / size).tolist()


def test_the_filter_removes_two_grid_lengths_and_keeps_long_waves():
    """Response 1 - sin(k h / 2)**4 away from the edges (Shapiro 1970, second order)."""
    x = np.arange(32)
    for wavelength, kept in ((2, 0.0), (4, 0.75), (8, 1 - np.sin(np.pi / 8) ** 4)):
        wave = np.cos(2 * np.pi * x / wavelength + 0.3)
        field = torch.from_numpy(np.broadcast_to(wave, (9, 32)).copy())[None]
        out = shapiro_filter(field)[0].numpy()
        np.testing.assert_allclose(out[:, 2:-2], kept * field[0].numpy()[:, 2:-2], atol=1e-12)


def test_a_step_with_grid_scale_noise_comes_out_balanced_by_another_scheme(truth):
    """Noise at the grid scale added by a step: projected alone, the winds are geostrophic
    by this operator's differences but not by the check's (second order); with the step's
    start given, its change is filtered first and they are geostrophic by both."""
    rng = np.random.default_rng(2)
    before = stack(truth)
    scale = np.array([30.0] * 3 + [0.5] * 3 + [2.0] * 6)[None, :, None, None]
    noisy = before.clone()
    noisy[:, 1:] += torch.from_numpy((rng.normal(0, 1, (4, 12, 24, 36)) * scale).astype("f4"))
    check = Geostrophic()
    tolerance = np.maximum(check.factor * check.score(truth), check.floor)
    projected = check.score(unstack(operator(truth)(noisy), truth))
    filtered = check.score(unstack(operator(truth)(noisy, before), truth))
    assert (projected > tolerance).any()
    assert (filtered <= tolerance).all()
