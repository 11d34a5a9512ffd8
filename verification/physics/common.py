"""What the physics checks share: members compared where the truth exists, and the
truth-relative tolerance of a score computed part by part (per level, layer or variable).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

import dask
import numpy as np
import xarray as xr

from pipeline.schema import INIT_TIME, LEAD_TIME, MEMBER
from verification.base import CheckResult

PART = "part"
"""The dim of a score computed per part: level, layer or variable labels (``500 hPa``)."""

NO_TRUTH = "no truth at these valid times"
NO_MEMBERS = (
    "the members hold no values where the truth does (a variable or level the forecast "
    "lacks, NaN in every member)"
)


def over_all_but(da: xr.DataArray, *keep: str) -> tuple[str, ...]:
    """The dims of ``da`` other than ``member`` and ``keep``."""
    return tuple(str(d) for d in da.dims if d not in (MEMBER, *keep))


def has(ds: xr.Dataset, names: tuple[str, ...]) -> bool:
    return all(n in ds.data_vars for n in names)


def where_truth(forecast: xr.Dataset, truth: xr.Dataset) -> xr.Dataset:
    """The members only where the truth of the same variable exists (same valid times,
    same points), so that members and truth are scored on the same sample: leads past the
    last analysis, a land-only truth's sea points and lead-0 gaps drop out of both."""
    return forecast.assign(
        {
            name: forecast[name].where(truth[name].notnull())
            for name in forecast.data_vars
            if name in truth.data_vars
        }
    )


def where_members(truth: xr.Dataset, forecast: xr.Dataset) -> xr.Dataset:
    """The truth only where some member of the same variable exists: a masked forecast (a
    land-only model's members, NaN over the sea) against a complete analysis is judged on
    the points it forecasts, as :func:`where_truth` judges members on the truth's."""
    return truth.assign(
        {
            name: truth[name].where(forecast[name].notnull().any(MEMBER))
            for name in truth.data_vars
            if name in forecast.data_vars
        }
    )


def samples(ds: xr.Dataset | xr.DataArray) -> int:
    """How many (init time, lead) samples ``ds`` holds."""
    return int(np.prod([ds.sizes.get(d, 1) for d in (INIT_TIME, LEAD_TIME)]))


class PhysicsCheckBase(ABC):
    """A check that reads its inputs once: calling it computes the variables it
    :meth:`reads` of ``forecast``, ``truth`` and ``initial`` in one ``dask.compute`` (and
    loads lazily indexed ones), then :meth:`judge` s them in memory. A check judges part
    by part; on dask data (a store opened lazily, in a notebook) each part was a compute
    of its own, the store read and the graph scheduled again each time: seconds to
    minutes a check where memory takes a fraction of a second. Data in memory (as
    :func:`verification.physics_group.physics_group` gives them) pass through unchanged.
    """

    name: ClassVar[str]
    description: ClassVar[str]
    units: ClassVar[str]
    requires: ClassVar[str]

    def reads(self, forecast: xr.Dataset) -> list[str]:
        """The variables of the inputs the check uses (default: every one)."""
        return [str(n) for n in forecast.data_vars]

    def __call__(
        self, forecast: xr.Dataset, truth: xr.Dataset, initial: xr.Dataset | None = None
    ) -> list[CheckResult]:
        names = self.reads(forecast)

        def used(ds: xr.Dataset) -> xr.Dataset:
            return ds[[n for n in names if n in ds.data_vars]]

        lazy = [used(forecast), used(truth)] + ([] if initial is None else [used(initial)])
        loaded = [ds.compute() for ds in dask.compute(*lazy)]  # compute(): lazy, not dask
        forecast, truth = loaded[:2]
        return self.judge(forecast, truth, loaded[2] if initial is not None else None)

    @abstractmethod
    def judge(
        self, forecast: xr.Dataset, truth: xr.Dataset, initial: xr.Dataset | None
    ) -> list[CheckResult]:
        """The check's results (:class:`~verification.base.PhysicsCheck`) on inputs in
        memory."""


class TruthRelativeCheck(PhysicsCheckBase):
    """A check whose score applies to members and truth alike, part by part.

    :meth:`score` gives the score with a ``part`` dim (levels, layers, variables), reduced
    over everything else but ``member``. Members are scored only where the truth exists
    (:func:`where_truth`), the truth only where some member does (:func:`where_members`).
    Tolerance rule, per part: ``max(factor × truth score, floor)``
    — a member may be at most ``factor`` times as inconsistent as the analysis, and
    ``floor`` absorbs round-off when the truth is exact (the balanced synthetic fields).
    A part whose truth score is NaN (no truth there) is "n/a", with the reason.
    """

    factor: float
    floor: float

    @abstractmethod
    def score(self, ds: xr.Dataset) -> xr.DataArray:
        """The score of ``ds`` by ``part``, reduced over every other dim but ``member``."""

    def judge(
        self, forecast: xr.Dataset, truth: xr.Dataset, initial: xr.Dataset | None = None
    ) -> list[CheckResult]:
        analysis = truth
        truth = where_members(truth, forecast)
        truth_scores = self.score(truth).compute()
        member_scores = self.score(where_truth(forecast, truth)).compute()
        results, own_scores = [], None
        for part in truth_scores[PART].values.tolist():
            members = member_scores.sel({PART: part}, drop=True)
            value = float(truth_scores.sel({PART: part}))
            if not np.isfinite(value):
                # the truth alone, not where the members are: theirs may be what is missing
                if own_scores is None:
                    own_scores = self.score(analysis).compute()
                own = float(own_scores.sel({PART: part}))
                reason = NO_MEMBERS if np.isfinite(own) else NO_TRUTH
                results.append(CheckResult.not_computed(self, members, reason, part))
                continue
            results.append(
                CheckResult(
                    name=self.name,
                    description=self.description,
                    units=self.units,
                    member_score=members,
                    truth_score=value,
                    tolerance=max(self.factor * value, self.floor),
                    tolerance_rule=f"max({self.factor:g} × truth score, {self.floor:g})",
                    part=part,
                )
            )
        return results


def labelled(parts: list[xr.DataArray], labels: list[str]) -> xr.DataArray:
    """Scores of several parts as one array with a ``part`` dim of ``labels``."""
    return xr.concat(parts, dim=PART, coords="minimal", compat="override").assign_coords(
        {PART: labels}
    )
