"""Rollout planning: how a model trained for some leads reaches each output lead.

A model trained for leads ``L`` (hours) with history offsets ``O`` rolls out with the step
``r`` = the largest trained lead that divides every history offset (so each step finds its
history on the member's own trajectory). An output lead ``T`` is reached with the fewest
network steps among:

- one direct step ``T`` from the initial state, when ``T`` is a trained lead;
- ``k`` rollout steps of ``r`` (``T = k r``);
- ``k`` rollout steps then one direct step ``d`` (``T = k r + d``, ``d`` trained).

The trajectory is shared by all output leads of a member: a 10-day hourly rollout is one
trajectory per member, read at every requested lead. Planning is plain arithmetic on
hours; :mod:`generators.rollout` executes a plan.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from pipeline.errors import InputError

TOLERANCE_HOURS = 1e-6


def same_hours(a: float, b: float) -> bool:
    """Whether two durations in hours are equal (to ``TOLERANCE_HOURS``)."""
    return abs(a - b) < TOLERANCE_HOURS


def _multiple(value: float, step: float) -> bool:
    return same_hours(value / step, round(value / step))


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


def check_ensemble_size(n_members: int, batch_members: int) -> None:
    """Refuse an ensemble of fewer than one member, or a batch bound below one member.

    ``batch_members`` bounds initial times x members drawn together on the device; the
    forecast flow checks with this before it starts any task, the forecast itself before
    it draws."""
    if n_members < 1 or batch_members < 1:
        raise InputError(
            f"members ({n_members}) and batch_members ({batch_members}) must both be at least 1"
        )


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
        options = [Leg(0, t) for t in trained_hours if same_hours(t, target)]
        if step is not None:
            for k in range(1, int(math.floor(target / step + TOLERANCE_HOURS)) + 1):
                rest = target - k * step
                if same_hours(rest, 0.0):
                    options.append(Leg(k, 0.0))
                options.extend(Leg(k, t) for t in trained_hours if same_hours(rest, t))
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
    index = tuple(next(i for i, w in enumerate(window) if same_hours(w, h)) for h in history_hours)
    return RolloutPlan(step, window, index, tuple(float(h) for h in leads_hours), tuple(legs))
