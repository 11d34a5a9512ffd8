"""Sampling uncertainty of a score: the block bootstrap over initial times.

Scores of a few dozen initial times carry sampling noise, and forecasts a few hours
apart share their weather, so their errors are not independent draws. The block
bootstrap (Künsch 1989; Wilks 2011, *Statistical Methods in the Atmospheric Sciences*,
sec. 5.3.5) resamples whole blocks (the initial times of one day, say) with replacement,
which keeps the dependence inside a block. A score that is a function of means over
initial times (fair CRPS; the spread-skill ratio from the mean variance and the mean
squared error) is recomputed from the means of each resample, and the percentiles of
those draws give its interval.
"""

from __future__ import annotations

import warnings
from collections.abc import Hashable, Sequence

import numpy as np
import xarray as xr

from pipeline.errors import InputError
from pipeline.schema import INIT_TIME
from verification import scores as vs
from verification.aggregation import mean_over as mean_over_dims

DRAW = "draw"
#: Fewer blocks than this give an interval not to read as uncertainty (a rule of thumb, not a
#: cited bound): B blocks give at most C(2B-1, B) distinct resamples (3 for 2 blocks, 126 for
#: 5), so the percentiles are those of a handful of values (from 2 blocks, the two blocks'
#: own means), and the bootstrap variance of a mean is (B-1)/B of the sample's, too narrow.
MIN_READABLE_BLOCKS = 10


def block_bootstrap_means(
    per_init: xr.Dataset,
    blocks: Sequence[Hashable] | np.ndarray,
    *,
    dim: str = INIT_TIME,
    draws: int = 2000,
    seed: int = 0,
    weights: xr.DataArray | None = None,
) -> xr.Dataset:
    """Means over ``dim`` of ``draws`` block-bootstrap resamples of ``per_init``.

    Each resample draws B blocks with replacement from the B distinct labels of
    ``blocks`` (one label per element of ``dim``, e.g. each initial time's date) and
    takes every element of each drawn block. Its mean is
    ``sum_i c_i a_i x_i / sum_i c_i a_i``, ``c_i`` the number of times element ``i`` was
    drawn and ``a_i`` its weight (``weights`` along ``dim``, e.g. the share of the grid an
    initial time verifies, :func:`score_parts`; default 1), computed for all resamples at
    once from a (draw, dim) count matrix (``xr.dot``, so lazy on dask). With one element
    per block and equal weights this is Efron's bootstrap of the mean.

    Returns the variables of ``per_init`` with ``dim`` replaced by ``draw`` (length
    ``draws``). NaN elements (no truth to verify) are skipped, as in
    :func:`verification.aggregation.mean_over`; a resample of NaN only is NaN.
    """
    if dim not in per_init.dims:
        raise InputError(
            f"block_bootstrap_means: dim {dim!r} is not in the data (its dims are "
            f"{list(per_init.dims)}); name the dim of the initial times"
        )
    labels = np.asarray(blocks)
    n = per_init.sizes[dim]
    if labels.shape != (n,):
        raise InputError(
            f"block_bootstrap_means: {labels.size} block labels for {n} elements of {dim!r}; "
            "give one label per element (e.g. the date of each initial time)"
        )
    if draws < 1:
        raise InputError(f"block_bootstrap_means: draws={draws}; ask for at least one")
    _, block_of = np.unique(labels, return_inverse=True)
    n_blocks = block_of.max() + 1
    picks = np.random.default_rng(seed).integers(n_blocks, size=(draws, n_blocks))
    times_drawn = np.stack([np.bincount(row, minlength=n_blocks) for row in picks])
    counts = xr.DataArray(times_drawn[:, block_of].astype(float), dims=(DRAW, dim))

    def mean(da: xr.DataArray) -> xr.DataArray:
        valid = da.notnull() if weights is None else da.notnull() * weights
        total = xr.dot(valid, counts, dim=dim)  # 0 in a resample of NaN only: NaN, unwarned
        return xr.dot(da.fillna(0.0) * valid, counts, dim=dim) / total.where(total > 0)

    return per_init.map(mean)


def score_parts(
    forecast: xr.DataArray,
    truth: xr.DataArray,
    *,
    mean_over: Sequence[Hashable],
    member_dim: str = "member",
) -> xr.Dataset:
    """The parts of the scores :func:`score_intervals` resamples, averaged over
    ``mean_over`` (the grid) and kept along every other dim (the initial times):
    ``fair_crps``, ``variance`` (member variance, ddof=1) and ``squared_error`` (of the
    ensemble mean), and ``weight``: the share of the grid's (cos-latitude) weight each
    verifies (:func:`verified_share`), so that their weighted mean over initial times is the
    score's mean over initial times and grid together. Lazy on dask; shares its kernels
    with the scores of the same inputs."""
    kwargs = {"member_dim": member_dim, "mean_over": mean_over}
    return xr.Dataset(
        {
            "fair_crps": vs.fair_crps(forecast, truth, **kwargs),
            "variance": vs.ensemble_spread(forecast, truth, **kwargs) ** 2,
            "squared_error": vs.ensemble_mean_rmse(forecast, truth, **kwargs) ** 2,
            "weight": verified_share(forecast, truth, mean_over, member_dim=member_dim),
        }
    )


def verified_share(
    forecast: xr.DataArray,
    truth: xr.DataArray,
    mean_over: Sequence[Hashable],
    *,
    member_dim: str = "member",
) -> xr.DataArray:
    """The (cos-latitude) weighted share of the points over ``mean_over`` where the truth
    and some member are valid (where the scores have a value): the weight of a grid mean
    when grid means of initial times that verify different shares of the grid (a truth
    missing in part) are averaged."""
    valid = truth.notnull() & forecast.notnull().any(member_dim)
    return mean_over_dims(valid.astype(float), mean_over)


def score_intervals(
    per_init: xr.Dataset,
    members: int,
    blocks: Sequence[Hashable] | np.ndarray,
    *,
    dim: str = INIT_TIME,
    level: float = 0.9,
    draws: int = 2000,
    seed: int = 0,
) -> xr.Dataset:
    """Percentile intervals (``level``, two-sided) of the mean fair CRPS and of the
    spread-skill ratio from the block bootstrap of their per-initial-time parts.

    ``per_init`` holds, along ``dim``, each initial time's grid means ``fair_crps``,
    ``variance`` (member variance, ddof=1) and ``squared_error`` (of the ensemble mean),
    and optionally their ``weight``, as :func:`score_parts` gives them; ``members`` is M.
    Each resample gives ``mean(fair_crps)`` and
    ``sqrt((M+1)/M · mean(variance) / mean(squared_error))``. Returns ``fair_crps`` and
    ``spread_skill_ratio`` (only where ``per_init`` holds ``variance``: a CRPS alone, as
    ``wxens compare`` pairs two files' by their difference, has none) with a ``quantile``
    dim (the two bounds) in place of ``dim``;
    NaN where fewer than two blocks hold a value (one block resamples to itself every
    time: a zero-width interval that would claim a certainty the sample cannot give).
    """
    if not 0 < level < 1:
        raise InputError(f"score_intervals: level={level}; give a coverage between 0 and 1")
    spread = "variance" in per_init
    means = block_bootstrap_means(
        per_init[["fair_crps", *(["variance", "squared_error"] if spread else [])]],
        blocks,
        dim=dim,
        draws=draws,
        seed=seed,
        weights=per_init.get("weight"),
    )
    scores = xr.Dataset({"fair_crps": means["fair_crps"]})
    if spread:
        scores["spread_skill_ratio"] = vs.spread_skill_from_moments(
            means["variance"], means["squared_error"], members
        )
    with warnings.catch_warnings():  # a score undefined in every draw (one member: the
        # spread; a lead without truth) has an undefined interval, NaN as intended
        warnings.filterwarnings("ignore", "All-NaN slice", RuntimeWarning)
        bounds = scores.quantile([(1 - level) / 2, (1 + level) / 2], dim=DRAW)
    return bounds.where(blocks_with_values(per_init["fair_crps"], blocks, dim=dim) >= 2)


def blocks_with_values(da: xr.DataArray, blocks: Sequence[Hashable] | np.ndarray, *, dim: str):
    """How many of the distinct ``blocks`` (one label per element of ``dim``) hold a value
    (not NaN) of ``da``, along its other dims; lazy on dask."""
    _, block_of = np.unique(np.asarray(blocks), return_inverse=True)
    member_of = xr.DataArray(np.eye(block_of.max() + 1)[block_of], dims=(dim, "block"))
    return (xr.dot(da.notnull().astype(float), member_of, dim=dim) > 0).sum("block")
