"""The two verification interfaces: scalar ensemble scores and physical-consistency checks.

A **score** is a function ``(forecast, truth, *, member_dim, mean_over) -> DataArray``
registered with :func:`register_score` in :data:`SCORES`; the scorecard, the report and
the CLI compute every registered score. A **physics check** is a class following
:class:`PhysicsCheck` and registered with :func:`register_check` in :data:`CHECKS`; it
returns :class:`CheckResult` s, one per level, layer or variable it judges: a score per
member, the same score of the truth, and the tolerance derived from the truth; or why
the part could not be computed. Both are :class:`pipeline.registry.Registry` instances:
an unknown name fails loudly with the list of known ones.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from typing import ClassVar, Protocol

import numpy as np
import xarray as xr

from pipeline.errors import InputError
from pipeline.registry import Registry
from pipeline.schema import MEMBER


class ScoreFunction(Protocol):
    def __call__(
        self,
        forecast: xr.DataArray,
        truth: xr.DataArray,
        *,
        member_dim: str = MEMBER,
        mean_over: Iterable[Hashable] | None = None,
    ) -> xr.DataArray: ...


@dataclass(frozen=True)
class ScoreSpec:
    """A registered score: its function and how to read its value.

    ``units`` is ``"variable"`` for a score in the units of the verified variable, ``"1"``
    for a dimensionless one; ``best`` is the value of a perfect forecast (0 for errors, 1
    for a spread-skill ratio).
    """

    name: str
    function: ScoreFunction
    long_name: str
    units: str
    best: float


SCORES: Registry[ScoreSpec] = Registry("score")
"""Every registered score by name, in registration order."""


def register_score(
    name: str, *, long_name: str, units: str, best: float
) -> Callable[[ScoreFunction], ScoreFunction]:
    """Decorator: list a score function in :data:`SCORES` under ``name``, with its
    :class:`ScoreSpec`; returns the function unchanged."""

    def decorate(function: ScoreFunction) -> ScoreFunction:
        _check_signature(name, function)
        spec = ScoreSpec(name, function, long_name, units, best)
        SCORES.register(name, module=function.__module__)(spec)
        return function

    return decorate


def _check_signature(name: str, function: ScoreFunction) -> None:
    """Refuse, when it is registered, a score function that ``verify`` could not call: a
    wrong signature (an extension's, most likely) would otherwise be a TypeError traceback
    in the middle of ``wxens verify``, naming neither the score nor what a score takes."""
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):  # a builtin without a signature: let it be tried
        return
    try:
        signature.bind(None, None, member_dim=MEMBER, mean_over=None)
    except TypeError:
        where = f"{function.__module__}.{getattr(function, '__qualname__', function)}"
        raise InputError(
            f"score {name!r} ({where}) takes {signature}; a score takes (forecast, truth, *, "
            "member_dim, mean_over): give the function those parameters"
        ) from None


@dataclass(frozen=True)
class CheckResult:
    """Outcome of one physical-consistency check on one part of the data.

    member_score: (member,) the check's score of each member, aggregated over everything
                  but the part (init time, lead, grid); NaN where not computed.
    truth_score:  the same score computed on the truth at the same valid times.
    tolerance:    a member passes when ``member_score <= tolerance``; derived from the
                  truth by the rule given in ``tolerance_rule``.
    part:         what the result is for, when a check judges parts separately: a level
                  (``500 hPa``), a layer (``850-700 hPa``), a variable, a wavenumber band;
                  ``""`` for the whole.
    reason:       why the check could not be computed for this part (no truth at these
                  valid times, a single sample, ...); ``""`` when it was. A result with a
                  reason is "n/a", never a failure.
    worst:        (member,) where a member's score is the largest over several channels
                  (or leads and levels), the one that gave it (``u500``, ``t500 at 24 h``);
                  None where the score is not such a largest
                  (:func:`verification.physics.common.largest`).
    """

    name: str
    description: str
    units: str
    member_score: xr.DataArray
    truth_score: float
    tolerance: float
    tolerance_rule: str
    part: str = ""
    reason: str = ""
    worst: xr.DataArray | None = None

    @property
    def label(self) -> str:
        """The check's name and part (``geostrophic 500 hPa``)."""
        return f"{self.name} {self.part}".strip()

    @property
    def computed(self) -> bool:
        return not self.reason

    @property
    def passed(self) -> xr.DataArray:
        """(member,) whether each member is within the tolerance (False where not
        computed: read :attr:`computed` first)."""
        return self.member_score <= self.tolerance

    @property
    def pass_fraction(self) -> float:
        return float(self.passed.mean())

    @property
    def verdict(self) -> str:
        """``n/a`` (not computed), ``pass`` (every member within tolerance) or ``fail``."""
        if not self.computed:
            return "n/a"
        return "pass" if bool(self.passed.all()) else "fail"

    @classmethod
    def not_computed(
        cls, check: PhysicsCheck, members: xr.DataArray, reason: str, part: str = ""
    ) -> CheckResult:
        """An n/a result of ``check`` for ``part``: NaN scores for ``members``, and why."""
        return cls(
            name=check.name,
            description=check.description,
            units=check.units,
            member_score=xr.DataArray(
                np.full(members.shape, np.nan), dims=members.dims, coords=members.coords
            ),
            truth_score=float("nan"),
            tolerance=float("nan"),
            tolerance_rule="",
            part=part,
            reason=reason,
        )

    def to_dataset(self) -> xr.Dataset:
        """The result as a small Dataset (``member_score``, ``passed``; the rest in attrs)."""
        return xr.Dataset(
            {"member_score": self.member_score, "passed": self.passed},
            attrs={
                "name": self.name,
                "part": self.part,
                "description": self.description,
                "units": self.units,
                "truth_score": self.truth_score,
                "tolerance": self.tolerance,
                "tolerance_rule": self.tolerance_rule,
                "reason": self.reason,
            },
        )


class PhysicsCheck(Protocol):
    """A physical-consistency check of forecast members against the truth.

    ``forecast`` is a canonical forecast Dataset (``member`` plus the truth's dims);
    ``truth`` the aligned truth (no ``member``); ``initial`` the analysis at the init
    times (the truth's dims without ``lead_time``), for checks that need the starting
    state; in memory or on dask (:class:`verification.physics.common.PhysicsCheckBase`
    reads them once). ``applies`` says whether the data hold what the check needs (variables,
    levels, grid; ``requires`` says it in words), so that a scorecard runs every check that
    can run and names the others. A check returns one result per part it judges (a level,
    a layer, a variable); a part it cannot compute from these data (truth missing, a single
    sample) is a result with a ``reason``.
    """

    name: ClassVar[str]
    description: ClassVar[str]
    units: ClassVar[str]
    requires: ClassVar[str]

    def applies(self, forecast: xr.Dataset) -> bool: ...

    def __call__(
        self, forecast: xr.Dataset, truth: xr.Dataset, initial: xr.Dataset | None = None
    ) -> list[CheckResult]: ...


CHECKS: Registry[type[PhysicsCheck]] = Registry("physics check")
"""Every registered physics check class by name, in registration order."""


def register_check(cls: type[PhysicsCheck]) -> type[PhysicsCheck]:
    """Class decorator: list a physics check in :data:`CHECKS` under ``cls.name``."""
    return CHECKS.register(cls.name)(cls)
