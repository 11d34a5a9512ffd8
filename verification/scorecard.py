"""The whole verification of one forecast against one analysis, as an ``xr.DataTree``.

:func:`verify` aligns the forecast with the truth on valid time, stacks variables and
levels into channels (``z500``, ``t2m``), builds every score lazily and computes them in
one pass over the data (each forecast chunk is read once), then runs the physics checks
and spectra on a few init times; :class:`~verification.config.VerifyConfig` says what it
computes. The tree it returns (which :func:`verification.output.write_scores` saves as
NetCDF groups, reopened with ``xr.open_datatree``):

``/scorecard``       (variable, lead_time): every registered score, rank-histogram
                     flatness (χ², δ, max/min ratio and its perfect-model noise floor),
                     Brier scores, points verified and truth missing; the
                     coordinate ``variable_units``: each variable's units, those of
                     the scores whose ``units_per_variable`` attribute names it
                     (:func:`verification.output.cf_units`); ``units``: a CF unit;
                     ``tree["scorecard"].to_dataset().to_dataframe()`` is the tidy
                     table (one row per variable and lead, one column per score).
``/rank_histogram``  (variable, lead_time, rank) counts.
``/reliability``     (variable, lead_time, event, forecast_probability) tables.
``/per_init``        (variable, lead_time, init_time) each initial time's grid-mean fair
                     CRPS and ``weight`` (share of the grid verified), with the interval
                     settings as attrs (only with intervals): what ``wxens compare`` pairs.
``/rank_floor``      (variable, lead_time, replica) the rank max/min ratio of every
                     error-surrogate replica (only with ``error_surrogate_replicas``; the
                     scorecard holds their median).
``/multivariate``    (lead_time) energy score across channels.
``/spectra``         (variable, lead_time, wavenumber) member and truth power (absent on
                     a transect or a point; NaN for a masked variable, ``no_spectrum``
                     says why).
``/physics``         (check, member) scores and pass/fail, one row per check and part
                     (``geostrophic 500 hPa``); tolerances per row; ``reason``
                     (not_computed) for every check or part that is n/a.
``/maps``            (variable, member, latitude, longitude) a few members and the
                     truth of the first init time at the longest lead, for plots.

The root's attrs say what was verified: ``n_members``, ``n_init_times`` and ``init_times``,
``missing_valid_times`` (lists, joined by "; " in the file), the config;
:func:`verification.run.verify_store` adds the forecast's, the reference's (where given)
and the truth's paths and the truth store's id (:data:`verification.output.TRUTH_STORE_ID`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import asdict, replace
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from pipeline.alignment import AlignedForecast, align_with_truth, warn_missing_valid_times
from pipeline.schema import HORIZONTAL, INIT_TIME, LAT, LEAD_TIME, MEMBER, VALID_TIME
from verification import events as ve
from verification import ranks as vr
from verification import scores as vs
from verification.aggregation import count_valid
from verification.base import SCORES
from verification.card_groups import (
    in_truth_units,
    maps_group,
    per_init_group,
    scorecard_group,
    spectra_group,
    variable_first,
)
from verification.comparison import (
    against_reference,
    by_variable,
    interval_card,
    paired_crps,
    reference_channels,
)
from verification.compute import compute_results
from verification.config import EVENT, VARIABLE, VerifyConfig
from verification.coverage import members_without_values, require_some_truth, warn_ensemble_size
from verification.output import cf_units
from verification.physics_group import physics_group, physics_sample
from verification.resampling import score_parts
from verification.spectra import has_spectrum

log = logging.getLogger(__name__)

SCORE_CHUNK_BYTES = 16 * 2**20
"""Target size of the forecast chunks the scores run on. A forecast store holds one chunk
per (init_time, lead_time); on a small grid a task per such chunk and score costs more to
schedule than to compute, so :func:`verify` groups leads, then initial times, up to this
size (:func:`score_chunks`): fewer, larger tasks, each still a few forecast chunks."""


def verify(
    forecast: xr.Dataset,
    truth: xr.Dataset,
    config: VerifyConfig | None = None,
    reference: xr.Dataset | None = None,
) -> xr.DataTree:
    """Score ``forecast`` (any registered layout) against the analysis ``truth``.

    ``reference``: another ensemble (a baseline, the operational model) holding at least
    the forecast's initial times, leads, variables and grid; the scorecard then adds its
    fair CRPS on them, the skill score 1 − CRPS/CRPS_ref and the block-bootstrap
    interval of the paired difference CRPS − CRPS_ref
    (:func:`verification.comparison.against_reference`).

    Returns the tree described in the module docstring. Lazy inputs are computed chunk
    by chunk (:func:`verification.compute.compute_results`): in one pass, or one result
    at a time when dask's local threads would hold too much of a large forecast.
    """
    config = config or VerifyConfig()
    aligned = _whole_grid(align_with_truth(forecast, truth, warn_missing=False))
    require_some_truth(aligned, truth)  # first: "scored as missing" is moot without any
    needed = np.unique(aligned.forecast[VALID_TIME].values).size
    warn_missing_valid_times(pd.DatetimeIndex(aligned.missing_valid_times), needed)
    f = by_variable(aligned.forecast)
    warn_ensemble_size(f.sizes[MEMBER], config)
    t = by_variable(aligned.truth)
    if f.chunks is not None:
        chunks = score_chunks(f)
        f, t = f.chunk(chunks), t.chunk(chunks)
    grid = tuple(d for d in config.mean_over if d != INIT_TIME)
    sample = physics_sample(aligned, config.physics_init_times)
    thresholds = _event_thresholds(t, sample, config.event_quantiles)

    lazy: dict[str, Any] = {}
    for name in config.scores or tuple(SCORES):
        lazy[name] = SCORES[name].function(f, t, mean_over=config.mean_over)
    lazy["rank_histogram"] = vr.rank_histogram(f, t, mean_over=config.mean_over, seed=config.seed)
    if config.perfect_model_stand_ins and f.sizes[MEMBER] >= 3:
        lazy["perfect_model_rank_histogram"] = vr.perfect_model_rank_histogram(
            f,
            t,
            mean_over=config.mean_over,
            stand_ins=config.perfect_model_stand_ins,
            seed=config.seed,
        )
    surrogate = vr.error_floor_replicas(config.error_surrogate_replicas, f, grid, config.mean_over)
    if surrogate:
        lazy["error_fields"] = f.mean(MEMBER) - t
    lazy["brier_score"] = ve.brier_score(f, t, thresholds, mean_over=config.mean_over)
    lazy["reliability"] = ve.reliability(f, t, thresholds, mean_over=config.mean_over)
    some = f.notnull().any(MEMBER)  # where the scores of the members have a value
    lazy["n_verified"] = count_valid(t.where(some), config.mean_over)
    lazy["n_truth"] = count_valid(t, config.mean_over)
    lazy["n_incomplete"] = (t.notnull() & some & f.isnull().any(MEMBER)).sum(config.mean_over)
    if config.energy_score:
        scale = (
            t.isel({INIT_TIME: sample}).std([d for d in t.dims if d != VARIABLE]) if sample else 1.0
        )
        fs, ts = f / scale, t / scale
        if f.chunks is not None:  # every variable in a block: keep the block to the target
            whole = score_chunks(f, all_variables=True)
            fs, ts = fs.chunk(whole), ts.chunk(whole)
        lazy["energy_score"] = vs.energy_score(
            fs, ts, component_dim=VARIABLE, mean_over=config.mean_over
        )
    intervals = config.interval_level > 0 and INIT_TIME in config.mean_over
    if intervals:
        lazy["per_init"] = score_parts(f, t, mean_over=grid)
    if reference is not None:
        r = reference_channels(reference, truth, f, config)
        if r.chunks is not None:
            r = r.chunk(score_chunks(f))  # as the forecast and truth are
        lazy["paired_crps"] = paired_crps(f, t, r, config)
    computed = compute_results(lazy, forecast_bytes=f.nbytes, progress=config.progress)
    empty = members_without_values(f, computed["n_incomplete"])
    if empty:
        log.warning(
            "member(s) %s hold no value (missing from the file?): verified without them, "
            "as an ensemble of %d",
            empty,
            f.sizes[MEMBER] - len(empty),
        )
        return verify(aligned.forecast.drop_sel({MEMBER: empty}), truth, config, reference)
    if surrogate:
        computed["error_surrogate_rank_histogram"] = vr.error_surrogate_rank_histogram(
            computed.pop("error_fields"),
            f.sizes[MEMBER],
            field_dims=grid,
            replicas=surrogate,
            seed=config.seed,
        )

    card = scorecard_group(computed, t, config)
    if intervals:
        card = card.merge(interval_card(computed["per_init"], f.sizes[MEMBER], config))
    if reference is not None:
        per_init = computed["per_init"] if intervals else None
        card = card.merge(
            against_reference(computed["paired_crps"], per_init, f.sizes[MEMBER], config)
        )
    tree = {
        "/scorecard": in_truth_units(variable_first(card), aligned.truth),
        "/rank_histogram": variable_first(computed["rank_histogram"].to_dataset()),
        "/reliability": variable_first(computed["reliability"].rename({ve.THRESHOLD: EVENT})),
    }
    if intervals:  # what wxens compare pairs two files' CRPS with
        parts = per_init_group(computed["per_init"], config)
        tree["/per_init"] = in_truth_units(parts, aligned.truth)
    if surrogate:
        tree["/rank_floor"] = cf_units(
            vr.rank_max_min_ratio(computed["error_surrogate_rank_histogram"])
            .rename("rank_max_min_error_surrogate")
            .to_dataset()
            .pipe(variable_first)
        )
    if config.energy_score:  # of the channels scaled by their std: dimensionless
        tree["/multivariate"] = cf_units(computed["energy_score"].to_dataset())
    if sample:
        subset = {INIT_TIME: sample}
        if has_spectrum(f):  # a transect or a point has no spectrum
            spectra = spectra_group(f.isel(subset), t.isel(subset))
            tree["/spectra"] = in_truth_units(spectra, aligned.truth)
        tree["/physics"] = physics_group(aligned, subset, config.checks)
        tree["/maps"] = in_truth_units(maps_group(f, t, config.map_members), aligned.truth)
    root = xr.Dataset(
        attrs={
            "n_members": f.sizes[MEMBER],
            "n_init_times": f.sizes[INIT_TIME],
            "init_times": [str(t) for t in pd.DatetimeIndex(f[INIT_TIME].values)],
            "missing_valid_times": [str(v) for v in aligned.missing_valid_times],
            "config": repr(asdict(config)),
            "mean_over": list(config.mean_over),
            "spread_skill_ratio": "with the finite-ensemble factor sqrt((M+1)/M)",
            "crps": "fair_crps: unbiased (WeatherBench 2); ecdf_crps: empirical (xskillscore)",
            # what made the forecast (a wxens store's provenance: model, sampler,
            # calibration, bias correction)
            **{k: v for k, v in forecast.attrs.items() if str(k).startswith("wxens_")},
            **(
                {}
                if reference is None
                else {
                    f"reference_{k}": v
                    for k, v in reference.attrs.items()
                    if str(k).startswith("wxens_")
                }
            ),
        }
    )
    return xr.DataTree.from_dict({"/": root, **tree})


def score_chunks(forecast: xr.DataArray, *, all_variables: bool = False) -> dict[str, int]:
    """Dask chunks of ``init_time`` and ``lead_time`` for scoring ``forecast`` (dims
    ``init_time, member, lead_time, variable, latitude, longitude``): all leads of as many
    initial times as fit in :data:`SCORE_CHUNK_BYTES` (at least one), or, where one initial
    time's leads exceed it, as many leads as fit (at least one). ``all_variables``: for a
    score of every variable at once (the energy score), a chunk holds them all, within the
    same size, and splits ``latitude`` where one initial time and lead exceed it."""
    n_init, n_lead = forecast.sizes[INIT_TIME], forecast.sizes[LEAD_TIME]
    cell = forecast.nbytes / (n_init * n_lead * (1 if all_variables else forecast.sizes[VARIABLE]))
    leads = int(min(n_lead, max(1, SCORE_CHUNK_BYTES // cell)))
    inits = int(max(1, SCORE_CHUNK_BYTES // (cell * n_lead))) if leads == n_lead else 1
    chunks = {INIT_TIME: min(inits, n_init), LEAD_TIME: leads}
    if all_variables:
        rows = int(max(1, forecast.sizes[LAT] * SCORE_CHUNK_BYTES // cell))
        chunks |= {VARIABLE: -1, LAT: min(rows, forecast.sizes[LAT])}
    return chunks


def _whole_grid(aligned: AlignedForecast) -> AlignedForecast:
    """The lazy parts of ``aligned`` with the horizontal grid in one chunk, as spectra and
    balance checks take it (a Zarr ensemble of another producer may be chunked in space)."""

    def whole(ds: xr.Dataset) -> xr.Dataset:
        # not ds.chunks: it raises when variables are chunked apart (rechunked here)
        lazy = any(da.chunks for da in ds.data_vars.values())
        return ds.chunk(dict.fromkeys(HORIZONTAL, -1)) if lazy else ds

    return replace(
        aligned,
        forecast=whole(aligned.forecast),
        truth=whole(aligned.truth),
        initial=whole(aligned.initial),
    )


def _event_thresholds(
    t: xr.DataArray, sample: list[int], quantiles: Iterable[float]
) -> xr.DataArray:
    """Per-variable thresholds: quantiles of the truth over the sample (all if no sample)."""
    part = t.isel({INIT_TIME: sample}) if sample else t
    values = part.quantile(
        list(quantiles), dim=[d for d in part.dims if d != VARIABLE], skipna=True
    )
    values = values.compute().rename({"quantile": ve.THRESHOLD})
    return values.assign_coords({ve.THRESHOLD: [f"q{round(100 * q):02d}" for q in quantiles]})
