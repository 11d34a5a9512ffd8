"""Generative models of the normalised residual: backbone, flow matching, EDM, samplers.

Importing the package loads nothing heavy: :mod:`generators.correction` (numpy/xarray
post-processing) runs without torch. The names below are loaded from their modules on
first use, so ``from generators import FlowMatching`` works as before. The built-in
generators register in :data:`GENERATORS` through :mod:`generators.models`, samplers in
:data:`SAMPLERS` through :mod:`generators.samplers`; unknown names raise
:class:`~pipeline.errors.InputError`.
"""

from __future__ import annotations

from pipeline.lazy import lazy_exports

_EXPORTS = {
    "BackboneConfig": "generators.backbone",
    "UNet": "generators.backbone",
    "forward_flops": "generators.backbone",
    "parameter_count": "generators.backbone",
    "Batch": "generators.base",
    "Condition": "generators.base",
    "Generator": "generators.base",
    "EDM": "generators.models",
    "EDMConfig": "generators.models",
    "FlowMatching": "generators.models",
    "FlowMatchingConfig": "generators.models",
    "GENERATORS": "generators.models",
    "ObjectiveConfig": "generators.objective",
    "fair_crps": "generators.objective",
    "SAMPLERS": "generators.samplers",
    "EDMEulerSampler": "generators.samplers",
    "EDMHeunSampler": "generators.samplers",
    "EulerSampler": "generators.samplers",
    "HeunSampler": "generators.samplers",
    "Sampler": "generators.samplers",
    "sampler_from_config": "generators.samplers",
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
