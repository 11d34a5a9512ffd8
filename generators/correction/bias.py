"""Decaying-average bias correction of ensemble forecasts from their own verified past.

For each lead l, initial time of day and grid point, the bias applied to the forecast of
initial time t is the decaying average of the ensemble-mean errors ``e_s = x̄_s - y_s`` of
the earlier forecasts of the same lead and time of day that have verified by t
(``s + l <= t``), folded in order of s:

    b <- (1 - w) b + w e_s,   b = 0 before the first one,

and every member of forecast t is shifted by ``-b``; the spread is unchanged unless a
spread scaling is asked for (:mod:`generators.correction.spread_scaling`, the same
recursion on the squared errors and the ensemble variances). ``w`` is the
weight of the newest error (the e-folding memory is about 1/w forecasts). This is NCEP's
decaying-average bias correction of the NAEFS ensembles (Cui, Toth, Zhu and Hou 2012,
Weather and Forecasting 27, 396-410; w = 0.02 there for a long archive; shorter
records and regime changes want larger w). Only truths valid at or before t enter the
correction of t, as in an operational run; an initial time with no verified predecessor
is left as it is, and missing truths are skipped.

A generator trained on a few weeks of data learns the diurnal cycle of those weeks;
on days whose cycle is wider (clear nights, sunny afternoons) its ensemble mean errs by
the time of day, which piles the truth into one end of the rank histogram whatever the
spread. The correction learns that error from the last few days. What remains of the
error then varies from one initial time to the next more than the members do on days like
these, which the spread scaling follows. The shape of the members' distribution can still
be wrong with the right width; a rank-histogram recalibration
(:mod:`generators.correction.ranks`) learns it from the same verified past, last.
"""

from __future__ import annotations

import json
import logging
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
import xarray as xr

from generators.correction.decaying_average import (
    decaying_average,
    say_uncorrected,
)
from generators.correction.ranks import RANK_STATISTIC, DecayingAverageRanks, rank_statistics
from generators.correction.raw import NONE_CHOSEN, open_raw
from generators.correction.spec import BIAS_WEIGHT, Correction, CorrectionSpec, check_weight
from generators.correction.spread_scaling import DecayingAverageSpread
from pipeline.alignment import align_with_truth
from pipeline.errors import InputError
from pipeline.forecast_store import (
    ForecastProvenance,
    check_extends,
    write_forecast,
)
from pipeline.progress import dask_bar
from pipeline.schema import (
    INIT_TIME,
    LAT,
    LEAD_TIME,
    LEVEL,
    LON,
    MEMBER,
    TIME,
    VALID_TIME,
)
from pipeline.store import AnalysisStore, open_store

log = logging.getLogger(__name__)

NO_CORRECTION = (
    "the correction weights are 0 (no correction): give a bias weight in (0, 1], "
    "bias_weight= (--bias-weight), or the checkpoint whose tuned weights to use (`wxens tune`)"
)


@dataclass(frozen=True)
class DecayingAverageBias:
    """weight: w, the weight of the newest verified error, in (0, 1]; spread: the spread
    scaling applied after the bias, or None to keep the spread; ranks: the rank-histogram
    recalibration applied after both, or None."""

    weight: float
    spread: DecayingAverageSpread | None = None
    ranks: DecayingAverageRanks | None = None

    def __post_init__(self) -> None:
        check_weight(self.weight, BIAS_WEIGHT)

    @classmethod
    def with_weights(
        cls, weight: float, spread_weight: float | None = None, rank_weight: float | None = None
    ) -> DecayingAverageBias:
        """The bias weight and, unless None, a :class:`DecayingAverageSpread` weight and a
        :class:`~generators.correction.ranks.DecayingAverageRanks` weight."""
        return cls(
            weight,
            None if spread_weight is None else DecayingAverageSpread(spread_weight),
            None if rank_weight is None else DecayingAverageRanks(rank_weight),
        )

    @classmethod
    def from_spec(cls, spec: CorrectionSpec) -> DecayingAverageBias:
        """The correction chain of ``spec``: its bias weight, and its spread scaling and rank
        recalibration where it gives their weights. InputError for a spec that corrects
        nothing (bias weight 0)."""
        if not spec.applies:
            raise InputError(NO_CORRECTION)
        return cls.with_weights(spec.bias_weight, spec.spread_weight, spec.rank_weight)

    def to_attrs(self) -> dict[str, object]:
        attrs: dict[str, object] = {
            "method": "decaying_average",
            "weight": self.weight,
            "by": "lead, initial time of day, grid point",
            "reference": "Cui et al. 2012, Wea. Forecasting 27, 396-410",
        }
        if self.spread is not None:
            attrs["spread"] = self.spread.to_attrs()
        if self.ranks is not None:
            attrs["ranks"] = self.ranks.to_attrs()
        return attrs

    def bias(
        self, errors: np.ndarray, inits: Sequence[pd.Timestamp], leads: Sequence[pd.Timedelta]
    ) -> np.ndarray:
        """Errors of the ensemble mean (N, L, ...) (NaN: unverified) at ``inits`` (N) and
        ``leads`` (L) -> the bias b (N, L, ...) to subtract from each forecast's members."""
        return decaying_average(errors, inits, leads, self.weight)

    def adjustments(
        self,
        errors: np.ndarray,
        variances: np.ndarray | None,
        inits: Sequence[pd.Timestamp],
        leads: Sequence[pd.Timedelta],
        latitude: np.ndarray,
        members: int,
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Ensemble-mean errors (N, L, ..., lat, lon) and, with a spread scaling, ensemble
        variances of the same shape -> the bias b (N, L, ..., lat, lon) and the spread
        factor k (N, L, ...) or None."""
        bias = self.bias(errors, inits, leads)
        if self.spread is None:
            return bias, None
        factor = self.spread.factor(errors - bias, variances, inits, leads, latitude, members)
        return bias, factor

    def correct(
        self,
        members: np.ndarray,
        truth: np.ndarray,
        inits: Sequence[pd.Timestamp],
        leads: Sequence[pd.Timedelta],
        latitude: np.ndarray,
    ) -> np.ndarray:
        """Members (N, M, L, ..., lat, lon) and truth (N, L, ..., lat, lon) as arrays ->
        corrected members, x̄ - b + k (x - x̄), computed as x - b + (k - 1)(x - x̄) so that
        a forecast left as it is (b = 0, k = 1) keeps its members bit for bit; then
        remapped by the rank-histogram recalibration, if any."""
        mean = members.mean(axis=1)
        variances = members.var(axis=1, ddof=1) if self.spread is not None else None
        bias, factor = self.adjustments(
            mean - truth, variances, inits, leads, latitude, members.shape[1]
        )
        if factor is None:
            out = members - bias[:, None]
        else:
            k = factor[:, None, ..., None, None]
            out = members - bias[:, None] + (k - 1) * (members - mean[:, None])
        if self.ranks is None:
            return out
        out = np.moveaxis(out, 1, -3)  # (N, L, ..., M, lat, lon)
        table = self.ranks.table(rank_statistics(out, truth, latitude), inits, leads)
        return np.moveaxis(self.ranks.apply(out, table), -3, 1)


class Corrected(NamedTuple):
    """:func:`bias_correct`'s result: the corrected forecast, the bias b removed (dims of
    the forecast without ``member``), the spread factor k (also without the grid), or
    None without a spread scaling, and the rank-recalibration tables (dims of k and
    ``rank_statistic``, NaN where left as drawn), or None without one."""

    forecast: xr.Dataset
    bias: xr.Dataset
    spread_factor: xr.Dataset | None
    rank_table: xr.Dataset | None = None


Chains = DecayingAverageBias | Mapping[str, DecayingAverageBias | None]
"""The correction of a forecast: one chain for every variable, or each variable's own
(None: that variable left as the generator made it)."""


def chains_of(spec: Correction, variables: Sequence[str]) -> Chains:
    """The chain of ``spec`` (:meth:`DecayingAverageBias.from_spec`), or for weights by
    variable each of ``variables``' chain, None where its bias weight is 0; InputError
    where none corrects anything, or ``spec`` lacks one of ``variables``."""
    if not spec.applies:
        raise InputError(NO_CORRECTION)
    if isinstance(spec, CorrectionSpec):
        return DecayingAverageBias.from_spec(spec)
    specs = {name: spec.of(name) for name in variables}
    return {
        name: DecayingAverageBias.from_spec(one) if one.applies else None
        for name, one in specs.items()
    }


def recalibrate_ranks(
    members: xr.DataArray,
    truth: xr.DataArray,
    ranks: DecayingAverageRanks,
    inits: pd.DatetimeIndex,
    leads: pd.TimedeltaIndex,
) -> tuple[xr.DataArray, xr.DataArray]:
    """Members (``init_time, member, lead_time, ..., latitude, longitude``, lazy or not)
    remapped by ``ranks`` against ``truth`` on their grid -> the remapped members (lazy
    where the members are: one forecast at a time) and the tables. The statistics of every
    forecast are computed in memory (M+3 numbers per forecast and level)."""
    core = [MEMBER, LAT, LON]
    statistics = xr.apply_ufunc(
        rank_statistics,
        members,
        truth,
        kwargs={"latitude": members[LAT].values},
        input_core_dims=[core, [LAT, LON]],
        output_core_dims=[[RANK_STATISTIC]],
        dask="parallelized",
        dask_gufunc_kwargs={"output_sizes": {RANK_STATISTIC: members.sizes[MEMBER] + 3}},
        output_dtypes=[np.float64],
    )
    statistics = statistics.transpose(INIT_TIME, LEAD_TIME, ..., RANK_STATISTIC).compute()
    table = statistics.copy(data=ranks.table(statistics.values, inits, leads))
    remapped = xr.apply_ufunc(
        ranks.apply,
        members,
        table,
        input_core_dims=[core, [RANK_STATISTIC]],
        output_core_dims=[core],
        dask="parallelized",
        output_dtypes=[members.dtype],
    )
    return remapped.transpose(*members.dims), table


def bias_correct(
    forecast: xr.Dataset, truth: xr.Dataset, correction: Chains
) -> Corrected:
    """The wxens forecast (dims ``init_time, member, lead_time, [level], latitude,
    longitude``) with every variable's members corrected to x̄ - b + k (x - x̄) by
    ``correction`` (k = 1 without a spread scaling; by variable: each by its own chain, a
    variable of none left as it is, and absent from the biases), the errors taken against the
    analysis ``truth`` at each valid time, on the analysis grid (coordinates in its
    convention). Lazy in the members; the ensemble means, variances and errors
    (init_time x lead_time x grid per variable) are computed in memory. The corrected
    forecast's attrs record the correction (``wxens_bias_correction``)."""
    # every forecast variable, or an InputError naming those the truth lacks
    aligned = align_with_truth(forecast, truth, variables=list(forecast.data_vars), pending_ok=True)
    check_whole_forecast(forecast, aligned.forecast)
    corrected, biases, factors, tables = aligned.forecast.copy(), {}, {}, {}
    inits = pd.DatetimeIndex(corrected[INIT_TIME].values)
    leads = pd.TimedeltaIndex(corrected[LEAD_TIME].values)
    latitude = corrected[LAT].values
    for name, members in aligned.forecast.data_vars.items():
        chain = correction[name] if isinstance(correction, Mapping) else correction
        if chain is None:
            continue
        mean = members.mean(MEMBER)
        errors = (mean - aligned.truth[name]).transpose(INIT_TIME, LEAD_TIME, ..., LAT, LON)
        moments = {"error": errors}
        if chain.spread is not None:
            moments["variance"] = members.var(MEMBER, ddof=1).transpose(*errors.dims)
        with warnings.catch_warnings():  # a masked field's points without members: NaN
            warnings.filterwarnings("ignore", "invalid value encountered", RuntimeWarning)
            moments = xr.Dataset(moments).compute()  # one pass over the members for both
        errors = moments["error"]
        variances = moments["variance"].values if "variance" in moments else None
        bias, factor = chain.adjustments(
            errors.values, variances, inits, leads, latitude, members.sizes[MEMBER]
        )
        biases[name] = xr.DataArray(
            bias.astype(members.dtype), dims=errors.dims, coords=errors.coords
        )
        if factor is None:
            corrected[name] = members - biases[name]
        else:
            dims = errors.dims[:-2]
            factors[name] = xr.DataArray(factor, dims=dims, coords={d: errors[d] for d in dims})
            deviations = (factors[name] - 1) * (members - mean)  # as in correct()
            corrected[name] = (members - biases[name] + deviations).astype(members.dtype)
        corrected[name] = corrected[name].transpose(*members.dims)
        if chain.ranks is not None:
            corrected[name], tables[name] = recalibrate_ranks(
                corrected[name], aligned.truth[name], chain.ranks, inits, leads
            )
        corrected[name].attrs = members.attrs
    corrected.attrs = _with_correction(forecast.attrs, correction)
    return Corrected(
        corrected,
        xr.Dataset(biases),
        xr.Dataset(factors) if factors else None,
        xr.Dataset(tables) if tables else None,
    )


def check_whole_forecast(forecast: xr.Dataset, on_truth: xr.Dataset) -> None:
    """InputError unless ``on_truth``, the forecast as paired with the truth, keeps every
    grid point and level of ``forecast``: the corrected forecast would hold only those the
    truth holds (a regional analysis, or fewer levels), the rest lost without a word."""
    lost = [
        f"{on_truth.sizes.get(dim, 0)} of its {forecast.sizes[dim]} {what}"
        for dim, what in ((LAT, "latitudes"), (LON, "longitudes"), (LEVEL, "levels"))
        if dim in forecast.dims and on_truth.sizes.get(dim, 0) != forecast.sizes[dim]
    ]
    if lost:
        raise InputError(
            f"the truth holds only {', '.join(lost)} of the forecast: its corrected store would "
            "lose the others; give the analysis store of the forecast's grid and levels (the "
            "one it was made from)"
        )


def bias_correct_store(
    forecast: str | Path,
    truth: str | Path | AnalysisStore,
    out: str | Path,
    spec: Correction,
    *,
    progress: bool = False,
) -> Corrected:
    """``wxens bias-correct``: the complete initial times of the forecast store ``forecast``
    corrected by the chain of ``spec`` (:func:`chains_of`: by variable, each its own) against the
    analysis store ``truth`` into the forecast store ``out`` (created, or the initial times
    whose correction changed overwritten, new ones appended), its provenance the raw's plus the
    correction. Returns :func:`bias_correct`'s result.

    Refused, with nothing written: ``out`` naming the raw store itself (later corrections
    learn from it), a raw store that is already corrected, and ``out`` holding another
    model's forecasts or another weight (:func:`pipeline.forecast_store.write_forecast`).
    ``progress``: a bar on stderr of each pass over the members (their moments per
    variable, the writing), its tasks done of all with an ETA.
    """
    raw = open_raw(forecast, out)
    correction = chains_of(spec, [str(name) for name in raw.data_vars])
    made = ForecastProvenance.from_attrs(_with_correction(raw.attrs, correction))
    hours = raw[LEAD_TIME].values / np.timedelta64(1, "h")  # --out refused before the work:
    check_extends(out, made, raw.sizes[MEMBER], hours)
    opened = truth if isinstance(truth, AnalysisStore) else open_store(truth)  # opened once
    analysis, inits, leads = opened.dataset, raw[INIT_TIME].values, raw[LEAD_TIME].values
    truth = opened.path
    say_uncorrected(forecast, truth, inits, leads, raw[VALID_TIME].values, analysis[TIME].values)
    with dask_bar(progress, desc="bias-correct", leave=False):
        result = bias_correct(raw, analysis, correction)
        write_forecast(out, result.forecast, made, skip_unchanged=True)
    return result


def _with_correction(attrs: dict, correction: Chains) -> dict:
    """A forecast's ``attrs`` recording ``correction`` (``wxens_bias_correction``; by
    variable, ``by_variable`` of each one's, :data:`NONE_CHOSEN` where left as it is)."""
    if isinstance(correction, DecayingAverageBias):
        record = correction.to_attrs()
    else:
        none = {"method": NONE_CHOSEN, "weight": 0.0}
        by = {name: none if c is None else c.to_attrs() for name, c in correction.items()}
        record = {"by_variable": by}
    return {**attrs, "wxens_bias_correction": json.dumps(record, sort_keys=True)}
