"""Exponential moving average of a model's weights, the weights that are validated and sampled.

theta_ema <- d_k theta_ema + (1 - d_k) theta after optimiser step k, with the warm-up
d_k = min(decay, (1 + k) / (10 + k)) so that early averages do not hold on to the random
initialisation (the schedule of tf.train.ExponentialMovingAverage with ``num_updates``).
Buffers are copied, not averaged.
"""

from __future__ import annotations

import copy

import torch
from torch import nn


class EMA:
    """A frozen copy of ``model`` (:attr:`module`) tracking the average of its weights."""

    def __init__(self, model: nn.Module, decay: float):
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"EMA decay must be in [0, 1), got {decay}")
        self.decay = decay
        self.module = copy.deepcopy(model).eval().requires_grad_(False)

    def decay_at(self, step: int) -> float:
        """d_k = min(decay, (1 + k) / (10 + k))."""
        return min(self.decay, (1.0 + step) / (10.0 + step))

    @torch.no_grad()
    def update(self, model: nn.Module, step: int) -> None:
        """Average ``model``'s current parameters in (after optimiser step ``step``)."""
        d = self.decay_at(step)
        for average, current in zip(self.module.parameters(), model.parameters(), strict=True):
            average.lerp_(current.detach().to(average.dtype), 1.0 - d)
        for average, current in zip(self.module.buffers(), model.buffers(), strict=True):
            average.copy_(current)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self.module.state_dict()

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.module.load_state_dict(state)
