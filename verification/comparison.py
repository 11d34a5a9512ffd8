"""What the scorecard adds from per-initial-time scores: the block-bootstrap intervals of
fair CRPS and spread-skill ratio, and the comparison with a reference ensemble (its fair
CRPS on the same initial times, the skill score and the interval of the paired
difference).
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import xarray as xr

from pipeline.alignment import align_with_truth, truth_on_forecast_grid
from pipeline.errors import InputError, time_text
from pipeline.schema import CHANNEL, INIT_TIME, LAT, LEAD_TIME, LON, MEMBER, to_channels
from pipeline.timeaxis import describe_step
from verification import scores as vs
from verification.aggregation import count_valid, mean_over
from verification.base import SCORES
from verification.config import VARIABLE, VerifyConfig
from verification.resampling import (
    MIN_READABLE_BLOCKS,
    blocks_with_values,
    score_intervals,
    verified_share,
)

log = logging.getLogger(__name__)


def interval_card(
    per_init: xr.Dataset, members: int, config: VerifyConfig, *, say: bool = True
) -> xr.Dataset:
    """``fair_crps_low/high`` and ``spread_skill_ratio_low/high`` (where ``per_init`` holds
    the spread's parts): the block-bootstrap interval of each over the init times
    (:func:`verification.resampling.score_intervals`);
    ``say``: log why they are n/a on one block (once a verification, not per interval)."""
    blocks = pd.DatetimeIndex(per_init[INIT_TIME].values).floor(config.interval_block)
    if say:
        _say_if_one_block(blocks, config.interval_block)
    bounds = score_intervals(
        per_init,
        members,
        blocks,
        level=config.interval_level,
        draws=config.interval_draws,
        seed=config.seed,
    )
    what = (
        f"{config.interval_level:.0%} block-bootstrap interval, init times resampled in "
        f"{config.interval_block} blocks ({blocks.nunique()} of them), "
        f"{config.interval_draws} draws"
    )
    held = blocks_with_values(per_init["fair_crps"], blocks, dim=INIT_TIME)  # as the bounds'
    caution = few_blocks_caution(blocks.nunique(), config.interval_block, held)
    out = xr.Dataset()
    for name in bounds.data_vars:
        for i, side in enumerate(("low", "high")):
            out[f"{name}_{side}"] = (
                bounds[name]
                .isel(quantile=i, drop=True)
                .assign_attrs(
                    long_name=f"{SCORES[name].long_name}: {side} end of the {what}",
                    units=SCORES[name].units,
                    **({"caution": caution} if caution else {}),
                )
            )
    return out


def few_blocks_caution(n_blocks: int, block: str, held: xr.DataArray | None = None) -> str | None:
    """What to say of intervals from ``n_blocks`` blocks when they are too few to read as
    uncertainty (2 to :data:`MIN_READABLE_BLOCKS` - 1; one gives none); None otherwise.
    ``held``: the blocks each lead's intervals rest on (by lead and, say, variable:
    :func:`verification.resampling.blocks_with_values`), fewer than ``n_blocks`` where a lead
    lacks truth for some initial times (valid times past the truth's end): the leads with
    too few of them are named, those with fewer than 2 (no interval) not."""
    step = describe_step(pd.Timedelta(block))
    rule = (
        f"too few to read as uncertainty ({MIN_READABLE_BLOCKS} or more, as a rule of thumb; "
        "verify the initial times of more blocks)"
    )
    few = xr.DataArray([], dims=LEAD_TIME)
    if held is not None and LEAD_TIME in held.dims:  # the fewest of each lead's variables
        fewest = held.min([d for d in held.dims if d != LEAD_TIME])
        few = fewest.where((fewest >= 2) & (fewest < min(n_blocks, MIN_READABLE_BLOCKS)), drop=True)
    overall = 2 <= n_blocks < MIN_READABLE_BLOCKS
    if not few.size:
        return f"intervals from {n_blocks} blocks of {step}: {rule}" if overall else None
    counts = sorted({int(n) for n in few.values})
    some = f"{counts[0]}" if len(counts) == 1 else f"{counts[0]} to {counts[-1]}"
    hours = few[LEAD_TIME].values / np.timedelta64(1, "h")  # as the table's "lead (h)"
    leads = f"lead{'s' * (len(few) > 1)} {_listed(np.array([f'{h:g} h' for h in hours]))}"
    if overall:
        return f"intervals from {n_blocks} blocks of {step} (at {leads}: from {some}): {rule}"
    return f"intervals at {leads} from {some} blocks of {step}: {rule}"


def by_variable(ds: xr.Dataset) -> xr.DataArray:
    """The variables of ``ds`` stacked along ``variable`` (a level apiece), without
    attributes: stacked, they would carry the first variable's name and units."""
    return to_channels(ds).rename({CHANNEL: VARIABLE}).drop_attrs(deep=False)


def reference_channels(
    reference: xr.Dataset, truth: xr.Dataset, f: xr.DataArray, config: VerifyConfig
) -> xr.DataArray:
    """The reference ensemble as channels on the forecast's initial times, leads and
    variables (both aligned with the truth's grid); an InputError naming what it lacks
    otherwise."""
    if INIT_TIME not in config.mean_over:
        raise InputError(
            f"mean_over={config.mean_over}: a comparison with a reference pairs the two "
            "forecasts initial time by initial time; average over init_time too"
        )
    if INIT_TIME in reference.dims:  # only the forecast's: the others' truth is no concern
        reference = reference.sel({INIT_TIME: reference[INIT_TIME].isin(f[INIT_TIME].values)})
    try:
        # scored at the forecast's valid times, whose missing truth was warned of once
        aligned = align_with_truth(reference, truth_on_forecast_grid(f, truth), warn_missing=False)
    except InputError as err:
        raise InputError(f"the reference ensemble: {err}") from None
    r = by_variable(aligned.forecast)
    if (r.sizes[LAT], r.sizes[LON]) != (f.sizes[LAT], f.sizes[LON]):
        raise InputError(
            f"the reference ensemble: its grid does not hold the forecast's points (it shares "
            f"{r.sizes[LAT]} x {r.sizes[LON]} of the {f.sizes[LAT]} x {f.sizes[LON]} scored); "
            "draw it on the forecast's grid (wxens baseline from the same analysis store)"
        )
    for dim in (INIT_TIME, LEAD_TIME, VARIABLE):
        lacking = np.setdiff1d(f[dim].values, r[dim].values)
        if lacking.size:
            both = np.intersect1d(f[dim].values, r[dim].values)
            raise InputError(
                f"the reference lacks {lacking.size} {dim} value(s) of the forecast "
                f"({_listed(lacking)}); both hold {_listed(both) if both.size else 'none'}. "
                "Draw it for the same initial times, leads and variables (wxens baseline), "
                "or, for one you cannot draw again, verify the forecast on what the "
                f"reference holds: {_SELECT[dim]}"
            )
    r = r.sel({INIT_TIME: f[INIT_TIME], LEAD_TIME: f[LEAD_TIME], VARIABLE: f[VARIABLE]})
    return r.drop_vars([c for c in r.coords if c not in r.dims]).assign_coords(
        {LAT: f[LAT], LON: f[LON]}
    )


def paired_crps(
    f: xr.DataArray, t: xr.DataArray, r: xr.DataArray, config: VerifyConfig
) -> xr.Dataset:
    """What :func:`against_reference` compares, lazily: the per-init grid-mean fair CRPS of
    the forecast ``f`` and the reference ``r`` on the points both hold (the truth ``t`` and
    some member of each valid: runs or points another producer lacks drop out of both, so
    the two are scored on one sample), its ``weight`` (the share of the grid paired), and
    ``n_paired`` and ``n_forecast``: the points paired and those the forecast verifies,
    counted over ``config.mean_over``. The forecast's CRPS is its pointwise CRPS against
    ``t`` (on dask, the one its scores compute) masked where the reference has no value."""
    grid = tuple(d for d in config.mean_over if d != INIT_TIME)
    forecast = t.where(f.notnull().any(MEMBER))
    paired = r.notnull().any(MEMBER)
    both = forecast.where(paired)
    return xr.Dataset(
        {
            "forecast": mean_over(vs.fair_crps_by_point(f, t).where(paired), grid),
            "reference": vs.fair_crps(r, both, mean_over=grid),
            "weight": verified_share(f, both, grid),
            "n_paired": count_valid(both, config.mean_over),
            "n_forecast": count_valid(forecast, config.mean_over),
        }
    )


def against_reference(
    paired: xr.Dataset, per_init: xr.Dataset | None, members: int, config: VerifyConfig
) -> xr.Dataset:
    """From the per-init grid-mean fair CRPS of the forecast and the reference and, if
    given, their ``weight`` (the share of the grid verified, default equal;
    :func:`verification.resampling.score_parts`):
    ``reference_fair_crps`` (its weighted mean over init times), ``fair_crps_skill_score``
    1 − mean(CRPS)/mean(CRPS_ref) (> 0: better than the reference), and with the
    forecast's ``per_init`` parts (intervals on) ``fair_crps_minus_reference_low/high``:
    :func:`interval_card` with the per-init difference in place of the CRPS, whose resampled
    mean is the paired difference (both forecasts share each resample)."""
    _warn_unpaired(paired)
    crps = paired[["forecast", "reference"]]
    weight = paired["weight"].fillna(0.0) if "weight" in paired else xr.ones_like(crps.forecast)
    means = crps.weighted(weight).mean(INIT_TIME, skipna=True)
    out = xr.Dataset(
        {
            "reference_fair_crps": means["reference"].assign_attrs(
                long_name="fair CRPS of the reference on the same init times",
                units="variable",
                best=0.0,
            ),
            "fair_crps_skill_score": xr.DataArray(
                1 - means["forecast"] / means["reference"],
                attrs={
                    "long_name": "fair CRPS skill score against the reference, 1 − CRPS/CRPS_ref",
                    "units": "1",
                    "best": 1.0,
                },
            ),
        }
    )
    if "n_paired" in paired:
        out["n_verified_with_reference"] = paired["n_paired"].assign_attrs(
            long_name="points verified where the reference has a value too: those the "
            "reference CRPS, the skill score and the CRPS difference compare"
        )
    if per_init is not None:
        difference = per_init.assign(fair_crps=paired["forecast"] - paired["reference"])
        if "weight" in paired:
            difference["weight"] = paired["weight"]
        bounds = interval_card(difference, members, config, say=False)  # said for the CRPS
        for side in ("low", "high"):
            out[f"fair_crps_minus_reference_{side}"] = bounds[f"fair_crps_{side}"].assign_attrs(
                long_name=f"fair CRPS minus the reference's: {side} end of its block-bootstrap "
                f"interval (the blocks, draws and level of fair_crps_{side})",
                units="variable",
            )
    return out


def _say_if_one_block(blocks: pd.DatetimeIndex, block: str) -> None:
    """Log why the intervals are n/a when the init times' ``blocks`` are one."""
    if blocks.size == 1:  # wxens run's default, the latest initial time: nothing to fix
        log.info("one initial time: the block-bootstrap intervals are n/a")
    elif blocks.nunique() == 1:
        log.warning(
            "the %d initial times fall in one %s block, which every resample repeats: the "
            "intervals need two blocks or more and are n/a; verify initial times of several "
            "blocks, or give a shorter block, interval_block= (--interval-block)",
            blocks.size,
            block,
        )


def _warn_unpaired(paired: xr.Dataset) -> None:
    """A warning when the reference lacks values (runs another producer did not make,
    masked points) where the forecast verifies: the comparison leaves those points out."""
    if "n_paired" not in paired:
        return
    verified, both = int(paired["n_forecast"].sum()), int(paired["n_paired"].sum())
    if both < verified:
        log.warning(
            "the reference holds no value at %d of the %d points the forecast verifies "
            "(initial times or points it lacks, NaN): its CRPS, the skill score and the CRPS "
            "difference compare the two on the %d points both hold (n_verified_with_reference "
            "per lead), while fair_crps is the forecast's on all of them",
            verified - both,
            verified,
            both,
        )


#: How to verify a forecast on the initial times, leads or variables its reference holds.
_SELECT = {
    INIT_TIME: "verify_store's init_times= (--init of `wxens verify`)",
    LEAD_TIME: "in Python: verify(forecast.sel(lead_time=[...]), ...); wxens verify has no "
    "lead selection",
    VARIABLE: "verify_store's variables= (--variables of `wxens verify`)",
}


def _listed(values: np.ndarray) -> str:
    """The first three of ``values`` as a person reads them, `...` for the rest."""
    return ", ".join(map(_shown, values[:3])) + (" ..." if values.size > 3 else "")


def _shown(value: object) -> str:
    """A coordinate value as a person reads it: ``6 h``, ``2019-03-22T06:00``, ``t2m``."""
    if isinstance(value, np.timedelta64):
        return describe_step(pd.Timedelta(value))
    if isinstance(value, np.datetime64):
        return time_text(value)
    return str(value)
