"""The forecast's statistics check (generators.data.forecast.check_statistics): stores in
other units refused, stores a forecaster legitimately uses (a dry spell) accepted."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import xarray as xr

from generators import BackboneConfig, EDMConfig
from generators.checkpoint import load_checkpoint
from generators.config import ModelSpec, TrainConfig
from generators.config_data import DataConfig
from generators.data.forecast import ForecastData
from generators.rollout_plan import plan_rollout
from generators.train import Trainer
from pipeline.errors import InputError, time_text
from pipeline.store import ingest

SPEC = "synthetic:n_lat=16,n_lon=16,n_times=60,step=6h,seed=1"


def _config() -> TrainConfig:
    model = EDMConfig(backbone=BackboneConfig(widths=(8, 16), attention_heads=0, embedding_dim=16))
    data = DataConfig(channels=("t2m", "tp", "v500", "r500"), history=2, leads=(1, 2))
    return TrainConfig(
        model=ModelSpec("edm", model), data=data, steps=2, batch_size=4, device="cpu"
    )


def _fields(tmp_path, name, edit=None):
    """An analysis store of the synthetic t2m and v with a precipitation field that rains
    where t2m is above its mean and a relative humidity (%) that follows t2m, ``edit``
    applied to the file's dataset first."""
    plain = ingest(SPEC, tmp_path / f"{name}-src.zarr", variables=["t2m", "v"], progress=False)
    ds = plain.dataset[["t2m", "v"]].sel(level=[500]).load()
    ds.attrs = {}
    anomaly = ds.t2m - ds.t2m.mean()
    ds["tp"] = xr.where(anomaly > 0, anomaly * 2e-4, 0.0).assign_attrs(units="m")
    humidity = (60 + 3 * anomaly).clip(5, 100).expand_dims(level=[500], axis=1)
    ds["r"] = humidity.transpose(*ds.v.dims).assign_attrs(units="%")
    ds = edit(ds) if edit else ds
    ds.to_netcdf(tmp_path / f"{name}.nc")
    return ingest(tmp_path / f"{name}.nc", tmp_path / f"{name}.zarr", progress=False)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    root = tmp_path_factory.mktemp("stats")
    return load_checkpoint(Trainer(_fields(root, "train"), _config(), root).save().path)


def _last_day(ds):
    return ds.isel(time=slice(-4, None))


def test_a_dry_spell_is_forecast_from_not_refused(checkpoint, tmp_path, caplog):
    """An operational store of the last day without rain (tp 0 everywhere: std 0) is what
    a forecaster uses in any dry spell; it is no sign of other units, and the forecast
    normalises with the checkpoint's statistics anyway: accepted, with a note."""

    def dry(ds):
        ds = _last_day(ds)
        ds["tp"] = (ds.tp * 0.0).assign_attrs(units="m")
        return ds

    store = _fields(tmp_path, "dry", dry)
    with caplog.at_level(logging.WARNING):
        data = ForecastData.from_store(checkpoint, store)
    plan = plan_rollout([6.0], checkpoint.leads_hours, data.history_hours)
    windows = data.windows(data.times[-1:], plan).numpy()
    tp = list(checkpoint.channels).index("tp")
    assert np.allclose(data.denormalise(windows)[:, :, tp], 0.0, atol=1e-9)
    assert "tp" in caplog.text and str(store.path) in caplog.text


def test_an_almost_dry_spell_is_accepted(checkpoint, tmp_path):
    """One shower in an otherwise dry day: the std is a hundredth of training's, no more a
    sign of other units than the dry day's."""

    def shower(ds):
        ds = _last_day(ds)
        tp = ds.tp * 0.0
        tp[:, 3, 3] = 1e-5
        ds["tp"] = tp.assign_attrs(units="m")
        return ds

    ForecastData.from_store(checkpoint, _fields(tmp_path, "shower", shower))


def test_a_wind_in_centimetres_per_second_labelled_metres_is_still_refused(
    checkpoint, tmp_path
):
    """The zero-mean v escapes the mean test (2 stds apart); 100 times its training std
    does not, and the message says so rather than '2 training stds apart' alone. Ingesting
    again into the same store keeps the times it holds: the fix names --overwrite."""

    def centimetres(ds):
        ds["v"] = (ds.v * 100).assign_attrs(units="m s-1")
        return ds

    with pytest.raises(InputError, match=r"v500 .*\(a std 100 times larger\)") as err:
        ForecastData.from_store(checkpoint, _fields(tmp_path, "cms", centimetres))
    assert "--overwrite" in str(err.value)


def test_a_wind_a_hundred_times_too_small_is_still_refused(checkpoint, tmp_path):
    """A variable without a zero lower bound whose std shrinks 100-fold (values in other
    units) is no dry spell: refused."""

    def small(ds):
        ds["v"] = (ds.v / 100).assign_attrs(units="m s-1")
        return ds

    with pytest.raises(InputError, match=r"v500 .*100 times smaller"):
        ForecastData.from_store(checkpoint, _fields(tmp_path, "small", small))


def test_a_relative_humidity_as_a_fraction_labelled_percent_is_refused(checkpoint, tmp_path):
    """r is bounded below at zero like tp, but a fraction under '%' never reaches that
    bound: its std 100 times smaller is other units, not a dry spell."""

    def fraction(ds):
        ds["r"] = (ds.r / 100).assign_attrs(units="%")
        return ds

    with pytest.raises(InputError, match=r"r500 .*\(a std 100 times smaller\)"):
        ForecastData.from_store(checkpoint, _fields(tmp_path, "fraction", fraction))


def test_an_initial_window_in_other_units_appended_to_a_long_store_is_refused(
    checkpoint, tmp_path
):
    """A day in degrees C labelled K appended to a store of K moves the whole store's
    statistics too little to be refused (mean 2 stds off, std 8 times larger here; less on
    a year's archive), but the initial window in that day is 34 training stds away: the
    forecast from it is refused naming the initial time and the channel, while one from
    the K part goes ahead."""

    def celsius_at_the_end(ds):
        t2m = ds.t2m.copy()
        t2m[-4:] = t2m[-4:] - 273.15
        ds["t2m"] = t2m.assign_attrs(units="K")
        return ds

    data = ForecastData.from_store(checkpoint, _fields(tmp_path, "appended", celsius_at_the_end))
    plan = plan_rollout([6.0], checkpoint.leads_hours, data.history_hours)
    data.windows(data.times[-6:-5], plan)
    with pytest.raises(InputError, match=r"t2m .*training stds") as err:
        data.windows(data.times[-1:], plan)
    assert time_text(data.times[-1]) in str(err.value) and "--overwrite" in str(err.value)


def test_resuming_on_a_store_in_other_units_is_refused_before_a_step(tmp_path):
    """A run resumed on its store ingested again in degrees C labelled K trained on inputs
    120 stds off and overwrote the good last.pt before the end-of-run calibration refused
    the store: refused at the start now, the checkpoint untouched, naming --no-resume."""
    store = ingest(SPEC, tmp_path / "k.zarr", variables=["t2m"], progress=False)
    config = _config()
    config = TrainConfig(
        model=config.model,
        data=DataConfig(channels=("t2m",), history=2, leads=(1, 2)),
        steps=2,
        batch_size=4,
        device="cpu",
    )
    saved = Trainer(store, config, tmp_path / "run").save().path
    before = saved.read_bytes()
    celsius = store.dataset[["t2m"]].load()
    celsius["t2m"] = (celsius.t2m - 273.15).assign_attrs(units="K")
    celsius.attrs = {}
    celsius.to_netcdf(tmp_path / "c.nc")
    wrong = ingest(tmp_path / "c.nc", tmp_path / "c.zarr", progress=False)
    with pytest.raises(InputError, match=r"t2m .*training stds apart.*--no-resume"):
        Trainer(wrong, config, tmp_path / "run")
    assert saved.read_bytes() == before
