"""A training config derived from an analysis store: :func:`derive_config`.

``wxens train --store S --out R`` without ``--config``, and ``wxens config --store S``, call
it. Every choice follows from the store (its native step ``s``, times, grid, channels), the
longest lead wanted and a time budget:

- **channels**: every time-varying channel of the store.
- **history**: the last ``max(3, round(1 day / s))`` states (a day of hourly or 6-hourly
  states; three daily ones).
- **leads** (native steps, ``L = lead / s``; default lead: the history's length): 1, then
  ``3 * 2**k`` below ``L``, then ``L`` — 1, 3, 6, 12, 24 h on an hourly store up to a day;
  longer output leads are rolled out from them. A training sample's lead is drawn with
  probability proportional to ``L ** -0.75`` (:data:`LEAD_WEIGHT_EXPONENT`).
- **periods** (:mod:`generators.config_periods`): the last ``HELD_OUT_FRACTION`` of the
  store's times, at least ``MIN_HELD_OUT`` (up to ``MAX_HELD_OUT_FRACTION``), is the held-out
  period: the validation loss, the spread calibration and ``wxens tune``'s choice of the
  correction are made on it; the rest is the training (and fine-tune) period.
- **backbone**: ``1 + floor(log2(min(H, W) / 8))`` resolution levels (2 to 5), so the
  coarsest level keeps about 8 points along the shorter side; first width 16, 32 or 64 as
  the training period holds fewer than 2 000, fewer than 20 000 or more times, and at
  least twice the channels (to a power of two); widths double per level; a wrapped
  longitude on a global grid; a ``--set model.backbone.kind`` backbone keeps its own defaults.
- **objective**: flow matching with the insolation as input (``data.solar_forcing``), a
  fair-CRPS fine-tune whose short sampler the forecasts use, and a spread calibration on
  the held-out period (up to :data:`MAX_CALIBRATION_INITS` initial times).
- **batch**: :data:`BATCH_SIZE`, or the largest power of two below it whose training step
  fits in :data:`generators.step_memory.MEMORY_SHARE` of the memory available (the host's,
  less the states to be read into it, one copy that all the parts of the training index, or
  the CUDA device's), as :mod:`generators.step_memory` estimates it; the fair-CRPS fine-tune,
  whose members all keep their gradients, sets it on large grids.
- **times**: the store's, or those up to ``end`` (days kept for testing stay unseen).
- **steps**: a fixed ``N`` if given (reproducible, nothing timed), else sized to the
  budget. The main phase takes ``N`` steps and a fair-CRPS fine-tune ``N / 5``, with
  ``N (t_main + t_fine / 5) = TRAINING_SHARE * budget - overhead``, where ``t_main`` and
  ``t_fine`` are per-step times measured on the spot (:func:`measure_step_seconds`: a few
  steps of the derived model as ``trained`` makes it, the ``--set`` overrides applied, on
  this store and device; the budget is what is left after measuring) and ``overhead`` the
  validation losses and calibration forecasts, counted in network evaluations at the
  measured cost of one (:func:`generators.config_overhead.overhead_seconds`) plus the extra
  time of the first step of each phase (the network's compile on CUDA), measured too; a
  calibration whose forecasts leave fewer than ``MIN_STEPS`` steps is shrunk to leave them
  (:mod:`generators.config_budget`).
  A budget's ``N`` is at most :data:`MAX_PASSES` passes over the training times
  (``N * batch / training times``, at the batch that trains: a ``--set batch_size``'s);
  the rest of a larger budget is left unused.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import pandas as pd
import yaml

from generators.backbone import BackboneConfig
from generators.base import backbone_kind
from generators.config import (
    CalibrationConfig,
    FineTuneConfig,
    ModelSpec,
    OptimConfig,
    TrainConfig,
)
from generators.config_budget import budget_steps
from generators.config_data import DataConfig
from generators.config_io import to_mapping
from generators.config_notes import DERIVED_FROM, note_comments
from generators.config_overhead import (
    MAIN_STEPS_PER_FINE_TUNE_STEP,
    VALIDATIONS,
    without_fine_tune,
)
from generators.config_periods import (
    check_trainable,
    check_windows,
    held_out_times,
    left_out_note,
    times_up_to,
)
from generators.data import CALENDAR_FEATURES, GEOMETRY_STATICS
from generators.device import resolve_device
from generators.durations import duration_text, parse_duration
from generators.models import FlowMatchingConfig
from generators.step_memory import fitted_batch, step_memory, step_room
from generators.step_timing import StepSeconds, measure_step_seconds
from generators.train_data import TrainingData, read_training_data
from pipeline.errors import InputError, time_text
from pipeline.schema import CHANNEL, LAT, LON, TIME, Period, to_channels
from pipeline.solar import SOLAR_FORCINGS
from pipeline.store import AnalysisStore, open_store
from pipeline.timeaxis import fixed_step
from verification.output import atomic_output
from verification.spectra import is_global

DEFAULT_BUDGET = pd.Timedelta(minutes=30)
LEAD_WEIGHT_EXPONENT = 0.75
"""Training samples are drawn at lead L with probability proportional to ``L ** -0.75``
(``data.lead_weights``; 51 % at 1 h and 5 % at 24 h for 1, 3, 6, 12, 24 h): a short lead's
change is local and fast and needs many updates to learn, a long lead's few independent
samples are over-fitted sooner. On the UK sample's validation split (``docs/benchmarks.md``,
two seeds, masked and not) it scored better than equal shares at 19 of 20 (lead, run) pairs
(masked 12 h at one seed 0.4 % worse) and better than 0.5 at 18 of 20."""
MAX_PASSES = 40
"""The most passes over the training period (main steps x batch / its times) a budget buys,
as more over-fit a short period: on the UK sample's validation split (345 training times at
batch 16, ``benchmarks/results/demo_validation_{400,600,1500_seed*}.json``) 400 main steps
(19 passes) were chosen over 600 (28); 1500 (70) scored worse at 24 h at both seeds."""
COARSEST_POINTS = 8
BATCH_SIZE = 16
CALIBRATION_MEMBERS = 16
MAX_CALIBRATION_INITS = 64


@dataclass(frozen=True)
class DerivedConfig:
    """A derived :class:`TrainConfig` and one line per choice saying what it rests on;
    the ``store`` it was derived from, as opened, and the datasets its step timing ``read``
    from it (None where nothing was timed), which the training takes rather than open and
    read the store again (None where the config was not derived now)."""

    config: TrainConfig
    notes: tuple[str, ...]
    store: AnalysisStore | None = field(default=None, compare=False, repr=False)
    read: TrainingData | None = field(default=None, compare=False, repr=False)

    def to_yaml(self) -> str:
        """The config as YAML (loadable by ``wxens train --config``), the notes as comments
        (wrapped, :func:`~generators.config_notes.note_comments`)."""
        header = note_comments(self.notes)
        return header + yaml.dump(to_mapping(self.config), Dumper=_Dumper, sort_keys=False)

    def write(self, path: str | Path) -> Path:
        """The YAML written to ``path`` whole (or not at all)."""
        with atomic_output(path) as tmp:
            tmp.write_text(self.to_yaml())
        return Path(path)


class _Dumper(yaml.SafeDumper):
    """Block mappings, lists of scalars on one line (``leads: [1, 3, 6]``)."""


def _represent_list(dumper: yaml.SafeDumper, data: list) -> yaml.Node:
    flat = all(not isinstance(v, dict | list) for v in data)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flat)


_Dumper.add_representer(list, _represent_list)


def history_states(step: pd.Timedelta) -> int:
    """States of the history window: a day's worth, at least three."""
    return max(3, round(pd.Timedelta(days=1) / step))


def derived_leads(steps: int) -> tuple[int, ...]:
    """Trained leads up to ``steps`` native steps: 1, ``3 * 2**k`` below ``steps``, ``steps``."""
    leads = {1, steps}
    k = 3
    while k < steps:
        leads.add(k)
        k *= 2
    return tuple(sorted(leads))


def derived_lead_weights(leads: tuple[int, ...]) -> tuple[float, ...] | None:
    """``(L / L_1) ** -LEAD_WEIGHT_EXPONENT`` per lead L, to three decimals; None (equal
    pairs) for a single lead."""
    if len(leads) < 2:
        return None
    return tuple(round((lead / leads[0]) ** -LEAD_WEIGHT_EXPONENT, 3) for lead in leads)


def backbone_for(grid: tuple[int, int], train_times: int, channels: int, periodic: bool):
    """Backbone size from the grid (levels) and the data (first width); see module doc."""
    levels = min(5, max(2, 1 + math.floor(math.log2(min(grid) / COARSEST_POINTS))))
    base = 16 if train_times < 2_000 else 32 if train_times < 20_000 else 64
    base = min(128, max(base, 2 ** math.ceil(math.log2(2 * channels))))
    return BackboneConfig(
        widths=tuple(base * 2**i for i in range(levels)),
        embedding_dim=2 * base,
        attention_heads=0,
        periodic_longitude=periodic,
    )


def derive_config(
    store: AnalysisStore | str | Path,
    *,
    lead: str | pd.Timedelta | None = None,
    budget: str | pd.Timedelta | None = None,
    device: str = "auto",
    step_seconds: StepSeconds | None = None,
    end: str | pd.Timestamp | None = None,
    steps: int | None = None,
    processes: int = 1,
    trained: Callable[[TrainConfig], TrainConfig] | None = None,
    end_option: str = "--end",
) -> DerivedConfig:
    """The training config of ``store`` (its times up to ``end``, default all) for
    forecasts up to ``lead`` (default: the history window) trained within ``budget``
    (default :data:`DEFAULT_BUDGET`) on ``device``, or for ``steps`` main steps (then
    nothing is timed and ``budget`` must be None), its batch split over ``processes``
    (``--nproc``); rules in the module doc.
    ``step_seconds``: the per-step times; None measures them
    (:func:`measure_step_seconds`), and the time spent measuring comes off the budget.
    ``trained``: what the training makes of the derived config (``--set``, e.g.
    ``model.kind=edm``); its steps and forecasts are the ones timed. ``end_option``: the
    option that gave ``end``, which its refusals name (:func:`times_up_to`)."""
    store = store if isinstance(store, AnalysisStore) else open_store(store)
    if steps is not None and budget is not None:
        raise InputError(f"give steps={steps} or budget={budget!r}, not both")
    if steps is not None and steps < 1:
        raise InputError(f"the step count must be at least 1, got {steps}")
    budget = parse_duration(budget if budget is not None else DEFAULT_BUDGET, "budget= (--budget)")
    step = fixed_step(store.native_step, store.path)
    if step <= pd.Timedelta(0):
        raise InputError(f"{store.path} holds a single time; a model needs a series to learn from")
    history = history_states(step)
    lead = parse_duration(lead, "lead= (--lead)") if lead is not None else history * step
    if lead % step != pd.Timedelta(0):
        raise InputError(
            f"the lead {duration_text(lead)}, lead= (--lead), is not a multiple of the native step "
            f"{duration_text(step)} of {store.path}; give a multiple of it"
        )
    leads = derived_leads(lead // step)
    every_time = pd.DatetimeIndex(store.dataset[TIME].values)
    times = times_up_to(store.path, every_time, end, end_option)
    check_trainable(store.path, every_time, times, step, leads[-1], history, end_option)
    n_held = held_out_times(len(times), step)
    n_train = len(times) - n_held
    train = Period(time_text(times[0]), time_text(times[n_train - 1]))  # to the minute
    held_out = Period(time_text(times[n_train]), time_text(times[-1]))
    check_windows(store.path, times, step, history, leads, n_train)
    dynamic = [name for name, da in store.dataset.data_vars.items() if TIME in da.dims]
    channels = tuple(str(c) for c in to_channels(store.dataset[dynamic])[CHANNEL].values)
    grid = (store.dataset.sizes[LAT], store.dataset.sizes[LON])
    periodic = is_global(store.dataset[LON])
    backbone = backbone_for(grid, n_train, len(channels), periodic)
    possible_inits = n_held - leads[-1]  # those whose longest lead is held out too
    every = math.ceil(possible_inits / MAX_CALIBRATION_INITS)
    config = TrainConfig(
        model=ModelSpec("flow_matching", FlowMatchingConfig(backbone=backbone, sample_nfe=10)),
        data=DataConfig(
            channels=channels,
            history=history,
            leads=leads,
            lead_weights=derived_lead_weights(leads),
            solar_forcing=True,
            train=train,
            validation=held_out,
        ),
        optim=OptimConfig(lr=1e-3, warmup_steps=100, min_lr_ratio=0.1),
        batch_size=BATCH_SIZE,
        fine_tune=FineTuneConfig(steps=200, lr=3e-4, crps_members=4, crps_nfe=2),
        calibration=CalibrationConfig(
            period=held_out,
            members=CALIBRATION_MEMBERS,
            init_every_hours=every * step / pd.Timedelta(hours=1),
        ),
        device=device,
    )
    statics = len(GEOMETRY_STATICS) + len(store.dataset.data_vars) - len(dynamic)
    as_trained = trained or (lambda derived: derived)  # what the training makes of a config
    chosen = as_trained(config)
    config, untuned = without_fine_tune(config, chosen)  # no loss mix to fine-tune
    chosen = as_trained(config) if untuned else chosen
    chosen_backbone = backbone_kind(chosen.model.config.backbone)
    sized = replace(  # the chosen model's backbone, fed the data's inputs
        chosen.model.config.backbone, channels=len(channels), history=history,
        static_channels=statics + len(SOLAR_FORCINGS), calendar_features=len(CALENDAR_FEATURES),
    )  # fmt: skip
    memory = step_memory(chosen, replace(chosen.model.config, backbone=sized), grid)
    # the training, validation and fine-tune parts index one copy of the store's states
    states = store.dataset.sizes[TIME] * len(channels) * grid[0] * grid[1] * 4
    reserved = states if states <= config.data.max_memory_bytes else 0
    room = step_room(resolve_device(device), processes, reserved)
    config, batch_note = fitted_batch(config, memory, room, processes)
    south, north = store.dataset[LAT].min().item(), store.dataset[LAT].max().item()
    band = f"latitude-band grid ({south:g} to {north:g}°, longitudes wrapped)"
    # wrapped longitudes alone make no global grid
    kind = "regional grid" if not periodic else "global grid" if north - south > 170 else band
    read, shrunk = None, ()
    if steps is not None:
        config, sizing = with_steps(config, steps), f"steps: {steps} main steps, fixed"
    else:
        started = time.perf_counter()
        timed = as_trained(config)  # what will train, at the batch fitted above
        if step_seconds is None:  # the training takes the datasets read to time its steps
            read = read_training_data(store, timed)

        def afford(partial: StepSeconds) -> None:  # refuses before the fine-tune is timed
            spent = time.perf_counter() - started
            budget_steps(config, as_trained, budget, spent, partial, possible_inits, step)

        seconds = step_seconds or measure_step_seconds(store, timed, read, afford)
        spent = time.perf_counter() - started
        budgeted = budget_steps(config, as_trained, budget, spent, seconds, possible_inits, step)
        config, bought, shrunk = budgeted.config, budgeted.steps, budgeted.notes
        available, overhead = budgeted.available, budgeted.overhead
        budget -= pd.Timedelta(seconds=spent)  # what is left after measuring
        # MAX_PASSES passes at the batch that trains (a --set batch_size's, as timed)
        most = max(1, MAX_PASSES * n_train // timed.batch_size)
        config = with_steps(config, min(bought, most))
        sizing = (
            f"steps: {config.steps} main steps for the {budget.total_seconds():.0f} s of the "
            f"budget left: {seconds.main:.3g} s a main step, {seconds.fine_tune:.3g} s a "
            f"fine-tune step, {seconds.forward:.3g} s a forward pass of a sample, "
            f"{seconds.first_steps:.3g} s more for the first steps (of the {timed.model.kind} "
            f"model, backbone {chosen_backbone}, measured on {resolve_device(device)}); "
            f"{available:.0f} s of steps, once a tenth of slack and {overhead:.3g} s of "
            "validation and calibration forecasts are set aside"
        )
        if config.steps < bought:
            unused = (bought - config.steps) * available / bought / budget.total_seconds()
            sizing += (
                f"; capped at {config.steps} of the {bought} main steps it buys: "
                f"{MAX_PASSES} passes over the {n_train} training times at batch "
                f"{timed.batch_size}, as more over-fit them, leaving about {unused:.0%} of "
                "the budget unused"
            )
    notes = (
        f"{DERIVED_FROM}{Path(store.path).resolve()}: channel(s) {', '.join(channels)} on a "
        f"{grid[0]} x {grid[1]} {kind}, {len(times)} times every {duration_text(step)}",
        f"history: the last {history} states; leads {list(leads)} native steps, up to "
        f"{duration_text(lead)}",
        f"train {train}; validation, calibration and tuning on the last "
        f"{n_held / len(times):.0%} ({_span_text(times[-1] + step - times[n_train])}): {held_out}",
        f"backbone widths {list(backbone.widths)} for the grid and {n_train} training times"
        if type(chosen.model.config.backbone) is type(backbone)
        else f"backbone {chosen_backbone} (--set): its own defaults, not sized to the grid (a "
        "derived config sizes the U-Net alone)",
        batch_note,
        *left_out_note(every_time, times, end, end_option),
        *untuned,
        *shrunk,
        sizing,
    )
    return DerivedConfig(config, notes, store, read)


def with_steps(config: TrainConfig, steps: int) -> TrainConfig:
    """``config`` with ``steps`` main steps and the warm-up, cadences, EMA and fine-tune
    steps that follow from them (module doc)."""
    cadence = max(1, steps // VALIDATIONS)
    return replace(
        config,
        steps=steps,
        optim=replace(config.optim, warmup_steps=min(100, max(1, steps // 10))),
        ema_decay=0.999 if steps >= 5_000 else 0.995,
        validate_every=cadence,
        checkpoint_every=cadence,
        fine_tune=None
        if config.fine_tune is None
        else replace(config.fine_tune, steps=max(1, steps // MAIN_STEPS_PER_FINE_TUNE_STEP)),
    )


def _span_text(span: pd.Timedelta) -> str:
    """:func:`duration_text`, but a span of days that is not whole in days as days
    (``9.67 days``, not ``232h``)."""
    days = span / pd.Timedelta(days=1)
    return duration_text(span) if days < 2 or days.is_integer() else f"{days:.2f} days"
