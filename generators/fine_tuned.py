"""The sampler a checkpoint's fair-CRPS fine-tune trained it for, and the warning given when
its members are drawn with a longer one: the fine-tune trains the network to give a good
ensemble through its few steps (:attr:`~generators.objective.ResidualGenerator.crps_sampler`),
and many more steps of the standard sampler then score worse, not better."""

from __future__ import annotations

import logging

import torch

from generators.checkpoint import Checkpoint
from generators.config import sampler_spec
from generators.models import GENERATORS
from generators.sampler_choice import SamplerChoice, SamplerSource, choose_sampler
from generators.samplers import Sampler

log = logging.getLogger(__name__)

_said: set[tuple[str, str]] = set()
"""The (fine-tuned, given) sampler pairs warned about in this process: once each (a tuning
forecasts with every fold's checkpoint, a calibration fits on each fold's)."""


def fine_tuned_sampler(checkpoint: Checkpoint, model: object) -> Sampler | None:
    """The short sampler the fair-CRPS fine-tune of ``checkpoint`` trained its network
    through (``model``: the network built from it), or None where it had no such fine-tune
    or was saved before its fine-tune began."""
    config = checkpoint.train_config
    fine_tune = config.fine_tune
    if fine_tune is None or fine_tune.crps_weight <= 0 or checkpoint.step <= config.steps:
        return None
    return model.crps_sampler  # the checkpoint's model config holds the fine-tune's crps_nfe


def warn_if_not_fine_tuned_for(
    checkpoint: Checkpoint, model: object, chosen: SamplerChoice
) -> None:
    """Warn, once a process for each pair, when the sampler ``chosen`` by ``--sampler`` (or
    the caller: :attr:`SamplerSource.GIVEN`) or by the checkpoint's config's own
    ``sampler:``, which the default prefers to the fine-tune's (a config edited by hand to
    a longer one), evaluates the network more often than the one the checkpoint was
    fine-tuned for. Not for the sampler of its spread calibration: the factors hold for it
    only, and its fit was warned about."""
    if chosen.source not in (SamplerSource.GIVEN, SamplerSource.CONFIG):
        return
    tuned, given = fine_tuned_sampler(checkpoint, model), chosen.sampler
    if tuned is None or given.nfe <= tuned.nfe:
        return
    pair = (sampler_spec(tuned), sampler_spec(given))
    if pair in _said:
        return
    _said.add(pair)
    log.warning(
        "the checkpoint was fine-tuned for %s (NFE %d); members drawn with %s (NFE %d) are "
        "not what it was trained to give and may score worse, not better; %s",
        pair[0],
        tuned.nfe,
        pair[1],
        given.nfe,
        f"its config's sampler: chose them; give sampler= (--sampler {pair[0]}) to use the "
        "fine-tune's"
        if chosen.source is SamplerSource.CONFIG
        else "drop sampler= (--sampler) to use its own",
    )


def warn_if_checkpoint_not_fine_tuned_for(checkpoint: Checkpoint, given: Sampler | None) -> None:
    """:func:`warn_if_not_fine_tuned_for` of the sampler ``given`` (None: the checkpoint's
    default, :func:`~generators.sampler_choice.choose_sampler`) from ``checkpoint`` alone,
    its network built without weights (on the meta device: no memory, no time), for a
    process that draws no member itself: the client of a dask forecast."""
    with torch.device("meta"):
        model = GENERATORS[checkpoint.kind](checkpoint.model_config)
    warn_if_not_fine_tuned_for(checkpoint, model, choose_sampler(checkpoint, model, given))
