"""Scores of threshold events ``value > threshold``: the Brier score, the reliability
table and its Murphy decomposition.

The thresholds are numbers or a DataArray with a ``threshold`` dim (one per channel,
say); the ensemble's event probability is the share of members above the threshold.
Lazy xarray wrappers of :mod:`verification.kernels`, as in :mod:`verification.scores`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import xarray as xr

from pipeline.errors import InputError
from pipeline.schema import MEMBER
from verification import kernels
from verification.aggregation import count_values, dims_tuple
from verification.aggregation import mean_over as _mean_over
from verification.scores import Dims, ensemble_ufunc, titled

THRESHOLD = "threshold"
PROBABILITY = "forecast_probability"
BRIER = "Brier score"


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
    pointwise = ensemble_ufunc(
        kernels.brier_score,
        forecast,
        truth,
        _threshold_array(thresholds),
        member_dim=member_dim,
        output_dtypes=[float],
        fair=fair,
    )
    return titled(_mean_over(pointwise, mean_over, weights=weights), "brier_score", BRIER, "1")


def reliability(
    forecast: xr.DataArray,
    truth: xr.DataArray,
    thresholds: float | Sequence[float] | xr.DataArray,
    *,
    member_dim: str = MEMBER,
    mean_over: Dims = None,
) -> xr.Dataset:
    """Reliability-diagram table of the events ``value > threshold``, binned at p = k/M.

    Dims: the remaining ones plus ``threshold`` and ``forecast_probability`` (k/M,
    k = 0..M). Variables: ``count`` (forecasts issued with that probability),
    ``event_count`` (of them, how many saw the event), ``observed_frequency``
    (their ratio, NaN for an empty bin). A reliable ensemble has observed frequency
    equal to forecast probability. Points with a NaN truth or member are left out.
    """
    m = forecast.sizes[member_dim]
    exceed, event = ensemble_ufunc(
        kernels.reliability_counts,
        forecast,
        truth,
        _threshold_array(thresholds),
        member_dim=member_dim,
        output_dtypes=[np.int16, np.int8],
    )
    probabilities = np.arange(m + 1) / m
    count = count_values(exceed, m + 1, PROBABILITY, probabilities, mean_over)
    one_hot_events = (
        exceed == xr.DataArray(np.arange(m + 1, dtype=np.int16), dims=(PROBABILITY,))
    ) & (event == 1)
    event_count = one_hot_events.sum(dims_tuple(mean_over))
    event_count = event_count.assign_coords({PROBABILITY: probabilities})
    frequency = event_count / count.where(count > 0)
    return xr.Dataset(
        {
            "count": titled(count, "count", "forecasts issued with this probability", "1"),
            "event_count": titled(
                event_count, "event_count", "forecasts of this probability that saw the event", "1"
            ),
            "observed_frequency": titled(
                frequency, "observed_frequency", "observed frequency of the event", "1"
            ),
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
    terms = {
        "reliability": (rel, "reliability term of the Brier score"),
        "resolution": (res, "resolution term of the Brier score"),
        "uncertainty": (unc, "uncertainty term of the Brier score"),
        "brier_score": (rel - res + unc, BRIER),
    }
    return xr.Dataset({k: titled(v, k, about, "1") for k, (v, about) in terms.items()})
