"""The sampler a checkpoint's fair-CRPS fine-tune trained it for, and the warning given when
its members are drawn with a longer one: the fine-tune trains the network to give a good
ensemble through its few steps (:attr:`~generators.objective.ResidualGenerator.crps_sampler`),
and many more steps of the standard sampler then score worse, not better."""

from __future__ import annotations

import logging

from generators.checkpoint import Checkpoint
from generators.config import sampler_spec
from generators.models import GENERATORS
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


def warn_if_not_fine_tuned_for(checkpoint: Checkpoint, model: object, given: Sampler) -> None:
    """Warn, once a process for each pair, when the sampler ``given`` (by ``--sampler``)
    evaluates the network more often than the one the checkpoint was fine-tuned for."""
    tuned = fine_tuned_sampler(checkpoint, model)
    if tuned is None or given.nfe <= tuned.nfe:
        return
    pair = (sampler_spec(tuned), sampler_spec(given))
    if pair in _said:
        return
    _said.add(pair)
    log.warning(
        "the checkpoint was fine-tuned for %s (NFE %d); members drawn with %s (NFE %d) are "
        "not what it was trained to give and may score worse, not better; drop --sampler to "
        "use its own",
        pair[0],
        tuned.nfe,
        pair[1],
        given.nfe,
    )


def warn_if_checkpoint_not_fine_tuned_for(checkpoint: Checkpoint, given: Sampler) -> None:
    """:func:`warn_if_not_fine_tuned_for` from ``checkpoint`` alone, its network built
    without weights (on the meta device: no memory, no time), for a process that draws no
    member itself: the client of a dask forecast, whose workers warn in their own logs."""
    import torch

    with torch.device("meta"):
        model = GENERATORS[checkpoint.kind](checkpoint.model_config)
    warn_if_not_fine_tuned_for(checkpoint, model, given)
