"""The generator and backbone interfaces and the tensors that cross them.

Axes (named once, used everywhere): B batch, M members, K history states, C channels,
S static fields, F calendar features, H latitude, W longitude. Every tensor here is
normalised: states by the store's per-channel mean/std, targets as the residual
``(x[t+lead] - x[t]) / tendency_std``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, runtime_checkable

import torch
from torch import Tensor

from generators.config_io import from_mapping, to_mapping
from pipeline.config_fields import settle_fields
from pipeline.errors import InputError
from pipeline.registry import Registry


@dataclass(frozen=True)
class Condition:
    """What a member is conditioned on.

    history:  (B, K, C, H, W) the last K states, oldest first; ``history[:, -1]`` is now.
    static:   (B, S, H, W)    fields known in advance: static fields (sin/cos latitude and
                              longitude, ...) and forcings such as the TOA insolation.
    calendar: (B, F)          calendar features of the initial time (hour, day of year).
    lead:     (B,)            lead time in hours.
    """

    history: Tensor
    static: Tensor
    calendar: Tensor
    lead: Tensor

    def to(self, device: torch.device | str, dtype: torch.dtype | None = None) -> Condition:
        def move(t: Tensor) -> Tensor:
            return t.to(device=device, dtype=dtype if t.is_floating_point() else None)

        return Condition(
            move(self.history), move(self.static), move(self.calendar), move(self.lead)
        )

    def repeat_members(self, n_members: int) -> Condition:
        """(B, ...) -> (B*M, ...), members of one sample adjacent."""
        return Condition(
            *(
                t.repeat_interleave(n_members, dim=0)
                for t in (self.history, self.static, self.calendar, self.lead)
            )
        )


@dataclass(frozen=True)
class Batch:
    """A training batch: a condition, the normalised residual target (B, C, H, W) and
    where it is valid (B, C, H, W, bool; None: everywhere). The loss averages over the
    valid points only (a masked field's target is 0 elsewhere)."""

    condition: Condition
    target: Tensor
    valid: Tensor | None = None


@runtime_checkable
class Generator(Protocol):
    """A conditional generative model of the normalised residual."""

    def loss(self, batch: Batch) -> Tensor:
        """Scalar training loss of one batch."""
        ...

    def sample(
        self,
        condition: Condition,
        n_members: int,
        *,
        sampler: object,
        generator: torch.Generator,
    ) -> Tensor:
        """Draw members of the normalised residual: (B, M, C, H, W).

        ``sampler`` is the model's own sampler config (e.g. an Euler/Heun NFE for flow
        matching, a churned Heun schedule for EDM); the same ``generator`` state gives
        the same members.
        """
        ...


GENERATORS: Registry[type] = Registry(
    "generator",
    built_in={"flow_matching": "generators.flow_matching", "edm": "generators.diffusion"},
)
"""Generator classes by name (``"flow_matching"``, ``"edm"``); each has a ``config_class``.

The built-in ones register when :mod:`generators.models` is imported."""


DEFAULT_BACKBONE = "unet"
"""The backbone of a config whose ``model.backbone`` has no ``kind`` (every config and
checkpoint written before backbones were registered)."""


@dataclass(frozen=True)
class BaseBackboneConfig:
    """What every backbone's config holds: the sizes of its inputs, set from the data by
    :func:`~generators.train_plan.model_config_for` (never by hand in a config file).
    A backbone's own config subclasses it, adding its own fields.

    channels:          C, state channels (= output channels), e.g. 1 for ``t2m``.
    history:           K, number of past states in the condition (at least 1).
    static_channels:   S, static fields (sin/cos latitude and longitude, orography, ...).
    calendar_features: F, calendar features (e.g. sin/cos of hour and day of year).
    """

    channels: int = 1
    history: int = 2
    static_channels: int = 4
    calendar_features: int = 4

    def __post_init__(self) -> None:
        settle_fields(self)
        name = type(self).__name__
        for field in ("channels", "history"):
            if getattr(self, field) < 1:
                raise InputError(f"{name}.{field} must be at least 1, got {getattr(self, field)}")
        for field in ("static_channels", "calendar_features"):
            if getattr(self, field) < 0:
                raise InputError(f"{name}.{field} must be >= 0, got {getattr(self, field)}")

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], where: str) -> BaseBackboneConfig:
        """The config of the backbone ``data["kind"]`` (absent: :data:`DEFAULT_BACKBONE`)."""
        data = dict(data)
        kind = data.pop("kind", DEFAULT_BACKBONE)
        return from_mapping(BACKBONES.named(kind, f"{where}.kind").config_class, data, where)

    def to_mapping(self) -> dict[str, Any]:
        """Its fields and its backbone's ``kind``, which :meth:`from_mapping` reads."""
        fields = dataclasses.fields(self)
        mapping = {f.name: to_mapping(getattr(self, f.name)) for f in fields if f.init}
        return {"kind": backbone_kind(self), **mapping}


@runtime_checkable
class Backbone(Protocol):
    """The network of a generator: what :class:`~generators.objective.ResidualGenerator`
    and the samplers call. An ``nn.Module`` (its weights are the checkpoint's, it is moved,
    cast and compiled as one), registered in :data:`BACKBONES` with its ``config_class``,
    a frozen dataclass subclassing :class:`BaseBackboneConfig`, which it is built from.

    ``encode(condition)`` runs once per sample and returns a tuple of tensors, batch first
    (the U-Net's: a padded map of the history and static fields, and an embedding of the
    lead and calendar); they are repeated over members and sliced along the batch. The
    network call ``backbone(x, noise_label, *encoded)`` maps a state (N, C, H, W) and a
    noise label (N,) (flow time, or EDM's ln(sigma)/4) to a field of the same shape as
    ``x``. ``dtype`` is its weights' dtype, in which it runs.
    """

    config_class: ClassVar[type]
    config: BaseBackboneConfig

    @property
    def dtype(self) -> torch.dtype: ...

    def encode(self, condition: Condition) -> tuple[Tensor, ...]: ...

    def __call__(self, x: Tensor, noise_label: Tensor, *encoded: Tensor) -> Tensor: ...


BACKBONES: Registry[type] = Registry("backbone", built_in={"unet": "generators.backbone"})
"""Backbone classes by name (:class:`Backbone`), chosen by ``model.backbone.kind``. The
U-Net registers as ``"unet"`` when :mod:`generators.backbone` is imported (by every
generator)."""


def backbone_kind(config: BaseBackboneConfig) -> str:
    """The name of the backbone whose ``config_class`` ``config`` is."""
    for name, backbone in BACKBONES.items():
        if backbone.config_class is type(config):
            return name
    raise InputError(
        f"{type(config).__name__} is the config of no registered backbone: register its "
        "backbone class in generators.base.BACKBONES with config_class set to it"
    )
