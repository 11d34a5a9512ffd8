"""``--balance`` on a global grid (WeatherBench 2's, both poles): the winds cannot be made
geostrophic there (f = 2 Omega sin(lat) is 0 on the equator), but z and t can still be made
hypsometric column by column. The whole grid was refused, so a global user got no balance;
now z and t are balanced, the winds kept as drawn (said once), the step's change filtered
across the dateline where the longitudes wrap, and the channels the spread calibration ties
are those the operator ties."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from scipy import ndimage

from flows.cli import main as wxens
from generators.balance import (
    UpperAirBalance,
    across_poles,
    balanced_channels,
    derivative,
    shapiro_filter,
)
from pipeline.errors import InputError
from pipeline.forecast_store import ForecastProvenance, open_forecast
from tests.global_upper_air import global_upper_air

LEVELS = (300, 500, 850)
CHANNELS = ["t2m"] + [f"{v}{p}" for v in "ztuv" for p in LEVELS]
LAT, LON = np.arange(-90.0, 90.1, 5.0), np.arange(0.0, 360.0, 5.0)  # global, 5 degrees
Z = [CHANNELS.index(f"z{p}") for p in LEVELS]
T = [CHANNELS.index(f"t{p}") for p in LEVELS]
WINDS = [CHANNELS.index(f"{v}{p}") for v in "uv" for p in LEVELS]


def hypsometric_residual(z: np.ndarray, t: np.ndarray, levels) -> np.ndarray:
    """Per layer of adjacent ``levels`` (hPa, any order), ``Phi_up - Phi_low - R_d T_mean
    ln(p_low / p_up)`` (m2 s-2): z and t (..., level, lat, lon) in the order of ``levels``."""
    order = np.argsort(levels)[::-1]  # bottom (highest pressure) first
    p = np.asarray(levels, np.float64)[order]
    z, t = z[..., order, :, :], t[..., order, :, :]
    thickness = 287.05 * 0.5 * (t[..., :-1, :, :] + t[..., 1:, :, :])
    thickness = thickness * np.log(p[:-1] / p[1:])[:, None, None]
    return z[..., 1:, :, :] - z[..., :-1, :, :] - thickness


def unbalanced_states(seed: int) -> torch.Tensor:
    """(2, C, H, W) float64 states on the global grid: plausible means plus smooth
    independent noise per channel (tens of m2 s-2 off hypsometric balance and more)."""
    rng = np.random.default_rng(seed)
    noise = ndimage.gaussian_filter(rng.normal(0, 1, (2, 13, LAT.size, LON.size)), (0, 0, 2, 2))
    noise /= noise.std()
    mean = np.array([285.0] + [9.81 * h for h in (9100, 5600, 1450)] + [230, 255, 280] + [0] * 6)
    scale = np.array([2.0] + [300.0] * 3 + [2.0] * 3 + [8.0] * 6)
    return torch.from_numpy(mean[:, None, None] + scale[:, None, None] * noise)


@pytest.fixture
def notes(caplog):
    """The messages the balance logs, each once (a CLI's logging setup drops the root's
    handlers, so the handler is on the module's logger; the root may pass them on too)."""
    logger = logging.getLogger("generators.balance")
    logger.addHandler(caplog.handler)
    caplog.set_level(logging.INFO, logger=logger.name)
    yield lambda: [r.getMessage() for r in dict.fromkeys(caplog.records)]
    logger.removeHandler(caplog.handler)


def test_on_a_global_grid_z_and_t_come_out_hypsometric_and_the_winds_as_drawn(notes):
    before, states = unbalanced_states(0), unbalanced_states(1)
    balance = UpperAirBalance(CHANNELS, np.ones(13), LAT, LON)
    said = notes()
    assert len(said) == 1 and "equator" in said[0] and "u and v" in said[0], said
    residual = hypsometric_residual(states[:, Z].numpy(), states[:, T].numpy(), LEVELS)
    assert np.abs(residual).max() > 100.0
    for out in (balance(states), balance(states, before)):
        residual = hypsometric_residual(out[:, Z].numpy(), out[:, T].numpy(), LEVELS)
        assert np.abs(residual).max() < 0.1  # the projection's float32 round-off
        assert torch.equal(out[:, WINDS], states[:, WINDS])
        assert torch.equal(out[:, 0], states[:, 0])
    assert len(notes()) == 1  # said once, when the operator is made


def test_the_filter_wraps_across_the_dateline_where_the_longitudes_wrap():
    """A wave of 8 grid lengths plus one of 2, periodic in longitude: filtered with the
    longitudes wrapped, the first is kept at its response and the second removed at every
    column, the dateline's too (at the edges, taken as zero, both were left in part)."""
    x = np.arange(LON.size)
    smooth = np.cos(2 * np.pi * x / 8 + 0.3)
    field = torch.from_numpy(np.broadcast_to(smooth + 0.5 * np.cos(np.pi * x), (9, x.size)).copy())
    kept = 1 - np.sin(np.pi / 8) ** 4
    wrapped = shapiro_filter(field[None], periodic_longitude=True)[0].numpy()
    np.testing.assert_allclose(wrapped, kept * np.broadcast_to(smooth, (9, x.size)), atol=1e-12)
    jump = np.abs(wrapped[:, 0] - wrapped[:, -1]).max()
    assert jump <= np.abs(np.diff(wrapped, axis=1)).max() + 1e-12  # continuous at the dateline
    edges = shapiro_filter(field[None])[0].numpy()
    assert np.abs(edges[:, [0, -1]] - kept * smooth[[0, -1]]).max() > 0.1  # not wrapped
    # the operator wraps the step's change on a grid whose longitudes close the circle
    change = torch.zeros(1, 13, LAT.size, LON.size, dtype=torch.float64)
    change[:, Z + T] = torch.from_numpy(smooth + 0.5 * np.cos(np.pi * x))
    balance = UpperAirBalance(CHANNELS, np.ones(13), LAT, LON)
    smoothed = torch.zeros_like(change)
    smoothed[:, Z + T] = torch.from_numpy(kept * smooth)
    inside = slice(2, -2)  # the rows by the poles go on across them (the field does not)
    torch.testing.assert_close(
        balance(change, torch.zeros_like(change))[:, Z + T, inside],
        balance(smoothed)[:, Z + T, inside],
    )


@pytest.mark.parametrize("lat", [LAT, np.arange(-87.5, 90.0, 5.0)], ids=["poles", "half-step"])
def test_the_filter_goes_on_across_a_pole(lat):
    """cos(8 lat) + cos(7 lat) cos(lon) goes on across a pole along its meridian half a
    circle round (for cos(m lat) cos(k lon), m + k even): filtered, each wave keeps its
    response per direction at every row, those by the poles too, which, taken as edges,
    kept part of the grid-scale change."""
    phi, lam = np.meshgrid(np.deg2rad(lat), np.deg2rad(LON), indexing="ij")
    waves = np.cos(8 * phi), np.cos(7 * phi) * np.cos(lam)
    field = torch.from_numpy(waves[0] + waves[1])[None]
    h = np.deg2rad(5.0)
    response = 1 - np.sin(np.array([8, 7, 1]) * h / 2) ** 4
    kept = response[0] * waves[0] + response[1] * response[2] * waves[1]
    poles = across_poles(lat, LON)
    assert poles == ((1, 1) if lat[0] == -90 else (0, 0))
    across = shapiro_filter(field, True, poles)[0].numpy()
    np.testing.assert_allclose(across, kept, atol=1e-12)
    edges = shapiro_filter(field, True)[0].numpy()
    assert np.abs(edges - kept)[[0, 1, -2, -1]].max() > 1e-3
    assert UpperAirBalance(CHANNELS, np.ones(13), lat, LON).poles == poles  # what it filters by


def test_only_the_rows_by_a_pole_of_a_grid_all_round_go_on_across_it():
    assert across_poles(np.arange(-80.0, 80.1, 5.0), LON) == (None, None)  # a band
    assert across_poles(LAT, np.arange(0.0, 355.1, 5.0)[:-1]) == (None, None)  # odd columns
    assert across_poles(np.arange(-90.0, 60.1, 5.0), LON) == (1, None)
    assert across_poles(LAT, np.arange(0.0, 180.1, 5.0)) == (None, None)  # not all round


def test_the_longitude_derivative_wraps_where_the_longitudes_close_the_circle():
    """A band of one hemisphere all round (its winds made geostrophic): the derivative of
    a wave along it is fourth-order at the dateline too, as the physics check's wraps."""
    lam = np.deg2rad(LON)
    field = torch.from_numpy(np.sin(3 * lam))[None]
    exact = 3 * np.cos(3 * lam)
    wrapped = derivative(field, lam[1] - lam[0], -1, periodic=True)[0].numpy()
    edges = derivative(field, lam[1] - lam[0], -1)[0].numpy()
    inside = np.abs(edges - exact)[2:-2].max()
    assert np.abs(wrapped - exact).max() <= inside + 1e-12 < np.abs(edges - exact).max() / 10


def test_the_tied_channels_leave_out_the_winds_on_a_global_grid():
    assert balanced_channels(CHANNELS, LAT) == tuple(Z + T)
    assert balanced_channels(CHANNELS, np.linspace(30, 70, 9)) == tuple(range(1, 13))


def test_what_cannot_be_balanced_is_still_refused_on_a_global_grid():
    with pytest.raises(InputError, match="z and t on at least two"):
        UpperAirBalance(["t2m", "z500", "t500", "u500", "v500"], np.ones(5), LAT, LON)
    with pytest.raises(InputError, match="regular"):
        UpperAirBalance(CHANNELS, np.ones(13), LAT, np.r_[LON[:-1], 358.0])


def global_recipe(root, n_times: int, data: str = "", more: str = "") -> str:
    """The global store of ``n_times`` (:func:`global_upper_air`) and ``root/c.yaml``, a
    one-step tiny model of its upper air (``data``: more of its data section, ``more``: more
    lines); returns the store's path."""
    global_upper_air(root, n_times=n_times)
    channels = [f"{v}{p}" for v in "ztuv" for p in (500, 700, 850)]
    (root / "c.yaml").write_text(
        "model: {kind: flow_matching, "
        "backbone: {widths: [8, 16], attention_heads: 0, embedding_dim: 16}}\n"
        f"data: {{channels: [{', '.join(channels)}], history: 2, leads: [1]{data}}}\n"
        f"steps: 1\nbatch_size: 2\ndevice: cpu\n{more}"
    )
    return str(root / "global.zarr")


def test_the_forecast_command_balances_a_global_checkpoint(tmp_path, notes):
    """A tiny model trained on a global store: ``wxens forecast --balance`` succeeds (it
    refused the grid), its members' z and t are hypsometric, its winds those the network
    drew without ``--balance`` (same seed, one step), and the store records the balance."""
    store = global_recipe(tmp_path, 24)
    train = ["train", "--store", store, "--config", str(tmp_path / "c.yaml")]
    assert wxens([*train, "--out", str(tmp_path / "run"), "--no-progress"]) == 0
    forecast = ["forecast", "--checkpoint", str(tmp_path / "run"), "--store", store]
    forecast += ["--init", "2020-01-03T00", "--lead", "6h", "--members", "2", "--no-progress"]
    assert wxens([*forecast, "--out", str(tmp_path / "b.zarr"), "--balance"]) == 0
    assert sum("equator" in said for said in notes()) == 1
    assert wxens([*forecast, "--out", str(tmp_path / "p.zarr")]) == 0
    balanced, plain = (open_forecast(tmp_path / f"{n}.zarr").load() for n in "bp")
    assert ForecastProvenance.from_attrs(balanced.attrs).balanced
    for name in ("u", "v"):
        np.testing.assert_array_equal(balanced[name].values, plain[name].values)
    levels = balanced.level.values.tolist()
    for members, largest in ((balanced, 1.0), (plain, None)):
        z, t = (members[n].transpose(..., "level", "latitude", "longitude").values for n in "zt")
        residual = np.abs(hypsometric_residual(z, t, levels)).max()
        assert residual < largest if largest else residual > 100.0, residual


def test_calibrate_balance_on_folds_says_the_global_grid_note_once(tmp_path, notes):
    """``wxens calibrate --balance`` with two cross-validation folds made an operator per
    fold, each saying the grid's note: the same line once per fold, not once a command."""
    store = global_recipe(tmp_path, 40, ", train: {end: 2020-01-08}", "sampler: 'euler:nfe=1'\n")
    train = ["train", "--store", store, "--config", str(tmp_path / "c.yaml"), "--no-progress"]
    assert wxens([*train, "--out", str(tmp_path / "all")]) == 0
    folds = []
    for i, (start, end) in enumerate((("2020-01-02", "2020-01-03"), ("2020-01-05", "2020-01-06"))):
        held_out = f"data.exclude=[{{start: {start}, end: {end}}}]"
        assert wxens([*train, "--out", str(tmp_path / f"f{i}"), "--set", held_out]) == 0
        folds += ["--fold", str(tmp_path / f"f{i}")]
    calibrate = ["calibrate", "--checkpoint", str(tmp_path / "all"), "--store", store]
    calibrate += ["--members", "2", "--out", str(tmp_path / "c.pt"), "--no-progress"]
    before = len(notes())
    assert wxens([*calibrate, *folds, "--balance"]) == 0
    said = [line for line in notes()[before:] if "equator" in line]
    assert len(said) == 1, said
