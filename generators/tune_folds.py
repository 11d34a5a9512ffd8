"""The forecasts ``wxens tune`` chooses on: blocks of initial times, each drawn by a checkpoint.

Without folds, the tuned checkpoint forecasts one period cut into consecutive blocks
(:mod:`generators.tune`). With cross-validation folds (``wxens tune --fold``, as for
``wxens calibrate --fold``: the checkpoint's recipe trained without one period,
``data.exclude``, :func:`generators.calibration.check_fold`), each fold forecasts the
initial times of the period it held out, one block per fold: out-of-sample forecasts for a
checkpoint trained on every day, which has none of its own. A fold forecasts as the tuned
checkpoint does (its spread calibration, its default sampler), since the weights chosen
correct the tuned checkpoint's forecasts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import NamedTuple

import pandas as pd

from generators.calibration import (
    calibration_init_times,
    check_fold,
    held_out_period,
    load_fold,
)
from generators.checkpoint import Checkpoint
from generators.correction.decaying_average import corrects_any
from generators.data.forecast import ForecastData
from pipeline.errors import InputError, counted, given
from pipeline.schema import Period


class TuningSource(NamedTuple):
    """The initial times one checkpoint forecasts for tuning, and their blocks. ``checkpoint``
    draws them into a forecast store beside its file (named by its digest and ``key``, the
    settings beyond tune's own that the forecasts depend on)."""

    checkpoint: Checkpoint
    inits: pd.DatetimeIndex
    blocks: list[pd.DatetimeIndex]
    key: tuple = ()


def refuse_folds_with(
    folds: Sequence[str | Path],
    n_folds: int | None,
    period: Period | None,
    options: Mapping[str, str] | None = None,
) -> None:
    """InputError when fold checkpoints come with a number of blocks or a period: the folds'
    held-out periods are the blocks and their initial times (``options``: how the caller
    names them, as :func:`generators.tune.tune_correction`'s)."""
    if folds and (n_folds is not None or period is not None):
        fold, folds_, period_ = (given(k, options) for k in ("fold_checkpoints", "folds", "period"))
        raise InputError(
            f"{fold} with {folds_ if n_folds is not None else period_}: each fold's held-out "
            "period is one cross-validation block, and its initial times those of the block; "
            f"give {folds_} and {period_} only without {fold}"
        )


def fold_sources(
    checkpoint: Checkpoint,
    store: object,
    folds: Sequence[str | Path],
    leads_hours: Sequence[float],
    every_hours: float,
    options: Mapping[str, str] | None = None,
) -> list[TuningSource]:
    """One source per fold checkpoint at ``folds``: its held-out period's initial times
    every ``every_hours`` whose truth at the longest lead is held out too, drawn as
    ``checkpoint`` forecasts (:func:`drawn_as`). InputError naming the fold for one of
    another recipe, without exactly one held-out period, given twice, or whose initial times
    leave nothing to correct (none has an earlier one of its lead and time of day verified
    by it, as :func:`generators.tune.check_correctable`): it would score as no correction
    whatever the weight. ``options``: as :func:`generators.tune.tune_correction`'s."""
    sources, seen = [], {}
    leads = pd.to_timedelta(list(leads_hours), unit="h")
    for path in folds:
        fold = load_fold(path, store, "fold_checkpoints", options)
        if fold.digest in seen:
            again = given("fold_checkpoints", options, str(seen[fold.digest]))
            raise InputError(
                f"{given('fold_checkpoints', options, str(path))} is {again} again: give each once"
            )
        seen[fold.digest] = path
        check_fold(checkpoint, fold)
        period = held_out_period(fold)
        data = ForecastData.from_store(fold, store)
        inits = calibration_init_times(
            data.times,
            period.start,
            period.end,
            every_hours,
            max(leads_hours),
            what=f"held-out ({fold.path})",
            options=options,
        )
        inits = data.usable_inits(inits, leads_hours)
        if not corrects_any(inits, leads, data.times):
            raise InputError(
                f"fold {fold.path}: the {counted(len(inits), 'initial time')} of its "
                f"held-out period {period} leave nothing to correct: no initial time has an "
                "earlier forecast of its lead and time of day in it verified by it, so every "
                "candidate would score as no correction; train that fold without a longer "
                "period (a few days at least: data.exclude), or leave it out"
            )
        sources.append(TuningSource(drawn_as(checkpoint, fold), inits, [inits], as_key(checkpoint)))
    return sources


def drawn_as(checkpoint: Checkpoint, fold: Checkpoint) -> Checkpoint:
    """``fold`` forecasting as ``checkpoint`` does: with its spread calibration (or none) and
    its default sampler (the fold's weights, file and held-out period otherwise)."""
    config = replace(fold.train_config, sampler=checkpoint.train_config.sampler)
    return fold.replace(calibration=checkpoint.calibration, train_config=config)


def as_key(checkpoint: Checkpoint) -> tuple:
    """What of ``checkpoint`` the forecasts of its folds depend on (:func:`drawn_as`), for the
    name of their store: a fold's forecasts for another calibration are drawn again."""
    return (checkpoint.calibration, checkpoint.train_config.sampler)
