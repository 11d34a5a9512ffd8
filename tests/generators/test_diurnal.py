"""The mean diurnal cycle a model's residuals are drawn about (``data.diurnal_cycle``).

The store is a known cycle per grid point plus an offset per day and nothing else:
``x(d, p) = 280 + cycle[p] + offset[d]``. Averaging the same days into every time of day
recovers the cycle's changes exactly, whatever the offsets; a residual is then the change
of the day's offset alone, and a model drawing zero residuals forecasts the truth exactly
within a day.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import xarray as xr
from test_rollout import untrained_checkpoint
from torch import nn

from generators import EulerSampler
from generators.data import ResidualDataset, SampleSpec
from generators.data import normalization as normalization_module
from generators.data.forecast import ForecastData
from generators.data.normalization import fit_diurnal_cycle
from generators.rollout import forecast_members
from pipeline.errors import InputError
from pipeline.store import AnalysisStore

STD = 4.0
DAYS = 30


def cycle_store(
    step_hours: int = 6, days: int = DAYS
) -> tuple[AnalysisStore, np.ndarray, np.ndarray]:
    """The store, its cycle (P, H, W) and its daily offsets (days,), in K."""
    rng = np.random.default_rng(3)
    phases = 24 // step_hours
    times = pd.date_range("2019-03-01", periods=days * phases, freq=f"{step_hours}h")
    cycle = 3.0 * rng.standard_normal((phases, 5, 7))
    offset = 5.0 * rng.standard_normal(days)
    t2m = 280.0 + np.tile(cycle, (days, 1, 1)) + np.repeat(offset, phases)[:, None, None]
    ds = xr.Dataset(
        {"t2m": (("time", "latitude", "longitude"), t2m.astype("float32"))},
        coords={
            "time": times,
            "latitude": np.linspace(50, 56, 5),
            "longitude": np.linspace(-10, 4, 7),
        },
    )
    stats = xr.Dataset(
        {"t2m": ("statistic", [280.0, STD, 260.0, 300.0, 2.0])},
        coords={"statistic": ["mean", "std", "min", "max", "tendency_std"]},
    )
    store = AnalysisStore(Path("cycle.zarr"), ds, stats, pd.Timedelta(hours=step_hours), ())
    return store, cycle, offset


def spec(leads=(1, 2)) -> SampleSpec:
    return SampleSpec(history=(-1, 0), leads=leads, diurnal_cycle=True)


@pytest.mark.parametrize("diurnal_states", [2048, 20])
def test_the_cycle_averages_the_same_days_into_every_time_of_day(monkeypatch, diurnal_states):
    """Whole days enter the mean (here all 30, or 5 of them evenly spaced): the changes
    between times of day are the true cycle's exactly, though each day is offset by up to
    ~10 K; phases averaged over different days would be off by about 5 / sqrt(n) K."""
    monkeypatch.setattr(normalization_module, "DIURNAL_STATES", diurnal_states)
    store, cycle, _ = cycle_store()
    data = ResidualDataset.from_store(store, spec())
    fitted = fit_diurnal_cycle(data)[:, 0] * STD  # (P, H, W) in K
    assert fitted.shape == cycle.shape
    np.testing.assert_allclose(fitted - fitted[0], cycle - cycle[0], atol=1e-4)
    np.testing.assert_array_equal(data.normalization.diurnal, fitted[:, None] / STD)


def test_a_residual_is_the_change_less_the_cycles_change():
    """target * tendency_std = x[t+l] - x[t] - (c[p(t+l)] - c[p(t)]): the day's offset
    change, 0 within a day; and the tendency std is that of the offsets' changes only."""
    store, _, offset = cycle_store()
    data = ResidualDataset.from_store(store, spec())
    batch = data[np.arange(len(data))]
    positions, lead_index = data.pairs[:, 0], data.pairs[:, 1]
    valid_day = (data.times[positions] + pd.to_timedelta(6 * (lead_index + 1), "h")).normalize()
    day = (data.times[positions].normalize() - data.times[0]).days.to_numpy()
    later = (valid_day - data.times[0]).days.to_numpy()
    tendency_std = data.normalization.tendency_std[lead_index, 0]
    expected = (offset[later] - offset[day]) / tendency_std
    np.testing.assert_allclose(batch["target"][:, 0].mean(dim=(-2, -1)), expected, atol=1e-4)
    assert batch["target"][later == day].abs().max() < 1e-4
    spread = batch["target"].amax(dim=(-2, -1)) - batch["target"].amin(dim=(-2, -1))
    assert spread.max() < 1e-4  # the offset is the same at every grid point


class ZeroResidual(nn.Module):
    def sample(self, condition, n_members, *, sampler, generator) -> torch.Tensor:
        history = condition.history[:, -1:]
        return torch.zeros_like(history).expand(-1, n_members, -1, -1, -1)


def test_zero_residuals_forecast_the_mean_cycle_direct_and_rolled_out():
    """With residuals 0, every member is x(t0) + c(t0 + l) - c(t0): at 6 h (direct), 12 h
    (two 6 h steps) and 18 h from 00 UTC that is the truth itself (same day)."""
    store, cycle, offset = cycle_store()
    checkpoint = untrained_checkpoint(store, spec(leads=(1,)))
    inits = pd.DatetimeIndex(["2019-03-05T00", "2019-03-20T00"])
    members = forecast_members(
        checkpoint,
        ForecastData.from_store(checkpoint, store),
        inits,
        [6, 12, 18],
        n_members=3,
        model=ZeroResidual(),
        sampler=EulerSampler(nfe=1),
        progress=False,
    )
    truth = store.dataset["t2m"].sel(
        time=[t + pd.Timedelta(hours=h) for t in inits for h in (6, 12, 18)]
    )
    expected = truth.values.reshape(2, 1, 3, 5, 7)
    np.testing.assert_allclose(
        members[:, :, :, 0], np.broadcast_to(expected, (2, 3, 3, 5, 7)), atol=2e-3
    )


def test_a_daily_store_has_no_diurnal_cycle_to_fit():
    store, _, _ = cycle_store(step_hours=24)
    with pytest.raises(InputError, match="data.diurnal_cycle: false"):
        ResidualDataset.from_store(store, spec())
