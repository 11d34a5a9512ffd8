"""Named aggregation: every average in verification goes through :func:`mean_over`.

A score is computed point by point, then reduced over the dims the caller names
(``mean_over=("init_time", "latitude", "longitude")``); nothing is averaged that was
not asked for. Averages over ``latitude`` are weighted by cos(latitude), normalised,
so that a global mean is an area mean. NaN points (a missing truth) are skipped, the
weights renormalised over the valid ones, and counted by :func:`count_valid`. Histograms
(of ranks, of forecast probabilities) are counted over named dims by :func:`count_values`.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from typing import Any

import numpy as np
import xarray as xr

from pipeline.errors import InputError
from pipeline.schema import LAT, cos_latitude_weights


def dims_tuple(dims: str | Iterable[Hashable] | None) -> tuple[Hashable, ...]:
    """``None`` -> ``()``, ``"latitude"`` -> ``("latitude",)``, a sequence -> a tuple."""
    if dims is None:
        return ()
    if isinstance(dims, str):
        return (dims,)
    return tuple(dims)


def check_dims(da: xr.DataArray, dims: Iterable[Hashable], what: str) -> None:
    """Raise an :class:`InputError` naming the dims of ``da`` that are missing."""
    missing = [d for d in dims if d not in da.dims]
    if missing:
        raise InputError(
            f"{what}: dims {missing} are not in the data (its dims are {list(da.dims)}); "
            f"name only dims the forecast has"
        )


def latitude_weights(latitude: xr.DataArray) -> xr.DataArray:
    """cos(latitude) weights normalised to mean 1 over the given latitudes.

    The area of a regular latitude-longitude cell is proportional to cos(φ) to first
    order (WeatherBench 2 uses the exact sin φ_{j+½} - sin φ_{j-½}; the two agree to
    O(Δφ²) away from the poles, where the cos weight goes to 0).
    """
    return cos_latitude_weights(latitude)


def mean_over(
    da: xr.DataArray,
    dims: str | Iterable[Hashable] | None,
    *,
    weights: xr.DataArray | None = None,
) -> xr.DataArray:
    """Weighted mean of ``da`` over ``dims``, skipping NaN points.

    .. math:: \\bar s = \\sum_p w_p s_p / \\sum_{p\\,:\\,s_p\\ \\text{valid}} w_p

    ``weights`` defaults to :func:`latitude_weights` when ``latitude`` is among ``dims``
    and to equal weights otherwise. Lazy when ``da`` is dask-backed. With no dims the
    score is returned unchanged.
    """
    dims = dims_tuple(dims)
    if not dims:
        return da
    check_dims(da, dims, "mean_over")
    if weights is None and LAT in dims:
        if LAT not in da.coords:  # da[LAT] would be the positions 0, 1, 2, ...
            raise InputError(
                f"mean_over {list(dims)}: {LAT} has no coordinate values, and the "
                "cos-latitude weights need them; assign them (.assign_coords(latitude=...))"
            )
        weights = latitude_weights(da[LAT])
    if weights is None:
        return da.mean(dims, skipna=True)
    return da.weighted(weights).mean(dims, skipna=True)


def mean_terms(
    da: xr.DataArray, dims: str | Iterable[Hashable]
) -> tuple[xr.DataArray, xr.DataArray]:
    """The two sums whose ratio is :func:`mean_over` ``(da, dims)``: the weighted sum of
    the valid points and the sum of their weights (0 where none is valid). Sums over
    blocks of ``dims`` (of initial times) add up to those over all of it, so a mean over
    data larger than memory is computed block by block (:func:`mean_of` of the totals)."""
    dims = dims_tuple(dims)
    check_dims(da, dims, "mean_terms")
    weights = latitude_weights(da[LAT]) if LAT in dims else xr.ones_like(da[dims[0]])
    weighted = da.weighted(weights)
    return weighted.sum(dims, skipna=True), weighted.sum_of_weights(dims).fillna(0.0)


def mean_of(total: xr.DataArray, weight: xr.DataArray) -> xr.DataArray:
    """The mean from :func:`mean_terms`' sums: NaN where no point was valid."""
    return total / weight.where(weight != 0.0)


def count_valid(da: xr.DataArray, dims: str | Iterable[Hashable] | None) -> xr.DataArray:
    """Number of non-NaN points of ``da`` over ``dims`` (what a mean actually averaged)."""
    dims = dims_tuple(dims)
    check_dims(da, dims, "count_valid")
    return da.notnull().sum(dims) if dims else da.notnull()


def count_values(
    values: xr.DataArray,
    n: int,
    dim: str,
    coords: Any,
    over: str | Iterable[Hashable] | None,
) -> xr.DataArray:
    """Counts of the integers 0..n-1 in ``values`` over ``over`` dims (negatives ignored)."""
    over = dims_tuple(over)
    check_dims(values, over, "over")
    one_hot = values == xr.DataArray(np.arange(n, dtype=values.dtype), dims=(dim,))
    return one_hot.sum(over).assign_coords({dim: coords})
