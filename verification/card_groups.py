"""The datasets of :func:`verification.scorecard.verify`'s tree made from its computed
results: the ``/scorecard`` table (:func:`scorecard_group`), ``/spectra`` and ``/maps``,
and the units coordinates they carry (:func:`in_truth_units`). Kept apart from ``verify``,
which decides what to compute and computes it in one pass; these only label and arrange
what came back, and are read together when a group's layout or units change."""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from pipeline.schema import INIT_TIME, LEAD_TIME, MEMBER, split_channel
from verification import events as ve
from verification import ranks as vr
from verification.base import SCORES
from verification.config import VARIABLE, VerifyConfig
from verification.coverage import warn_incomplete
from verification.output import (
    POWER_UNITS,
    REGISTERED_BY,
    VARIABLE_UNITS,
    cf_units,
    spectrum_units,
)
from verification.spectra import ZONAL_WAVENUMBER, complete_fields, power_spectrum, with_reasons

RANK_FLOORS = {  # card entry: (the histograms it reads, the dim of their draws, long_name)
    "rank_max_min_perfect_model": (
        "perfect_model_rank_histogram",
        "stand_in",
        "rank max/min ratio of a perfectly reliable ensemble of this size, sample and "
        "dependence (median over members standing in for the truth): the noise floor of "
        "rank_max_min",
    ),
    "rank_max_min_error_surrogate": (
        "error_surrogate_rank_histogram",
        "replica",
        "rank max/min ratio of a reliable ensemble of this size and sample whose fields "
        "correlate in space as the ensemble-mean errors do (median over replicas): the floor "
        "of rank_max_min where errors are coherent over the domain",
    ),
}


def scorecard_group(computed: dict[str, Any], t: xr.DataArray, config: VerifyConfig) -> xr.Dataset:
    """The ``/scorecard`` table from ``verify``'s ``computed`` results: each score with its
    long name, units and best value, the rank histogram's flatness and noise floors, the
    Brier scores and the counts of points verified and skipped (``t``: the truth)."""
    card = xr.Dataset()
    for name in config.scores or tuple(SCORES):
        spec = SCORES[name]
        card[name] = computed[name].assign_attrs(
            long_name=spec.long_name, units=spec.units, best=spec.best
        )
        if (extension := SCORES.extension_of(name)) is not None:
            card[name].attrs[REGISTERED_BY] = extension
    flatness = vr.rank_flatness(computed["rank_histogram"])
    card["rank_chi_square"] = flatness["chi_square"]
    card["rank_p_value"] = flatness["p_value"]
    card["rank_delta"] = flatness["delta"].assign_attrs(best=1.0)
    card["rank_max_min"] = vr.rank_max_min_ratio(computed["rank_histogram"]).assign_attrs(best=1.0)
    for name, (histograms, dim, long_name) in RANK_FLOORS.items():
        if histograms in computed:
            floor = vr.rank_max_min_ratio(computed[histograms]).median(dim)
            card[name] = floor.assign_attrs(long_name=long_name, best=1.0)
    brier = computed["brier_score"]
    for event in brier[ve.THRESHOLD].values:
        card[f"brier_score_{event}"] = brier.sel({ve.THRESHOLD: event}, drop=True).assign_attrs(
            long_name=f"Brier score of value > the truth's {event} quantile", best=0.0
        )
    total = np.prod([t.sizes[d] for d in config.mean_over])
    card["n_verified"] = computed["n_verified"].assign_attrs(long_name="points verified")
    card["n_missing_truth"] = (total - computed["n_truth"]).assign_attrs(
        long_name="points skipped: no truth (a valid time the analysis lacks, or a masked "
        "point, NaN)"
    )
    card["n_missing_forecast"] = (computed["n_truth"] - computed["n_verified"]).assign_attrs(
        long_name="points skipped: a truth but no member (the forecast is NaN there)"
    )
    card["n_incomplete_ensemble"] = computed["n_incomplete"].assign_attrs(
        long_name="points verified where some members are missing: the rank histogram and "
        "reliability leave them out"
    )
    warn_incomplete(card["n_incomplete_ensemble"], computed["n_verified"])
    return variable_first(card)


def variable_first(ds: xr.Dataset) -> xr.Dataset:
    """``ds`` with ``variable`` then ``lead_time`` as its leading dims, as tables read."""
    return ds.transpose(*[d for d in (VARIABLE, LEAD_TIME) if d in ds.dims], ...)


def spectra_group(f: xr.DataArray, t: xr.DataArray) -> xr.Dataset:
    """Power spectra of members (averaged over members and init times) and of the truth,
    both over the forecasts that have their truth (an average over the forecast's own
    initial times compared other samples where the truth ends before the last leads), and
    only where the truth is complete: a masked channel's are NaN, ``no_spectrum`` says why."""
    f, t, masked = complete_fields(f, t)
    forecast_power = power_spectrum(f).mean([MEMBER, INIT_TIME])
    truth_power = power_spectrum(t).mean(INIT_TIME)
    power = {"forecast_power": forecast_power, "truth_power": truth_power}
    ds = xr.Dataset({k: v.assign_attrs(units="variable power") for k, v in power.items()})
    ds = with_reasons(ds.assign(masked=masked).compute())
    ratio = (ds.forecast_power / ds.truth_power).assign_attrs(units="1")  # not the power's
    return variable_first(ds.assign(spectral_ratio=ratio))


def maps_group(f: xr.DataArray, t: xr.DataArray, n_members: int) -> xr.Dataset:
    """The first ``n_members`` and the truth at the first init time and longest lead: the
    fields the report's member maps plot."""
    pick = {INIT_TIME: 0, LEAD_TIME: -1}
    members = f.isel(pick).isel({MEMBER: slice(0, n_members)})
    fields = {"forecast": members, "truth": t.isel(pick)}
    return xr.Dataset({k: v.assign_attrs(units="variable") for k, v in fields.items()}).compute()


def in_truth_units(ds: xr.Dataset, truth: xr.Dataset) -> xr.Dataset:
    """``ds`` (dim ``variable``: channels) with the coordinate ``variable_units``: the
    truth's units of each channel's variable, in which its fields marked ``units="variable"``
    are, and for power spectra (``"variable power"``) ``power_units``, theirs
    (:func:`verification.output.cf_units`, which also marks the others "1")."""
    names = [split_channel(str(c))[0] for c in ds[VARIABLE].values]
    units = [str(truth[n].attrs.get("units", "")) for n in names]
    about = {"long_name": "units of each variable, and of its scores in units_per_variable"}
    ds = ds.assign_coords({VARIABLE_UNITS: (VARIABLE, units, about)})
    if any(da.attrs.get("units") == "variable power" for da in ds.data_vars.values()):
        per_metre = ZONAL_WAVENUMBER in ds.dims  # a density along latitude circles
        power = [spectrum_units(u, per_metre) or "" for u in units]
        about = {"long_name": "units of each variable's power spectrum"}
        ds = ds.assign_coords({POWER_UNITS: (VARIABLE, power, about)})
    return cf_units(ds)


#: The ``/per_init`` group's attributes: the settings its CRPS's intervals were drawn with,
#: which ``wxens compare`` draws the paired interval of two files' difference with.
INTERVAL_SETTINGS = ("interval_level", "interval_block", "interval_draws", "seed")


def per_init_group(per_init: xr.Dataset, config: VerifyConfig) -> xr.Dataset:
    """The ``/per_init`` group: each initial time's grid-mean ``fair_crps`` and its
    ``weight`` (the share of the grid verified) as the scorecard's intervals resampled them
    (:func:`verification.resampling.score_parts`), by variable, lead and init time, with
    the interval settings (:data:`INTERVAL_SETTINGS`) as attributes: what ``wxens compare``
    needs to pair two files' CRPS day by day (a few KB), not the spread's parts."""
    parts = per_init[["fair_crps", "weight"]]
    parts["fair_crps"].attrs = {"long_name": "grid-mean fair CRPS", "units": "variable"}
    parts["weight"].attrs = {"long_name": "share of the grid (cos-latitude) verified"}
    settings = {name: getattr(config, name) for name in INTERVAL_SETTINGS}
    return variable_first(parts).transpose(..., INIT_TIME).assign_attrs(settings)
