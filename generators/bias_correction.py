"""Decaying-average bias correction of ensemble forecasts from their own verified past.

For each lead l, initial time of day and grid point, the bias applied to the forecast of
initial time t is the decaying average of the ensemble-mean errors ``e_s = x̄_s - y_s`` of
the earlier forecasts of the same lead and time of day that have verified by t
(``s + l <= t``), folded in order of s:

    b <- (1 - w) b + w e_s,   b = 0 before the first one,

and every member of forecast t is shifted by ``-b``; the spread is unchanged. ``w`` is the
weight of the newest error (the e-folding memory is about 1/w forecasts). This is NCEP's
decaying-average bias correction of the NAEFS ensembles (Cui, Toth, Zhu and Hou 2012,
Weather and Forecasting 27, 396-410; w = 0.02 there for a long archive; shorter
records and regime changes want larger w). Only truths valid at or before t enter the
correction of t, as in an operational run; an initial time with no verified predecessor
is left as it is, and missing truths are skipped.

A generator trained on a few weeks of data learns the diurnal cycle of those weeks;
on days whose cycle is wider (clear nights, sunny afternoons) its ensemble mean errs by
the time of day, which piles the truth into one end of the rank histogram whatever the
spread. The correction learns that error from the last few days.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from pipeline.adapters import align_with_truth
from pipeline.errors import InputError
from pipeline.forecast_store import ForecastProvenance, open_forecast, write_forecast
from pipeline.schema import INIT_TIME, LEAD_TIME, MEMBER
from pipeline.store import open_store


@dataclass(frozen=True)
class DecayingAverageBias:
    """weight: w, the weight of the newest verified error, in (0, 1]."""

    weight: float = 0.2

    def __post_init__(self) -> None:
        if not 0 < self.weight <= 1:
            raise InputError(
                f"the bias-correction weight must be in (0, 1], got {self.weight}; 0.2 "
                "remembers about the last 5 days of forecasts of each lead and time of day"
            )

    def to_attrs(self) -> dict[str, object]:
        return {
            "method": "decaying_average",
            "weight": self.weight,
            "by": "lead, initial time of day, grid point",
            "reference": "Cui et al. 2012, Wea. Forecasting 27, 396-410",
        }

    def bias(
        self, errors: np.ndarray, inits: Sequence[pd.Timestamp], leads: Sequence[pd.Timedelta]
    ) -> np.ndarray:
        """Errors of the ensemble mean (N, L, ...) (NaN: unverified) at ``inits`` (N) and
        ``leads`` (L) -> the bias b (N, L, ...) to subtract from each forecast's members."""
        errors = np.asarray(errors, dtype=np.float64)
        times = pd.DatetimeIndex(inits)
        if errors.shape[:2] != (len(times), len(leads)):
            raise InputError(
                f"errors of shape {errors.shape} do not match {len(times)} initial times x "
                f"{len(leads)} leads"
            )
        out = np.zeros_like(errors)
        time_of_day = times - times.normalize()
        groups = [  # the initial times of each time of day, in order
            group[np.argsort(times[group], kind="stable")]
            for group in (np.flatnonzero(time_of_day == tod) for tod in time_of_day.unique())
        ]
        for li, lead in enumerate(pd.TimedeltaIndex(leads)):
            for group in groups:
                b = np.zeros(errors.shape[2:])
                verified = 0
                for n in group:
                    while verified < len(group) and times[group[verified]] + lead <= times[n]:
                        e = errors[group[verified], li]
                        b = np.where(np.isnan(e), b, (1 - self.weight) * b + self.weight * e)
                        verified += 1
                    out[n, li] = b
        return out

    def correct(
        self,
        members: np.ndarray,
        truth: np.ndarray,
        inits: Sequence[pd.Timestamp],
        leads: Sequence[pd.Timedelta],
    ) -> np.ndarray:
        """Members (N, M, L, ...) and truth (N, L, ...) as arrays -> corrected members."""
        errors = members.mean(axis=1) - truth
        return members - self.bias(errors, inits, leads)[:, None]


def bias_correct(
    forecast: xr.Dataset, truth: xr.Dataset, correction: DecayingAverageBias
) -> tuple[xr.Dataset, xr.Dataset]:
    """The wxens forecast (dims ``init_time, member, lead_time, [level], latitude,
    longitude``) with every variable's members shifted by ``-b`` of ``correction``, and b
    itself (the same dims without ``member``), the errors taken against the analysis
    ``truth`` at each valid time, on the analysis grid (coordinates in its convention).
    Lazy in the members; the ensemble means and errors (init_time x lead_time x grid per
    variable) are computed in memory. The corrected forecast's attrs record the correction
    (``wxens_bias_correction``)."""
    # every forecast variable, or an InputError naming those the truth lacks
    aligned = align_with_truth(forecast, truth, variables=list(forecast.data_vars))
    corrected, biases = aligned.forecast.copy(), {}
    inits = pd.DatetimeIndex(corrected[INIT_TIME].values)
    leads = pd.TimedeltaIndex(corrected[LEAD_TIME].values)
    for name, members in aligned.forecast.data_vars.items():
        errors = (members.mean(MEMBER) - aligned.truth[name]).transpose(INIT_TIME, LEAD_TIME, ...)
        bias = correction.bias(errors.values, inits, leads).astype(members.dtype)
        biases[name] = xr.DataArray(bias, dims=errors.dims, coords=errors.coords)
        corrected[name] = (members - biases[name]).transpose(*members.dims)
        corrected[name].attrs = members.attrs
    corrected.attrs = {
        **forecast.attrs,
        "wxens_bias_correction": json.dumps(correction.to_attrs(), sort_keys=True),
    }
    return corrected, xr.Dataset(biases)


def bias_correct_store(
    forecast: str | Path, truth: str | Path, out: str | Path, correction: DecayingAverageBias
) -> xr.Dataset:
    """``wxens bias-correct``: the complete initial times of the forecast store ``forecast``
    corrected against the analysis store ``truth`` into the forecast store ``out`` (created,
    or its initial times overwritten and new ones appended), its provenance that of the
    raw store plus the correction. Returns the bias removed (:func:`bias_correct`).

    Refused, with nothing written: ``out`` naming the raw store itself (later corrections
    learn from it), a raw store that is already corrected, and ``out`` holding another
    model's forecasts or another weight (:func:`pipeline.forecast_store.write_forecast`).
    """
    if Path(out).resolve() == Path(forecast).resolve():
        raise InputError(
            f"--out {out} is the forecast store itself; write the corrected forecast to "
            "another store (the raw one is what later corrections learn from)"
        )
    raw = open_forecast(forecast)
    provenance = ForecastProvenance.from_attrs(raw.attrs)
    if provenance.bias_correction:
        raise InputError(
            f"{forecast} is already bias-corrected ({provenance.bias_correction}); correct "
            "the generator's own forecast store instead"
        )
    corrected, bias = bias_correct(raw, open_store(truth).dataset, correction)
    write_forecast(out, corrected, ForecastProvenance.from_attrs(corrected.attrs))
    return bias
