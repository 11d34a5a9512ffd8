"""Rank histograms and their statistics: how often the truth falls below, among or above
the members, and how far the counts are from flat.

:func:`ranks` gives the truth's rank among the members at every point (ties broken at
random, reproducibly), :func:`rank_histogram` counts them over named dims;
:func:`rank_flatness` (χ², Candille-Talagrand δ) and :func:`rank_max_min_ratio` read a
histogram; :func:`perfect_model_rank_histogram` and :func:`error_surrogate_rank_histogram`
give the histograms of a reliable ensemble on the same sample, the noise floor those
statistics are read against. Lazy xarray wrappers of :mod:`verification.kernels`, as
in :mod:`verification.scores`.
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections.abc import Sequence
from typing import Any

import dask.array
import numpy as np
import xarray as xr

from pipeline.errors import InputError
from pipeline.schema import HORIZONTAL, INIT_TIME, MEMBER
from verification import kernels
from verification.aggregation import check_dims, count_values
from verification.scores import Dims, check_arrays, ensemble_ufunc, titled

log = logging.getLogger(__name__)

RANK = "rank"


def _point_key(truth: xr.DataArray) -> xr.DataArray:
    """A 64-bit key of every point of ``truth`` from its labels, chunked like it (lazy if
    it is): the XOR over its dims of :func:`~verification.kernels.mix64` of the dim's name
    hashed with the point's coordinate value there (its position where the dim has no
    coordinate). The key, and so the tie-break draw, belongs to the point — its initial
    time, lead, variable, latitude, longitude — not to its place in the array: a
    transpose, a subset, another order of leads or other chunks draw the same."""
    key: xr.DataArray | None = None
    # the data's chunks: ``truth.chunksizes`` also reads its coordinates', and raises where
    # they differ (an aligned truth's valid times chunked whole, its data by init time)
    data_chunks = truth.chunks
    chunks = dict(zip(truth.dims, data_chunks, strict=True)) if data_chunks is not None else {}
    for dim in sorted(map(str, truth.dims)):
        part: Any = kernels.mix64(_label_keys(truth, dim) ^ _text_key(dim))
        if chunks:
            part = dask.array.from_array(part, chunks=(chunks[dim],))
        part = xr.DataArray(part, dims=(dim,))
        key = part if key is None else key ^ part
    assert key is not None, "a point key needs at least one dim"
    return key.transpose(*truth.dims)


def _label_keys(truth: xr.DataArray, dim: str) -> np.ndarray:
    """The uint64 key of each label of ``dim``: the bits of a time, timedelta, integer or
    float label (-0.0 taken as 0.0), a hash of a text label, or the position."""
    if dim not in truth.coords:
        return np.arange(truth.sizes[dim], dtype=np.uint64)
    labels = truth[dim].values
    if labels.dtype.kind in "Mmiu":
        return labels.astype(np.int64).view(np.uint64)
    if labels.dtype.kind == "f":
        return (labels.astype(np.float64) + 0.0).view(np.uint64)
    return np.array([_text_key(str(label)) for label in labels], dtype=np.uint64)


def _text_key(text: str) -> np.uint64:
    """A uint64 hash of ``text`` that is the same in every process (``hash`` is not)."""
    digest = hashlib.blake2b(text.encode(), digest_size=8).digest()
    return np.frombuffer(digest, dtype=np.uint64)[0]


def ranks(
    forecast: xr.DataArray, truth: xr.DataArray, *, member_dim: str = MEMBER, seed: int = 0
) -> xr.DataArray:
    """Rank of the truth among the members at every point, 0..M; -1 where excluded.

    Ties are broken at random from ``seed`` and each point's labels (its coordinate
    values: the same draw whatever the layout, subset or chunks, in memory and on dask);
    points with a NaN truth or NaN member are excluded (-1). See
    :func:`verification.kernels.rank_of_truth`.
    """
    check_arrays(forecast, truth)  # before the point keys of the truth
    rank = ensemble_ufunc(
        kernels.rank_of_truth,
        forecast,
        truth,
        _point_key(truth),
        member_dim=member_dim,
        output_dtypes=[np.int16],
        seed=seed,
    )
    return titled(rank, "rank", "rank of the truth among the members", "1")


def rank_histogram(
    forecast: xr.DataArray,
    truth: xr.DataArray,
    *,
    member_dim: str = MEMBER,
    mean_over: Dims = None,
    seed: int = 0,
) -> xr.DataArray:
    """Counts of the truth's rank 0..M (dim ``rank``), summed over the ``mean_over`` dims
    (the dims the scores average over: the keyword every score takes).

    Rank 0: the truth is below every member; M: above every member. A flat histogram,
    each count ``N/(M+1)``, is necessary for reliability (Hamill 2001); U-shaped means
    under-dispersive, dome-shaped over-dispersive, sloped biased. Excluded points (NaN
    truth or member) are not counted. xskillscore numbers the same ranks 1..M+1.
    """
    m = forecast.sizes[member_dim]
    r = ranks(forecast, truth, member_dim=member_dim, seed=seed)
    counts = count_values(r, m + 1, RANK, np.arange(m + 1), mean_over)
    return titled(counts, "rank_histogram", "rank histogram counts", "1")


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
    # an empty histogram (a lead with no verified point) has no flatness, not a perfect one
    chi_square = ((counts - expected) ** 2 / expected).sum(rank_dim).where(n > 0)
    import scipy.stats  # here, not at the top: 0.5 s of every command's start (-X importtime)

    p_value = xr.apply_ufunc(scipy.stats.chi2.sf, chi_square, kwargs={"df": m}, dask="parallelized")
    statistics = {
        "chi_square": (chi_square, "rank histogram χ²"),
        "p_value": (p_value, "rank histogram flatness p-value (independent ranks assumed)"),
        "delta": (chi_square / m, "Candille-Talagrand δ"),
        "n": (n, "ranks counted"),
    }
    return xr.Dataset({k: titled(v, k, about, "1") for k, (v, about) in statistics.items()})


def rank_max_min_ratio(counts: xr.DataArray, *, rank_dim: str = RANK) -> xr.DataArray:
    """Largest over smallest count of a rank histogram, over ``rank_dim``.

    1 for a flat histogram; ``inf`` where a rank never occurs; NaN for an empty histogram
    (nothing verified). A noisy statistic: its
    value for a reliable ensemble grows with the number of bins and with the spatial and
    temporal correlation of the pooled ranks, see :func:`perfect_model_rank_histogram`.
    """
    largest, smallest = counts.max(rank_dim), counts.min(rank_dim)
    ratio = largest.astype(float) / smallest.where(smallest > 0)
    ratio = ratio.fillna(np.inf).where(largest > 0)
    return titled(ratio, "rank_max_min", "rank histogram max/min bin ratio", "1")


def perfect_model_rank_histogram(
    forecast: xr.DataArray,
    truth: xr.DataArray,
    *,
    member_dim: str = MEMBER,
    mean_over: Dims = None,
    stand_ins: int = 5,
    seed: int = 0,
) -> xr.DataArray:
    """Rank histograms of member ``k`` standing in for the truth among the other members.

    For ``k < stand_ins``: the rank of member ``k`` among the remaining M - 1 members
    (M bins, dim ``rank``), counted over ``mean_over`` where ``truth`` is valid, with
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
    key = _point_key(truth)
    histograms = []
    for k in range(min(stand_ins, m - 1)):
        r = ensemble_ufunc(
            kernels.rank_among_others,
            forecast,
            truth,
            key,
            member_dim=member_dim,
            output_dtypes=[np.int16],
            k=k,
            seed=seed + k,
        )
        histograms.append(count_values(r, m, RANK, np.arange(m), mean_over))
    stacked = xr.concat(histograms, dim="stand_in")
    about = "rank histogram counts of members standing in for the truth"
    return titled(stacked, "perfect_model_rank_histogram", about, "1")


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
    histogram = histogram.assign_coords({RANK: np.arange(members + 1)})
    about = "rank histogram counts of a reliable ensemble with the errors' correlation"
    return titled(histogram, "error_surrogate_rank_histogram", about, "1")


ERROR_FLOOR = "rank_max_min_error_surrogate"
"""The scorecard's error-correlation floor of ``rank_max_min``: the median over replicas
of :func:`error_surrogate_rank_histogram`'s ratios."""
PASS_FACTOR = 1.1
"""The project's pass rule: ``rank_max_min`` at most this multiple of :data:`ERROR_FLOOR`."""
PASSES = "rank_max_min_passes"


def with_rank_pass(card: xr.Dataset) -> xr.Dataset:
    """``card`` with :data:`PASSES`: 1 where ``rank_max_min`` is at most :data:`PASS_FACTOR`
    x its error-correlation floor, 0 where above, NaN where either is NaN (nothing
    verified); ``card`` as it is without that floor (``error_surrogate_replicas=0``).
    Read against this floor, not the perfect-model one, which misses errors coherent over
    the domain (:func:`error_surrogate_rank_histogram`): a reliable ensemble fails that."""
    if ERROR_FLOOR not in card or "rank_max_min" not in card:
        return card
    ratio, floor = card["rank_max_min"], card[ERROR_FLOOR]
    passes = (ratio <= PASS_FACTOR * floor).astype(float).where(ratio.notnull() & floor.notnull())
    about = f"rank_max_min at most {PASS_FACTOR:g} x {ERROR_FLOOR}"
    return card.assign({PASSES: passes.assign_attrs(long_name=about, units="1")})


def pass_text(value: float) -> str:
    """A :data:`PASSES` value in words: ``yes``, ``no``, or ``n/a`` (NaN: nothing verified)."""
    return "n/a" if np.isnan(value) else ("yes" if value else "no")


DEFAULT_ERROR_REPLICAS = 20
"""Replicas of the error floor (:func:`error_surrogate_rank_histogram`) by default, where
they cost at most :data:`DEFAULT_ERROR_WORK`."""
DEFAULT_ERROR_WORK = 3e10
"""The most multiply-adds (``replicas · N² · (M + 1) · points``, over every lead and variable)
the error floor takes unasked: about half a minute of CPU at the 0.7-1.2e9 a second measured
(``benchmarks/results/verify_error_floor.json``: +7.2 s on a 40 x 60 grid of 16 inits, 50
members, 5 leads). It grows as the square of the init times N: a season of 1° global fields
would take hours, so above it the default skips the floor and says what it would cost."""


def error_floor_replicas(
    asked: int | None, forecast: xr.DataArray, grid: Sequence[str], mean_over: Sequence[str]
) -> int:
    """The replicas of the error floor to draw for ``forecast`` (dims init_time, member,
    ``grid``...): ``asked`` where given (0 skips it); by default :data:`DEFAULT_ERROR_REPLICAS`
    where they cost at most :data:`DEFAULT_ERROR_WORK`, else 0, logged with the cost and the
    way to ask for it; 0 where the scores are not averaged over init times on a grid."""
    if INIT_TIME not in mean_over or not grid:
        return 0
    if asked is not None:
        return asked
    sizes = dict(forecast.sizes)
    samples, members = sizes.pop(INIT_TIME), sizes.pop(MEMBER)
    work = DEFAULT_ERROR_REPLICAS * samples**2 * (members + 1) * math.prod(sizes.values())
    if work <= DEFAULT_ERROR_WORK:
        return DEFAULT_ERROR_REPLICAS
    log.warning(
        "the rank max/min's error floor is skipped: %d replicas would take about %.2g "
        "multiply-adds (%d init times, squared, x %d members x %d values each), some %.0f "
        "min of CPU; ask for it with error_surrogate_replicas=N (--error-surrogate-replicas N), "
        "or verify fewer init times",
        DEFAULT_ERROR_REPLICAS, work, samples, members + 1, math.prod(sizes.values()),
        work / 1e9 / 60,
    )  # fmt: skip
    return 0
