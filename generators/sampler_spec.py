"""The samplers' names and parameters, and the reading of a sampler spec's text
(``euler:nfe=10``), without torch: ``wxens forecast --sampler eulr`` is refused by the
parser, at once, not once torch and the checkpoint have loaded.

:data:`SAMPLERS` is the samplers' one registry. Each built-in name is declared here with
its parameters, a frozen dataclass (:class:`FlowParameters`, :class:`EDMParameters`), and
:mod:`generators.samplers` (torch) puts its implementation, a subclass of those, in its
place (:meth:`~pipeline.registry.Registry.implement`): the names and the keys a spec takes
are written once. An extension registers its sampler class under a new name.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from pipeline.errors import InputError
from pipeline.registry import Registry
from pipeline.spec import parse_fields, split_scheme

SAMPLERS: Registry[type] = Registry("sampler")
"""Samplers by name: the parameters declared below until :mod:`generators.samplers` is
imported, then the sampler classes (whose fields they are)."""


@dataclass(frozen=True)
class FlowParameters:
    """Of a flow sampler (``euler``, ``heun``): ``nfe`` network evaluations from noise of
    std ``noise_scale``."""

    nfe: int = 10
    noise_scale: float = 1.0


@dataclass(frozen=True)
class EDMParameters:
    """Of an EDM sampler (``edm_heun``, ``edm_euler``): ``num_steps`` noise levels on the
    rho schedule from ``sigma_max`` to ``sigma_min``, the churn and its window, the noise
    inflation and scale (:class:`generators.samplers.EDMSampler` says what each does)."""

    num_steps: int = 20
    sigma_min: float = 0.02
    sigma_max: float = 80.0
    rho: float = 7.0
    churn: float = 2.5
    churn_sigma_min: float = 0.75
    churn_sigma_max: float = 80.0
    noise_inflation: float = 1.0
    noise_scale: float = 1.0


for _name, _parameters in (
    ("euler", FlowParameters),
    ("heun", FlowParameters),
    ("edm_heun", EDMParameters),
    ("edm_euler", EDMParameters),
):
    SAMPLERS.register(_name)(_parameters)


def read_sampler_spec(spec: str) -> tuple[str, dict[str, Any]]:
    """``"name:key=value,..."`` -> ``(name, {key: value})``, each value of its parameter's
    type; an unknown name or key, or a value not of its type, is an :class:`InputError`
    naming it, what is accepted and a spec to copy. Whether the values make a sampler
    (``nfe=0``) is the sampler's own check, when it is built."""
    name, body = split_scheme(spec)
    try:
        return name, parse_fields(SAMPLERS[name], body, what=f"sampler {spec!r}")
    except InputError as err:
        raise InputError(f"{err} (a spec such as {example_spec(name)})") from None


def example_spec(name: str) -> str:
    """A spec of the sampler ``name`` (else of the first sampler) with its first parameter
    at its default: ``euler:nfe=10``."""
    name = name if name in SAMPLERS else SAMPLERS.names()[0]
    first = dataclasses.fields(SAMPLERS[name])[0]
    return f"{name}:{first.name}={first.default}"
