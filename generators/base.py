"""The generator interface and the tensors that cross it.

Axes (named once, used everywhere): B batch, M members, K history states, C channels,
S static fields, F calendar features, H latitude, W longitude. Every tensor here is
normalised: states by the store's per-channel mean/std, targets as the residual
``(x[t+lead] - x[t]) / tendency_std``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import torch
from torch import Tensor

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


GENERATORS: Registry[type] = Registry("generator")
"""Generator classes by name (``"flow_matching"``, ``"edm"``); each has a ``config_class``.

The built-in ones register when :mod:`generators.models` is imported."""
