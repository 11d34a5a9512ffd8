"""Rank-histogram recalibration of ensemble forecasts from their own verified past.

A spread scaling sets the spread-skill ratio to 1, yet the rank histogram can stay far
from flat: a dome, or one heavy end (the truth too often among the middle members, or
too often beyond all of them). Then the shape, not only the width, of the members'
distribution is wrong. Following Hamill and Colucci (1998, Mon.
Wea. Rev. 126, 711-724), who turned the rank histogram of past forecasts into calibrated
probabilities, each forecast is remapped with the rank histogram of the forecasts that
have verified before it:

- statistics of one verified forecast (per lead, variable and level), cos-latitude
  weighted over the grid points g where the truth y is known: the share h_j of points
  where the truth has rank j among the M members (j = 0..M, rank = number of members
  below the truth), and the mean standardised excesses
  e_lo = Σ_g c_g [rank 0] (x_(1) − y)/s,  e_hi = Σ_g c_g [rank M] (y − x_(M))/s,
  with x_(k) the sorted members and s their standard deviation (ddof 1);
- their decaying average over the verified predecessors (``s + l <= t``, every time of
  day pooled: the shape is shared, and a time of day alone has too few forecasts), from
  the prior of a reliable ensemble: q = u + A_t[h − u], u_j = 1/(M+1), and
  E = ε u_0 + A_t[e − ε u_0] for each tail, ε the mean excess of a Gaussian truth beyond
  the extreme of M Gaussian members (:func:`gaussian_mean_excess`, 0.43 for M = 50);
- the recalibrated CDF F' = G∘F, F the members' CDF (piecewise linear through x_(k) at
  level k/(M+1)) and G the CDF of q (linear within each rank), with exponential tails
  beyond the extreme members of mean E/q in units of s; the new members are its
  quantiles at the levels k/(M+1), so that the truth would fall in each of the M+1 gaps
  of the new members equally often if the past holds.

The remap is monotone at every point: each member keeps its rank there, and so its
identity; only the values move. A forecast with no verified predecessor is left as it is,
bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from generators.correction.decaying_average import decaying_average
from generators.correction.spec import RANK_WEIGHT, check_weight
from pipeline.errors import InputError
from pipeline.schema import cos_latitude_weights

if TYPE_CHECKING:
    from collections.abc import Sequence

RANK_STATISTIC = "rank_statistic"
"""The dim of the M+3 statistics of :func:`rank_statistics` and of the tables."""


@cache
def gaussian_mean_excess(members: int, draws: int = 200_000) -> float:
    """E[(x_(1) − y)/s | y < x_(1)] for y and M members drawn from one normal law: how far,
    in member standard deviations, the truth of a reliable Gaussian ensemble lies beyond
    its extreme member when it does (by symmetry the same above the top one). Seeded
    Monte Carlo: 0.43 for M = 50, 0.67 for 10, 1.0 for 5."""
    rng = np.random.default_rng(0)
    total, count = 0.0, 0
    for _ in range(10):  # in blocks: M x draws/10 values at a time
        x = rng.standard_normal((draws // 10, members))
        y = rng.standard_normal(draws // 10)
        low = x.min(axis=1)
        below = y < low
        total += ((low - y) / x.std(axis=1, ddof=1))[below].sum()
        count += below.sum()
    return total / count


def rank_statistics(members: np.ndarray, truth: np.ndarray, latitude: np.ndarray) -> np.ndarray:
    """Members (..., M, H, W) and truth (..., H, W) -> (..., M+3): the weighted shares h_0..h_M
    of the truth's ranks, then e_lo and e_hi (module docstring); NaN where no truth is known.
    Ties between the truth and a member count the member as not below it."""
    m = members.shape[-3]
    if m < 2:
        raise InputError(
            f"a rank-histogram recalibration needs at least 2 members, got {m}; leave "
            "rank_weight= (--rank-weight) out for this forecast"
        )
    rank = (members < truth[..., None, :, :]).sum(axis=-3)
    known = np.isfinite(truth)
    c = cos_latitude_weights(np.asarray(latitude, dtype=np.float64))[:, None] * known
    total = c.sum(axis=(-2, -1))
    s = members.std(axis=-3, ddof=1)
    s = np.where(s > 0, s, np.inf)  # identical members: no excess to scale
    low = (members.min(axis=-3) - truth) / s
    high = (truth - members.max(axis=-3)) / s
    shares = [(c * (rank == j)).sum(axis=(-2, -1)) for j in range(m + 1)]
    tails = [
        (c * np.where(known & (rank == 0), low, 0.0)).sum(axis=(-2, -1)),
        (c * np.where(known & (rank == m), high, 0.0)).sum(axis=(-2, -1)),
    ]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.stack(shares + tails, axis=-1) / total[..., None]


def prior(members: int) -> np.ndarray:
    """(M+3,) the statistics of a reliable Gaussian ensemble: flat shares, Gaussian tails."""
    u = 1.0 / (members + 1)
    excess = gaussian_mean_excess(members) * u
    return np.concatenate([np.full(members + 1, u), [excess, excess]])


def remap(members: np.ndarray, table: np.ndarray) -> np.ndarray:
    """Members (..., M, H, W) and a table (..., M+3) of recalibration statistics (q, E_lo,
    E_hi of the module docstring) -> the members moved to the quantiles k/(M+1) of F' = G∘F,
    each keeping its rank at every point."""
    m = members.shape[-3]
    order = np.argsort(members, axis=-3)
    x = np.take_along_axis(members, order, axis=-3).astype(np.float64)
    s = x.std(axis=-3, ddof=1)
    q = table[..., : m + 1]
    edges = np.concatenate([np.zeros_like(q[..., :1]), np.cumsum(q, axis=-1)], axis=-1)
    edges /= edges[..., -1:]  # G at the levels j/(M+1), j = 0..M+1
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_low = table[..., m + 1] / q[..., 0]
        mean_high = table[..., m + 2] / q[..., m]
    grid = (..., None, None)  # a per-forecast value over the grid
    new = np.empty_like(x)
    for k in range(1, m + 1):
        p = k / (m + 1)
        j = np.clip((edges < p).sum(axis=-1) - 1, 1, m - 1)  # G_j < p <= G_(j+1)
        g0 = np.take_along_axis(edges, j[..., None], axis=-1)[..., 0]
        g1 = np.take_along_axis(edges, j[..., None] + 1, axis=-1)[..., 0]
        a = ((p - g0) / (g1 - g0))[grid]
        lower = np.take_along_axis(x, (j - 1)[grid][..., None, :, :], axis=-3)[..., 0, :, :]
        upper = np.take_along_axis(x, j[grid][..., None, :, :], axis=-3)[..., 0, :, :]
        value = lower + a * (upper - lower)
        with np.errstate(divide="ignore", invalid="ignore"):
            below = x[..., 0, :, :] - s * (mean_low * np.log(edges[..., 1] / p))[grid]
            above = x[..., -1, :, :] + s * (mean_high * np.log((1 - edges[..., m]) / (1 - p)))[grid]
        value = np.where((p <= edges[..., 1])[grid], below, value)
        value = np.where((p >= edges[..., m])[grid], above, value)
        new[..., k - 1, :, :] = value
    out = np.empty_like(new)
    np.put_along_axis(out, order, new, axis=-3)
    return out.astype(members.dtype)


@dataclass(frozen=True)
class DecayingAverageRanks:
    """Rank-histogram recalibration (module docstring), applied after the bias correction
    and spread scaling of :class:`generators.correction.bias.DecayingAverageBias`, whose
    output it learns from.

    weight: w, the weight of the newest verified forecast, in (0, 1]; every time of day
    counts, so 0.1 remembers about the last 10 forecasts of the lead (2.5 days at 6-hourly
    initial times)."""

    weight: float

    def __post_init__(self) -> None:
        check_weight(self.weight, RANK_WEIGHT)

    def to_attrs(self) -> dict[str, object]:
        return {
            "method": "decaying_average_rank_histogram",
            "weight": self.weight,
            "by": "lead, variable and level (every time of day, cos-latitude-weighted grid)",
            "reference": "Hamill and Colucci 1998, Mon. Wea. Rev. 126, 711-724",
        }

    def table(
        self,
        statistics: np.ndarray,
        inits: Sequence[pd.Timestamp],
        leads: Sequence[pd.Timedelta],
    ) -> np.ndarray:
        """Statistics (N, L, ..., M+3) of :func:`rank_statistics` (NaN: unverified) ->
        the recalibration table (N, L, ..., M+3) of each forecast, NaN where no predecessor
        has verified (the forecast is then left as it is)."""
        base = prior(statistics.shape[-1] - 3)
        verified = np.where(np.isfinite(statistics[..., :1]), 1.0, np.nan)
        averaged = decaying_average(  # the last column > 0 once a predecessor has verified
            np.concatenate([statistics - base, verified], axis=-1),
            inits,
            leads,
            self.weight,
            by_time_of_day=False,
        )
        return np.where(averaged[..., -1:] > 0, base + averaged[..., :-1], np.nan)

    def apply(self, members: np.ndarray, table: np.ndarray) -> np.ndarray:
        """Members (..., M, H, W) remapped with their table (..., M+3); where the table is
        NaN the members are returned as they are."""
        untouched = np.isnan(table).any(axis=-1)
        if untouched.all():
            return members
        moved = remap(members, np.where(untouched[..., None], prior(members.shape[-3]), table))
        return np.where(untouched[..., None, None, None], members, moved)
