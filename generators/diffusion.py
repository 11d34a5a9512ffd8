"""EDM diffusion on the normalised residual (Karras et al. 2022, "Elucidating the design
space of diffusion-based generative models"; the GenCast recipe, Price et al. 2024).

Denoiser with preconditioning (paper Table 1, "ours"):
    D(x; sigma) = c_skip x + c_out F(c_in x; c_noise),
    c_skip = sd^2 / (sigma^2 + sd^2),  c_out = sigma sd / sqrt(sigma^2 + sd^2),
    c_in = 1 / sqrt(sigma^2 + sd^2),   c_noise = ln(sigma) / 4,
with sd = ``sigma_data`` (1 for a residual normalised by the tendency std) and F the
:class:`~generators.backbone.UNet`. Training: ln(sigma) ~ N(P_mean, P_std^2),
L = E[ lambda(sigma) || D(y + n; sigma) - y ||^2 ], n ~ N(0, sigma^2 I),
lambda(sigma) = (sigma^2 + sd^2) / (sigma sd)^2. Members: the stochastic Heun sampler
with churn, :class:`~generators.samplers.EDMHeunSampler`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import torch
from torch import Tensor

from generators.backbone import BackboneConfig
from generators.base import GENERATORS, BaseBackboneConfig
from generators.objective import Encoded, ObjectiveConfig, ResidualGenerator
from generators.samplers import (
    DiffusionSampler,
    EDMEulerSampler,
    EDMHeunSampler,
    NetworkFn,
    standard_normal,
)
from pipeline.errors import InputError


def edm_preconditioning(sigma: Tensor, sigma_data: float) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """(c_skip, c_out, c_in, c_noise) of Karras et al. 2022, Table 1, same shape as sigma."""
    total = sigma.square() + sigma_data**2
    c_skip = sigma_data**2 / total
    c_out = sigma * sigma_data / total.sqrt()
    c_in = total.rsqrt()
    c_noise = sigma.log() / 4
    return c_skip, c_out, c_in, c_noise


def edm_loss_weight(sigma: Tensor, sigma_data: float) -> Tensor:
    """lambda(sigma) = (sigma^2 + sd^2) / (sigma sd)^2 = 1 / c_out^2 (unit effective weight)."""
    return (sigma.square() + sigma_data**2) / (sigma * sigma_data).square()


@dataclass(frozen=True)
class EDMConfig(ObjectiveConfig):
    """An EDM generator: backbone, preconditioning, training noise law, default sampler.

    sigma_data:            std of the targets (1 for residuals normalised by the tendency std).
    p_mean, p_std:         training ln(sigma) ~ N(p_mean, p_std^2) (paper: -1.2, 1.2).
    sigma_min, sigma_max:  noise range of the default and the fair-CRPS samplers
                           (GenCast: 0.02, 88).
    sample_steps:          Heun steps of :meth:`EDM.default_sampler` (NFE = 2 steps - 1).
    """

    backbone: BaseBackboneConfig = field(default_factory=BackboneConfig)
    sigma_data: float = 1.0
    p_mean: float = -1.2
    p_std: float = 1.2
    sigma_min: float = 0.02
    sigma_max: float = 80.0
    sample_steps: int = 20

    @property
    def sample_nfe(self) -> int:
        """Network evaluations of a sample by :meth:`EDM.default_sampler` (Heun's
        ``sample_steps``: two each but the last), as flow matching's ``sample_nfe``."""
        return 2 * self.sample_steps - 1

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.sigma_data <= 0 or self.p_std <= 0:
            raise InputError(
                f"EDMConfig: sigma_data and p_std must be positive, "
                f"got {self.sigma_data}, {self.p_std}"
            )
        EDMHeunSampler(
            num_steps=self.sample_steps, sigma_min=self.sigma_min, sigma_max=self.sigma_max
        )


@GENERATORS.register("edm")
class EDM(ResidualGenerator):
    """EDM diffusion generator over a :class:`~generators.backbone.UNet` denoiser."""

    name: ClassVar[str] = "edm"
    config_class: ClassVar[type] = EDMConfig
    sampler_family: ClassVar[type] = DiffusionSampler

    def __init__(self, config: EDMConfig):
        super().__init__(config, config.backbone)

    @property
    def crps_sampler(self) -> EDMEulerSampler:
        """Deterministic Euler (DDIM) steps, ``crps_nfe`` of them: unlike Heun, well
        conditioned at 1-3 steps (2 Heun steps scale the noise by 1/2 instead of 1/80)."""
        c = self.config
        return EDMEulerSampler(
            num_steps=c.crps_nfe, sigma_min=c.sigma_min, sigma_max=c.sigma_max, churn=0.0
        )

    def default_sampler(self) -> EDMHeunSampler:
        c = self.config
        return EDMHeunSampler(
            num_steps=c.sample_steps, sigma_min=c.sigma_min, sigma_max=c.sigma_max
        )

    def denoise(self, x: Tensor, sigma: Tensor, encoded: Encoded) -> Tensor:
        """D(x; sigma) for x (N, C, H, W) and sigma (N,), computed in x's dtype; the
        network runs in its weights' dtype (it casts its inputs)."""
        c_skip, c_out, c_in, c_noise = (
            c.reshape((-1,) + (1,) * (x.dim() - 1))
            for c in edm_preconditioning(sigma.to(x.dtype), self.config.sigma_data)
        )
        f = self.backbone(c_in * x, c_noise.flatten(), *encoded)
        return c_skip * x + c_out * f.to(x.dtype)

    def network_fn(self, encoded: Encoded) -> NetworkFn:
        def denoiser(x: Tensor, sigma: Tensor) -> Tensor:
            return self.denoise(x, sigma, encoded)

        return denoiser

    def regression_error(
        self, target: Tensor, encoded: Encoded, generator: torch.Generator | None
    ) -> Tensor:
        """Weighted denoising error at ln(sigma) ~ N(p_mean, p_std^2), per element."""
        b = target.shape[0]
        c = self.config
        sigma = (
            c.p_mean + c.p_std * standard_normal((b,), generator, target.device, target.dtype)
        ).exp()
        noise = standard_normal(target.shape, generator, target.device, target.dtype)
        s = sigma.reshape((b,) + (1,) * (target.dim() - 1))
        denoised = self.denoise(target + s * noise, sigma, encoded)
        return edm_loss_weight(s, c.sigma_data) * (denoised - target).square()
