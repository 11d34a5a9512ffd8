"""Ensemble forecasts: direct lead-conditioned steps and autoregressive rollout, each member
carrying its own trajectory; initial times and members batched together on the device.

The plan (which steps reach which lead) is :func:`generators.rollout_plan.plan_rollout`'s;
this module follows it (:func:`iter_forecast`). The window of recent states (normalised) of
every member lives on the device as one (B*M, W, C, H, W) tensor; each step draws one
residual per trajectory, ``z' = z + residual * tendency_std(lead) / std``, and shifts the
window. On CUDA the network runs under bfloat16 autocast and ``torch.compile`` (the first
batch pays the compilation). Noise comes from one CPU ``torch.Generator`` per initial time,
seeded from ``(seed, initial time)`` (:func:`init_seed`, drawn through
:class:`~generators.samplers.BlockGenerators`): the members of an initial time depend on
the seed and that time only, not on the batch it shares or the device (up to floating
point), so forecasts split over processes draw what one process draws. A spread
calibration stored in the checkpoint is applied to the output leads (never fed back into
the trajectory). With
``balance``, every drawn state is made hypsometric and geostrophic
(:class:`~generators.balance.UpperAirBalance`) before it is output or fed back.
A masked field (NaN over part of the grid) stays NaN where the initial state is: the network
sees it filled (:func:`~generators.data.fields.masked_condition`) and each step adds the
drawn residual to the state, NaN there.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from generators.balance import UpperAirBalance
from generators.base import Condition
from generators.checkpoint import Checkpoint
from generators.config import sampler_spec
from generators.correction.spread import SpreadCalibration
from generators.data import calendar_features
from generators.data.fields import masked_condition
from generators.data.forecast import ForecastData
from generators.device import autocast, available_memory, resolve_device
from generators.forecast_model import forecast_network, prepared
from generators.rollout_plan import RolloutPlan, check_ensemble_size, plan_rollout, same_hours
from generators.sampler_choice import default_sampler
from generators.samplers import BlockGenerators, Sampler
from pipeline.errors import InputError, counted, time_text
from pipeline.forecast_claims import in_turn
from pipeline.progress import tqdm
from pipeline.timeaxis import hours_text

log = logging.getLogger(__name__)


def inits_per_batch(n_members: int, batch_members: int) -> int:
    """Initial times drawn together when ``batch_members`` bounds initial times x members
    (at least one)."""
    return max(1, batch_members // n_members)


def init_seed(seed: int, init: pd.Timestamp) -> int:
    """A generator seed from the run seed and one initial time (its Unix seconds)."""
    entropy = [seed, int(init.value // 10**9) % 2**32]
    return int(np.random.SeedSequence(entropy).generate_state(1, dtype=np.uint64)[0] % 2**63)


def init_generators(seed: int, inits: pd.DatetimeIndex) -> BlockGenerators:
    """One CPU generator per initial time (:func:`init_seed`), each drawing the rows of its
    time's members in a batch of ``inits`` x members (initial-time major)."""
    return BlockGenerators([torch.Generator().manual_seed(init_seed(seed, t)) for t in inits])


@dataclass(frozen=True, eq=False)
class RolloutRun:
    """What stays fixed over the batches of one forecast: the network, its sampler and
    precision, the plan, the members per initial time, the fields known in advance of each
    step (``known_fields(times, leads_hours)``, (B, S, H, W)), the indices of the masked
    channels (:func:`~generators.data.fields.masked_condition`), the factors turning a
    residual drawn at a lead into a normalised-state increment, and the residual scale
    ``s = residual_scale(history)`` (B*M, C) of the model's variability scaling."""

    model: torch.nn.Module
    plan: RolloutPlan
    sampler: Sampler
    n_members: int
    known_fields: Callable[[pd.DatetimeIndex, np.ndarray], torch.Tensor]
    masked_index: torch.Tensor
    factors: dict[float, torch.Tensor]
    residual_scale: Callable[[torch.Tensor], torch.Tensor]
    device: torch.device
    bf16: bool
    constrain: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def iter_forecast(
    checkpoint: Checkpoint,
    data: ForecastData,
    inits: Sequence[pd.Timestamp] | pd.DatetimeIndex,
    leads_hours: Sequence[float],
    n_members: int,
    *,
    sampler: Sampler | None = None,
    seed: int = 0,
    device: str = "auto",
    bf16: bool = True,
    compile: bool = True,
    calibration: SpreadCalibration | None = None,
    batch_members: int = 512,
    progress: bool = True,
    model: torch.nn.Module | None = None,
    balance: bool = False,
    pending: Callable[[pd.DatetimeIndex], pd.DatetimeIndex | None] | None = None,
) -> Iterator[tuple[pd.DatetimeIndex, np.ndarray]]:
    """Yield ``(initial times, members)`` batch by batch; members (B, M, L, C, H, W) float32
    in physical units, L the output leads in the order asked. ``batch_members`` bounds
    B * M per batch (at least one initial time per batch), fewer where they would not fit
    in memory (:func:`fitted_inits`). ``model`` defaults to the checkpoint's EMA model, built
    once in this process (:func:`~generators.forecast_model.forecast_network`); any
    generator with a ``backbone`` may be given. ``bf16`` and ``compile`` act on CUDA
    only (on a CPU both made the small models slower). ``balance``:
    project every step's upper air onto hypsometric and geostrophic balance
    (:func:`balance_constraint`). ``pending(batch)``: those of a batch's initial times
    still to draw, asked just before it is drawn (a forecast into a store drops those
    another run wrote meanwhile), or None to ask again after the other batches (another run
    draws it now; None at most once a batch); the others keep their members, their noise
    being their own."""
    check_ensemble_size(n_members, batch_members)
    inits = pd.DatetimeIndex(inits)
    plan = plan_rollout(leads_hours, checkpoint.leads_hours, data.history_hours)
    dev = resolve_device(device)
    per_batch = min(inits_per_batch(n_members, batch_members), max(1, len(inits)))
    network = checkpoint.forward_bytes(data.dataset.grid_shape)
    per_batch = fitted_inits(BatchSize(per_batch, n_members, plan, data, network), dev)
    if model is None:  # built and compiled once in this process (a task a batch)
        model = forecast_network(checkpoint, dev, compile)
    else:
        model = prepared(model, dev, compile)
    sampler = sampler or default_sampler(checkpoint, model)
    if hasattr(model, "check_sampler"):  # before the forecast is logged as under way
        model.check_sampler(sampler)
    if calibration is not None:
        calibration.check_sampler(sampler_spec(sampler))
        calibration.check_balance(balance)
        calibration.note_unfitted(leads_hours)
    norm = checkpoint.normalization
    factors = {
        h: torch.from_numpy(norm.residual_to_state(h)).to(dev) for h in checkpoint.leads_hours
    }
    run = RolloutRun(
        model,
        plan,
        sampler,
        n_members,
        data.known_fields,
        data.masked_index.to(dev),
        factors,
        functools.partial(norm.variability_scale, offsets=checkpoint.spec.history),
        dev,
        bf16,
        balance_constraint(checkpoint, dev) if balance else _unchanged,
    )
    log.info(
        "forecast: %s x %s, leads %s h, %s (NFE %d), %d network steps per member",
        counted(len(inits), "initial time"),
        counted(n_members, "member"),
        hours_text(leads_hours),
        sampler.name,
        sampler.nfe,
        plan.network_steps,
    )
    bar = tqdm(
        total=len(inits) * plan.network_steps,
        disable=not progress,
        desc="forecast",
        unit="init-step",
    )
    with bar:
        for whole, to_draw in in_turn(inits, per_batch, pending or (lambda batch: batch)):
            batch = whole[whole.isin(to_draw)]
            bar.update((len(whole) - len(batch)) * plan.network_steps)
            if batch.empty:
                continue
            window = data.windows(batch, plan).to(dev).repeat_interleave(n_members, dim=0)
            generator = init_generators(seed, batch)
            outputs = _run_plan(
                run, window, batch, generator, functools.partial(bar.update, len(batch))
            )
            states = data.denormalise(outputs.cpu().numpy())
            members = torch.from_numpy(states.reshape(len(batch), n_members, *states.shape[1:]))
            if calibration is not None:
                for i, lead in enumerate(plan.leads_hours):
                    members[:, :, i] = torch.from_numpy(
                        calibration.apply(members[:, :, i].numpy(), lead)
                    )
            yield batch, members.numpy().astype(np.float32)


@dataclass(frozen=True)
class BatchSize:
    """The memory one batch of a forecast holds: ``inits`` initial times x ``members``
    trajectories, each keeping the plan's window of states and its output leads, on the
    grid and channels (and known fields) of ``data``, and running the network, whose
    no-grad evaluation holds at its peak ``network`` bytes a trajectory (counted with a
    margin by :func:`~generators.step_memory.forward_bytes`)."""

    inits: int
    members: int
    plan: RolloutPlan
    data: ForecastData
    network: int

    @property
    def trajectories(self) -> int:
        return self.inits * self.members

    def bytes_per_trajectory(self) -> tuple[int, int]:
        """(device, host) bytes of one trajectory, float32. On the device: the network's
        activations (``network``, their counted peak), the window (twice while a rollout
        shifts it), the outputs, the model's history and known fields, and four states of the
        sampler's work (noise, velocity, residual, next state). On the host: the outputs
        copied back, denormalised and cast (three copies)."""
        d = self.data.dataset
        height, width = d.grid_shape
        state = len(d.channels) * height * width * 4
        known = len(d.static_names) * height * width * 4
        window, outputs = len(self.plan.window_hours), len(self.plan.legs)
        history = len(self.plan.history_index)
        windows = 2 if self.plan.rollout_steps else 1
        device = state * (windows * window + outputs + history + 4) + known + self.network
        return device, 3 * outputs * state


def fitted_inits(size: BatchSize, device: torch.device) -> int:
    """The initial times a forecast draws together, before anything is drawn: ``size.inits``
    when their trajectories (:meth:`BatchSize.bytes_per_trajectory`) fit in the memory
    available now (:func:`available_memory`), else the most that fit, logged (a spread
    calibration at the end of training draws 512 trajectories by default). An
    :class:`InputError` with the estimate and the fix when one initial time's members do
    not fit: fewer members or more memory."""
    on_device, on_host = size.bytes_per_trajectory()
    free_device, free_host = available_memory(device)
    if device.type == "cuda":
        limits = [(on_device, free_device, f"{device}"), (on_host, free_host, "the host")]
    else:  # the device's arrays live in host memory too
        limits = [(on_device + on_host, free_host, f"{device} (host memory)")]
    per_trajectory, free, where = min(limits, key=lambda limit: limit[1] // limit[0])
    fits = free // per_trajectory
    if fits >= size.trajectories:
        return size.inits
    if fits >= size.members:
        log.info(
            "forecast: %s x %s need about %s on %s but %s is available: %s at a time",
            counted(size.inits, "initial time"),
            counted(size.members, "member"),
            _gib(per_trajectory * size.trajectories),
            where,
            _gib(free),
            counted(fits // size.members, "initial time"),
        )
        return fits // size.members
    if fits >= 1:
        fix = f"lower --members to {fits} or less, or use a device with more memory"
    else:
        fix = "use a device with more memory, or a coarser grid"
    raise InputError(
        f"a forecast batch of 1 initial time x {counted(size.members, 'member')} needs "
        f"about {_gib(per_trajectory * size.members)} on {where} but {_gib(free)} is "
        f"available; {fix}"
    )


def _gib(n: int) -> str:
    return f"{n / 2**30:,.1f} GiB"


def _run_plan(
    run: RolloutRun,
    window: torch.Tensor,
    inits: pd.DatetimeIndex,
    generator: BlockGenerators,
    tick: Callable[[], object],
) -> torch.Tensor:
    """Follow ``run.plan`` for every trajectory of the windows (B*M, W, C, H, W) of
    ``inits`` (B,); returns (B*M, L, C, H, W) normalised states. ``tick()`` after each
    network step.

    A residual r drawn at a lead l moves a state by ``r * tendency_std(l) / std * s``,
    ``s = run.residual_scale(history)`` (B*M, C) (1 unless the model was trained with
    variability scaling)."""
    plan, n_members, device = run.plan, run.n_members, run.device
    n = window.shape[0]
    outputs = torch.empty(
        (n, len(plan.legs), *window.shape[2:]), dtype=torch.float32, device=device
    )
    history_index = torch.tensor(plan.history_index, device=device)

    def draw(time_hours: float, lead: float) -> torch.Tensor:
        times = inits + pd.Timedelta(hours=time_hours)
        known = run.known_fields(times, np.full(len(times), lead)).to(device)
        history = window.index_select(1, history_index)
        filled, static = masked_condition(
            history, known.repeat_interleave(n_members, dim=0), run.masked_index
        )
        condition = Condition(
            history=filled,
            static=static,
            calendar=calendar_features(times.repeat(n_members)).to(device),
            lead=torch.full((n,), lead, dtype=torch.float32, device=device),
        )
        with autocast(device, run.bf16):
            residual = run.model.sample(condition, 1, sampler=run.sampler, generator=generator)[
                :, 0
            ]
        scale = run.residual_scale(history)[:, :, None, None]
        before = window[:, -1]
        state = run.constrain(
            before + residual.float() * _factor(run.factors, lead) * scale, before
        )
        if not (torch.isfinite(state) | torch.isnan(before)).all():
            raise InputError(
                f"the rollout diverged (non-finite states) at {time_hours + lead:g} h from "
                f"{time_text(inits[0])} with the sampler {sampler_spec(run.sampler)}: its noise "
                "(noise_scale, sigma_max, noise_inflation) is too large, or the model "
                "diverges; forecast with the checkpoint's own sampler (no sampler= (--sampler)) or "
                "less noise, or retrain the model"
            )
        tick()
        return state

    for k in range(plan.rollout_steps + 1):
        now = k * (plan.step_hours or 0.0)
        for i, leg in enumerate(plan.legs):
            if leg.rollout_steps == k:
                outputs[:, i] = draw(now, leg.direct_hours) if leg.direct_hours else window[:, -1]
        if k < plan.rollout_steps:
            window = torch.cat([window[:, 1:], draw(now, plan.step_hours)[:, None]], dim=1)
    return outputs


def balance_constraint(
    checkpoint: Checkpoint, device: torch.device
) -> Callable[[torch.Tensor], torch.Tensor]:
    """The :class:`~generators.balance.UpperAirBalance` of the checkpoint's channels and grid
    on normalised states ``(x - mean) / std``, weighted by the channels' tendency std at
    the first lead; InputError when the channels hold no z and t on two common levels."""
    norm = checkpoint.normalization
    factor = norm.residual_to_state(checkpoint.leads_hours[0])
    error_scale = np.nanmean(factor.reshape(len(norm.channels), -1), axis=1) * norm.std
    balance = UpperAirBalance(
        norm.channels, error_scale, checkpoint.latitude, checkpoint.longitude
    ).to(device)
    mean = torch.as_tensor(norm.mean, dtype=torch.float32, device=device)[:, None, None]
    std = torch.as_tensor(norm.std, dtype=torch.float32, device=device)[:, None, None]

    def constrain(state: torch.Tensor, before: torch.Tensor) -> torch.Tensor:
        return (balance(state * std + mean, before * std + mean) - mean) / std

    return constrain


def _unchanged(state: torch.Tensor, before: torch.Tensor) -> torch.Tensor:
    return state


def _factor(factors: dict[float, torch.Tensor], lead: float) -> torch.Tensor:
    return next(f for h, f in factors.items() if same_hours(h, lead))


def forecast_members(
    checkpoint: Checkpoint,
    data: ForecastData,
    inits: Sequence[pd.Timestamp] | pd.DatetimeIndex,
    leads_hours: Sequence[float],
    n_members: int,
    **kwargs: object,
) -> np.ndarray:
    """All members at once: (N, M, L, C, H, W) physical units (see :func:`iter_forecast`)."""
    return np.concatenate(
        [m for _, m in iter_forecast(checkpoint, data, inits, leads_hours, n_members, **kwargs)],
        axis=0,
    )
