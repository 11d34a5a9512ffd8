"""The sampler a checkpoint's fair-CRPS fine-tune trained it for, and the warning given when
its members are drawn with a longer one: the fine-tune trains the network to give a good
ensemble through its few steps (:attr:`~generators.objective.ResidualGenerator.crps_sampler`),
and many more steps of the standard sampler then score worse, not better."""

from __future__ import annotations

import logging

from generators.checkpoint import Checkpoint
from generators.config import parse_sampler, sampler_spec
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


def warn_if_not_fine_tuned_for(
    checkpoint: Checkpoint, model: object, given: Sampler, *, by_config: bool = False
) -> None:
    """Warn, once a process for each pair, when the sampler ``given`` (by ``--sampler``, or
    ``by_config``: the checkpoint's config's own ``sampler:``, no ``--sampler`` given)
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
        "not what it was trained to give and may score worse, not better; %s",
        pair[0],
        tuned.nfe,
        pair[1],
        given.nfe,
        f"its config's sampler: chose them; give --sampler {pair[0]} to use the fine-tune's"
        if by_config
        else "drop --sampler to use its own",
    )


def warn_if_config_not_fine_tuned_for(
    checkpoint: Checkpoint, model: object, chosen: Sampler
) -> None:
    """:func:`warn_if_not_fine_tuned_for` of the sampler ``chosen`` with no ``--sampler``
    (:func:`generators.rollout.default_sampler`) where it is the checkpoint's config's own
    ``sampler:``, which the default prefers to the fine-tune's: a config edited by hand (or
    derived, then edited) to a longer one drew its members unwarned."""
    own = checkpoint.train_config.sampler
    if own is not None and sampler_spec(parse_sampler(own)) == sampler_spec(chosen):
        warn_if_not_fine_tuned_for(checkpoint, model, chosen, by_config=True)


def warn_if_checkpoint_not_fine_tuned_for(checkpoint: Checkpoint, given: Sampler) -> None:
    """:func:`warn_if_not_fine_tuned_for` from ``checkpoint`` alone, its network built
    without weights (on the meta device: no memory, no time), for a process that draws no
    member itself: the client of a dask forecast, whose workers warn in their own logs."""
    import torch

    with torch.device("meta"):
        model = GENERATORS[checkpoint.kind](checkpoint.model_config)
    warn_if_not_fine_tuned_for(checkpoint, model, given)
