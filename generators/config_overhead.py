"""What a derived config's budget sets aside beside its optimiser steps
(:func:`overhead_seconds`), and the fair-CRPS fine-tune it leaves out for a generator
whose config has no loss mix to fine-tune (:func:`without_fine_tune`): an extension's
generator need not have flow matching's keys (``sample_nfe``, ``crps_nfe``, ...)."""

from __future__ import annotations

import dataclasses
import math

import torch

from generators.config import TrainConfig, missing_loss_mix
from generators.models import GENERATORS
from pipeline.errors import InputError

MAIN_STEPS_PER_FINE_TUNE_STEP = 5
"""The fine-tune takes one step for this many main steps (the UK config's 1500 and 300)."""
VALIDATIONS = 8
"""Validation losses (and checkpoints) over the main phase."""


def overhead_seconds(config: TrainConfig, calibration_inits: int, forward_seconds: float) -> float:
    """Seconds of the validation losses (:data:`VALIDATIONS` over the main phase, as many
    again per step in the fine-tune, one at the end of each phase) and of the calibration
    forecasts, at ``forward_seconds`` per network evaluation of a sample. A main-phase
    loss evaluates the network once a sample, the fine-tune's fair CRPS ``crps_members x
    crps_nfe`` times, a forecast as many times per lead as its sampler (the fine-tune's, or
    the model's default) evaluates it."""
    items = config.validation_batches * config.batch_size
    evaluations = (VALIDATIONS + 1) * items
    if config.fine_tune is not None:
        ft = config.fine_tune
        validations = math.ceil(VALIDATIONS / MAIN_STEPS_PER_FINE_TUNE_STEP) + 1
        evaluations += validations * items * ft.crps_members * ft.crps_nfe
    seconds = evaluations * forward_seconds
    if config.calibration is not None:
        members = calibration_inits * config.calibration.members
        seconds += members * forecast_seconds(config, forward_seconds)
    return seconds


def forecast_seconds(config: TrainConfig, forward_seconds: float) -> float:
    """Seconds of one calibration member's forecast of one initial time, every lead: as
    many network evaluations per lead as its sampler takes (:func:`_forecast_nfe`); what
    a calibration's initial times x members each cost a budget."""
    return len(config.data.sample_spec.leads) * _forecast_nfe(config) * forward_seconds


def _forecast_nfe(config: TrainConfig) -> int:
    """Network evaluations a lead of the calibration forecasts takes: the fine-tune's short
    sampler's, else the model's default sampler's (the model built on the meta device, as
    its own config, not flow matching's ``sample_nfe``, says how many)."""
    if config.fine_tune is not None:
        return config.fine_tune.crps_nfe
    with torch.device("meta"):
        model = GENERATORS[config.model.kind](config.model.config)
    sampler = getattr(model, "default_sampler", None)
    if sampler is None:
        raise InputError(
            f"the calibration forecasts of the {config.model.kind} generator cannot be timed "
            "for the budget= (--budget): it has no default_sampler() to forecast with; give "
            "calibration.sampler= (--set calibration.sampler=SPEC), or calibration=null "
            "(--set calibration=null)"
        )
    return sampler().nfe


def without_fine_tune(derived: TrainConfig, chosen: TrainConfig) -> tuple[TrainConfig, tuple]:
    """``derived`` without its fair-CRPS fine-tune, and a note saying why, where the
    generator trained (``chosen``: as ``--set`` made it) has a config without the loss-mix
    keys the fine-tune sets; else ``derived`` as it is and no note."""
    missing = missing_loss_mix(chosen.model.kind)
    if chosen.fine_tune is None or not missing:
        return derived, ()
    note = (
        f"fine-tune: left out: the {chosen.model.kind} generator's config has no "
        f"{', '.join(missing)} (the loss mix a fair-CRPS fine-tune sets); its steps and "
        "forecasts are timed without one"
    )
    return dataclasses.replace(derived, fine_tune=None), (note,)
