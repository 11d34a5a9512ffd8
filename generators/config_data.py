"""The ``data`` section of a training config (:class:`DataConfig`): what the model sees
(:class:`generators.data.SampleSpec`), the augmentations of its training samples and the
periods it trains, validates and holds out on. Apart from :mod:`generators.config`'s
:class:`~generators.config.TrainConfig`, which holds it, as it depends on no other section.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from generators.data import SampleSpec
from pipeline.config_fields import settle_fields
from pipeline.errors import InputError
from pipeline.schema import Period


@dataclass(frozen=True)
class DataConfig:
    """What the model sees (:class:`generators.data.SampleSpec`) and on which periods.

    channels:   model channels (``t2m``, ``z500``, ...); None = every variable of the store.
    history:    offsets of the conditioning states in native steps, or ``n`` = the last n.
    leads:      target leads in native steps.
    variability_scaling: scale each target by its history's recent variability
                (:class:`generators.data.SampleSpec`), a flow-dependent spread.
    tendency_per_grid_point: normalise residuals by each grid point's tendency std rather
                than the channel's (:class:`generators.data.SampleSpec`).
    solar_forcing: condition on the TOA insolation at the initial and valid times and its
                mean between (:mod:`pipeline.solar`), as extra static fields.
    amplitude_augmentation: ``m >= 1``; during training, multiply every change of a sample
                (history about the current state, and the target) by ``a ~ LogUniform[1/m, m]``
                (:func:`generators.train.scale_changes`), so the model sees days livelier and
                calmer than its training period's; 1 is off.
    level_augmentation: ``std >= 0``; during training, shift each sample's history by a
                constant ``c ~ N(0, std^2)`` per channel, in units of the channel's std
                (:func:`generators.train.shift_levels`), so that changes do not revert to the
                training period's mean level; 0 is off.
    lead_weights: sampling weight of each lead, in the order of the sorted leads: a
                training sample's lead is drawn with probability proportional to its weight,
                its initial time uniformly among those valid for that lead
                (:func:`generators.train_plan.lead_draw_weights`); None = every (initial time,
                lead) pair equally likely.
    train:      training period; validation: held-out period for the validation loss.
    exclude:    periods held out of training and fine-tuning (e.g. one fold of a
                cross-validation inside ``train``): no item whose initial time or target lies
                in one is trained on.
    max_memory_bytes: stores smaller than this are read into memory once.
    """

    channels: tuple[str, ...] | None = None
    history: tuple[int, ...] | int = (-1, 0)
    leads: tuple[int, ...] | int = (1,)
    variability_scaling: bool = False
    tendency_per_grid_point: bool = False
    solar_forcing: bool = False
    amplitude_augmentation: float = 1.0
    level_augmentation: float = 0.0
    lead_weights: tuple[float, ...] | None = None
    train: Period = field(default_factory=Period)
    validation: Period | None = None
    exclude: tuple[Period, ...] = ()
    max_memory_bytes: int = 2**31

    def __post_init__(self) -> None:
        settle_fields(self)
        self.sample_spec  # noqa: B018  (validates history and leads now, not at training)
        if self.amplitude_augmentation < 1:
            raise InputError(
                f"data.amplitude_augmentation must be at least 1 (1 is off), got "
                f"{self.amplitude_augmentation}"
            )
        if self.level_augmentation < 0:
            raise InputError(
                f"data.level_augmentation is a std and cannot be negative (0 is off), got "
                f"{self.level_augmentation}"
            )
        leads = self.sample_spec.leads
        if self.lead_weights is not None and (
            len(self.lead_weights) != len(leads)
            or not all(math.isfinite(w) and w > 0 for w in self.lead_weights)
        ):
            raise InputError(
                f"data.lead_weights {list(self.lead_weights)} must hold one positive weight "
                f"per lead of {list(leads)}, in that order, e.g. {[1.0] * len(leads)}"
            )
        if self.amplitude_augmentation > 1 and self.variability_scaling:
            raise InputError(
                "data.amplitude_augmentation and data.variability_scaling cannot be combined: "
                "the variability scale of a scaled history cancels the scaled target; use one"
            )

    @property
    def sample_spec(self) -> SampleSpec:
        return SampleSpec(
            history=self.history,
            leads=self.leads,
            variability_scaling=self.variability_scaling,
            tendency_per_grid_point=self.tendency_per_grid_point,
            solar_forcing=self.solar_forcing,
        )
