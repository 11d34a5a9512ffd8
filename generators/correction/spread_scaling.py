"""The spread scaling stage of the decaying-average correction chain
(:class:`DecayingAverageSpread`): the factor k that sets each forecast's spread-skill ratio
over the domain to 1, from the decaying average of its verified predecessors' errors after
the bias correction. Applied by :class:`generators.correction.bias.DecayingAverageBias`
after the bias and before the rank recalibration (:mod:`generators.correction.ranks`); kept
apart as that stage is, so that the bias module holds the chain and its application to
forecasts. Unlike :mod:`generators.correction.spread`'s fixed factors it follows the
recent errors."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from generators.correction.decaying_average import decaying_average
from generators.correction.spec import SPREAD_WEIGHT, check_weight
from pipeline.schema import cos_latitude_weights
from verification.kernels import spread_skill_from_moments


@dataclass(frozen=True)
class DecayingAverageSpread:
    """Spread scaling from the recent errors, applied after the bias correction: each
    forecast's deviations from its ensemble mean are scaled by

        k_t = sqrt( M/(M+1) · Σ_g c_g A_t[(x̄ - b - y)²]_g / Σ_g c_g A_t[var_m x]_g ),

    A_t the decaying average (weight w) of :func:`decaying_average` over the verified
    predecessors of the same lead and time of day, x̄ - b - y their ensemble-mean errors
    after the bias correction each had (none for the first ones, whose errors keep the
    spread of the next few forecasts wide while the bias is being learnt), var_m x (ddof 1)
    their ensemble variances, g the grid points,
    c_g = cos(latitude), M the members; k = 1 with no verified predecessor. One k per
    forecast, lead, variable and level, from the predecessors of its time of day: their
    spread-skill ratio over the domain (with the finite-ensemble factor of Fortin et al.
    2014, :func:`verification.kernels.spread_skill_from_moments`) set to 1.
    Unlike the fixed factors of :mod:`generators.correction.spread` it follows a change of
    regime, as the bias does; the domain mean keeps k steady where a point's error is
    a handful of numbers.

    weight: w, the weight of the newest verified forecast, in (0, 1]."""

    weight: float

    def __post_init__(self) -> None:
        check_weight(self.weight, SPREAD_WEIGHT)

    def to_attrs(self) -> dict[str, object]:
        return {
            "method": "decaying_average_spread_skill",
            "weight": self.weight,
            "by": "lead, initial time of day, variable and level (domain mean)",
        }

    def factor(
        self,
        errors: np.ndarray,
        variances: np.ndarray,
        inits: Sequence[pd.Timestamp],
        leads: Sequence[pd.Timedelta],
        latitude: np.ndarray,
        members: int,
    ) -> np.ndarray:
        """Bias-corrected ensemble-mean errors and ensemble variances (N, L, ..., lat, lon)
        (errors NaN: unverified) -> k (N, L, ...)."""
        errors = np.asarray(errors, dtype=np.float64)
        variances = np.where(np.isnan(errors), np.nan, variances)  # skipped together
        c = cos_latitude_weights(np.asarray(latitude, dtype=np.float64))[:, None]
        squared = (decaying_average(errors**2, inits, leads, self.weight) * c).mean((-2, -1))
        spread = (decaying_average(variances, inits, leads, self.weight) * c).mean((-2, -1))
        with np.errstate(divide="ignore", invalid="ignore"):  # 0 error: k = 0; 0/0: k = 1
            ratio = spread_skill_from_moments(spread, squared, members)
        return np.divide(1.0, ratio, out=np.ones_like(spread), where=spread > 0)
