"""Which times a checkpoint has seen, and the warnings for forecasts there: the periods it
trained on (:func:`trained_periods`, less those held out: :func:`trained_on`) and the one
its spread calibration was fitted on (:func:`calibrated_period`). A forecast starting from
or valid in them scores too well (:func:`warn_if_trained_on`), as the baselines' do in
their training period; the calibration's fit (:mod:`generators.calibration`) refuses a
period its model trained on."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from generators.checkpoint import Checkpoint, load_checkpoint
from generators.correction.spread import SpreadCalibration
from pipeline.errors import counted, time_text
from pipeline.schema import Period

log = logging.getLogger(__name__)


def trained_periods(checkpoint: Checkpoint) -> list[Period]:
    """The periods ``checkpoint`` trained on: ``data.train``, then its fine-tune's period if
    it has one, each open side bounded by the span of times its training read
    (:attr:`~generators.checkpoint.Checkpoint.trained_span`): an open period is every time
    of the store as it was at training, not the times appended to it since. A checkpoint
    written before the span was recorded keeps its open sides (every time of any store)."""
    config = checkpoint.train_config
    periods = [config.data.train]
    if config.fine_tune is not None and config.fine_tune.period is not None:
        periods.append(config.fine_tune.period)
    span = checkpoint.trained_span
    if span is None:
        return periods
    return [Period(p.start or span.start, p.end or span.end) for p in periods]


def trained_on(checkpoint: Checkpoint, times: pd.DatetimeIndex) -> np.ndarray:
    """(N,) bool: which ``times`` lie in a period ``checkpoint`` trained on
    (:func:`trained_periods`) and outside the periods it held out (``data.exclude``)."""
    inside = np.any([period.contains(times) for period in trained_periods(checkpoint)], axis=0)
    for period in checkpoint.train_config.data.exclude:
        inside &= ~period.contains(times)
    return inside


def calibrated_period(checkpoint: Checkpoint) -> Period | None:
    """The held-out period ``checkpoint``'s spread calibration was fitted on, as it records
    it (its ``fit_period``; text, ``START to END``, in one written before that was
    recorded); None without a calibration, or for one fitted on cross-validation folds
    (their held-out days are the model's training days)."""
    if not checkpoint.calibration:
        return None
    calibration = SpreadCalibration.from_dict(checkpoint.calibration)
    if calibration.fold_periods:
        return None
    return calibration.fit_period or Period.from_str(calibration.period)


def warn_if_trained_on(
    checkpoint: Checkpoint | str | Path,
    inits: pd.DatetimeIndex,
    leads_hours: Sequence[float],
    *,
    calibrated: bool = True,
) -> pd.DatetimeIndex:
    """Log a warning when forecasts of ``checkpoint`` at ``inits`` start from, or are
    valid in, a period it trained on (:func:`trained_on`), as the baselines do: its scores
    there are too good. Returns those initial times. With ``calibrated`` (its spread
    calibration applied), another when they are valid in the period the calibration was
    fitted on (:func:`calibrated_period`): their spread-skill is in-sample there."""
    if not isinstance(checkpoint, Checkpoint):
        checkpoint = load_checkpoint(checkpoint)
    inits = pd.DatetimeIndex(inits)
    seen = trained_on(checkpoint, inits)
    for hours in leads_hours:
        seen |= trained_on(checkpoint, inits + pd.Timedelta(hours=hours))
    if seen.any():
        train = trained_periods(checkpoint)[0]
        log.warning(
            "%s forecast weather of the training period %s of %s: the model has seen it, so "
            "its scores there are too good; verify on times it never trained on",
            _which_of(inits, seen),
            train if train.time_slice() else "(every time of the store it trained on)",
            checkpoint.path,
        )
    if calibrated:
        warn_if_calibrated_on(checkpoint, inits, leads_hours)
    return inits[seen]


def warn_if_calibrated_on(
    checkpoint: Checkpoint, inits: pd.DatetimeIndex, leads_hours: Sequence[float]
) -> None:
    """The warning of :func:`warn_if_trained_on` about forecasts valid in the period of
    ``checkpoint``'s spread calibration (a derived config fits it on its validation days,
    where a researcher then verified, in-sample, a spread-skill ratio of about 1)."""
    period = calibrated_period(checkpoint)
    if period is None or not leads_hours:
        return
    seen = np.any([period.contains(inits + pd.Timedelta(hours=h)) for h in leads_hours], axis=0)
    if seen.any():
        log.warning(
            "%s forecast weather of the period %s that the spread calibration of %s was "
            "fitted on: its spread is fitted to their errors there, so their scores (the "
            "spread-skill ratio above all) are in-sample; verify on other days, or forecast "
            "them uncalibrated, calibrate=False (--no-calibration)",
            _which_of(inits, seen),
            period,
            checkpoint.path,
        )


def _which_of(inits: pd.DatetimeIndex, seen: np.ndarray) -> str:
    """``3 of 10 initial times (FIRST to LAST)``: those of ``inits`` where ``seen``."""
    first, last = time_text(inits[seen][0]), time_text(inits[seen][-1])
    return f"{seen.sum()} of {counted(len(inits), 'initial time')} ({first} to {last})"
