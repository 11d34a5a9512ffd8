"""The sampler a checkpoint's members are drawn with, and where it was taken from: a warning
about it (:mod:`generators.fine_tuned`) names what to change, ``--sampler`` or the config's
``sampler:``, and needs the source known, not found again by comparing specs."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from generators.checkpoint import Checkpoint
from generators.config import parse_sampler
from generators.samplers import Sampler


class SamplerSource(enum.Enum):
    """Where :func:`choose_sampler` took a sampler from, in the order it looks."""

    GIVEN = "given"  # by the caller: ``--sampler``, a calibration config's ``sampler``
    CALIBRATION = "calibration"  # the one the checkpoint's spread calibration was fitted with
    CONFIG = "config"  # the checkpoint's config's own ``sampler:``
    FINE_TUNE = "fine_tune"  # the short one of its fair-CRPS fine-tune
    MODEL = "model"  # the model's default (its config's sample_nfe or sample_steps)


@dataclass(frozen=True)
class SamplerChoice:
    """A sampler and where it was taken from."""

    sampler: Sampler
    source: SamplerSource


def choose_sampler(
    checkpoint: Checkpoint, model: object, given: Sampler | None = None
) -> SamplerChoice:
    """The sampler ``given`` when one is; else the one a checkpoint forecasts with by
    default: the one its spread calibration was fitted with (the factors hold for it only);
    else its config's ``sampler`` when set; else the short sampler of its fair-CRPS
    fine-tune if it had one (those are the steps it was trained through); else the model's
    default. ``model``: the network built from the checkpoint (its weights not needed)."""
    if given is not None:
        return SamplerChoice(given, SamplerSource.GIVEN)
    if (checkpoint.calibration or {}).get("sampler"):
        return SamplerChoice(
            parse_sampler(checkpoint.calibration["sampler"]), SamplerSource.CALIBRATION
        )
    if checkpoint.train_config.sampler is not None:
        return SamplerChoice(parse_sampler(checkpoint.train_config.sampler), SamplerSource.CONFIG)
    fine_tune = checkpoint.train_config.fine_tune
    if fine_tune is not None and fine_tune.crps_weight > 0:
        return SamplerChoice(model.crps_sampler, SamplerSource.FINE_TUNE)
    return SamplerChoice(model.default_sampler(), SamplerSource.MODEL)


def default_sampler(checkpoint: Checkpoint, model: object) -> Sampler:
    """The sampler a checkpoint forecasts with by default (:func:`choose_sampler`)."""
    return choose_sampler(checkpoint, model).sampler
