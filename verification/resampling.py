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

from collections.abc import Hashable, Sequence

import numpy as np
import xarray as xr

from pipeline.errors import InputError

DRAW = "draw"


def block_bootstrap_means(
    per_init: xr.Dataset,
    blocks: Sequence[Hashable] | np.ndarray,
    *,
    dim: str = "init",
    draws: int = 2000,
    seed: int = 0,
) -> xr.Dataset:
    """Means over ``dim`` of ``draws`` block-bootstrap resamples of ``per_init``.

    Each resample draws B blocks with replacement from the B distinct labels of
    ``blocks`` (one label per element of ``dim``, e.g. each initial time's date) and
    takes every element of each drawn block. Its mean is
    ``sum_i c_i x_i / sum_i c_i``, ``c_i`` the number of times element ``i`` was drawn,
    computed for all resamples at once as a (draw, dim) weight matrix (``xr.dot``, so
    lazy on dask). With one element per block this is Efron's bootstrap of the mean.

    Returns the variables of ``per_init`` with ``dim`` replaced by ``draw`` (length
    ``draws``). A NaN element makes every resample that draws it NaN.
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
    counts = times_drawn[:, block_of].astype(float)
    weights = xr.DataArray(counts / counts.sum(axis=1, keepdims=True), dims=(DRAW, dim))
    return per_init.map(lambda da: xr.dot(da, weights, dim=dim))
