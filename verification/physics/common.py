"""What the physics checks share: members compared where the truth exists, and the
truth-relative tolerance of a score computed part by part (per level, layer or variable).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import ClassVar

import dask
import numpy as np
import xarray as xr

from pipeline.progress import tqdm
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


BLOCK_BYTES = 256 * 2**20
"""The most bytes of input a check loads at once from dask data (the variables it reads of
``forecast``, ``truth`` and ``initial``, from their dtypes and shapes): larger inputs are
computed and judged in blocks of initial times (of members for the tendencies), whose
results combine into those of one pass. Judging takes a few times the block's size more."""


def is_dask(ds: xr.Dataset) -> bool:
    return any(v.chunks is not None for v in ds.data_vars.values())


def block_length(inputs: list[xr.Dataset], dim: str, budget: int) -> int | None:
    """How many indices along ``dim`` a block of ``inputs`` holds within ``budget`` bytes
    (at least one; the variables without ``dim`` are loaded whole, and count in full); None
    when all of it fits, or ``dim`` is absent."""
    size = next((ds.sizes[dim] for ds in inputs if dim in ds.sizes), 0)
    per_index = fixed = 0
    for da in (v for ds in inputs for v in ds.data_vars.values()):
        if dim in da.dims:
            per_index += da.nbytes // size
        else:
            fixed += da.nbytes
    if size == 0 or fixed + per_index * size <= budget:
        return None
    return max(1, (budget - fixed) // max(per_index, 1))


def in_blocks(size: int, length: int) -> list[slice]:
    return [slice(i, min(i + length, size)) for i in range(0, size, length)]


def blocks_bar(name: str, size: int, length: int) -> tqdm:
    """:func:`in_blocks`, counted by a bar of the blocks done of all, with its ETA (a block
    of a large lazy forecast is read in minutes), on a terminal or in a notebook (tqdm's
    ``disable=None``; not in a log file)."""
    return tqdm(in_blocks(size, length), desc=f"{name} blocks", unit="block", disable=None)


def loaded(*inputs: xr.Dataset) -> list[xr.Dataset]:
    """``inputs`` in memory, in one ``dask.compute`` (and lazily indexed ones loaded)."""
    return [ds.compute() for ds in dask.compute(*inputs)]  # compute(): lazy, not dask


class PhysicsCheckBase(ABC):
    """A check that reads its inputs once: calling it computes the variables it
    :meth:`reads` of ``forecast``, ``truth`` and ``initial`` in one ``dask.compute`` (and
    loads lazily indexed ones), then :meth:`judge` s them in memory. A check judges part
    by part; on dask data (a store opened lazily, in a notebook) each part was a compute
    of its own, the store read and the graph scheduled again each time: seconds to
    minutes a check where memory takes a fraction of a second. Data in memory (as
    :func:`verification.physics_group.physics_group` gives them) pass through unchanged.

    Dask inputs larger than ``block_bytes`` (:data:`BLOCK_BYTES`) are read and judged in
    blocks along :attr:`block_dim` (:meth:`judge_blocks`): :meth:`summarise` gives what
    each block adds up to, :meth:`combine` adds the blocks' and :meth:`conclude` judges the
    total, the results of one pass (to the round-off of the sums).
    """

    name: ClassVar[str]
    description: ClassVar[str]
    units: ClassVar[str]
    requires: ClassVar[str]
    block_dim: ClassVar[str] = INIT_TIME

    def reads(self, forecast: xr.Dataset) -> list[str]:
        """The variables of the inputs the check uses (default: every one)."""
        return [str(n) for n in forecast.data_vars]

    def __call__(
        self,
        forecast: xr.Dataset,
        truth: xr.Dataset,
        initial: xr.Dataset | None = None,
        *,
        block_bytes: int = BLOCK_BYTES,
    ) -> list[CheckResult]:
        names = self.reads(forecast)

        def used(ds: xr.Dataset) -> xr.Dataset:
            return ds[[n for n in names if n in ds.data_vars]]

        lazy = [used(forecast), used(truth)] + ([] if initial is None else [used(initial)])
        if any(is_dask(ds) for ds in lazy):
            length = block_length(lazy, self.block_dim, block_bytes)
            if length is not None:
                return self.judge_blocks(*lazy[:2], (lazy + [None])[2], length)
        forecast, truth, *rest = loaded(*lazy)
        return self.judge(forecast, truth, rest[0] if rest else None)

    @abstractmethod
    def judge(
        self, forecast: xr.Dataset, truth: xr.Dataset, initial: xr.Dataset | None
    ) -> list[CheckResult]:
        """The check's results (:class:`~verification.base.PhysicsCheck`) on inputs in
        memory."""

    def judge_blocks(
        self, forecast: xr.Dataset, truth: xr.Dataset, initial: xr.Dataset | None, length: int
    ) -> list[CheckResult]:
        """The results of dask inputs judged ``length`` initial times at a time."""
        partials = []
        for block in blocks_bar(self.name, forecast.sizes[INIT_TIME], length):
            inputs = (forecast, truth) if initial is None else (forecast, truth, initial)
            parts = [ds.isel({INIT_TIME: block}) for ds in inputs]
            f, t, *rest = loaded(*parts)
            partials.append(self.summarise(f, t, rest[0] if rest else None))
        return self.conclude(self.combine(partials))

    def summarise(self, forecast: xr.Dataset, truth: xr.Dataset, initial: xr.Dataset | None):
        """What a block of initial times in memory adds to the results."""
        raise NotImplementedError(f"{self.name} is not judged in blocks of initial times")

    def combine(self, partials: list):
        """The blocks' :meth:`summarise` s as one."""
        raise NotImplementedError

    def conclude(self, summary) -> list[CheckResult]:
        """The results from the :meth:`combine` d summary."""
        raise NotImplementedError


class TruthRelativeCheck(PhysicsCheckBase):
    """A check whose score applies to members and truth alike, part by part.

    :meth:`terms` gives sums with a ``part`` dim (levels, layers, variables), over
    everything else but ``member``, that add up over blocks of initial times;
    :meth:`from_terms` the score from them (:meth:`score`: both).
    Members are scored only where the truth exists
    (:func:`where_truth`), the truth only where some member does (:func:`where_members`).
    Tolerance rule, per part: ``max(factor × truth score, floor)``
    — a member may be at most ``factor`` times as inconsistent as the analysis, and
    ``floor`` absorbs round-off when the truth is exact (the balanced synthetic fields).
    A part whose truth score is NaN (no truth there) is "n/a", with the reason.
    """

    factor: float
    floor: float

    @abstractmethod
    def terms(self, ds: xr.Dataset) -> xr.Dataset:
        """Sums of ``ds`` by ``part`` over every other dim but ``member`` (of blocks of
        initial times, they add up to the sums over all), from which :meth:`from_terms`
        gives the score."""

    @abstractmethod
    def from_terms(self, terms: xr.Dataset) -> xr.DataArray:
        """The score by ``part`` from :meth:`terms`."""

    def score(self, ds: xr.Dataset) -> xr.DataArray:
        """The score of ``ds`` by ``part``, reduced over every other dim but ``member``."""
        return self.from_terms(self.terms(ds))

    def judge(
        self, forecast: xr.Dataset, truth: xr.Dataset, initial: xr.Dataset | None = None
    ) -> list[CheckResult]:
        analysis = truth
        truth = where_members(truth, forecast)
        truth_scores = self.score(truth).compute()
        member_scores = self.score(where_truth(forecast, truth)).compute()
        return self._results(truth_scores, member_scores, lambda: self.score(analysis))

    def summarise(
        self, forecast: xr.Dataset, truth: xr.Dataset, initial: xr.Dataset | None = None
    ) -> list[xr.Dataset]:
        masked = where_members(truth, forecast)
        return [self.terms(ds) for ds in (masked, where_truth(forecast, masked), truth)]

    def combine(self, partials: list[list[xr.Dataset]]) -> list[xr.Dataset]:
        return [sum(terms[1:], terms[0]) for terms in zip(*partials, strict=True)]

    def conclude(self, summary: list[xr.Dataset]) -> list[CheckResult]:
        truth, members, analysis = (self.from_terms(terms) for terms in summary)
        return self._results(truth, members, lambda: analysis)

    def _results(
        self, truth_scores: xr.DataArray, member_scores: xr.DataArray, analysis: Callable
    ) -> list[CheckResult]:
        results, own_scores = [], None
        for part in truth_scores[PART].values.tolist():
            members = member_scores.sel({PART: part}, drop=True)
            value = float(truth_scores.sel({PART: part}))
            if not np.isfinite(value):
                # the truth alone, not where the members are: theirs may be what is missing
                if own_scores is None:
                    own_scores = analysis().compute()
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


def largest(scores: list[xr.DataArray], labels: list[str]) -> tuple[xr.DataArray, xr.DataArray]:
    """The largest of ``scores`` (each by member; NaN where any is NaN) and, by member, the
    label of the one that gave it (``""`` where every one is NaN): which channel, lead or
    level a failing score came from."""
    stacked = xr.concat(scores, dim="_of", coords="minimal", compat="override")
    values = stacked.values.reshape(len(scores), -1)
    finite = np.isfinite(values)
    which = np.argmax(np.where(finite, values, -np.inf), axis=0)
    names = np.where(finite.any(axis=0), np.asarray(labels, dtype=object)[which], "")
    worst = stacked.isel(_of=0, drop=True).copy(data=names.reshape(stacked.shape[1:]))
    return stacked.max("_of", skipna=False), worst.astype(str)


def labelled(parts: list[xr.DataArray], labels: list[str]) -> xr.DataArray:
    """Scores of several parts as one array with a ``part`` dim of ``labels``."""
    return xr.concat(parts, dim=PART, coords="minimal", compat="override").assign_coords(
        {PART: labels}
    )
