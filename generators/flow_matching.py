"""Conditional flow matching on the normalised residual (Lipman et al. 2023; Liu et al. 2023).

Path: x_t = (1 - t) x0 + t x1, x0 ~ N(0, I), x1 the target residual
``(x[t+lead] - x[t]) / tendency_std``, t ~ U[0, 1]. The network regresses the velocity
``x1 - x0``:  L = E || v(x_t, t | c) - (x1 - x0) ||^2  (mean over elements).
Members: integrate dx/dt = v(x, t | c) from x(0) ~ N(0, noise_scale^2 I) to t = 1 with
an :class:`~generators.samplers.EulerSampler` or :class:`~generators.samplers.HeunSampler`
(ArchesWeatherGen, Couairon et al. 2024: 25 Euler steps, noise scale 1.05).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import torch
from torch import Tensor

from generators.backbone import BackboneConfig
from generators.base import GENERATORS, BaseBackboneConfig
from generators.objective import Encoded, ObjectiveConfig, ResidualGenerator
from generators.samplers import EulerSampler, FlowSampler, NetworkFn, standard_normal


@dataclass(frozen=True)
class FlowMatchingConfig(ObjectiveConfig):
    """A flow-matching generator: the backbone and the loss mix (:class:`ObjectiveConfig`).

    sample_nfe: Euler evaluations of :meth:`FlowMatching.default_sampler`.
    """

    backbone: BaseBackboneConfig = field(default_factory=BackboneConfig)
    sample_nfe: int = 20

    def __post_init__(self) -> None:
        super().__post_init__()
        EulerSampler(nfe=self.sample_nfe)  # validates sample_nfe


@GENERATORS.register("flow_matching")
class FlowMatching(ResidualGenerator):
    """Flow matching generator over a :class:`~generators.backbone.UNet` velocity field."""

    name: ClassVar[str] = "flow_matching"
    config_class: ClassVar[type] = FlowMatchingConfig
    sampler_family: ClassVar[type] = FlowSampler

    def __init__(self, config: FlowMatchingConfig):
        super().__init__(config, config.backbone)

    @property
    def crps_sampler(self) -> EulerSampler:
        return EulerSampler(nfe=self.config.crps_nfe)

    def default_sampler(self) -> EulerSampler:
        return EulerSampler(nfe=self.config.sample_nfe)

    def network_fn(self, encoded: Encoded) -> NetworkFn:
        def velocity(x: Tensor, t: Tensor) -> Tensor:
            return self.backbone(x, t, *encoded)  # which casts x to its weights' dtype

        return velocity

    def regression_error(
        self, target: Tensor, encoded: Encoded, generator: torch.Generator | None
    ) -> Tensor:
        """Velocity regression at t ~ U[0, 1] on the straight path (squared error)."""
        b = target.shape[0]
        x0 = standard_normal(target.shape, generator, target.device, target.dtype)
        t = _uniform(b, generator, target.device)
        tt = t.reshape((b,) + (1,) * (target.dim() - 1)).to(target.dtype)
        xt = (1 - tt) * x0 + tt * target
        velocity = self.backbone(xt, t.to(target.dtype), *encoded)
        return (velocity - (target - x0)).square()


def _uniform(n: int, generator: torch.Generator | None, device: torch.device) -> Tensor:
    """U[0, 1) of shape (n,) on ``device``, drawn on ``generator``'s device."""
    source = device if generator is None else generator.device
    return torch.rand(n, generator=generator, device=source).to(device)
