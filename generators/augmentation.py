"""Training-time augmentations of a batch: amplitude (changes scaled about the current
state) and level (a constant shift of the history), each drawn on the step's generator."""

from __future__ import annotations

import dataclasses
import math

import torch

from generators.base import Batch


def scale_changes(batch: Batch, max_factor: float, generator: torch.Generator) -> Batch:
    """Amplitude augmentation: per sample, ``a = exp(u)``, ``u ~ U[-ln m, ln m]`` drawn on
    ``generator``, and every change of the sample scaled by ``a`` about the current state:
    ``history_k' = now + a (history_k - now)``, ``target' = a target`` (the target is the
    normalised residual). States, statics, calendar and lead are otherwise kept.
    history (B, K, C, H, W), target (B, C, H, W)."""
    history, target = batch.condition.history, batch.target
    log_m = math.log(max_factor)
    u = torch.rand(target.shape[0], generator=generator) * 2 * log_m - log_m
    a = u.exp().to(device=target.device, dtype=target.dtype)
    now = history[:, -1:]
    condition = dataclasses.replace(
        batch.condition, history=now + a[:, None, None, None, None] * (history - now)
    )
    return dataclasses.replace(batch, condition=condition, target=a[:, None, None, None] * target)


def shift_levels(batch: Batch, std: float, generator: torch.Generator) -> Batch:
    """Level augmentation: per sample and channel, ``c ~ N(0, std^2)`` (normalised state
    units) drawn on ``generator`` and added to every state of the history,
    ``history_k' = history_k + c``; the target (a change) is kept. The model then learns
    changes that do not depend on the absolute level, rather than a reversion towards the
    training period's mean. history (B, K, C, H, W)."""
    history = batch.condition.history
    c = torch.randn(history.shape[0], history.shape[2], generator=generator) * std
    c = c.to(device=history.device, dtype=history.dtype)[:, None, :, None, None]
    return dataclasses.replace(
        batch, condition=dataclasses.replace(batch.condition, history=history + c)
    )
