"""Fitting a checkpoint's spread calibration: the forecasts of a held-out period (or of
cross-validation folds, each forecasting the period it held out, pooled) by the models,
turned into per-lead, per-channel factors by
:func:`generators.correction.spread.fit_spread_factors` (one factor for the channels that
balance ties together, :func:`generators.balance.balanced_channels`) and stored in the
checkpoint as a :class:`~generators.correction.spread.SpreadCalibration` (whose module
gives the formula).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from generators.balance import balanced_channels, grid_note_once
from generators.checkpoint import Checkpoint, load_checkpoint
from generators.config import CalibrationConfig, TrainConfig, parse_sampler, sampler_spec
from generators.config_periods import bound_time
from generators.correction.spread import (
    PooledMoments,
    SpreadCalibration,
    far_factors,
    fit_spread_factors,
)
from generators.correction.tuned import checkpoint_file
from generators.data.forecast import ForecastData
from generators.device import resolve_device
from generators.fine_tuned import warn_if_not_fine_tuned_for
from generators.in_sample import trained_on
from generators.rollout import iter_forecast
from generators.sampler_choice import choose_sampler
from pipeline.errors import InputError, given, nested_differences, shell_word, time_text
from pipeline.schema import Period
from pipeline.store import AnalysisStore, open_store

log = logging.getLogger(__name__)

#: How ``wxens calibrate`` names the period of :func:`calibration_init_times` (its flags, to
#: a Python caller too, as its other refusals do) and the folds (where it passes options=).
CALIBRATE_OPTIONS = {"period": "--start, --end", "folds": "--fold"}


def calibration_init_times(
    times: pd.DatetimeIndex,
    period_start: str | None,
    period_end: str | None,
    every_hours: float,
    max_lead_hours: float,
    *,
    what: str = "calibration",
    options: Mapping[str, str] | None = None,
) -> pd.DatetimeIndex:
    """Initial times of a period, every ``every_hours`` from the first time in it, whose
    truth at ``max_lead_hours`` still lies in the period (no truth from after it is used).
    InputError naming ``what`` the period is for, and the store's times (``times``) where
    it holds none of the period, or a bound that is not a time of the store's (naive UTC);
    ``options`` names the period as the caller gave it (:func:`pipeline.errors.given`)."""
    for bound in (b for b in (period_start, period_end) if b is not None):
        bound_time(bound, f"the {what} period bound")
    window = times[times.slice_indexer(period_start, period_end)]
    last = window[-1] - pd.Timedelta(hours=max_lead_hours) if len(window) else None
    if last is None or last < window[0]:
        fix = "give a longer period"
        start, end = (pd.Timestamp(t) if t else None for t in (period_start, period_end))
        if start is not None and end is not None and end < start:
            fix = "it ends before it starts: give an end after its start"
            fix += f" ({given('period', options)})"
        elif not len(window) and len(times):
            fix = (
                f"the store holds none of it (its times: {time_text(times[0])} to "
                f"{time_text(times[-1])}): give the store that covers the period, or a "
                "period of this store"
            )
        raise InputError(
            f"the {what} period {period_start} to {period_end} holds no initial time whose "
            f"{max_lead_hours:g} h truth is in the period; {fix}"
        )
    return pd.date_range(window[0], last, freq=pd.Timedelta(hours=every_hours))


def fitted_period(period: Period, times: pd.DatetimeIndex, step: pd.Timedelta) -> Period:
    """``period`` as a fit on a store of ``times`` (native ``step``) used it, to be recorded:
    a side left open, or given past the store's times (it holds a time one step before the
    store's first or after its last), is bounded at that first or last time. Recorded as
    given, an end of 20 April on a store ending on the 10th had forecasts valid on the 11th
    to 20th, ingested since, warned as in-sample. A given side so bounded is warned of."""
    start, end = period.start, period.end
    first, last = time_text(times[0]), time_text(times[-1])
    if Period(start, None).contains(pd.DatetimeIndex([times[0] - step]))[0]:
        if start is not None:
            log.warning(PAST_STORE, "from", first, "first", "start", start, "start", "before")
        start = first
    if Period(None, end).contains(pd.DatetimeIndex([times[-1] + step]))[0]:
        if end is not None:
            log.warning(PAST_STORE, "to", last, "last", "end", end, "end", "past")
        end = last
    return Period(start, end)


PAST_STORE = (
    "the spread calibration is fitted %s %s, the store's %s time, and records that: "
    "calibration.period.%s=%s (wxens calibrate --%s) reaches %s it"
)
"""The warning of :func:`fitted_period` about a given side bounded at the store's times."""


def load_fold(
    path: str | Path,
    store: AnalysisStore | str | Path,
    keyword: str = "folds",
    options: Mapping[str, str] | None = None,
) -> Checkpoint:
    """The cross-validation fold at ``path`` (a checkpoint file or training directory), for
    ``wxens calibrate --fold`` and ``wxens tune --fold``; InputError naming it and the
    command that makes one where none is there (the README's calibrate line names folds that
    no earlier command of it trains, and "train one with `wxens train --out DIR`" did not
    say what a fold is). Named as the caller gave it: the argument ``keyword`` or its
    option in ``options`` (:data:`CALIBRATE_OPTIONS`, :func:`given`)."""
    if not checkpoint_file(path).is_file():
        where = store.path if isinstance(store, AnalysisStore) else store
        raise InputError(
            f"{given(keyword, options, str(path))}: no checkpoint there. A fold is the "
            "checkpoint's config trained without the period it holds out: `wxens train --store "
            f"{shell_word(str(where))} --config CONFIG --set 'data.exclude=[{{start: START, "
            f"end: END}}]' --out {shell_word(str(path))}`, one per period "
            "(docs/generate.md, Spread calibration)"
        )
    return load_checkpoint(path)


def held_out_period(checkpoint: Checkpoint) -> Period:
    """The one period a cross-validation checkpoint held out of training (``data.exclude``)."""
    excluded = checkpoint.train_config.data.exclude
    if len(excluded) != 1:
        raise InputError(
            f"{checkpoint.path}: a cross-validation fold must hold exactly one period out of "
            f"training, not {len(excluded)}; train it with one in data.exclude= "
            "(--set 'data.exclude=[{start: ..., end: ...}]')"
        )
    return excluded[0]


# Training-config fields in which a fold may differ from the model it calibrates: which
# period it held out (and validated on), and the settings used only after training.
FOLD_FREE_FIELDS = ("data.exclude", "data.validation", "sampler", "calibration")


def check_fold(checkpoint: Checkpoint, fold: Checkpoint) -> None:
    """InputError unless ``fold`` is the recipe of ``checkpoint`` with one period held out:
    same channels, grid and training config but for :data:`FOLD_FREE_FIELDS` (its held-out
    period is :func:`held_out_period`'s to check)."""

    def recipe(c: Checkpoint) -> TrainConfig:
        t = c.train_config
        return replace(
            t, data=replace(t.data, exclude=(), validation=None), sampler=None, calibration=None
        )

    if fold.channels != checkpoint.channels or not (
        np.array_equal(fold.latitude, checkpoint.latitude)
        and np.array_equal(fold.longitude, checkpoint.longitude)
    ):
        raise InputError(
            f"fold {fold.path} has channels {list(fold.channels)} on a "
            f"{len(fold.latitude)} x {len(fold.longitude)} grid, {checkpoint.path} "
            f"{list(checkpoint.channels)} on {len(checkpoint.latitude)} x "
            f"{len(checkpoint.longitude)}; give folds trained from its config on its store"
        )
    theirs, ours = asdict(recipe(fold)), asdict(recipe(checkpoint))
    differ = sorted(key for key, _, _ in nested_differences(theirs, ours))
    if differ:
        raise InputError(
            f"fold {fold.path} was not trained with the recipe of {checkpoint.path}: they "
            f"differ in {', '.join(differ)} (a fold may differ only in "
            f"{', '.join(FOLD_FREE_FIELDS)}); retrain the fold from the same config"
        )


@grid_note_once()  # an operator per fold, all on one grid: its note said once
def fit_calibration(
    checkpoint: Checkpoint,
    store: AnalysisStore | str | Path,
    config: CalibrationConfig,
    *,
    folds: Sequence[Checkpoint] = (),
    device: str = "auto",
    progress: bool = True,
    model: torch.nn.Module | None = None,
    batch_members: int = 512,
) -> SpreadCalibration:
    """Fit the factors per lead and channel (see module docstring) on uncalibrated
    forecasts against the store's truth: ``checkpoint``'s own forecasts of
    ``config.period`` (``model`` defaults to its EMA model), or, given cross-validation
    ``folds`` (checkpoints of the same recipe, each trained without one period), each
    fold's forecasts of the period it held out, pooled. Folds calibrate a model trained on
    all the data, which has no held-out period of its own. Every forecast uses
    ``checkpoint``'s sampler (``config.sampler`` when set), balanced if ``config.balance``,
    drawn ``batch_members`` initial times x members at a time (their moments pooled, so
    memory holds one batch)."""
    leads = config.leads_hours or checkpoint.leads_hours
    if folds:
        for fold in folds:
            check_fold(checkpoint, fold)
        sources = [(fold, None, held_out_period(fold)) for fold in folds]
        period = (
            f"the held-out periods of {len(folds)} cross-validation folds ("
            + ", ".join(str(p) for _, _, p in sources)
            + ")"
        )
    elif config.period is None:
        raise InputError(
            "a spread calibration needs a held-out period, calibration.period= (--start/--end), "
            "or cross-validation folds, folds= (--fold)"
        )
    else:
        sources, period = [(checkpoint, model, config.period)], str(config.period)
    fit_period = None
    moments = [PooledMoments(checkpoint.latitude) for _ in leads]  # pooled batch by batch
    n_inits = 0
    for source, source_model, source_period in sources:
        data = ForecastData.from_store(source, store)
        inits = calibration_init_times(
            data.times,
            source_period.start,
            source_period.end,
            config.init_every_hours,
            max(leads),
            options=CALIBRATE_OPTIONS,
        )
        if not folds:  # the period as it was fitted, recorded for in-sample warnings
            fit_period = fitted_period(source_period, data.times, source.native_step)
            period = str(fit_period)
        inits = data.usable_inits(inits, leads)
        seen = inits[trained_on(source, inits)]
        if len(seen):
            raise InputError(
                f"{len(seen)} of the {len(inits)} initial times of the calibration period "
                f"{fit_period or source_period} ({time_text(seen[0])} to "  # what is fitted
                f"{time_text(seen[-1])}) lie in the training period of {source.path}: its "
                "errors there are too small to calibrate on; fit on days it never trained on, "
                "or on cross-validation folds (`wxens calibrate --fold FOLD`)"
            )
        if source_model is None:
            source_model = source.build_model(device=resolve_device(device))
        given = parse_sampler(config.sampler) if config.sampler else None
        chosen = choose_sampler(checkpoint, source_model, given)
        warn_if_not_fine_tuned_for(source, source_model, chosen)
        batches = iter_forecast(
            source,
            data,
            inits,
            leads,
            config.members,
            sampler=chosen.sampler,
            seed=config.seed,
            device=device,
            calibration=None,
            progress=progress,
            model=source_model,
            balance=config.balance,
            batch_members=batch_members,
        )
        for batch, members in batches:
            for i, lead in enumerate(leads):
                moments[i].add(members[:, :, i], data.truth(batch, lead))
        n_inits += len(inits)
    # one factor, balanced fit or not, keeps the members' z-t and wind relations as drawn
    shared = balanced_channels(checkpoint.channels, checkpoint.latitude)
    factors, before, after = fit_spread_factors(moments, shared)
    calibration = SpreadCalibration(
        channels=checkpoint.channels,
        leads_hours=tuple(float(h) for h in leads),
        factors=factors,
        ssr_before=before,
        ssr_after=after,
        period=period,
        members=config.members,
        n_inits=n_inits,
        sampler=sampler_spec(chosen.sampler),
        shared=tuple(checkpoint.channels[i] for i in shared),
        balance=config.balance,
        seed=config.seed,
        fit_period=fit_period,
        fold_periods=tuple(p for _, _, p in sources) if folds else (),
    )
    log.info("spread calibration %s", calibration.summary())
    log.debug("%s", calibration.report())
    far = far_factors(calibration.leads_hours, factors, checkpoint.channels)
    if far:
        log.warning("%s (%s)", far, checkpoint.path)
    if n_inits < FEW_INITS:
        log.warning(
            "the spread calibration was fitted on %d initial time(s) (%s): its factors are "
            "one sample's weather, not the model's spread; hold out more days, or calibrate "
            "on cross-validation folds (`wxens calibrate --fold FOLD`)",
            n_inits,
            period,
        )
    return calibration


FEW_INITS = 8
"""Fewer initial times than this behind a spread calibration are warned about: a handful of
correlated forecasts (a 12-time store gave one, and factors of 3.9) fit their own errors."""


def calibrate_checkpoint(
    path: str | Path,
    store: AnalysisStore | str | Path,
    config: CalibrationConfig,
    *,
    folds: Sequence[str | Path] = (),
    out: str | Path | None = None,
    device: str = "auto",
    progress: bool = True,
    batch_members: int = 512,
    options: Mapping[str, str] | None = None,
) -> SpreadCalibration:
    """Fit a calibration for the checkpoint at ``path`` (on ``config.period``, or on the
    held-out periods of the fold checkpoints at ``folds``) and write the checkpoint with it
    to ``out``, by default over ``path`` (atomically; the digest changes, so forecasts
    record which calibration they used). ``options``: as :func:`load_fold`'s."""
    store = store if isinstance(store, AnalysisStore) else open_store(store)
    checkpoint = load_checkpoint(path)
    calibration = fit_calibration(
        checkpoint,
        store,
        config,
        folds=[load_fold(f, store, "folds", options) for f in folds],
        device=device,
        progress=progress,
        batch_members=batch_members,
    )
    checkpoint.replace(calibration=calibration.to_dict()).save(out or checkpoint.path)
    return calibration
