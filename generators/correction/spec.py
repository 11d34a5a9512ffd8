"""What a decaying-average correction of a forecast store does, as one typed value.

:class:`CorrectionSpec` holds the weights of the three stages (bias correction, spread
scaling, rank-histogram recalibration; see :mod:`generators.correction.bias` and
:mod:`generators.correction.ranks`), their defaults and their check: the command line, the
flows and the library read them from here. This module imports nothing heavy, so a
command can read the defaults for its ``--help``.

No dataset's weights are defaults here: the weights a forecast is corrected with are the
ones ``wxens tune`` chose for its checkpoint on the checkpoint's held-out period
(:mod:`generators.correction.tuned`), else those given, else none (weight 0: the forecast
is delivered as the generator made it).
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.config_fields import settle_fields
from pipeline.errors import InputError

BIAS_WEIGHT = "bias-correction"
SPREAD_WEIGHT = "spread"
RANK_WEIGHT = "rank-recalibration"

_HINTS = {
    BIAS_WEIGHT: "bias_weight= (--bias-weight): w = 1 keeps only "
    "the newest verified error, a smaller w averages about the last 1/w forecasts of each "
    "lead and time of day",
    SPREAD_WEIGHT: "spread_weight= (--spread-weight): w = 1 keeps only the newest verified "
    "forecast, a smaller w averages about the last 1/w of each lead and time of day",
    RANK_WEIGHT: "rank_weight= (--rank-weight): w = 1 keeps only the newest verified "
    "forecast, a smaller w averages about the last 1/w of each lead, every time of day",
}


def check_weight(weight: float, stage: str, *, off: bool = False) -> None:
    """An :class:`InputError` naming the ``stage`` (:data:`BIAS_WEIGHT`,
    :data:`SPREAD_WEIGHT`, :data:`RANK_WEIGHT`), its flag and the valid range unless
    ``weight`` is in (0, 1] (in [0, 1] with ``off``, 0 meaning the stage is off)."""
    if not (0 <= weight <= 1 if off else 0 < weight <= 1):
        valid = "[0, 1] (0: off)" if off else "(0, 1]"
        raise InputError(
            f"the {stage} weight must be in {valid}, got {weight}; set it with {_HINTS[stage]}"
        )


@dataclass(frozen=True)
class CorrectionSpec:
    """The weights of the correction chain, each the weight w of the newest verified
    forecast in its decaying average, in (0, 1] (about 1/w forecasts remembered), or 0 for
    a stage that is off.

    bias_weight: the bias correction; 0 (the default): no correction at all.
    spread_weight: the spread scaling after it, or None (or 0) to keep the spread.
    rank_weight: the rank-histogram recalibration after both, or None (or 0) to keep the
    members' distribution.

    Built into the correction the library applies by
    :meth:`generators.correction.bias.DecayingAverageBias.from_spec`."""

    bias_weight: float = 0.0
    spread_weight: float | None = None
    rank_weight: float | None = None

    def __post_init__(self) -> None:
        settle_fields(self)
        check_weight(self.bias_weight, BIAS_WEIGHT, off=True)
        for name, stage in (("spread_weight", SPREAD_WEIGHT), ("rank_weight", RANK_WEIGHT)):
            weight = getattr(self, name)
            if weight is not None:
                check_weight(weight, stage, off=True)
                if weight == 0:  # off, spelt one way
                    object.__setattr__(self, name, None)
        if not self.applies and (self.spread_weight or self.rank_weight):
            raise InputError(
                "the spread and rank weights act on the bias-corrected forecast: give a bias "
                "weight in (0, 1] with them, bias_weight= (--bias-weight), or leave them out"
            )

    @property
    def applies(self) -> bool:
        """Whether the chain changes a forecast at all (a bias weight above 0)."""
        return self.bias_weight > 0

    def label(self) -> str:
        """``W``, ``W:S``, ``W:S:R`` or ``W::R``: the weights in the form the studies use
        (``0``: no correction)."""
        parts = [self.bias_weight, self.spread_weight, self.rank_weight]
        while parts[-1] is None:
            parts.pop()
        return ":".join("" if p is None else f"{p:g}" for p in parts)

    def describe(self) -> str:
        """The weights in words: ``bias weight W, spread weight S, rank weight R``, the
        stages off left out."""
        return f"bias weight {self.bias_weight:g}" + "".join(
            f", {what} weight {weight:g}"
            for what, weight in (("spread", self.spread_weight), ("rank", self.rank_weight))
            if weight is not None
        )


@dataclass(frozen=True)
class CorrectionByVariable:
    """The weights of each variable's correction chain, ``(variable, spec)`` pairs (a spec
    whose bias weight is 0 leaves that variable as the generator made it): ``wxens tune``
    of a model of several variables chooses them variable by variable, each on its own
    cross-validated scores pooled over its levels, since one set of weights serves every
    variable only as well as their mean (:mod:`generators.correction.select_weights`)."""

    specs: tuple[tuple[str, CorrectionSpec], ...]

    def __post_init__(self) -> None:
        names = [name for name, _ in self.specs]
        if not names or len(set(names)) != len(names):
            raise InputError(f"give each variable's correction weights once, got {names}")

    @property
    def applies(self) -> bool:
        """Whether the chain changes a forecast at all (a bias weight above 0 somewhere)."""
        return any(spec.applies for _, spec in self.specs)

    def label(self) -> str:
        """``VARIABLE LABEL`` of each variable (:meth:`CorrectionSpec.label`), comma-separated."""
        return ", ".join(f"{name} {spec.label()}" for name, spec in self.specs)

    def describe(self) -> str:
        """Each variable's weights in words (:meth:`CorrectionSpec.describe`; ``none`` where
        its bias weight is 0)."""
        return "weights by variable: " + "; ".join(
            f"{name} {spec.describe() if spec.applies else 'none'}" for name, spec in self.specs
        )

    def of(self, variable: str) -> CorrectionSpec:
        """The weights of ``variable``'s chain; InputError for a variable not given."""
        specs = dict(self.specs)
        if variable not in specs:
            raise InputError(
                f"the correction weights name the variables {list(specs)}, not {variable!r}: "
                "correct the forecast of the model they were tuned for, or tune again "
                "(`wxens tune`)"
            )
        return specs[variable]


Correction = CorrectionSpec | CorrectionByVariable
"""Weights of the correction chain: one set for every variable, or a set per variable."""


CANDIDATES = {
    "bias": (0.05, 0.1, 0.2, 0.4),
    "spread": (0.1, 0.3, 0.7),
    "rank": (0.05, 0.1, 0.2),
}
"""The candidate weights ``wxens tune`` tries for each stage by default: memories of about
2.5 to 20 verified forecasts."""
