"""Ensemble scores as lazy xarray functions over the numpy kernels of :mod:`.kernels`.

Every function takes ``forecast`` (with ``member_dim``) and ``truth`` (the same dims
without it), aligned on identical coordinates (see :func:`pipeline.alignment.align_with_truth`),
and wraps a kernel with ``xr.apply_ufunc(..., dask="parallelized")``: dask-backed
inputs give a lazy result computed chunk by chunk (all members of a point must share a
chunk; they are rechunked if not). Aggregation is named: ``mean_over`` dims are
averaged with :func:`verification.aggregation.mean_over` (cos-latitude weighted when
``latitude`` is among them, NaN truth skipped), ``over`` dims are counted for
histograms. NaN truths are never averaged in: they drop out of every mean, and
:func:`verification.aggregation.count_valid` says how many points a mean used.

Here: CRPS (fair and empirical), the ensemble mean's RMSE and bias, the spread and the
spread-skill ratio, the energy score. Rank histograms and their statistics are in
:mod:`verification.ranks`, threshold events (Brier score, reliability) in
:mod:`verification.events`; both wrap their kernels with :func:`ensemble_ufunc`.

Spread-skill ratio: reported **with** the finite-ensemble factor (see
:func:`spread_skill_ratio`); WeatherBench 2 reports it without.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Sequence
from typing import Any

import numpy as np
import xarray as xr

from pipeline.errors import InputError
from pipeline.schema import CHANNEL, MEMBER
from verification import kernels
from verification.aggregation import mean_over as _mean_over
from verification.base import SCORES, register_score

Dims = str | Iterable[Hashable] | None


def check_arrays(forecast: Any, truth: Any) -> None:
    """Refuse Datasets, naming the variable to pick: a score is of one variable's
    DataArray, and xarray's own error on a Dataset (from ``.rename``) does not say so."""
    for name, value in (("forecast", forecast), ("truth", truth)):
        if isinstance(value, xr.Dataset):
            first = next(iter(value.data_vars), "t2m")
            raise InputError(
                f"the {name} is a Dataset ({', '.join(map(str, value.data_vars))}): a score "
                f"takes one variable's DataArray, e.g. {name}.{first}; "
                f"verification.scorecard.verify scores every variable"
            )


def ensemble_ufunc(
    kernel: Callable[..., Any],
    forecast: xr.DataArray,
    truth: xr.DataArray,
    *extra: xr.DataArray,
    member_dim: str,
    output_dtypes: Sequence[type | np.dtype],
    core_dims: Sequence[Hashable] = (),
    **kwargs: Any,
) -> Any:
    """Apply ``kernel(members, truth, *extra, **kwargs)`` with ``member_dim`` moved last.

    ``core_dims`` are extra dims moved last on both inputs after the member dim (the
    components of a multivariate score). Inputs must have identical coordinates.
    """
    check_arrays(forecast, truth)
    if member_dim not in forecast.dims:
        raise InputError(
            f"the forecast has no member dim {member_dim!r} (its dims are "
            f"{list(forecast.dims)}); pass member_dim= or adapt the forecast with "
            f"pipeline.adapters.to_wxens_forecast"
        )
    if member_dim in truth.dims:
        raise InputError(
            f"the truth has a member dim {member_dim!r}: pass the verifying analysis, "
            f"not an ensemble, as truth"
        )
    extra_dims = [d for d in truth.dims if d not in forecast.dims]
    if extra_dims:
        raise InputError(
            f"the truth has dims {extra_dims} that the forecast lacks (forecast dims: "
            f"{list(forecast.dims)}); select or align the truth first"
        )
    if forecast.chunks is not None:
        forecast = forecast.chunk({member_dim: -1, **{d: -1 for d in core_dims}})
    if truth.chunks is not None and core_dims:
        truth = truth.chunk({d: -1 for d in core_dims})
    core = list(core_dims)
    try:
        return xr.apply_ufunc(
            kernel,
            forecast,
            truth,
            *extra,
            input_core_dims=[[member_dim, *core], core, *[[] for _ in extra]],
            output_core_dims=[[] for _ in output_dtypes],
            dask="parallelized",
            output_dtypes=list(output_dtypes),
            kwargs=kwargs,
        )
    except xr.AlignmentError as err:
        raise InputError(
            f"forecast and truth coordinates differ ({err}); align them on valid time "
            f"and grid first with pipeline.alignment.align_with_truth"
        ) from err


def titled(score: xr.DataArray, name: str, long_name: str, units: str | None) -> xr.DataArray:
    """``score`` named ``name`` with only ``long_name`` and ``units`` (none where None) for
    attrs, in place of the truth's that xarray carries through ``apply_ufunc`` and means: a
    spread-skill ratio plotted in a notebook would read "2 metre temperature [K]"."""
    result = score.rename(name).copy(deep=False)
    result.attrs = {"long_name": long_name} | ({"units": units} if units else {})
    return result


def labelled(score: xr.DataArray, name: str, truth: xr.DataArray) -> xr.DataArray:
    """``score`` :func:`titled` as the registered score ``name``: its ``long_name`` and
    units (the truth's where the score is in the variable's units, ``"1"`` where
    dimensionless)."""
    spec = SCORES[name]
    units = truth.attrs.get("units") if spec.units == "variable" else spec.units
    return titled(score, name, spec.long_name, units)


@register_score("fair_crps", long_name="fair CRPS", units="variable", best=0.0)
def fair_crps(
    forecast: xr.DataArray,
    truth: xr.DataArray,
    *,
    member_dim: str = MEMBER,
    mean_over: Dims = None,
    weights: xr.DataArray | None = None,
) -> xr.DataArray:
    """Fair (unbiased) CRPS of the ensemble, ``mean|x - y| - Σ|x_i - x_j| / (2M(M-1))``.

    The estimate of the CRPS of the distribution the members are drawn from: an
    ensemble of any size drawn from the true law scores the same on average (Ferro
    2014; Zamo & Naveau 2018; the WeatherBench 2 ``CRPS``). Computed from sorted members
    in O(M log M), see :func:`verification.kernels.crps_ensemble`. Units of the variable.
    """
    pointwise = fair_crps_by_point(forecast, truth, member_dim=member_dim)
    return labelled(_mean_over(pointwise, mean_over, weights=weights), "fair_crps", truth)


def fair_crps_by_point(
    forecast: xr.DataArray, truth: xr.DataArray, *, member_dim: str = MEMBER
) -> xr.DataArray:
    """:func:`fair_crps` at every point, before any mean (NaN where the truth or every
    member is). On dask, calls on the same inputs are one computation (one task name), so
    scores that mask or average it differently share it."""
    pointwise = ensemble_ufunc(
        kernels.crps_ensemble,
        forecast,
        truth,
        member_dim=member_dim,
        output_dtypes=[float],
        fair=True,
    )
    return labelled(pointwise, "fair_crps", truth)


@register_score(
    "ecdf_crps", long_name="CRPS of the empirical distribution", units="variable", best=0.0
)
def ecdf_crps(
    forecast: xr.DataArray,
    truth: xr.DataArray,
    *,
    member_dim: str = MEMBER,
    mean_over: Dims = None,
    weights: xr.DataArray | None = None,
) -> xr.DataArray:
    """CRPS of the ensemble's empirical CDF, ``mean|x - y| - Σ|x_i - x_j| / (2M²)``.

    The form of properscoring and xskillscore ``crps_ensemble``; it penalises small
    ensembles (its expectation exceeds the fair CRPS by ``E|X - X'| / (2M)``).
    """
    pointwise = ensemble_ufunc(
        kernels.crps_ensemble,
        forecast,
        truth,
        member_dim=member_dim,
        output_dtypes=[float],
        fair=False,
    )
    return labelled(_mean_over(pointwise, mean_over, weights=weights), "ecdf_crps", truth)


def _moments(
    forecast: xr.DataArray, truth: xr.DataArray, member_dim: str
) -> tuple[xr.DataArray, xr.DataArray]:
    return ensemble_ufunc(
        kernels.ensemble_moments,
        forecast,
        truth,
        member_dim=member_dim,
        output_dtypes=[float, float],
    )


@register_score(
    "ensemble_mean_rmse", long_name="RMSE of the ensemble mean", units="variable", best=0.0
)
def ensemble_mean_rmse(
    forecast: xr.DataArray,
    truth: xr.DataArray,
    *,
    member_dim: str = MEMBER,
    mean_over: Dims = None,
    weights: xr.DataArray | None = None,
) -> xr.DataArray:
    """``sqrt(mean_over((x̄ - y)²))``: the skill in the spread-skill ratio."""
    squared_error, _ = _moments(forecast, truth, member_dim)
    rmse = np.sqrt(_mean_over(squared_error, mean_over, weights=weights))
    return labelled(rmse, "ensemble_mean_rmse", truth)


@register_score(
    "ensemble_mean_error", long_name="mean error of the ensemble mean", units="variable", best=0.0
)
def ensemble_mean_error(
    forecast: xr.DataArray,
    truth: xr.DataArray,
    *,
    member_dim: str = MEMBER,
    mean_over: Dims = None,
    weights: xr.DataArray | None = None,
) -> xr.DataArray:
    """``mean_over(x̄ - y)``: the bias of the ensemble mean, positive where it is too high.

    A biased ensemble shows a sloped rank histogram (truth piled in one end bin) even when
    its spread matches its error (Hamill 2001, sec. 3).
    """
    error = ensemble_ufunc(
        kernels.ensemble_mean_error, forecast, truth, member_dim=member_dim, output_dtypes=[float]
    )
    return labelled(_mean_over(error, mean_over, weights=weights), "ensemble_mean_error", truth)


@register_score("ensemble_spread", long_name="ensemble spread", units="variable", best=float("nan"))
def ensemble_spread(
    forecast: xr.DataArray,
    truth: xr.DataArray,
    *,
    member_dim: str = MEMBER,
    mean_over: Dims = None,
    weights: xr.DataArray | None = None,
) -> xr.DataArray:
    """``sqrt(mean_over(s²))``, ``s²`` the unbiased (ddof=1) member variance.

    Averaged only where the truth is valid, like the skill it is compared with. The
    variance, not the standard deviation, is averaged (Fortin et al. 2014).
    """
    _, variance = _moments(forecast, truth, member_dim)
    spread = np.sqrt(_mean_over(variance, mean_over, weights=weights))
    return labelled(spread, "ensemble_spread", truth)


@register_score("spread_skill_ratio", long_name="spread-skill ratio", units="1", best=1.0)
def spread_skill_ratio(
    forecast: xr.DataArray,
    truth: xr.DataArray,
    *,
    member_dim: str = MEMBER,
    mean_over: Dims = None,
    weights: xr.DataArray | None = None,
) -> xr.DataArray:
    """``sqrt((M+1)/M) · spread / skill``, 1 for a reliable ensemble of any size M.

    For members and truth exchangeable draws of one law, the ensemble mean's error has
    ``E[(x̄ - y)²] = (1 + 1/M) σ²`` while ``E[s²] = σ²`` (Fortin et al. 2014, eq. 5 with
    the ddof=1 variance). The factor multiplies the spread **after** averaging (spread
    and skill are the square roots of the averaged variance and squared error), so the
    ratio tends to 1 for a reliable ensemble whatever M. WeatherBench 2 omits the factor
    (its ratio of a perfect 5-member ensemble is about 0.91).
    """
    squared_error, variance = _moments(forecast, truth, member_dim)
    ratio = spread_skill_from_moments(
        _mean_over(variance, mean_over, weights=weights),
        _mean_over(squared_error, mean_over, weights=weights),
        forecast.sizes[member_dim],
    )
    return labelled(ratio, "spread_skill_ratio", truth)


def spread_skill_from_moments(variance: Any, squared_error: Any, members: int) -> Any:
    """``sqrt((M+1)/M · variance / squared_error)`` from the averaged member variance
    (ddof=1) and squared error of the ensemble mean of M members: the spread-skill ratio
    of pooled or resampled averages (arrays or DataArrays alike)."""
    return kernels.spread_skill_from_moments(variance, squared_error, members)


def energy_score(
    forecast: xr.DataArray,
    truth: xr.DataArray,
    *,
    member_dim: str = MEMBER,
    component_dim: str = CHANNEL,
    fair: bool = True,
    mean_over: Dims = None,
    weights: xr.DataArray | None = None,
) -> xr.DataArray:
    """Energy score of the vector over ``component_dim`` (variables/channels) at each point.

    ``ES = mean_i ‖x_i - y‖ - Σ_ij ‖x_i - x_j‖ / (2M(M - 1))`` (fair; ``2M²`` otherwise),
    Gneiting & Raftery (2007). Components in different units should be scaled first
    (e.g. by their climatological std), or the largest dominates the norm. O(M² C).
    """
    if component_dim not in forecast.dims or component_dim not in truth.dims:
        raise InputError(
            f"energy_score needs the component dim {component_dim!r} on forecast and truth"
        )
    pointwise = ensemble_ufunc(
        kernels.energy_score,
        forecast,
        truth,
        member_dim=member_dim,
        core_dims=(component_dim,),
        output_dtypes=[float],
        fair=fair,
    )
    score = _mean_over(pointwise, mean_over, weights=weights)
    return titled(score, "energy_score", "energy score", truth.attrs.get("units"))
