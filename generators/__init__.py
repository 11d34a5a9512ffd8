"""Generative models of the normalised residual: backbone, flow matching, EDM, samplers.

Importing the package registers the built-in generators in :data:`GENERATORS`
(``"flow_matching"``, ``"edm"``) and samplers in :data:`SAMPLERS` (``"euler"``,
``"heun"``, ``"edm_heun"``, ``"edm_euler"``); unknown names raise :class:`~pipeline.errors.InputError`.
"""

from generators.backbone import BackboneConfig, UNet, forward_flops, parameter_count
from generators.base import Batch, Condition, Generator
from generators.diffusion import EDM, EDMConfig
from generators.flow_matching import FlowMatching, FlowMatchingConfig
from generators.objective import ObjectiveConfig, fair_crps
from generators.registry import GENERATORS
from generators.samplers import (
    SAMPLERS,
    EDMEulerSampler,
    EDMHeunSampler,
    EulerSampler,
    HeunSampler,
    Sampler,
    sampler_from_config,
)

__all__ = [
    "EDM",
    "GENERATORS",
    "SAMPLERS",
    "BackboneConfig",
    "Batch",
    "Condition",
    "EDMConfig",
    "EDMEulerSampler",
    "EDMHeunSampler",
    "EulerSampler",
    "FlowMatching",
    "FlowMatchingConfig",
    "Generator",
    "HeunSampler",
    "ObjectiveConfig",
    "Sampler",
    "UNet",
    "fair_crps",
    "forward_flops",
    "parameter_count",
    "sampler_from_config",
]
