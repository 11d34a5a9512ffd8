"""Ensemble scores as lazy xarray functions over the numpy kernels of :mod:`.kernels`.

Every function takes ``forecast`` (with ``member_dim``) and ``truth`` (the same dims
without it), aligned on identical coordinates (see :func:`pipeline.adapters.align_with_truth`),
and wraps a kernel with ``xr.apply_ufunc(..., dask="parallelized")``: dask-backed
inputs give a lazy result computed chunk by chunk (all members of a point must share a
chunk; they are rechunked if not). Aggregation is named: ``mean_over`` dims are
averaged with :func:`verification.aggregation.mean_over` (cos-latitude weighted when
``latitude`` is among them, NaN truth skipped), ``over`` dims are counted for
histograms. NaN truths are never averaged in: they drop out of every mean, and
:func:`verification.aggregation.count_valid` says how many points a mean used.

Spread-skill ratio: reported **with** the finite-ensemble factor (see
:func:`spread_skill_ratio`); WeatherBench 2 reports it without.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Sequence
from typing import Any

import dask.array
import numpy as np
import scipy.stats
import xarray as xr

from pipeline.errors import InputError
from pipeline.schema import CHANNEL, HORIZONTAL, INIT_TIME, MEMBER
from verification import kernels
from verification.aggregation import check_dims, dims_tuple
from verification.aggregation import mean_over as _mean_over
from verification.base import register_score

Dims = str | Iterable[Hashable] | None
RANK = "rank"
THRESHOLD = "threshold"
PROBABILITY = "forecast_probability"


def _ensemble_ufunc(
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
            f"and grid first with pipeline.adapters.align_with_truth"
        ) from err


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
    pointwise = _ensemble_ufunc(
        kernels.crps_ensemble,
        forecast,
        truth,
        member_dim=member_dim,
        output_dtypes=[float],
        fair=True,
    )
    return _mean_over(pointwise, mean_over, weights=weights).rename("fair_crps")


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
    pointwise = _ensemble_ufunc(
        kernels.crps_ensemble,
        forecast,
        truth,
        member_dim=member_dim,
        output_dtypes=[float],
        fair=False,
    )
    return _mean_over(pointwise, mean_over, weights=weights).rename("ecdf_crps")


def _moments(
    forecast: xr.DataArray, truth: xr.DataArray, member_dim: str
) -> tuple[xr.DataArray, xr.DataArray]:
    return _ensemble_ufunc(
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
    return np.sqrt(_mean_over(squared_error, mean_over, weights=weights)).rename(
        "ensemble_mean_rmse"
    )


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
    error = _ensemble_ufunc(
        kernels.ensemble_mean_error, forecast, truth, member_dim=member_dim, output_dtypes=[float]
    )
    return _mean_over(error, mean_over, weights=weights).rename("ensemble_mean_error")


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
    return np.sqrt(_mean_over(variance, mean_over, weights=weights)).rename("ensemble_spread")


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
    return spread_skill_from_moments(
        _mean_over(variance, mean_over, weights=weights),
        _mean_over(squared_error, mean_over, weights=weights),
        forecast.sizes[member_dim],
    ).rename("spread_skill_ratio")


def spread_skill_from_moments(variance: Any, squared_error: Any, members: int) -> Any:
    """``sqrt((M+1)/M · variance / squared_error)`` from the averaged member variance
    (ddof=1) and squared error of the ensemble mean of M members: the spread-skill ratio
    of pooled or resampled averages (arrays or DataArrays alike)."""
    return kernels.spread_skill_from_moments(variance, squared_error, members)


def _point_index(truth: xr.DataArray) -> xr.DataArray:
    """A global flat index of every point of ``truth``, chunked like it (lazy if it is)."""
    index: xr.DataArray | int = 0
    stride = 1
    for dim in reversed(truth.dims):
        n = truth.sizes[dim]
        values: Any = np.arange(n, dtype=np.int64) * stride
        if truth.chunks is not None:
            values = dask.array.from_array(values, chunks=(truth.chunksizes[dim],))
        index = index + xr.DataArray(values, dims=(dim,))
        stride *= n
    return index.transpose(*truth.dims)


def ranks(
    forecast: xr.DataArray, truth: xr.DataArray, *, member_dim: str = MEMBER, seed: int = 0
) -> xr.DataArray:
    """Rank of the truth among the members at every point, 0..M; -1 where excluded.

    Ties are broken at random from ``seed`` and each point's position, the same draw
    in memory and on dask whatever the chunks; points with a NaN truth or NaN member
    are excluded (-1). See :func:`verification.kernels.rank_of_truth`.
    """
    return _ensemble_ufunc(
        kernels.rank_of_truth,
        forecast,
        truth,
        _point_index(truth),
        member_dim=member_dim,
        output_dtypes=[np.int16],
        seed=seed,
    ).rename("rank")


def _count_values(values: xr.DataArray, n: int, dim: str, coords: Any, over: Dims) -> xr.DataArray:
    """Counts of the integers 0..n-1 in ``values`` over ``over`` dims (negatives ignored)."""
    over = dims_tuple(over)
    check_dims(values, over, "over")
    one_hot = values == xr.DataArray(np.arange(n, dtype=values.dtype), dims=(dim,))
    return one_hot.sum(over).assign_coords({dim: coords})


def rank_histogram(
    forecast: xr.DataArray,
    truth: xr.DataArray,
    *,
    member_dim: str = MEMBER,
    over: Dims = None,
    seed: int = 0,
) -> xr.DataArray:
    """Counts of the truth's rank 0..M (dim ``rank``), summed over the ``over`` dims.

    Rank 0: the truth is below every member; M: above every member. A flat histogram,
    each count ``N/(M+1)``, is necessary for reliability (Hamill 2001); U-shaped means
    under-dispersive, dome-shaped over-dispersive, sloped biased. Excluded points (NaN
    truth or member) are not counted. xskillscore numbers the same ranks 1..M+1.
    """
    m = forecast.sizes[member_dim]
    r = ranks(forecast, truth, member_dim=member_dim, seed=seed)
    return _count_values(r, m + 1, RANK, np.arange(m + 1), over).rename("rank_histogram")


def rank_flatness(counts: xr.DataArray, *, rank_dim: str = RANK) -> xr.Dataset:
    """Flatness statistics of rank-histogram counts.

    χ² = Σ_k (s_k - e)² / e with e = N/(M+1), M degrees of freedom, and its p-value
    (the chance of a χ² at least this large from a flat histogram of independent ranks);
    Candille & Talagrand (2005) δ = χ²/M, about 1 when reliable. Spatially or serially
    correlated ranks inflate both: test flatness on independent samples.
    Returns a Dataset of ``chi_square, p_value, delta, n`` over the remaining dims.
    """
    counts = counts.astype(float)
    m = counts.sizes[rank_dim] - 1
    n = counts.sum(rank_dim)
    expected = n / (m + 1)
    chi_square = ((counts - expected) ** 2 / expected).sum(rank_dim)
    p_value = xr.apply_ufunc(scipy.stats.chi2.sf, chi_square, kwargs={"df": m}, dask="parallelized")
    return xr.Dataset(
        {"chi_square": chi_square, "p_value": p_value, "delta": chi_square / m, "n": n}
    )


def rank_max_min_ratio(counts: xr.DataArray, *, rank_dim: str = RANK) -> xr.DataArray:
    """Largest over smallest count of a rank histogram, over ``rank_dim``.

    1 for a flat histogram; ``inf`` where a rank never occurs. A noisy statistic: its
    value for a reliable ensemble grows with the number of bins and with the spatial and
    temporal correlation of the pooled ranks, see :func:`perfect_model_rank_histogram`.
    """
    largest, smallest = counts.max(rank_dim), counts.min(rank_dim)
    ratio = largest.astype(float) / smallest.where(smallest > 0)
    return ratio.fillna(np.inf).rename("rank_max_min")


def perfect_model_rank_histogram(
    forecast: xr.DataArray,
    truth: xr.DataArray,
    *,
    member_dim: str = MEMBER,
    over: Dims = None,
    stand_ins: int = 5,
    seed: int = 0,
) -> xr.DataArray:
    """Rank histograms of member ``k`` standing in for the truth among the other members.

    For ``k < stand_ins``: the rank of member ``k`` among the remaining M - 1 members
    (M bins, dim ``rank``), counted over ``over`` where ``truth`` is valid, with
    tie-breaking seed ``seed + k``; stacked along dim ``stand_in``. A member is by
    construction drawn from the ensemble's own law, so these are the histograms of a
    perfectly reliable ensemble with the forecast's own spatial and temporal dependence
    and sample size: the sampling noise that flatness statistics of the real histogram
    (:func:`rank_max_min_ratio`, :func:`rank_flatness`) must be read against (the
    perfect-model approach, e.g. Leutbecher 2019, Q. J. R. Meteorol. Soc.).
    Needs M ≥ 3; ``stand_ins`` is capped at M - 1.
    """
    m = forecast.sizes[member_dim]
    if m < 3 or stand_ins < 1:
        raise InputError(
            f"a perfect-model rank histogram needs at least 3 members and 1 stand-in "
            f"(got {m} members, stand_ins={stand_ins})"
        )
    index = _point_index(truth)
    histograms = []
    for k in range(min(stand_ins, m - 1)):
        r = _ensemble_ufunc(
            kernels.rank_among_others,
            forecast,
            truth,
            index,
            member_dim=member_dim,
            output_dtypes=[np.int16],
            k=k,
            seed=seed + k,
        )
        histograms.append(_count_values(r, m, RANK, np.arange(m), over))
    return xr.concat(histograms, dim="stand_in").rename("perfect_model_rank_histogram")


def error_surrogate_rank_histogram(
    error: xr.DataArray,
    members: int,
    *,
    sample_dim: str = INIT_TIME,
    field_dims: Sequence[str] = HORIZONTAL,
    replicas: int = 5,
    seed: int = 0,
) -> xr.DataArray:
    """Rank histograms of a perfectly reliable ensemble whose fields correlate in space as
    the forecast's errors do.

    ``error``: ensemble-mean error fields ``x̄ − y`` (NaN where unverified), one per
    ``sample_dim`` (N, the init times) over ``field_dims``. Each replica draws, for every
    sample, a truth and ``members`` members as independent zero-mean Gaussian fields with
    the errors' empirical covariance ``Σ_n (e_n − ē)(e_n − ē)ᵀ / (N − 1)`` and counts the
    truth's rank at every point verified in all samples
    (:func:`verification.kernels.error_surrogate_rank_counts`); stacked along dim
    ``replica``, bins along dim ``rank`` (``members + 1``).

    :func:`perfect_model_rank_histogram` gives the noise floor of a rank-histogram
    statistic for the members' own spatial dependence. Where the ensemble-mean error is
    coherent over the domain (a domain-wide warm or cold night) but the members' spread is
    not, that floor is too low: the truth's ranks at all points move together, and a
    reliable ensemble shows a rougher histogram on the same sample. This floor is what such
    an ensemble shows. Samples are drawn independently, so where errors persist from one
    init time to the next the real floor is higher still (the sampling of flatness
    statistics under correlation: Wilks 2019, Mon. Wea. Rev. 147, 763-769). Cost:
    replicas · N² · (M + 1) · P multiply-adds (P points); computed in memory (the error
    fields, not the members).
    """
    if members < 1 or replicas < 1:
        raise InputError(
            f"an error-surrogate rank histogram needs at least 1 member and 1 replica "
            f"(got members={members}, replicas={replicas})"
        )
    core = [sample_dim, *field_dims]
    check_dims(error, core, "sample_dim and field_dims")
    error = error.transpose(..., *core).load()

    def counts(values: np.ndarray) -> np.ndarray:
        flat = values.reshape(*values.shape[: -len(field_dims)], -1)
        return kernels.error_surrogate_rank_counts(
            flat, members=members, replicas=replicas, seed=seed
        )

    histogram = xr.apply_ufunc(
        counts, error, input_core_dims=[core], output_core_dims=[["replica", RANK]]
    )
    return histogram.assign_coords({RANK: np.arange(members + 1)}).rename(
        "error_surrogate_rank_histogram"
    )


def _threshold_array(thresholds: float | Sequence[float] | xr.DataArray) -> xr.DataArray:
    if isinstance(thresholds, xr.DataArray):
        if THRESHOLD not in thresholds.dims:
            raise InputError(
                f"thresholds need a {THRESHOLD!r} dim; got dims {list(thresholds.dims)}"
            )
        return thresholds
    values = np.atleast_1d(np.asarray(thresholds, dtype=float))
    return xr.DataArray(values, dims=(THRESHOLD,), coords={THRESHOLD: values})


def brier_score(
    forecast: xr.DataArray,
    truth: xr.DataArray,
    thresholds: float | Sequence[float] | xr.DataArray,
    *,
    fair: bool = False,
    member_dim: str = MEMBER,
    mean_over: Dims = None,
    weights: xr.DataArray | None = None,
) -> xr.DataArray:
    """Brier score of the events ``value > threshold`` (strict), with a ``threshold`` dim.

    ``p = #{x_i > τ} / M``, ``o = 1{y > τ}``, ``BS = (p - o)²``; the fair form subtracts
    ``e(M - e)/(M²(M - 1))`` (Ferro 2014), see :func:`verification.kernels.brier_score`.
    ``thresholds`` may be numbers or a DataArray with a ``threshold`` dim and any dims of
    the truth (e.g. one threshold per ``channel``).
    """
    pointwise = _ensemble_ufunc(
        kernels.brier_score,
        forecast,
        truth,
        _threshold_array(thresholds),
        member_dim=member_dim,
        output_dtypes=[float],
        fair=fair,
    )
    return _mean_over(pointwise, mean_over, weights=weights).rename("brier_score")


def reliability(
    forecast: xr.DataArray,
    truth: xr.DataArray,
    thresholds: float | Sequence[float] | xr.DataArray,
    *,
    member_dim: str = MEMBER,
    over: Dims = None,
) -> xr.Dataset:
    """Reliability-diagram table of the events ``value > threshold``, binned at p = k/M.

    Dims: the remaining ones plus ``threshold`` and ``forecast_probability`` (k/M,
    k = 0..M). Variables: ``count`` (forecasts issued with that probability),
    ``event_count`` (of them, how many saw the event), ``observed_frequency``
    (their ratio, NaN for an empty bin). A reliable ensemble has observed frequency
    equal to forecast probability. Points with a NaN truth or member are left out.
    """
    m = forecast.sizes[member_dim]
    exceed, event = _ensemble_ufunc(
        kernels.reliability_counts,
        forecast,
        truth,
        _threshold_array(thresholds),
        member_dim=member_dim,
        output_dtypes=[np.int16, np.int8],
    )
    probabilities = np.arange(m + 1) / m
    count = _count_values(exceed, m + 1, PROBABILITY, probabilities, over)
    one_hot_events = (
        exceed == xr.DataArray(np.arange(m + 1, dtype=np.int16), dims=(PROBABILITY,))
    ) & (event == 1)
    event_count = one_hot_events.sum(dims_tuple(over)).assign_coords({PROBABILITY: probabilities})
    return xr.Dataset(
        {
            "count": count,
            "event_count": event_count,
            "observed_frequency": event_count / count.where(count > 0),
        }
    )


def murphy_decomposition(table: xr.Dataset) -> xr.Dataset:
    """Brier score = reliability - resolution + uncertainty, from a :func:`reliability` table.

    REL = Σ_k n_k (p_k - ō_k)² / N, RES = Σ_k n_k (ō_k - ō)² / N, UNC = ō (1 - ō)
    (Murphy 1973); exact here because the bins are the ensemble's own probabilities k/M.
    """
    n_k = table["count"]
    n = n_k.sum(PROBABILITY)
    base_rate = table["event_count"].sum(PROBABILITY) / n
    p_k = table[PROBABILITY]
    o_k = table["observed_frequency"].fillna(0.0)
    rel = (n_k * (p_k - o_k) ** 2).sum(PROBABILITY) / n
    res = (n_k * (o_k - base_rate) ** 2).sum(PROBABILITY) / n
    unc = base_rate * (1 - base_rate)
    return xr.Dataset(
        {"reliability": rel, "resolution": res, "uncertainty": unc, "brier_score": rel - res + unc}
    )


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
    pointwise = _ensemble_ufunc(
        kernels.energy_score,
        forecast,
        truth,
        member_dim=member_dim,
        core_dims=(component_dim,),
        output_dtypes=[float],
        fair=fair,
    )
    return _mean_over(pointwise, mean_over, weights=weights).rename("energy_score")
