"""Ensemble forecasts: direct lead-conditioned steps and autoregressive rollout, each member
carrying its own trajectory; initial times and members batched together on the device.

Plan (:func:`plan_rollout`). A model trained for leads ``L`` (hours) with history offsets
``O`` rolls out with the step ``r`` = the largest trained lead that divides every history
offset (so each step finds its history on the member's own trajectory). An output lead
``T`` is reached with the fewest network steps among:

- one direct step ``T`` from the initial state, when ``T`` is a trained lead;
- ``k`` rollout steps of ``r`` (``T = k r``);
- ``k`` rollout steps then one direct step ``d`` (``T = k r + d``, ``d`` trained).

The trajectory is shared by all output leads of a member: a 10-day hourly rollout is one
trajectory per member, read at every requested lead.

Execution (:func:`forecast_members`): the window of recent states (normalised) of every
member lives on the device as one (B*M, W, C, H, W) tensor; each step draws one residual
per trajectory, ``z' = z + residual * tendency_std(lead) / std``, and shifts the window.
On CUDA the network runs under bfloat16 autocast and ``torch.compile`` (3.2-3.3x fp32 eager
for the 25.7 M-parameter U-Net on an H100, ``benchmarks/sampling.py``; compiling takes
about 30 s). Noise comes from a CPU ``torch.Generator`` seeded from
``(seed, initial times of the batch)``: the same seed, initial times and batch size give
the same members on any device (up to floating point). A spread calibration stored in
the checkpoint is applied to the output leads (never fed back into the trajectory).
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
import xarray as xr
from tqdm.auto import tqdm

from generators.base import Condition
from generators.calibration import SpreadCalibration
from generators.checkpoint import Checkpoint, load_checkpoint
from generators.config import parse_sampler, sampler_spec
from generators.device import autocast, resolve_device
from generators.samplers import Sampler
from pipeline.datasets import ResidualDataset, calendar_features
from pipeline.errors import InputError
from pipeline.forecast_store import ForecastProvenance, write_forecast
from pipeline.schema import CHANNEL, INIT_TIME, LAT, LEAD_TIME, LON, MEMBER, from_channels

log = logging.getLogger(__name__)

TOLERANCE_HOURS = 1e-6


def _close(a: float, b: float) -> bool:
    return abs(a - b) < TOLERANCE_HOURS


def _multiple(value: float, step: float) -> bool:
    return _close(value / step, round(value / step))


@dataclass(frozen=True)
class Leg:
    """How one output lead is reached: ``rollout_steps`` steps of the rollout step, then one
    direct step of ``direct_hours`` (0: none)."""

    rollout_steps: int
    direct_hours: float

    @property
    def network_steps(self) -> int:
        return self.rollout_steps + (1 if self.direct_hours else 0)


@dataclass(frozen=True)
class RolloutPlan:
    """step_hours: the autoregressive step (None: direct steps only); window_hours: the
    offsets of the states each trajectory keeps (oldest first, ending at 0);
    history_index: positions of the model's history offsets in that window; legs: one
    :class:`Leg` per output lead, in the order asked."""

    step_hours: float | None
    window_hours: tuple[float, ...]
    history_index: tuple[int, ...]
    leads_hours: tuple[float, ...]
    legs: tuple[Leg, ...]

    @property
    def rollout_steps(self) -> int:
        return max(leg.rollout_steps for leg in self.legs)

    @property
    def network_steps(self) -> int:
        """Network steps per trajectory: the rollout plus every direct leg."""
        return self.rollout_steps + sum(1 for leg in self.legs if leg.direct_hours)


def plan_rollout(
    leads_hours: Sequence[float], trained_hours: Sequence[float], history_hours: Sequence[float]
) -> RolloutPlan:
    """The cheapest way to every output lead (module docstring); InputError if a lead is
    unreachable."""
    step = next(
        (
            lead
            for lead in sorted(trained_hours, reverse=True)
            if all(_multiple(h, lead) for h in history_hours)
        ),
        None,
    )
    legs = []
    for target in leads_hours:
        options = [Leg(0, t) for t in trained_hours if _close(t, target)]
        if step is not None:
            for k in range(1, int(math.floor(target / step + TOLERANCE_HOURS)) + 1):
                rest = target - k * step
                if _close(rest, 0.0):
                    options.append(Leg(k, 0.0))
                options.extend(Leg(k, t) for t in trained_hours if _close(rest, t))
        if target <= 0 or not options:
            raise InputError(
                f"lead {target:g} h cannot be reached: the model was trained for leads "
                f"{[f'{h:g}' for h in trained_hours]} h with history offsets "
                f"{[f'{h:g}' for h in history_hours]} h, so it steps "
                + (
                    f"by {step:g} h"
                    if step
                    else "directly only (no trained lead divides the history offsets)"
                )
                + "; ask for a trained lead or a sum of rollout steps and one trained lead"
            )
        # ties: stay on the trajectory (k+1 rollout steps beat k steps and a direct one)
        legs.append(min(options, key=lambda leg: (leg.network_steps, bool(leg.direct_hours))))
    if step is None:
        window = tuple(float(h) for h in history_hours)
    else:
        first = round(min(history_hours) / step)
        window = tuple(float(j * step) for j in range(first, 1))
    index = tuple(next(i for i, w in enumerate(window) if _close(w, h)) for h in history_hours)
    return RolloutPlan(step, window, index, tuple(float(h) for h in leads_hours), tuple(legs))


class ForecastData:
    """A store read for a checkpoint: its grid, channels and normalisation checked, initial
    windows and truths by time."""

    def __init__(self, checkpoint: Checkpoint, dataset: ResidualDataset):
        checkpoint.check_matches(dataset)
        self.checkpoint = checkpoint
        self.dataset = dataset
        hours = checkpoint.native_step / pd.Timedelta(hours=1)
        self.history_hours = tuple(o * hours for o in checkpoint.spec.history)

    @classmethod
    def from_store(cls, checkpoint: Checkpoint, store: object) -> ForecastData:
        from pipeline.store import AnalysisStore, open_store

        store = store if isinstance(store, AnalysisStore) else open_store(store)
        dataset = ResidualDataset.from_store(
            store,
            checkpoint.spec,
            channels=checkpoint.channels,
            normalization=checkpoint.normalization,
            max_memory_bytes=checkpoint.train_config.data.max_memory_bytes,
            with_targets=False,
        )
        return cls(checkpoint, dataset)

    def _native(self, hours: Sequence[float]) -> tuple[int, ...]:
        step = self.dataset.native_step / pd.Timedelta(hours=1)
        return tuple(int(round(h / step)) for h in hours)

    def _lookup(self, inits: pd.DatetimeIndex, hours: Sequence[float]) -> np.ndarray:
        positions = self.dataset.times.get_indexer(inits)
        found = np.full((len(inits), len(hours)), -1, dtype=np.int64)
        ok = positions >= 0
        if ok.any():
            found[ok] = self.dataset.positions(positions[ok], self._native(hours))
        return found

    def windows(self, inits: pd.DatetimeIndex, plan: RolloutPlan) -> torch.Tensor:
        """(B, W, C, H, W) normalised states of the plan's window before each initial time."""
        found = self._lookup(inits, plan.window_hours)
        missing = (found < 0).any(axis=1)
        if missing.any():
            d = self.dataset
            raise InputError(
                f"{d.name}: initial time(s) {[str(t) for t in inits[missing]]} lack the states "
                f"{[f'{h:g}' for h in plan.window_hours]} h before them (store covers {d.times[0]} "
                f"to {d.times[-1]}, missing times excluded); choose other initial times"
            )
        return torch.from_numpy(self.dataset.states(found))

    def usable_inits(
        self, inits: pd.DatetimeIndex, leads_hours: Sequence[float]
    ) -> pd.DatetimeIndex:
        """The initial times with a full window and a truth at every lead (for scoring)."""
        checkpoint = self.checkpoint
        plan = plan_rollout(leads_hours, checkpoint.leads_hours, self.history_hours)
        ok = (self._lookup(inits, (*plan.window_hours, *leads_hours)) >= 0).all(axis=1)
        if not ok.any():
            raise InputError(
                f"no initial time among {len(inits)} has its history and a truth at leads "
                f"{list(leads_hours)} h in {self.dataset.name}"
            )
        if not ok.all():
            log.info(
                "%d of %d initial times lack history or truth and are skipped",
                (~ok).sum(),
                len(inits),
            )
        return inits[ok]

    def truth(self, inits: pd.DatetimeIndex, lead_hours: float) -> np.ndarray:
        """(N, C, H, W) truth in physical units at ``init + lead``."""
        found = self._lookup(inits, (lead_hours,))[:, 0]
        if (found < 0).any():
            raise InputError(
                f"no truth at lead {lead_hours:g} h for {[str(t) for t in inits[found < 0]]}"
            )
        return self.dataset.denormalise(self.dataset.states(found))


def default_sampler(checkpoint: Checkpoint, model: object) -> Sampler:
    """The sampler a checkpoint forecasts with by default: the one its spread calibration
    was fitted with (the factors hold for it only); else its config's ``sampler`` when set;
    else the short sampler of its fair-CRPS fine-tune if it had one (those are the steps it
    was trained through); else the model's default."""
    if (checkpoint.calibration or {}).get("sampler"):
        return parse_sampler(checkpoint.calibration["sampler"])
    if checkpoint.train_config.sampler is not None:
        return parse_sampler(checkpoint.train_config.sampler)
    fine_tune = checkpoint.train_config.fine_tune
    if fine_tune is not None and fine_tune.crps_weight > 0:
        return model.crps_sampler
    return model.default_sampler()


def batch_seed(seed: int, inits: pd.DatetimeIndex) -> int:
    """A generator seed from the run seed and the batch's initial times."""
    entropy = [seed, *(int(t.value // 10**9) % 2**32 for t in inits)]
    return int(np.random.SeedSequence(entropy).generate_state(1, dtype=np.uint64)[0] % 2**63)


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
) -> Iterator[tuple[pd.DatetimeIndex, np.ndarray]]:
    """Yield ``(initial times, members)`` batch by batch; members (B, M, L, C, H, W) float32
    in physical units, L the output leads in the order asked. ``batch_members`` bounds
    B * M per batch (at least one initial time per batch). ``model`` defaults to the
    checkpoint's EMA model; any generator with a ``backbone`` may be given. ``bf16`` and
    ``compile`` act on CUDA only (on a CPU both made the small models slower)."""
    if n_members < 1:
        raise InputError(f"members must be at least 1, got {n_members}")
    inits = pd.DatetimeIndex(inits)
    plan = plan_rollout(leads_hours, checkpoint.leads_hours, data.history_hours)
    dev = resolve_device(device)
    model = checkpoint.build_model(device=dev) if model is None else model.to(dev).eval()
    if compile and dev.type == "cuda":
        model.backbone.compile(dynamic=False)  # compiled on the first batch
    sampler = sampler or default_sampler(checkpoint, model)
    if calibration is not None:
        calibration.check_sampler(sampler)
    norm = checkpoint.normalization
    factors = {
        h: torch.from_numpy(norm.residual_to_state(h)).to(dev) for h in checkpoint.leads_hours
    }
    per_batch = max(1, batch_members // n_members)
    log.info(
        "forecast: %d initial time(s) x %d members, leads %s h, %s (NFE %d), %d network steps per member",
        len(inits),
        n_members,
        [f"{h:g}" for h in leads_hours],
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
        for start in range(0, len(inits), per_batch):
            batch = inits[start : start + per_batch]
            window = data.windows(batch, plan).to(dev).repeat_interleave(n_members, dim=0)
            generator = torch.Generator().manual_seed(batch_seed(seed, batch))
            outputs = _run_plan(
                model,
                plan,
                window,
                batch,
                n_members,
                data.dataset.known_fields,
                factors,
                functools.partial(norm.variability_scale, offsets=checkpoint.spec.history),
                sampler,
                generator,
                dev,
                bf16,
                functools.partial(bar.update, len(batch)),
            )
            states = data.dataset.denormalise(outputs.cpu().numpy())
            members = torch.from_numpy(states.reshape(len(batch), n_members, *states.shape[1:]))
            if calibration is not None:
                for i, lead in enumerate(plan.leads_hours):
                    members[:, :, i] = calibration.apply(members[:, :, i], lead)
            yield batch, members.numpy().astype(np.float32)


def _run_plan(
    model: torch.nn.Module,
    plan: RolloutPlan,
    window: torch.Tensor,
    inits: pd.DatetimeIndex,
    n_members: int,
    known_fields: Callable[[pd.DatetimeIndex, np.ndarray], torch.Tensor],
    factors: dict[float, torch.Tensor],
    residual_scale: Callable[[torch.Tensor], torch.Tensor],
    sampler: Sampler,
    generator: torch.Generator,
    device: torch.device,
    bf16: bool,
    tick: object,
) -> torch.Tensor:
    """Follow ``plan`` for every trajectory; returns (B*M, L, C, H, W) normalised states.

    A residual r drawn at a lead l moves a state by ``r * tendency_std(l) / std * s``,
    ``s = residual_scale(history)`` (B*M, C) (1 unless the model was trained with
    variability scaling)."""
    n = window.shape[0]
    outputs = torch.empty(
        (n, len(plan.legs), *window.shape[2:]), dtype=torch.float32, device=device
    )
    history_index = torch.tensor(plan.history_index, device=device)

    def draw(time_hours: float, lead: float) -> torch.Tensor:
        times = inits + pd.Timedelta(hours=time_hours)
        known = known_fields(times, np.full(len(times), lead)).to(device)
        condition = Condition(
            history=window.index_select(1, history_index),
            static=known.repeat_interleave(n_members, dim=0),
            calendar=calendar_features(times.repeat(n_members)).to(device),
            lead=torch.full((n,), lead, dtype=torch.float32, device=device),
        )
        with autocast(device, bf16):
            residual = model.sample(condition, 1, sampler=sampler, generator=generator)[:, 0]
        scale = residual_scale(condition.history)[:, :, None, None]
        state = window[:, -1] + residual.float() * _factor(factors, lead) * scale
        if not torch.isfinite(state).all():
            raise FloatingPointError(
                f"the rollout diverged (non-finite states) at {time_hours + lead:g} h from {inits[0]}"
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


def _factor(factors: dict[float, torch.Tensor], lead: float) -> torch.Tensor:
    return next(f for h, f in factors.items() if _close(h, lead))


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


def to_dataset(
    data: ForecastData, inits: pd.DatetimeIndex, leads_hours: Sequence[float], members: np.ndarray
) -> xr.Dataset:
    """Members (B, M, L, C, H, W) as a canonical forecast dataset (dims ``init_time, member,
    lead_time, [level], latitude, longitude``)."""
    d = data.dataset
    da = xr.DataArray(
        members,
        dims=(INIT_TIME, MEMBER, LEAD_TIME, CHANNEL, LAT, LON),
        coords={
            INIT_TIME: pd.DatetimeIndex(inits),
            MEMBER: np.arange(members.shape[1]),
            LEAD_TIME: pd.to_timedelta(list(leads_hours), unit="h"),
            CHANNEL: list(d.channels),
            LAT: d.latitude,
            LON: d.longitude,
        },
    )
    return from_channels(da)


@dataclass(frozen=True)
class ForecastRun:
    """What :func:`forecast_to_store` wrote."""

    out: str
    init_times: tuple[pd.Timestamp, ...]
    leads_hours: tuple[float, ...]
    members: int
    provenance: ForecastProvenance
    calibration: SpreadCalibration | None


def forecast_to_store(
    checkpoint: str | Checkpoint,
    store: object,
    inits: Sequence[pd.Timestamp] | pd.DatetimeIndex,
    leads_hours: Sequence[float],
    n_members: int,
    out: str,
    *,
    sampler: Sampler | str | None = None,
    seed: int = 0,
    calibrate: bool = True,
    device: str = "auto",
    compile: bool = True,
    batch_members: int = 512,
    progress: bool = True,
) -> ForecastRun:
    """Forecast ``inits`` with a checkpoint (path or loaded) from the analysis ``store`` and
    write the members into the forecast store ``out``, one batch of initial times at a
    time (:func:`pipeline.forecast_store.write_forecast`: new initial times appended, reruns
    overwrite their own region).

    ``sampler``: a sampler, a spec such as ``"euler:nfe=10"``, or None for the checkpoint's
    default. ``calibrate``: apply the checkpoint's spread calibration when it has one; the
    calibration used (or ``{}``) goes into the store's provenance and is logged with its
    SSR before/after. ``compile``: ``torch.compile`` the network on CUDA (the first batch
    pays the compilation). Every input is checked before anything is written.
    """
    if n_members < 1:
        raise InputError(f"members must be at least 1, got {n_members}")
    loaded = checkpoint if isinstance(checkpoint, Checkpoint) else load_checkpoint(checkpoint)
    data = ForecastData.from_store(loaded, store)
    inits = pd.DatetimeIndex(inits)
    plan = plan_rollout(leads_hours, loaded.leads_hours, data.history_hours)
    data.windows(inits, plan)  # every initial time has its history: fail before writing
    model = loaded.build_model(device=resolve_device(device))
    chosen = (
        parse_sampler(sampler)
        if isinstance(sampler, str)
        else sampler or default_sampler(loaded, model)
    )
    calibration = None
    if loaded.calibration is not None and calibrate:
        calibration = SpreadCalibration.from_dict(loaded.calibration)
        log.info("applying the checkpoint's spread calibration:\n%s", calibration.report())
    elif loaded.calibration is not None:
        log.info("the checkpoint holds a spread calibration; it is left unused as asked")
    provenance = ForecastProvenance(
        generator=loaded.kind,
        checkpoint_digest=loaded.digest,
        sampler=sampler_spec(chosen),
        nfe=chosen.nfe,
        seed=seed,
        calibration=calibration.to_dict() if calibration else {},
    )
    written: list[pd.Timestamp] = []
    for batch, members in iter_forecast(
        loaded,
        data,
        inits,
        leads_hours,
        n_members,
        sampler=chosen,
        seed=seed,
        device=device,
        compile=compile,
        calibration=calibration,
        batch_members=batch_members,
        progress=progress,
        model=model,
    ):
        write_forecast(out, to_dataset(data, batch, leads_hours, members), provenance)
        written.extend(batch)
    return ForecastRun(
        str(out),
        tuple(written),
        tuple(float(h) for h in leads_hours),
        n_members,
        provenance,
        calibration,
    )
