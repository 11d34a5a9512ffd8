"""The main steps a derived config's ``--budget`` buys (:func:`budget_steps`): what is left
of it once the time spent measuring, a tenth of slack, the first steps' extra time and the
validation and spread-calibration forecasts (:func:`overhead_seconds`) are set aside, at
the per-step times measured (:mod:`generators.config_derive`'s module doc).

On a CPU a few-minute budget can go on the full calibration's forecasts alone (up to 64
initial times x 16 members x the leads); the budget then shrinks the calibration
(:func:`shrunk_calibration`) to leave :data:`MIN_STEPS` steps, down to a floor that still
fits a per-lead factor, and is refused only where even the floor leaves fewer.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace

import pandas as pd

from generators.calibration import FEW_INITS
from generators.config import TrainConfig
from generators.config_overhead import (
    MAIN_STEPS_PER_FINE_TUNE_STEP,
    forecast_seconds,
    overhead_seconds,
)
from generators.durations import duration_text
from generators.step_timing import StepSeconds, timing_runs
from pipeline.errors import InputError

MIN_STEPS = 20
TRAINING_SHARE = 0.9
"""Share of the budget given to optimiser steps; the rest is slack for reading the store,
checkpoints and the progress of a shared machine."""
FLOOR_INITS = FEW_INITS
"""The fewest initial times a budget shrinks the calibration to: fewer are warned about
when it is fitted (:data:`generators.calibration.FEW_INITS`: a handful of correlated
forecasts fit their own errors, factors of 3.9 on one). The initial times go first, as
16 members of fewer, more widely spaced initial times fit the same factor: the factor
pools the spread and error over the initial times and the grid
(:class:`generators.correction.spread.PooledMoments`), whose weather is what varies."""
FLOOR_MEMBERS = 8
"""The fewest members a budget shrinks the calibration to, half the derived 16: a
point's member variance (ddof 1) has M - 1 degrees of freedom, a relative standard error
of ``sqrt(2 / (M - 1))``, 0.53 at 8 members (0.37 at 16), which the pooling over 8 initial
times x the grid brings to a few percent of the factor; and the SSR's finite-ensemble
factor ``(M + 1) / M``, which the fit relies on to undo the small ensemble's bias,
stays a 12.5 % correction (6 % at 16) rather than the 50 % of 2 members."""


@dataclass(frozen=True)
class BoughtSteps:
    """What a budget buys: the derived ``config`` (its calibration shrunk where it had to
    be) and ``timed``, what the training makes of it; the main ``steps`` (before the
    MAX_PASSES cap), the seconds they take (``available``) and those of the validation and
    calibration forecasts (``overhead``); ``notes``: how the calibration was shrunk, and
    why (none where it was not)."""

    config: TrainConfig
    timed: TrainConfig
    steps: int
    available: float
    overhead: float
    notes: tuple[str, ...] = ()


def budget_steps(
    config: TrainConfig,
    as_trained: Callable[[TrainConfig], TrainConfig],
    budget: pd.Timedelta,
    spent: float,
    seconds: StepSeconds,
    possible_inits: int,
    step: pd.Timedelta,
) -> BoughtSteps:
    """The main steps ``budget`` buys for the derived ``config`` as ``as_trained`` trains it,
    once ``spent`` seconds of it went on measuring, at the per-step ``seconds``; its
    calibration forecasts ``possible_inits`` initial times every ``init_every_hours``
    (in native ``step``\\ s). Where the full calibration leaves fewer than
    :data:`MIN_STEPS` steps, it is shrunk (:func:`shrunk_calibration`; a calibration
    ``--set`` by hand is kept as given). Fewer than :data:`MIN_STEPS` even then: an
    InputError naming the smallest budget that buys them (at least that, where the
    fine-tune is not timed yet: estimated as ``crps_members x crps_nfe`` main steps)."""
    full = config.calibration
    every = round(pd.Timedelta(hours=full.init_every_hours) / step)
    inits = math.ceil(possible_inits / every)
    timed = as_trained(config)
    bought = _bought(config, timed, budget, spent, seconds, inits)
    # kept: enough steps, a calibration --set by hand, or forecasts that cost nothing
    if bought.steps >= MIN_STEPS or timed.calibration != full or not seconds.forward:
        return _checked(bought, budget, spent, seconds, inits)
    per_main = _per_main_step(seconds.main, seconds.fine_tune)
    room = bought.available + bought.overhead - overhead_seconds(timed, 0, seconds.forward)
    forecasts = (room - MIN_STEPS * per_main) / forecast_seconds(timed, seconds.forward)
    spacing, members = shrunk_calibration(possible_inits, every, full.members, forecasts)
    hours = spacing * step / pd.Timedelta(hours=1)
    shrunk = replace(full, members=members, init_every_hours=hours)
    shrunk_timed = as_trained(replace(config, calibration=shrunk))
    if shrunk_timed.calibration != shrunk:  # a --set of a full value: init_every_hours=4
        return _checked(bought, budget, spent, seconds, inits)
    shrunk_inits = math.ceil(possible_inits / spacing)
    back = [  # the --set of what it shrank only: one of a kept value would change nothing
        f"--set calibration.{k}={getattr(full, k):g}"
        for k in ("members", "init_every_hours")
        if getattr(shrunk, k) != getattr(full, k)
    ]
    note = (
        f"calibration: shrunk from {inits} initial times (every {full.init_every_hours:g} h) "
        f"x {full.members} members to {shrunk_inits} (every {hours:g} h) x {members}: with "
        f"the full one's {bought.overhead:.3g} s of validation and calibration forecasts, the "
        f"--budget bought {bought.steps} training steps, fewer than {MIN_STEPS}; with a "
        f"larger --budget, {' '.join(back)} sizes it back"
    )
    config = replace(config, calibration=shrunk)
    bought = _bought(config, shrunk_timed, budget, spent, seconds, shrunk_inits, (note,))
    return _checked(bought, budget, spent, seconds, shrunk_inits)


def shrunk_calibration(
    possible_inits: int, every: int, full_members: int, forecasts: float
) -> tuple[int, int]:
    """The spacing (in native steps) and members of the largest calibration of at most
    ``forecasts`` initial times x members: of the ``possible_inits`` every ``every``,
    ``full_members`` each, its initial times shrunk first (a wider spacing) down to
    :data:`FLOOR_INITS` (all there are, where fewer), then its members down to
    :data:`FLOOR_MEMBERS`; that floor where even it is more."""
    # the widest spacing that keeps FLOOR_INITS: ceil(possible / spacing) >= FLOOR_INITS
    widest = max(every, math.ceil(possible_inits / (FLOOR_INITS - 1)) - 1)
    fitting = max(1, int(forecasts // full_members))  # initial times of full_members
    spacing = max(every, min(widest, math.ceil(possible_inits / fitting)))
    inits = math.ceil(possible_inits / spacing)
    members = max(0, int(forecasts // inits))
    return spacing, max(FLOOR_MEMBERS, min(full_members, members))


def _bought(
    config: TrainConfig,
    timed: TrainConfig,
    budget: pd.Timedelta,
    spent: float,
    seconds: StepSeconds,
    inits: int,
    notes: tuple[str, ...] = (),
) -> BoughtSteps:
    """What ``budget`` buys ``timed`` with ``inits`` calibration initial times (no floor)."""
    overhead = overhead_seconds(timed, inits, seconds.forward)
    available = TRAINING_SHARE * (budget.total_seconds() - spent)
    available -= seconds.first_steps + overhead
    per_main = _per_main_step(seconds.main, seconds.fine_tune)
    steps = max(0, int(available / per_main))
    return BoughtSteps(config, timed, steps, available, overhead, notes)


def _per_main_step(main: float, fine_tune: float) -> float:
    """Seconds of a main step with its share of the fine-tune (one fine-tune step for
    :data:`MAIN_STEPS_PER_FINE_TUNE_STEP` main ones): what a budget buys steps at."""
    return main + fine_tune / MAIN_STEPS_PER_FINE_TUNE_STEP


def _checked(
    bought: BoughtSteps, budget: pd.Timedelta, spent: float, seconds: StepSeconds, inits: int
) -> BoughtSteps:
    """``bought``, or an InputError where it is fewer than :data:`MIN_STEPS` steps, naming
    what the budget went on and the smallest budget that buys them."""
    if bought.steps >= MIN_STEPS:
        return bought
    timed = bought.timed
    untimed = timed.fine_tune is not None and not seconds.fine_tune
    # not timed yet: a fine-tune step as its members x sampler steps of main ones, and the
    # timing of it still to come, so that the budget named is not refused once it is timed
    fine, to_time = seconds.fine_tune, 0.0
    if untimed:
        fine = seconds.main * timed.fine_tune.crps_members * timed.fine_tune.crps_nfe
        to_time = timing_runs(fine) * fine
    per_main = _per_main_step(seconds.main, fine)
    fixed = seconds.first_steps + bought.overhead
    needed = spent + to_time + (MIN_STEPS * per_main + fixed) / TRAINING_SHARE
    least = duration_text(pd.Timedelta(minutes=math.ceil(needed / 60)))
    calibration, shrunk = timed.calibration, " (shrunk)" * bool(bought.notes)
    of = f" of {inits} initial times x {calibration.members} members{shrunk}" if calibration else ""
    raise InputError(
        f"a budget= (--budget) of {budget.total_seconds():.0f} s buys {bought.steps} training "
        f"steps, fewer than {MIN_STEPS}: measuring took {spent:.0f} s, the validation and "
        f"calibration forecasts{of} take {bought.overhead:.3g} s, the first steps "
        f"{seconds.first_steps:.3g} s more, and steps {per_main:.3g} s a main step with its "
        f"share of the fine-tune ({seconds.main:.3g} s + {fine:.3g} s / "
        f"{MAIN_STEPS_PER_FINE_TUNE_STEP}{', not timed yet: estimated' * untimed}), with a "
        f"tenth of slack: give a budget of {'at least ' * untimed}{least}, or steps=N "
        "(--set steps=N) and no budget, or train on a GPU"
    )
