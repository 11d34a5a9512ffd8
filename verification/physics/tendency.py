"""Tendency check: how far members move from the initial state, against how far the
atmosphere moved, as distributions (members drawn independently at each lead are scored
correctly this way, not only trajectories)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, replace
from typing import ClassVar

import numpy as np
import pandas as pd
import xarray as xr

from pipeline.errors import InputError
from pipeline.schema import INIT_TIME, LAT, LEAD_TIME, LEVEL, LON, MEMBER, channel_name
from verification.base import CheckResult, register_check
from verification.physics.common import (
    PhysicsCheckBase,
    blocks_bar,
    largest,
    loaded,
    where_members,
)

NO_CHANGE = "lead 0 only: nothing has changed since the initial time"
NO_TRUTH_HERE = "no truth at the initial times or at these valid times"
ONE_INIT = (
    "a single initial time with truth: the truth's own variability, which sets the "
    "tolerance, needs two or more"
)


def wasserstein_1(a: np.ndarray, b: np.ndarray) -> float:
    """Wasserstein-1 distance of two samples, ``∫₀¹ |F_a⁻¹(q) - F_b⁻¹(q)| dq``, exactly
    (``scipy.stats.wasserstein_distance``, from the sorted samples: 512 quantiles put a
    member with 1 % of its values far out 7 % above it); NaNs dropped, NaN if either
    sample is empty."""
    import scipy.stats  # here, not at the top: 0.5 s of every command's start (-X importtime)

    a, b = a[~np.isnan(a)], b[~np.isnan(b)]
    if a.size == 0 or b.size == 0:
        return float("nan")
    return float(scipy.stats.wasserstein_distance(a, b))


def distances_to_truth(members: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """(M,) :func:`wasserstein_1` distances of the members ``members`` (M, N) to ``truth``
    (N,), the truth sorted once. A member with as many values as the truth (the usual case:
    members are masked where the truth is missing) takes the closed form of equal sizes,
    the mean of ``|sorted a - sorted b|`` in float64, equal to scipy's CDF-difference sum
    to rounding: scipy sorts both samples and their union again for every member, 8 times
    the time on the UK demo (50 members, 5 leads); any other member goes through
    :func:`wasserstein_1`."""
    ordered = np.sort(truth[~np.isnan(truth)]).astype(np.float64)  # as scipy computes
    distances = np.empty(len(members))
    for m, member in enumerate(members):
        values = member[~np.isnan(member)]
        if values.size == ordered.size and ordered.size:
            distances[m] = np.abs(np.sort(values) - ordered).mean()
        else:
            distances[m] = wasserstein_1(values, ordered)
    return distances


@dataclass(frozen=True)
class _Case:
    """One lead, level... of a variable: the std of the truth's change there, why the case
    is left out (None when judged) and the truth's half/half distance over the std."""

    selection: dict[str, object]
    scale: float
    skipped: str | None
    distance: float = float("nan")


@dataclass(frozen=True)
class _TruthPart:
    """A variable's truth changes since the initial time and their cases: the same for
    every block of members."""

    observed: xr.DataArray
    cases: list[_Case]


@register_check
@dataclass(frozen=True)
class TendencyDistribution(PhysicsCheckBase):
    """Distribution of member changes since the init time against the truth's (W1 distance).

    At each lead and level, the change ``x(lead) - x(init)`` of a member (pooled over init
    times and the grid, where the truth exists) against the truth's ``y(lead) - y(init)``,
    both from the analysis at the init time (``initial``): their Wasserstein-1 distance
    divided by the std of the truth's change. One result per variable: the largest
    distance over its levels and leads. Tolerance: the same distance between the truth's
    changes of two halves of the init times that have truth, times ``factor``, at least
    ``floor``; the halves are contiguous runs of the init times taken as a circle (so
    neighbouring init times, which share their weather, mostly fall in one half), the
    distance the median over the ``cuts`` first of its n/2 cuts (all by default; 1 is the
    first half against the second, a noisier tolerance:
    ``benchmarks/tendency_tolerance.py`` compares them). Lead 0, leads without truth and a
    single init time with truth leave nothing to compare: such a case is left out, and a
    variable with no
    case left is "n/a", with the reason.
    """

    name: ClassVar[str] = "tendency_distribution"
    description: ClassVar[str] = (
        "Distribution of each member's change since the initial time against the truth's "
        "change over the same lead, as a Wasserstein-1 distance in units of the truth's std, "
        "per variable: members must evolve as fast, and as often, as the real atmosphere."
    )
    units: ClassVar[str] = "truth change std"
    requires: ClassVar[str] = "initial and lead times"
    factor: float = 2.0
    floor: float = 0.1
    cuts: int | None = None
    block_dim: ClassVar[str] = MEMBER

    def applies(self, forecast: xr.Dataset) -> bool:
        return INIT_TIME in forecast.dims and LEAD_TIME in forecast.dims

    def judge(
        self, forecast: xr.Dataset, truth: xr.Dataset, initial: xr.Dataset | None = None
    ) -> list[CheckResult]:
        if initial is None:
            raise InputError(
                "the tendency check needs the analysis at the init times (initial=...); "
                "pipeline.alignment.align_with_truth gives it as .initial"
            )
        truths = self._truths(forecast, where_members(truth, forecast), initial)
        return self._judged(forecast, initial, truths)

    def judge_blocks(
        self, forecast: xr.Dataset, truth: xr.Dataset, initial: xr.Dataset | None, length: int
    ) -> list[CheckResult]:
        """The results judged ``length`` members at a time (:attr:`block_dim`): a member's
        distances need all its initial times, and the truth's all of them; the truth and
        ``initial`` are loaded whole (a member's size each), the truth where some member
        holds values in one pass over the forecast first. The truth's part (its changes,
        scales and half/half distances: O(init times² × grid) a case) is computed once for
        all blocks, the members' distances once each: the results are one pass's."""
        if initial is None:
            return self.judge(forecast, truth, initial)  # refused there
        truth, initial = loaded(where_members(truth, forecast), initial)
        truths = self._truths(forecast, truth, initial)
        blocks = [
            self._judged(loaded(forecast.isel({MEMBER: block}))[0], initial, truths)
            for block in blocks_bar(self.name, forecast.sizes[MEMBER], length)
        ]
        return [_joined(parts) for parts in zip(*blocks, strict=True)]

    def _truths(
        self, forecast: xr.Dataset, truth: xr.Dataset, initial: xr.Dataset
    ) -> dict[str, _TruthPart]:
        """The truth's part of each variable of ``forecast``, the truth where some member
        holds values (of all the members, not only a block's)."""
        return {
            str(name): self._truth_part(truth[name], initial[name]) for name in forecast.data_vars
        }

    def _judged(
        self, forecast: xr.Dataset, initial: xr.Dataset, truths: dict[str, _TruthPart]
    ) -> list[CheckResult]:
        """The results of the members of ``forecast`` against the truth's parts."""
        return [
            self._variable(str(name), forecast[name], initial[name], truths[str(name)])
            for name in forecast.data_vars
        ]

    def _truth_part(self, truth: xr.DataArray, initial: xr.DataArray) -> _TruthPart:
        """The truth's changes since ``initial`` and, per case (lead, level...), their
        scale and half/half distance over it, or why the case is left out."""
        observed = (truth - initial).compute()
        cases = []
        for case in _cases(observed, keep=(INIT_TIME, LAT, LON)):
            truth_change = observed.sel(case)
            inits = np.flatnonzero(truth_change.notnull().any([LAT, LON]).values)
            scale = float(truth_change.std()) if inits.size else float("nan")
            if inits.size == 0 or not np.isfinite(scale):
                cases.append(_Case(case, scale, NO_TRUTH_HERE))
            elif not scale > 0:
                cases.append(_Case(case, scale, NO_CHANGE))
            elif inits.size < 2:
                cases.append(_Case(case, scale, ONE_INIT))
            else:
                distance = self._halves_distance(truth_change, inits) / scale
                cases.append(_Case(case, scale, None, distance))
        return _TruthPart(observed, cases)

    def _variable(
        self, name: str, forecast: xr.DataArray, initial: xr.DataArray, truth: _TruthPart
    ) -> CheckResult:
        observed = truth.observed
        members = (forecast - initial).where(observed.notnull()).compute()
        template = members.isel({d: 0 for d in members.dims if d != MEMBER}, drop=True)
        judged = [case for case in truth.cases if case.skipped is None]
        if not judged:
            skipped = [case.skipped for case in truth.cases]
            reason = "; ".join(dict.fromkeys(skipped)) or NO_TRUTH_HERE
            return CheckResult.not_computed(self, template, reason, name)
        member_distances = []
        for case in judged:
            by_member = members.sel(case.selection).transpose(MEMBER, ...).values
            truth_change = observed.sel(case.selection).values.ravel()
            member_distances.append(
                distances_to_truth(by_member.reshape(len(by_member), -1), truth_change) / case.scale
            )
        truth_score = float(np.max([case.distance for case in judged]))
        score, worst = largest(
            [template.copy(data=d) for d in member_distances],
            [_case_label(name, case.selection) for case in judged],
        )
        return CheckResult(
            name=self.name,
            description=self.description,
            units=self.units,
            member_score=score,
            truth_score=truth_score,
            tolerance=max(self.factor * truth_score, self.floor),
            tolerance_rule=(
                f"max({self.factor:g} × truth half/half distance (median over "
                f"{'all' if self.cuts is None else self.cuts} cut(s)), {self.floor:g})"
            ),
            part=name,
            worst=worst,
        )

    def _halves_distance(self, change: xr.DataArray, inits: np.ndarray) -> float:
        """Median W1 distance between the changes of two contiguous halves of ``inits``
        (indices along the init time) taken as a circle, over ``cuts`` of the n/2 cuts."""
        half = inits.size // 2
        values = change.transpose(INIT_TIME, ...).values
        distances = []
        for k in range(half if self.cuts is None else min(self.cuts, half)):
            order = np.roll(inits, -k)
            first, second = values[order[:half]], values[order[half : 2 * half]]
            distances.append(wasserstein_1(first.ravel(), second.ravel()))
        return float(np.median(distances))


def _cases(da: xr.DataArray, keep: tuple[str, ...]) -> list[dict[str, object]]:
    """One selection per combination of the values of the dims not in ``keep``."""
    other = [str(d) for d in da.dims if d not in keep]
    return [
        dict(zip(other, values, strict=True))
        for values in itertools.product(*(da[d].values for d in other))
    ]


def _joined(parts: tuple[CheckResult, ...]) -> CheckResult:
    """One variable's results of blocks of members as one."""
    worst = None if parts[0].worst is None else xr.concat([r.worst for r in parts], MEMBER)
    member_score = xr.concat([r.member_score for r in parts], MEMBER)
    return replace(parts[0], member_score=member_score, worst=worst)


def _case_label(name: str, selection: dict[str, object]) -> str:
    """``t500 at 24 h``: the channel and lead of a case of variable ``name``."""
    level = selection.get(LEVEL)
    text = channel_name(name, None if level is None else float(level))
    lead = selection.get(LEAD_TIME)
    if lead is not None:
        text += f" at {pd.Timedelta(lead) / pd.Timedelta(hours=1):g} h"
    return text
