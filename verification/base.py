"""The two verification interfaces: scalar ensemble scores and physical-consistency checks.

A **score** is a function ``(forecast, truth, *, member_dim, mean_over) -> DataArray``
registered with :func:`register_score` in :data:`SCORES`; the scorecard, the report and
the CLI compute every registered score. A **physics check** is a class following
:class:`PhysicsCheck` and registered with :func:`register_check` in :data:`CHECKS`; it
returns a :class:`CheckResult`: a score per member, the same score of the truth, and the
tolerance derived from the truth. Both are :class:`pipeline.registry.Registry` instances:
an unknown name fails loudly with the list of known ones.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from typing import ClassVar, Protocol

import xarray as xr

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
        SCORES.register(name)(ScoreSpec(name, function, long_name, units, best))
        return function

    return decorate


@dataclass(frozen=True)
class CheckResult:
    """Outcome of one physical-consistency check.

    member_score: (member,) the check's score of each member, aggregated over everything
                  else (init time, lead, grid).
    truth_score:  the same score computed on the truth at the same valid times.
    tolerance:    a member passes when ``member_score <= tolerance``; derived from the
                  truth by the rule given in ``tolerance_rule``.
    """

    name: str
    description: str
    units: str
    member_score: xr.DataArray
    truth_score: float
    tolerance: float
    tolerance_rule: str

    @property
    def passed(self) -> xr.DataArray:
        """(member,) whether each member is within the tolerance."""
        return self.member_score <= self.tolerance

    @property
    def pass_fraction(self) -> float:
        return float(self.passed.mean())

    def to_dataset(self) -> xr.Dataset:
        """The result as a small Dataset (``member_score``, ``passed``; the rest in attrs)."""
        return xr.Dataset(
            {"member_score": self.member_score, "passed": self.passed},
            attrs={
                "name": self.name,
                "description": self.description,
                "units": self.units,
                "truth_score": self.truth_score,
                "tolerance": self.tolerance,
                "tolerance_rule": self.tolerance_rule,
            },
        )


class PhysicsCheck(Protocol):
    """A physical-consistency check of forecast members against the truth.

    ``forecast`` is a canonical forecast Dataset (``member`` plus the truth's dims);
    ``truth`` the aligned truth (no ``member``); ``initial`` the analysis at the init
    times (the truth's dims without ``lead_time``), for checks that need the starting
    state. ``applies`` says whether the data hold what the check needs (variables,
    levels, grid), so that a scorecard runs every check that can run and names the others.
    """

    name: ClassVar[str]
    description: ClassVar[str]

    def applies(self, forecast: xr.Dataset) -> bool: ...

    def __call__(
        self, forecast: xr.Dataset, truth: xr.Dataset, initial: xr.Dataset | None = None
    ) -> CheckResult: ...


CHECKS: Registry[type[PhysicsCheck]] = Registry("physics check")
"""Every registered physics check class by name, in registration order."""


def register_check(cls: type[PhysicsCheck]) -> type[PhysicsCheck]:
    """Class decorator: list a physics check in :data:`CHECKS` under ``cls.name``."""
    return CHECKS.register(cls.name)(cls)
