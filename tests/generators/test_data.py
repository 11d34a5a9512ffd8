"""ResidualDataset: targets, history, normalisation, missing times, lazy reads, errors.

References are computed another way: by timestamp with xarray ``.sel`` on the raw fields.
"""

from __future__ import annotations

import tracemalloc

import numpy as np
import pandas as pd
import pytest
import torch
import xarray as xr

from generators.data import (
    CALENDAR_FEATURES,
    Normalization,
    ResidualDataset,
    SampleSpec,
    calendar_features,
)
from pipeline.errors import InputError
from pipeline.schema import Period
from pipeline.solar import SOLAR_FORCINGS, toa_insolation


def analysis(
    n_times: int = 60, h: int = 5, w: int = 7, seed: int = 0
) -> tuple[xr.Dataset, xr.Dataset]:
    """A random-walk dataset (t2m and z on two levels), hourly, and its statistics."""
    rng = np.random.default_rng(seed)
    times = pd.date_range("2019-03-01", periods=n_times, freq="h")
    t2m = 280 + np.cumsum(rng.normal(size=(n_times, h, w)), axis=0)
    z = np.stack(
        [
            5e4 + 10 * np.cumsum(rng.normal(size=(n_times, h, w)), 0),
            1.4e4 + 5 * np.cumsum(rng.normal(size=(n_times, h, w)), 0),
        ],
        axis=1,
    )
    ds = xr.Dataset(
        {
            "t2m": (("time", "latitude", "longitude"), t2m.astype("float32")),
            "z": (("time", "level", "latitude", "longitude"), z.astype("float32")),
        },
        coords={
            "time": times,
            "level": [850, 500],  # descending on purpose: channels come out ascending
            "latitude": np.linspace(50, 58, h),
            "longitude": np.linspace(-10, 2, w),
        },
    )
    dims = ("time", "latitude", "longitude")
    stats = xr.Dataset(
        {
            name: xr.concat(
                [
                    da.mean(dims),
                    da.std(dims),
                    da.min(dims),
                    da.max(dims),
                    da.diff("time").std(dims),
                ],
                dim="statistic",
            ).assign_coords(statistic=["mean", "std", "min", "max", "tendency_std"])
            for name, da in ds.data_vars.items()
        }
    )
    return ds, stats


def normalised(ds: xr.Dataset, stats: xr.Dataset, channel: str, time: pd.Timestamp) -> np.ndarray:
    var, level = (channel, None) if channel == "t2m" else (channel[0], int(channel[1:]))
    da, st = ds[var], stats[var]
    if level is not None:
        da, st = da.sel(level=level), st.sel(level=level)
    return ((da.sel(time=time) - st.sel(statistic="mean")) / st.sel(statistic="std")).values


def test_items_match_a_reference_built_by_timestamp():
    ds, stats = analysis()
    spec = SampleSpec(history=(-3, -1, 0), leads=(1, 4))
    data = ResidualDataset(ds, stats, spec, period=Period("2019-03-01T00", "2019-03-02T12"))
    assert data.channels == ("t2m", "z500", "z850")
    batch = data[np.arange(len(data))]
    step = pd.Timedelta(hours=1)
    for i in (0, 7, len(data) - 1):
        t = data.times[data.pairs[i, 0]]
        lead = spec.leads[data.pairs[i, 1]]
        assert batch["lead"][i] == lead
        for c, channel in enumerate(data.channels):
            for k, offset in enumerate(spec.history):
                np.testing.assert_allclose(
                    batch["history"][i, k, c].numpy(),
                    normalised(ds, stats, channel, t + offset * step),
                    atol=1e-5,
                )
            var, level = (channel, None) if channel == "t2m" else ("z", int(channel[1:]))
            da = ds[var] if level is None else ds[var].sel(level=level)
            tendency = (da.sel(time=t + lead * step) - da.sel(time=t)).values
            scale = data.normalization.tendency_std[data.normalization.lead_index(float(lead)), c]
            np.testing.assert_allclose(
                batch["target"][i, c].numpy(), tendency / scale, rtol=1e-4, atol=1e-4
            )
    # every item lies in the period, target included; history may start before it
    end = pd.Timestamp("2019-03-02T12")
    valid = data.times[data.pairs[:, 0]] + pd.to_timedelta(
        np.asarray(spec.leads)[data.pairs[:, 1]], unit="h"
    )
    assert valid.max() == end
    assert data.times[data.pairs[:, 0]].min() == pd.Timestamp("2019-03-01T03")


def test_tendency_std_is_the_std_of_lead_differences_over_the_period():
    ds, stats = analysis()
    data = ResidualDataset(
        ds, stats, SampleSpec(history=2, leads=(1, 6)), period=Period(None, "2019-03-02")
    )
    t2m = ds.t2m.sel(time=slice(None, "2019-03-02")).values.astype(np.float64)
    for j, lead in enumerate((1, 6)):
        inits = t2m[1 : len(t2m) - lead]  # history of 2 needs one state before
        expected = np.std(t2m[1 + lead :] - inits)
        assert data.normalization.tendency_std[j, 0] == pytest.approx(expected, rel=1e-4)
    # normalised targets of the period then have unit variance per lead
    batch = data[np.arange(len(data))]
    for j in range(2):
        chosen = torch.from_numpy(data.pairs[:, 1] == j)
        assert batch["target"][chosen].std(unbiased=False).item() == pytest.approx(1.0, rel=0.05)


def test_tendency_std_per_grid_point_is_each_points_std_floored():
    ds, stats = analysis()
    t2m = ds.t2m.values.astype(np.float64)
    t2m[:, 0, 0] = 280.0  # a constant point: floored, not divided by zero
    t2m[:, 0, 1] = 280.0 + 4.0 * (t2m[:, 0, 1] - 280.0)  # a lively one
    t2m[:, 1, 0] = np.nan  # a point without data: the channel's value
    ds["t2m"] = ds.t2m.copy(data=t2m.astype("float32"))
    spec = SampleSpec(history=2, leads=(1, 6), tendency_per_grid_point=True)
    data = ResidualDataset(ds, stats, spec, period=Period(None, "2019-03-02"))
    norm = data.normalization
    assert norm.per_grid_point and norm.tendency_std.shape == (2, 3, 5, 7)
    period = t2m[: len(ds.time.sel(time=slice(None, "2019-03-02")))]
    for j, lead in enumerate((1, 6)):
        tendency = period[1 + lead :] - period[1 : len(period) - lead]
        expected = np.std(tendency, axis=0)
        got = norm.tendency_std[j, 0]
        assert got[1, 0] == pytest.approx(np.nanstd(tendency), rel=1e-4)
        assert got[0, 0] == pytest.approx(0.05 * np.median(got), rel=1e-6)
        np.testing.assert_allclose(got[2:], expected[2:], rtol=1e-4)
        assert got[0, 1] == pytest.approx(expected[0, 1], rel=1e-4)
        # each point's normalised targets have unit variance
        chosen = torch.from_numpy(data.pairs[:, 1] == j)
        target = data[np.flatnonzero(chosen.numpy())]["target"][:, 0].numpy()
        np.testing.assert_allclose(target[:, 2:].std(axis=0), 1.0, rtol=1e-3)
    # the factor back to a state increment is per point too, and round-trips
    factor = norm.residual_to_state(6.0)
    assert factor.shape == (3, 5, 7)
    np.testing.assert_allclose(factor[0], norm.tendency_std[1, 0] / norm.std[0], rtol=1e-6)
    again = Normalization.from_dict(norm.to_dict())
    np.testing.assert_array_equal(again.tendency_std, norm.tendency_std)
    # a per-channel normalisation cannot serve a per-point spec, nor another grid
    per_channel = ResidualDataset(ds, stats, SampleSpec(history=2, leads=(1, 6))).normalization
    with pytest.raises(InputError, match="per grid point"):
        ResidualDataset(ds, stats, spec, normalization=per_channel)
    smaller = ds.isel(longitude=slice(0, 6))
    with pytest.raises(InputError, match=r"\(2, 3, 5, 7\)"):
        ResidualDataset(smaller, stats, spec, normalization=norm)


def test_excluded_periods_hold_no_initial_time_and_no_target():
    ds, stats = analysis()
    spec = SampleSpec(history=2, leads=(1, 4))
    held_out = Period("2019-03-01T20", "2019-03-02T03")
    data = ResidualDataset(ds, stats, spec, exclude=[held_out])
    # reference: every (init, lead) of the whole store by timestamp, then the rule
    step, times = pd.Timedelta(hours=1), pd.DatetimeIndex(ds.time.values)
    inside = (times >= pd.Timestamp("2019-03-01T20")) & (times <= pd.Timestamp("2019-03-02T03"))
    out_of_fold = set(times[~inside])
    expected = {
        (t, lead)
        for t in times[1:]  # history of 2 needs the state before
        for lead in spec.leads
        if t in out_of_fold and t + lead * step in out_of_fold and t + lead * step <= times[-1]
    }
    got = {(data.times[p], spec.leads[j]) for p, j in data.pairs}
    assert got == expected
    # the history may reach into the held-out period: 03 UTC's successor keeps its item
    assert (pd.Timestamp("2019-03-02T04"), 1) in got
    assert len(got) < len(ResidualDataset(ds, stats, spec).pairs)
    with pytest.raises(InputError, match="excluding"):
        ResidualDataset(ds, stats, spec, exclude=[Period(None, None)])


def test_missing_times_and_gaps_are_never_bridged():
    ds, stats = analysis()
    missing = pd.Timestamp("2019-03-01T10")
    gap = ds.drop_sel(time=[pd.Timestamp("2019-03-02T00")])
    data = ResidualDataset(gap, stats, SampleSpec(history=2, leads=(2,)), missing_times=[missing])
    used = set()
    for p, _ in data.pairs:
        t = data.times[p]
        used |= {t - pd.Timedelta(hours=1), t, t + pd.Timedelta(hours=2)}
    assert missing not in used
    assert pd.Timestamp("2019-03-02T00") not in used
    inits = data.times[data.pairs[:, 0]]
    assert pd.Timestamp("2019-03-01T22") not in inits  # its target falls in the gap
    assert pd.Timestamp("2019-03-02T01") not in inits  # its history falls in the gap
    assert pd.Timestamp("2019-03-01T23") in inits  # 22 h, 23 h and 01 h are all there
    batch = data[np.arange(len(data))]
    assert torch.isfinite(batch["target"]).all()


def test_positions_at_finds_states_by_timestamp_in_hours():
    ds, stats = analysis()
    missing = pd.Timestamp("2019-03-01T10")
    gap = ds.drop_sel(time=[pd.Timestamp("2019-03-02T00")])
    data = ResidualDataset(gap, stats, SampleSpec(history=2, leads=(2,)), missing_times=[missing])
    inits = pd.DatetimeIndex(["2019-03-01T05", "2019-03-01T11", "2019-03-01T23", "2019-05-01"])
    found = data.positions_at(inits, (-1.0, 0.0, 1.0))
    expected = [
        [data.times.get_loc(inits[0] + pd.Timedelta(hours=h)) for h in (-1, 0, 1)],
        [-1, data.times.get_loc(inits[1]), data.times.get_loc(inits[1] + pd.Timedelta("1h"))],
        [data.times.get_loc(inits[2] - pd.Timedelta("1h")), data.times.get_loc(inits[2]), -1],
        [-1, -1, -1],  # not in the store
    ]
    np.testing.assert_array_equal(found, expected)  # the missing 10 h and the gap at 00 h: -1
    assert data.span == "2019-03-01T00:00 to 2019-03-03T11:00"  # as every message shows times


def test_lazy_reading_gives_the_same_batches_as_in_memory():
    ds, stats = analysis()
    spec = SampleSpec(history=(-2, 0), leads=(1, 3))
    eager = ResidualDataset(ds, stats, spec)
    lazy = ResidualDataset(
        ds.chunk({"time": 1}), stats, spec, max_memory_bytes=0, normalization=eager.normalization
    )
    assert not isinstance(lazy._states, np.ndarray)
    index = np.array([0, 5, 17, len(eager) - 1])
    for key in ("history", "target", "calendar", "lead"):
        torch.testing.assert_close(eager[index][key], lazy[index][key])


def test_static_and_calendar_features():
    ds, stats = analysis()
    ds["lsm"] = (("latitude", "longitude"), np.arange(35.0).reshape(5, 7))
    data = ResidualDataset(ds, stats, SampleSpec())
    assert data.static_names == (
        "sin_latitude",
        "cos_latitude",
        "sin_longitude",
        "cos_longitude",
        "lsm",
    )
    np.testing.assert_allclose(
        data.static[0, :, 0].numpy(), np.sin(np.deg2rad(ds.latitude.values)), rtol=1e-6
    )
    assert data.static[4].mean().item() == pytest.approx(0.0, abs=1e-6)
    assert data.static[4].std(unbiased=False).item() == pytest.approx(1.0, rel=1e-5)
    cal = calendar_features(pd.DatetimeIndex(["2019-01-01T06", "2019-01-01T18"]))
    assert cal.shape == (2, len(CALENDAR_FEATURES))
    np.testing.assert_allclose(cal[:, :2].numpy(), [[1, 0], [-1, 0]], atol=1e-6)


def test_solar_forcing_follows_each_items_initial_and_valid_time():
    """Under ``solar_forcing`` the static fields end with the TOA insolation of the item's
    own initial and valid times (and the interval mean), computed from the timestamps."""
    ds, stats = analysis()
    data = ResidualDataset(ds, stats, SampleSpec(history=2, leads=(1, 6), solar_forcing=True))
    plain = ResidualDataset(ds, stats, SampleSpec(history=2, leads=(1, 6)))
    assert data.static_names == plain.static_names + SOLAR_FORCINGS
    index = [0, 7, len(data) - 1]
    items = data[index]
    assert items["static"].shape == (3, 4 + 3, 5, 7)
    torch.testing.assert_close(items["static"][:, :4], plain[index]["static"])
    inits = data.times[data.pairs[index, 0]]
    valid = inits + pd.to_timedelta(items["lead"].numpy(), unit="h")
    lat, lon = ds.latitude.values, ds.longitude.values
    for channel, times in ((4, inits), (5, valid)):
        np.testing.assert_allclose(
            items["static"][:, channel].numpy(), toa_insolation(times, lat, lon), atol=1e-6
        )
    assert set(items["lead"].tolist()) == {1.0, 6.0}


def test_normalisation_round_trips_through_a_dict():
    ds, stats = analysis()
    norm = ResidualDataset(ds, stats, SampleSpec(leads=(1, 2))).normalization
    again = Normalization.from_dict(norm.to_dict())
    assert again.channels == norm.channels and again.leads_hours == norm.leads_hours
    np.testing.assert_array_equal(again.tendency_std, norm.tendency_std)
    with pytest.raises(InputError, match="lead 5 h"):
        norm.lead_index(5.0)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        # the fix named: a training config's channels, with those the store holds to copy
        ({"spec": SampleSpec(), "channels": ["q700"]}, r"no channel.*data\.channels= \(--set "),
        ({"spec": SampleSpec(history=60)}, "no initial time"),
        ({"spec": SampleSpec(), "period": Period("2020-01-01", None)}, "holds no time"),
    ],
)
def test_unusable_requests_are_input_errors(kwargs, message):
    ds, stats = analysis()
    spec = kwargs.pop("spec")
    with pytest.raises(InputError, match=message):
        ResidualDataset(ds, stats, spec, **kwargs)


@pytest.mark.parametrize("history", [(0, -1), (-1,), (-1, 1)])
def test_bad_history_offsets_are_refused(history):
    with pytest.raises(InputError, match="history offsets"):
        SampleSpec(history=history)


@pytest.mark.parametrize(
    "kwargs", [{"history": 10**6}, {"history": (-(10**12), 0)}, {"leads": (10**12,)}]
)
def test_absurd_history_and_leads_are_refused_before_allocating(kwargs):
    """A config sent by someone else asking 10^6 states of history is refused at once (not
    a tuple of 10^6 offsets built first), as is a lead of 10^12 steps."""
    with pytest.raises(InputError, match="at most 100000"):
        SampleSpec(**kwargs)


def test_init_positions_name_initial_times_without_history():
    ds, stats = analysis()
    data = ResidualDataset(ds, stats, SampleSpec(history=3))
    assert list(data.init_positions([pd.Timestamp("2019-03-01T05")])) == [5]
    with pytest.raises(InputError, match="2019-03-01T01:00"):
        data.init_positions([pd.Timestamp("2019-03-01T01")])


def test_variability_scaling_makes_targets_independent_of_the_regime():
    """A random walk calm (steps of std 0.5) then stormy (std 2): unscaled targets are
    four times larger in the storm; scaled by their history's recent variability, alike."""
    rng = np.random.default_rng(1)
    steps = np.concatenate([0.5 * rng.normal(size=(100, 5, 7)), 2.0 * rng.normal(size=(100, 5, 7))])
    ds, stats = analysis(n_times=200)
    ds = ds[["t2m"]].copy(data={"t2m": (280 + np.cumsum(steps, axis=0)).astype("float32")})
    stats = stats[["t2m"]]

    def regime_ratio(scaling: bool) -> float:
        data = ResidualDataset(
            ds, stats, SampleSpec(history=6, leads=(1,), variability_scaling=scaling)
        )
        target = data[np.arange(len(data))]["target"]
        calm = data.pairs[:, 0] < 95
        stormy = data.pairs[:, 0] > 110
        return (
            target[torch.from_numpy(stormy)].std() / target[torch.from_numpy(calm)].std()
        ).item()

    assert regime_ratio(False) == pytest.approx(4.0, rel=0.1)
    assert regime_ratio(True) == pytest.approx(1.0, rel=0.15)


def test_fitting_the_normalisation_reads_no_history_without_variability_scaling(monkeypatch):
    """The tendency std needs the histories only to scale by their variability: without
    it, reading up to 256 histories per lead (gigabytes on a global grid) is waste."""
    ds, stats = analysis(n_times=80)
    read = []
    real = ResidualDataset.history_at

    def history_at(self, positions):
        read.append(len(positions))
        return real(self, positions)

    monkeypatch.setattr(ResidualDataset, "history_at", history_at)
    ResidualDataset(ds, stats, SampleSpec(history=6, leads=(1, 3)))
    assert read == []
    ResidualDataset(ds, stats, SampleSpec(history=6, leads=(1, 3), variability_scaling=True))
    assert read, "with variability scaling the histories are read"


def test_states_read_into_memory_are_normalised_without_two_more_copies_of_them():
    """Reading the states into memory held them three times at its peak: the array read,
    the difference from the mean and its quotient by the std beside it (then a float32
    copy of that); the quotient is now taken in place. Same values (the float32 ones a
    reference computes), peak 2.66 x the states here against 3.00 before (tracemalloc
    counts numpy's allocations)."""
    ds, stats = analysis(n_times=2000, h=32, w=32)
    spec = SampleSpec(history=(-2, 0), leads=(1, 3))
    tracemalloc.start()
    try:
        dataset = ResidualDataset(ds, stats, spec)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2.8 * dataset._states.nbytes
    time = ds.time.values[100]
    expected = normalised(ds, stats, "t2m", pd.Timestamp(time)).astype(np.float32)
    np.testing.assert_allclose(dataset._states[100, 0], expected, rtol=1e-5, atol=1e-5)
