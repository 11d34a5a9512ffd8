"""Rollout: the plan, per-member trajectories against an exact AR(1) generator, seeds, the CLI.

The stub generator is an exact AR(1) in normalised units: a state z steps to
``rho^k z + sqrt(1 - rho^(2k)) eps`` over k model steps, so the members of a correct
rollout have mean ``rho^k z0`` and standard deviation ``sqrt(1 - rho^(2k))`` at lead k
whichever way (direct or rolled out) the lead is reached; shared or reset trajectories
would give other moments.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import xarray as xr
from torch import nn

import generators.rollout
from flows.cli import main as wxens
from generators import EulerSampler, FlowMatchingConfig
from generators.base import Condition
from generators.checkpoint import Checkpoint, load_checkpoint
from generators.config import ModelSpec, TrainConfig
from generators.config_data import DataConfig
from generators.data import ResidualDataset, SampleSpec, recent_variability
from generators.data.forecast import ForecastData
from generators.rollout import forecast_members, iter_forecast
from generators.rollout_plan import Leg, check_ensemble_size, plan_rollout
from generators.samplers import standard_normal
from generators.step_memory import forward_bytes
from pipeline.errors import InputError
from pipeline.forecast_store import open_forecast
from pipeline.solar import toa_insolation
from pipeline.store import AnalysisStore, ingest
from pipeline.transaction import commits

from tiny import two_step_run

RHO = 0.9


class AR1(nn.Module):
    """Exact AR(1) residuals; ``scale`` multiplies the noise (1: the true law)."""

    def __init__(self, step_hours: float, to_state: dict[float, np.ndarray], scale: float = 1.0):
        super().__init__()
        self.step_hours, self.scale = step_hours, scale
        self.to_state = {h: torch.from_numpy(f) for h, f in to_state.items()}
        self.leads_seen: list[float] = []
        self.static_seen: list[torch.Tensor] = []

    def sample(self, condition: Condition, n_members: int, *, sampler, generator) -> torch.Tensor:
        lead = float(condition.lead[0])
        self.leads_seen.append(lead)
        self.static_seen.append(condition.static)
        k = lead / self.step_hours
        z = condition.history[:, -1:].expand(-1, n_members, -1, -1, -1)
        eps = standard_normal(z.shape, generator, z.device, z.dtype)
        nxt = RHO**k * z + self.scale * np.sqrt(1 - RHO ** (2 * k)) * eps
        return (nxt - z) / self.to_state[lead]


def ar1_store(n_times: int = 40) -> AnalysisStore:
    """An in-memory 6-hourly store with t2m of mean 280 K and std 2 K."""
    rng = np.random.default_rng(0)
    times = pd.date_range("2019-03-01", periods=n_times, freq="6h")
    t2m = (280 + 2 * rng.standard_normal((n_times, 6, 8))).astype("float32")
    ds = xr.Dataset(
        {"t2m": (("time", "latitude", "longitude"), t2m)},
        coords={
            "time": times,
            "latitude": np.linspace(50, 56, 6),
            "longitude": np.linspace(-10, 4, 8),
        },
    )
    stats = xr.Dataset(
        {"t2m": ("statistic", [280.0, 2.0, 270.0, 290.0, 2.0])},
        coords={"statistic": ["mean", "std", "min", "max", "tendency_std"]},
    )
    return AnalysisStore(Path("ar1.zarr"), ds, stats, pd.Timedelta(hours=6), ())


def ar1_checkpoint(
    store: AnalysisStore, leads: tuple[int, ...], solar_forcing: bool = False
) -> Checkpoint:
    spec = SampleSpec(history=(-1, 0), leads=leads, solar_forcing=solar_forcing)
    data = ResidualDataset.from_store(store, spec)
    return Checkpoint(
        step=0,
        kind="flow_matching",
        model_config=FlowMatchingConfig(),
        train_config=TrainConfig(
            model=ModelSpec("flow_matching", FlowMatchingConfig()), data=DataConfig()
        ),
        normalization=data.normalization,
        spec=spec,
        native_step=data.native_step,
        static_names=data.static_names,
        latitude=data.latitude,
        longitude=data.longitude,
        model_state={},
        ema_state={},
        path=Path("ar1.pt"),
    )


def stub_for(checkpoint: Checkpoint, scale: float = 1.0) -> AR1:
    norm = checkpoint.normalization
    return AR1(6.0, {h: norm.residual_to_state(h) for h in norm.leads_hours}, scale)


def test_plans_take_the_fewest_network_steps():
    hourly_day = [float(h) for h in range(-23, 1)]
    plan = plan_rollout([1, 3, 24, 48], [1.0, 3.0, 6.0, 12.0, 24.0], hourly_day)
    assert plan.step_hours == 1.0 and plan.window_hours == tuple(hourly_day)
    assert plan.legs == (Leg(1, 0.0), Leg(0, 3.0), Leg(0, 24.0), Leg(24, 24.0))
    plan = plan_rollout([12, 240], [6.0], [-6.0, 0.0])
    assert plan.legs == (Leg(2, 0.0), Leg(40, 0.0)) and plan.network_steps == 40
    plan = plan_rollout([6, 24], [6.0, 24.0], [-24.0, -6.0, 0.0])
    assert plan.step_hours == 6.0 and plan.window_hours == (-24.0, -18.0, -12.0, -6.0, 0.0)
    assert plan.history_index == (0, 3, 4)
    with pytest.raises(InputError, match="cannot be reached"):
        plan_rollout([9], [6.0], [-6.0, 0.0])
    with pytest.raises(InputError, match="directly only"):
        plan_rollout([12], [6.0], [-9.0, 0.0])


def test_ten_day_rollout_follows_the_exact_law_and_stays_bounded():
    store = ar1_store()
    checkpoint = ar1_checkpoint(store, leads=(1,))
    data = ForecastData.from_store(checkpoint, store)
    inits = pd.DatetimeIndex(["2019-03-02T00", "2019-03-03T06"])
    leads = [6.0, 24.0, 72.0, 240.0]
    members = forecast_members(
        checkpoint,
        data,
        inits,
        leads,
        400,
        sampler=EulerSampler(nfe=1),
        model=stub_for(checkpoint),
        progress=False,
    )
    assert members.shape == (2, 400, 4, 1, 6, 8)
    start = (store.dataset.t2m.sel(time=inits).values[:, None] - 280.0) / 2.0
    z = (members - 280.0) / 2.0
    spreads = []
    for i, lead in enumerate(leads):
        k = lead / 6.0
        np.testing.assert_allclose(z[:, :, i].mean(axis=1), RHO**k * start, atol=0.25)
        spread = z[:, :, i].std(axis=1, ddof=1).mean()
        assert spread == pytest.approx(np.sqrt(1 - RHO ** (2 * k)), rel=0.05)
        spreads.append(spread)
    assert np.all(np.diff(spreads) > 0)
    assert np.abs(z).max() < 7  # bounded: the stationary law is N(0, 1)


def test_direct_and_rolled_legs_reach_their_leads():
    store = ar1_store()
    checkpoint = ar1_checkpoint(store, leads=(1, 4))
    data = ForecastData.from_store(checkpoint, store)
    stub = stub_for(checkpoint)
    inits = pd.DatetimeIndex(["2019-03-02T00"])
    members = forecast_members(
        checkpoint,
        data,
        inits,
        [24.0, 30.0, 48.0],
        300,
        sampler=EulerSampler(nfe=1),
        model=stub,
        progress=False,
    )
    # the history (-6 h, 0) makes 6 h the rollout step: 24 h direct, 30 h = 6 + 24 h,
    # 48 h = 4 x 6 + 24 h, the four 6 h steps shared by the trajectory
    assert sorted(stub.leads_seen) == [6.0] * 4 + [24.0] * 3
    z = (members - 280.0) / 2.0
    for i, k in enumerate((4, 5, 8)):
        assert z[0, :, i].std(axis=0, ddof=1).mean() == pytest.approx(
            np.sqrt(1 - RHO ** (2 * k)), rel=0.06
        )


def test_each_step_sees_the_insolation_of_its_own_start_and_valid_time():
    """30 h = 6 h step + 24 h direct: the second 24 h draw starts 6 h after the first, and
    every member of an initial time sees that time's solar forcing."""
    store = ar1_store()
    checkpoint = ar1_checkpoint(store, leads=(1, 4), solar_forcing=True)
    stub = stub_for(checkpoint)
    inits = pd.DatetimeIndex(["2019-03-02T00", "2019-03-02T06"])
    kwargs = {"sampler": EulerSampler(nfe=1), "model": stub, "progress": False}
    forecast_members(
        checkpoint, ForecastData.from_store(checkpoint, store), inits, [24.0, 30.0], 3, **kwargs
    )
    assert stub.leads_seen == [24.0, 6.0, 24.0]
    lat, lon = store.dataset.latitude.values, store.dataset.longitude.values
    for static, start, lead in zip(stub.static_seen, (0, 0, 6), stub.leads_seen, strict=True):
        assert static.shape == (2 * 3, 4 + 3, 6, 8)
        now = inits + pd.Timedelta(hours=start)
        for channel, times in ((4, now), (5, now + pd.Timedelta(hours=lead))):
            expected = np.repeat(toa_insolation(times, lat, lon), 3, axis=0)
            np.testing.assert_allclose(static[:, channel].numpy(), expected, atol=1e-6)


def test_same_seed_same_members_other_seed_other_members():
    store = ar1_store()
    checkpoint = ar1_checkpoint(store, leads=(1,))
    data = ForecastData.from_store(checkpoint, store)
    inits = pd.date_range("2019-03-02", periods=3, freq="6h")

    def run(seed: int, batch_members: int = 512, inits: pd.DatetimeIndex = inits) -> np.ndarray:
        return forecast_members(
            checkpoint,
            data,
            inits,
            [6.0, 12.0],
            4,
            sampler=EulerSampler(nfe=1),
            seed=seed,
            model=stub_for(checkpoint),
            batch_members=batch_members,
            progress=False,
        )

    np.testing.assert_array_equal(run(0), run(0))
    assert not np.allclose(run(0), run(1))
    # members are drawn per initial time: one time per batch, or a time alone, changes none
    np.testing.assert_array_equal(run(0, batch_members=4), run(0))
    np.testing.assert_array_equal(run(0, inits=inits[1:2])[0], run(0)[1])
    # members differ from each other, and trajectories from each other
    assert np.all(run(0).std(axis=1) > 0)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("forecast")
    store = two_step_run(root, n_times=80)
    other = ingest(
        "synthetic:n_lat=12,n_lon=16,n_times=20,step=6h,seed=2",
        root / "other.zarr",
        variables=["t2m"],
        progress=False,
    )
    return root, store, other


def test_initial_times_that_do_not_fit_together_are_drawn_fewer_at_a_time(
    trained, monkeypatch, caplog
):
    # A spread calibration after training draws 32 initial times x 16 members by default: it
    # was killed for memory once the network's activations were counted.
    root, store, _ = trained
    checkpoint = load_checkpoint(root / "run")
    data = ForecastData.from_store(checkpoint, store)
    inits = pd.date_range("2000-01-02", periods=4, freq="6h")
    sizes = []
    fitted = generators.rollout.fitted_inits
    monkeypatch.setattr(
        generators.rollout,
        "fitted_inits",
        lambda size, dev: sizes.append(size) or fitted(size, dev),
    )

    def run(batch_members: int) -> tuple[list[int], np.ndarray]:
        batches = list(
            iter_forecast(
                checkpoint,
                data,
                inits,
                [6.0, 12.0],
                2,
                sampler=EulerSampler(nfe=2),
                device="cpu",
                batch_members=batch_members,
                progress=False,
            )
        )
        return [len(b) for b, _ in batches], np.concatenate([m for _, m in batches])

    one_at_a_time = run(2)[1]
    lengths, members = run(8)
    assert lengths == [4]
    np.testing.assert_array_equal(members, one_at_a_time)
    # each trajectory counts the network's activations beside its arrays
    network = forward_bytes(checkpoint.kind, checkpoint.model_config, (16, 16))
    size = sizes[0]
    arrays = sum(dataclasses.replace(size, network=0).bytes_per_trajectory())
    assert size.network == network > 0
    assert sum(size.bytes_per_trajectory()) == arrays + network
    # room for 5 trajectories: 4 initial times x 2 members are drawn 2 x 2 at a time
    free = 5 * sum(size.bytes_per_trajectory())
    monkeypatch.setattr(generators.rollout, "available_memory", lambda device: (0, free))
    with caplog.at_level(logging.INFO, logger="generators.rollout"):
        lengths, members = run(8)
    assert lengths == [2, 2]
    np.testing.assert_array_equal(members, one_at_a_time)
    assert "4 initial times x 2 members need about" in caplog.text
    assert "2 initial times at a time" in caplog.text
    # room for 1: one initial time's 2 members do not fit
    free = sum(size.bytes_per_trajectory())
    with pytest.raises(InputError, match="1 initial time x 2 members .* lower --members to 1"):
        run(8)


@pytest.mark.gpu
def test_cuda_compiled_bf16_forecast_matches_the_cpu(trained):
    # The CUDA path of the product: bf16 autocast + torch.compile, noise from the CPU
    # generator, a 24 h rollout of 6 h steps; members within bf16 tolerance of fp32 CPU.
    root, store, _ = trained
    checkpoint = load_checkpoint(root / "run")
    data = ForecastData.from_store(checkpoint, store)
    inits = pd.DatetimeIndex(["2000-01-02T00", "2000-01-02T06"])

    def run(device: str, compile: bool) -> np.ndarray:
        return forecast_members(
            checkpoint,
            data,
            inits,
            [6.0, 24.0],
            8,
            sampler=EulerSampler(nfe=4),
            device=device,
            compile=compile,
            progress=False,
        )

    cpu = run("cpu", False)
    np.testing.assert_allclose(run("cuda", True), cpu, rtol=0, atol=0.05)
    np.testing.assert_allclose(run("cuda", False), cpu, rtol=0, atol=0.05)


def test_the_forecast_command_appends_and_overwrites(trained, capsys):
    root, store, _ = trained
    out = root / "f.zarr"
    base = [
        "forecast",
        "--checkpoint",
        str(root / "run"),
        "--store",
        str(store.path),
        "--members",
        "3",
        "--out",
        str(out),
        "--no-progress",
    ]
    assert (
        wxens(
            base
            + [
                "--init",
                "2000-01-02T00/2000-01-02T12/6h",
                "--lead",
                "12h",
                "--sampler",
                "euler:nfe=2",
            ]
        )
        == 0
    )
    first = open_forecast(out).t2m.load()
    assert first.dims == ("init_time", "member", "lead_time", "latitude", "longitude")
    assert first.sizes == {
        "init_time": 3,
        "member": 3,
        "lead_time": 2,
        "latitude": 16,
        "longitude": 16,
    }
    assert (
        wxens(
            base
            + [
                "--init",
                "2000-01-02T12",
                "2000-01-03T00",
                "--lead",
                "12h",
                "--sampler",
                "euler:nfe=2",
                "--seed",
                "0",
            ]
        )
        == 0
    )
    again = open_forecast(out)
    assert again.sizes["init_time"] == 4
    xr.testing.assert_equal(
        again.t2m.isel(init_time=slice(0, 2)).load(), first.isel(init_time=slice(0, 2))
    )
    attrs = again.attrs
    assert (
        attrs["wxens_generator"] == "flow_matching"
        and attrs["wxens_nfe"] == 2
        and attrs["wxens_seed"] == 0
    )
    assert len(attrs["wxens_checkpoint_digest"]) == 16
    assert "uncalibrated" in capsys.readouterr().out
    # which analyses the members start from, for a reader of the store alone
    assert attrs["wxens_analysis_store"] == str(Path(store.path).resolve())
    assert wxens(["info", str(out)]) == 0
    assert f"analysis   {Path(store.path).resolve()}" in capsys.readouterr().out


def test_a_forecast_rerun_skips_complete_initial_times(trained, capsys):
    root, store, _ = trained
    out = root / "rerun.zarr"
    command = [
        "forecast",
        *("--checkpoint", str(root / "run"), "--store", str(store.path), "--members", "2"),
        *("--init", "2000-01-02T00/2000-01-02T06/6h", "--lead", "6h", "--sampler", "euler:nfe=2"),
        *("--out", str(out), "--no-progress"),
    ]
    assert wxens(command) == 0
    first, made = open_forecast(out).load(), len(commits(out))
    capsys.readouterr()
    assert wxens(command) == 0
    assert "0 initial times" in capsys.readouterr().out
    assert len(commits(out)) == made, "nothing drawn, nothing committed"
    assert wxens([*command, "--recompute"]) == 0
    assert len(commits(out)) == made + 1
    xr.testing.assert_identical(open_forecast(out).load(), first)  # same seed, same members


def test_the_forecast_command_explains_bad_requests(trained, capsys):
    root, store, other = trained
    base = [
        "forecast",
        "--checkpoint",
        str(root / "run"),
        "--members",
        "2",
        "--out",
        str(root / "g.zarr"),
        "--no-progress",
    ]
    assert wxens(base + ["--store", str(other.path), "--init", "2000-01-02", "--lead", "6h"]) == 2
    assert "12 x 16 grid" in capsys.readouterr().err
    assert (
        wxens(base + ["--store", str(store.path), "--init", "2000-01-01T00", "--lead", "6h"]) == 2
    )
    assert "lack the states" in capsys.readouterr().err
    # an initial time between the store's times is named as off its step, not as lacking history
    assert (
        wxens(base + ["--store", str(store.path), "--init", "2000-01-02T03", "--lead", "6h"]) == 2
    )
    err = capsys.readouterr().err
    assert "2000-01-02T03:00 are not on the store's 6 h step" in err
    assert re.search(r"its times run 2000-01-01T00:00 to \d{4}-\d\d-\d\dT\d\d:\d\d\)", err), err
    assert wxens(base + ["--store", str(store.path), "--init", "2000-01-02", "--lead", "9h"]) == 2
    assert "9 h not whole steps of the store's 6 h" in capsys.readouterr().err
    assert (
        wxens(
            base
            + [
                "--store",
                str(store.path),
                "--init",
                "2000-01-02",
                "--lead",
                "6h",
                "--sampler",
                "edm_heun",
            ]
        )
        == 2
    )
    assert "cannot sample" in capsys.readouterr().err


def test_variability_scaling_multiplies_each_step_by_its_history_scale():
    """With a reference variability a quarter of the initial window's, s = 2: the first
    step moves every member twice as far as without scaling (same seed, same noise)."""
    store = ar1_store()
    plain = ar1_checkpoint(store, leads=(1,))
    data = ForecastData.from_store(plain, store)
    inits = pd.DatetimeIndex(["2019-03-02T00", "2019-03-02T06"])
    window = data.windows(inits, plan_rollout([6.0], plain.leads_hours, data.history_hours))
    reference = (
        recent_variability(window, plain.spec.history).numpy() / 4.0
    )  # (B, C) -> s = 2 per init
    for init, ref in zip(inits, reference, strict=True):
        norm = dataclasses.replace(plain.normalization, variability=ref.astype(np.float64))
        spec = SampleSpec(history=(-1, 0), leads=(1,), variability_scaling=True)
        scaled = plain.replace(normalization=norm, spec=spec)
        kwargs = {"sampler": EulerSampler(nfe=1), "progress": False}
        a = forecast_members(plain, data, [init], [6.0], 8, model=stub_for(plain), **kwargs)
        b = forecast_members(
            scaled,
            ForecastData.from_store(scaled, store),
            [init],
            [6.0],
            8,
            model=stub_for(plain),
            **kwargs,
        )
        start = store.dataset.t2m.sel(time=init).values
        np.testing.assert_allclose(b - start, 2.0 * (a - start), atol=2e-4)  # float32 K


def test_a_per_grid_point_tendency_std_scales_each_points_step():
    """Doubling the tendency std on the eastern half of the grid doubles every member's
    first step there and leaves the west alone (same seed, same residuals)."""
    store = ar1_store()
    plain = ar1_checkpoint(store, leads=(1,))
    norm = plain.normalization
    per_point = np.broadcast_to(norm.tendency_std[:, :, None, None], (1, 1, 6, 8)).copy()
    per_point[..., 4:] *= 2.0
    spec = SampleSpec(history=(-1, 0), leads=(1,), tendency_per_grid_point=True)
    pointwise = plain.replace(
        normalization=dataclasses.replace(norm, tendency_std=per_point), spec=spec
    )
    init = pd.DatetimeIndex(["2019-03-02T00"])
    kwargs = {"sampler": EulerSampler(nfe=1), "progress": False, "model": stub_for(plain)}
    a = forecast_members(plain, ForecastData.from_store(plain, store), init, [6.0], 8, **kwargs)
    b = forecast_members(
        pointwise, ForecastData.from_store(pointwise, store), init, [6.0], 8, **kwargs
    )
    start = store.dataset.t2m.sel(time=init[0]).values
    np.testing.assert_allclose((b - start)[..., :4], (a - start)[..., :4], atol=2e-4)
    np.testing.assert_allclose((b - start)[..., 4:], 2.0 * (a - start)[..., 4:], atol=2e-4)


@pytest.mark.parametrize(("members", "batch_members"), [(0, 512), (50, 0)])
def test_an_empty_ensemble_or_batch_is_refused_naming_both(members, batch_members):
    with pytest.raises(InputError, match=rf"members \({members}\) and batch_members"):
        check_ensemble_size(members, batch_members)


def test_an_initial_time_without_its_history_is_told_which_states_are_absent(trained, capsys):
    """The store's first time lacks only the state 6 h before it (history 2): the error
    names that time, not the whole window as if every state of it were missing, and the
    earliest initial time with its whole window."""
    root, store, _ = trained
    command = ["forecast", "--checkpoint", str(root / "run"), "--store", str(store.path)]
    command += ["--init", "2000-01-01T00", "--lead", "6h", "--out", str(root / "absent.zarr")]
    assert wxens([*command, "--members", "2", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "2000-01-01T00:00 lack the states at 1999-12-31T18:00 of" in err, err
    # and which initial time is the first that works, not only which do not
    assert "the earliest initial time with its whole window is 2000-01-01T06:00;" in err, err


def test_a_rerun_says_the_initial_times_it_kept(trained, capsys):
    """A forecast of initial times the store holds printed "0 initial time(s) x 2 members"
    as its summary, as if nothing had been asked."""
    root, store, _ = trained
    command = ["forecast", "--checkpoint", str(root / "run"), "--store", str(store.path)]
    command += ["--init", "2000-01-02T00", "--lead", "6h", "--out", str(root / "kept.zarr")]
    command += ["--members", "2", "--no-progress"]
    assert wxens(command) == 0
    assert "already in the store" not in capsys.readouterr().out
    assert wxens(command) == 0
    out = capsys.readouterr().out
    assert "0 initial times x 2 members" in out and "; 1 already in the store, kept" in out


def test_non_finite_members_are_refused_naming_the_sampler(trained, capsys):
    # Was a FloatingPointError with a traceback, naming no sampler and no fix.
    root, store, _ = trained
    argv = ["forecast", "--checkpoint", str(root / "run"), "--store", str(store.path)]
    argv += ["--init", "2000-01-02", "--lead", "6h", "--members", "2", "--no-progress"]
    argv += ["--out", str(root / "diverged.zarr"), "--sampler", "euler:nfe=1,noise_scale=1e300"]
    assert wxens(argv) == 2
    err = capsys.readouterr().err
    assert "non-finite" in err and "euler:nfe=1,noise_scale=1e+300" in err
    assert "Traceback" not in err and not (root / "diverged.zarr").exists()
