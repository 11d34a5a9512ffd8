"""Masked fields (NaN over part of the grid, e.g. a land-only variable): NaN-aware store
statistics, the network's filled input and validity channel, a loss over the valid points
only, and members NaN exactly where the initial state is."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
import xarray as xr

from generators import BackboneConfig, EulerSampler, FlowMatchingConfig
from generators.base import Batch
from generators.checkpoint import load_checkpoint
from generators.config import ModelSpec, OptimConfig, TrainConfig
from generators.config_data import DataConfig
from generators.data import ResidualDataset
from generators.data.forecast import ForecastData
from generators.diffusion import EDM, EDMConfig
from generators.flow_matching import FlowMatching
from generators.rollout import forecast_members
from generators.train import Trainer, to_batch, train
from pipeline.schema import Period
from pipeline.store import ingest, open_store

from tiny import TINY, random_condition

SYNTHETIC = "synthetic:n_lat=16,n_lon=16,n_times=240,step=6h,seed=5"
TRAIN_END = "2000-02-20"


def sea_mask(latitude: np.ndarray, longitude: np.ndarray) -> np.ndarray:
    """(H, W) True on a fixed 'sea': the western third of the grid and a southern strip."""
    lat, lon = np.meshgrid(latitude, longitude, indexing="ij")
    return (lon < -10.0) | (lat < 36.0)


@pytest.fixture(scope="module")
def masked_store(tmp_path_factory):
    """A synthetic t2m store with NaN over :func:`sea_mask`, ingested with allow_nan."""
    tmp = tmp_path_factory.mktemp("masked")
    full = ingest(SYNTHETIC, tmp / "full.zarr", variables=["t2m"], progress=False).dataset.load()
    sea = sea_mask(full.latitude.values, full.longitude.values)
    masked = full.copy()
    masked.attrs = {}
    masked["t2m"] = masked.t2m.where(xr.DataArray(~sea, dims=("latitude", "longitude")))
    masked["t2m"].attrs = full.t2m.attrs
    masked.to_netcdf(tmp / "land.nc")
    return ingest(tmp / "land.nc", tmp / "land.zarr", allow_nan=True, progress=False), sea


def tiny_config(steps: int, **changes) -> TrainConfig:
    model = FlowMatchingConfig(
        backbone=BackboneConfig(widths=(16, 32), attention_heads=0, embedding_dim=32), sample_nfe=4
    )
    base = {
        "model": ModelSpec("flow_matching", model),
        "data": DataConfig(
            channels=("t2m",),
            history=2,
            leads=(1,),
            train=Period(None, TRAIN_END),
            validation=Period("2000-02-21", None),
        ),
        "optim": OptimConfig(lr=2e-3, warmup_steps=5),
        "steps": steps,
        "batch_size": 8,
        "ema_decay": 0.9,
        "device": "cpu",
        "checkpoint_every": 10_000,
        "validate_every": 10,
    }
    return TrainConfig(**(base | changes))


def test_the_store_statistics_skip_the_masked_points(masked_store):
    store, sea = masked_store
    values = store.dataset.t2m.values
    assert np.isnan(values[:, sea]).all() and np.isfinite(values[:, ~sea]).all()
    stats = store.statistics.t2m
    land = values[:, ~sea].astype(np.float64)
    np.testing.assert_allclose(float(stats.sel(statistic="mean")), land.mean(), rtol=1e-9)
    np.testing.assert_allclose(float(stats.sel(statistic="std")), land.std(), rtol=1e-6)
    assert float(stats.sel(statistic="min")) == land.min()


def test_the_network_sees_filled_states_and_the_mask_and_the_target_is_valid_on_land(
    masked_store,
):
    store, sea = masked_store
    spec = tiny_config(1).data.sample_spec
    data = ResidualDataset.from_store(store, spec, period=Period(None, TRAIN_END))
    assert data.masked_channels == ("t2m",)
    assert data.static_names[-1] == "valid:t2m"
    items = data[np.arange(0, len(data), 7)]
    assert torch.isfinite(items["history"]).all()
    assert (items["history"][:, :, :, torch.from_numpy(sea)] == 0).all()
    land = torch.from_numpy(~sea)
    assert torch.equal(items["static"][:, -1], land.float().expand(len(items["lead"]), -1, -1))
    assert torch.equal(items["valid"][:, 0], land.expand(len(items["lead"]), -1, -1))
    assert (items["target"][:, 0, ~land] == 0).all()
    assert torch.isfinite(items["target"]).all() and items["target"][:, 0, land].std() > 0.1
    assert math.isfinite(float(data.normalization.tendency_std[0, 0]))


@pytest.mark.parametrize(
    "model",
    [
        FlowMatching(FlowMatchingConfig(backbone=TINY, crps_weight=0.5)),
        EDM(EDMConfig(backbone=TINY, crps_weight=0.5)),
    ],
    ids=["flow_matching", "edm"],
)
def test_the_loss_ignores_the_masked_points(model):
    """Both terms (regression and fair CRPS): changing the target where it is not valid
    leaves the loss unchanged, and an all-valid mask gives the unmasked loss."""
    g = torch.Generator().manual_seed(0)
    condition = random_condition(3, 8, 8, generator=g)
    target = torch.randn(3, 1, 8, 8, generator=g)
    valid = torch.rand(3, 1, 8, 8, generator=g) > 0.4

    def loss(t, v):
        out = model.loss(Batch(condition, t, v), generator=torch.Generator().manual_seed(1))
        return float(out.detach())

    other = torch.where(valid, target, torch.full_like(target, 1e3))
    assert loss(target, valid) == pytest.approx(loss(other, valid), rel=1e-6)
    assert loss(other, None) > 100 * loss(target, valid)
    assert loss(target, torch.ones_like(valid)) == pytest.approx(loss(target, None), rel=1e-6)


def test_a_masked_store_trains_and_forecasts_members_nan_exactly_on_the_mask(
    masked_store, tmp_path
):
    store, sea = masked_store
    config = tiny_config(20)
    trainer = Trainer(store, config, tmp_path / "run")
    batch = to_batch(trainer.train_data[np.arange(8)])
    assert batch.valid is not None and not batch.valid.all()
    result = trainer.run(progress=False)
    assert math.isfinite(result.train_loss) and math.isfinite(result.validation_loss)
    checkpoint = load_checkpoint(result.checkpoint)
    data = ForecastData.from_store(checkpoint, store)
    assert data.dataset.masked_channels == ("t2m",)
    inits = pd.date_range("2000-02-22", periods=3, freq="18h")
    members = forecast_members(  # 6 h direct, 12 h a rollout of two steps
        checkpoint, data, inits, [6.0, 12.0], 4, sampler=EulerSampler(nfe=2), progress=False
    )
    assert members.shape == (3, 4, 2, 1, 16, 16)
    assert np.isnan(members[..., sea]).all()
    assert np.isfinite(members[..., ~sea]).all()


def test_a_store_without_nan_has_no_masked_channel(tmp_path):
    store = ingest(SYNTHETIC, tmp_path / "s.zarr", variables=["t2m"], progress=False)
    data = ResidualDataset.from_store(
        open_store(store.path), tiny_config(1).data.sample_spec, period=Period(None, TRAIN_END)
    )
    assert data.masked_channels == () and not data.static_names[-1].startswith("valid:")
    assert to_batch(data[np.arange(4)]).valid is None
    train(store, tiny_config(2, validate_every=10_000), tmp_path / "run", progress=False)


def test_a_lazily_read_store_without_nan_is_not_scanned_for_nan(tmp_path, caplog):
    # the ingest counted the NaNs of every variable: a store larger than the memory
    # limit (a few years of global fields) need not be read whole to find none
    store = ingest(SYNTHETIC, tmp_path / "s.zarr", variables=["t2m"], progress=False)
    spec = tiny_config(1).data.sample_spec
    with caplog.at_level("INFO", logger="generators.data.dataset"):
        data = ResidualDataset.from_store(
            open_store(store.path), spec, period=Period(None, TRAIN_END), max_memory_bytes=0
        )
    assert not data.in_memory and data.masked_channels == ()
    assert "looking for masked (NaN) points" not in caplog.text


def test_a_lazily_read_masked_store_finds_its_masked_channel(masked_store):
    store, _ = masked_store
    spec = tiny_config(1).data.sample_spec
    data = ResidualDataset.from_store(
        open_store(store.path), spec, period=Period(None, TRAIN_END), max_memory_bytes=0
    )
    assert not data.in_memory and data.masked_channels == ("t2m",)


def test_a_channel_without_any_value_is_named_alone_with_the_fix():
    # A sea-only variable on a grid of land (or a file whose variable is all NaN, kept by
    # --allow-nan) has NaN statistics: the refusal named every channel, t2m (std 2.29)
    # beside it, as having a "non-positive std" and gave no fix.
    from generators.data.normalization import channel_statistics
    from pipeline.errors import StoreError

    statistics = xr.Dataset(
        {"t2m": ("statistic", [280.0, 2.29]), "sst": ("statistic", [np.nan, np.nan])},
        coords={"statistic": ["mean", "std"]},
    )
    with pytest.raises(StoreError) as error:
        channel_statistics(statistics, ["sst", "t2m"])
    message = str(error.value)
    assert "['sst']" in message and "t2m" not in message
    assert "no value" in message and "data.channels" in message


GAP = pd.Timestamp("2000-02-22T18")
"""The initial time the warning tests take values away from."""


def forecast_with_a_gap(store, tmp_path, caplog, keep) -> tuple[np.ndarray, list[str]]:
    """Members (2 initial times, :data:`GAP` second) of a 1-step model trained on
    ``store``, forecast from a copy of it whose t2m at GAP keeps only the points where
    ``keep(states)`` holds (ingested with allow_nan), and the warnings logged."""
    result = Trainer(store, tiny_config(1), tmp_path / "run").run(progress=False)
    checkpoint = load_checkpoint(result.checkpoint)
    states = store.dataset.load()
    states["t2m"] = states.t2m.where((states.time != GAP) | keep(states))
    states.attrs = {}
    states.to_netcdf(tmp_path / "gap.nc")
    gap = ingest(tmp_path / "gap.nc", tmp_path / "gap.zarr", allow_nan=True, progress=False)
    data = ForecastData.from_store(checkpoint, gap)
    inits = pd.DatetimeIndex(["2000-02-22T12", GAP])
    with caplog.at_level("WARNING"):
        members = forecast_members(
            checkpoint, data, inits, [6.0], 2, sampler=EulerSampler(nfe=1), progress=False
        )
    return members, [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]


def test_an_initial_state_without_value_is_warned_of(masked_store, tmp_path, caplog):
    # A time the analysis holds as all NaN (a failed retrieval kept by --allow-nan) gave
    # members NaN everywhere and said nothing.
    members, warned = forecast_with_a_gap(masked_store[0], tmp_path, caplog, lambda s: False)
    assert np.isnan(members[1]).all() and not np.isnan(members[0]).all()
    assert any("2000-02-22T18:00" in m and "t2m" in m and "no value" in m for m in warned)


def test_nan_points_in_a_channel_trained_without_any_are_warned_of(tmp_path, caplog):
    # A model trained on a complete field, forecast from a store with a few NaN points
    # (a gap kept by --allow-nan): the network read them as the channel's mean and the
    # members came out NaN there, without a word.
    full = ingest(SYNTHETIC, tmp_path / "full.zarr", variables=["t2m"], progress=False)
    members, warned = forecast_with_a_gap(full, tmp_path, caplog, lambda s: s.latitude > 40.0)
    assert np.isnan(members[1]).any() and not np.isnan(members[1]).all()
    assert not np.isnan(members[0]).any()
    assert any(
        "1 initial time(s)" in m and "2000-02-22T18:00 (t2m)" in m and "trained without any" in m
        for m in warned
    ), warned
