"""Samplers: a schedule and a solver, driven by a network function, with explicit noise.

Every sampler is a frozen config that is also the function: ``sampler(fn, shape, *,
generator, device)`` draws its noise from ``generator`` (on the generator's own device,
so a CPU generator gives the same members whatever device the model runs on), solves in
float64 and returns a float64 tensor of ``shape``. The network function ``fn(x, s)``
takes the float64 state (N, ...) and the time or noise level (N,) and returns a tensor
of the same shape as ``x`` (any dtype; it is cast to float64) — the generator casts its
input to the model dtype. This follows NVlabs/edm ``generate.py``.

- Flow samplers (:class:`FlowSampler`) integrate ``dx/dt = v(x, t)`` from t = 0 (noise,
  scaled by ``noise_scale``) to t = 1 (data) on a uniform grid: :class:`EulerSampler`,
  :class:`HeunSampler`. ``nfe`` is the exact number of network evaluations.
- Diffusion samplers (:class:`DiffusionSampler`) take a denoiser ``D(x; sigma)``:
  :class:`EDMHeunSampler`, Algorithm 2 of Karras et al. 2022 with churn, and its
  first-order variant :class:`EDMEulerSampler`.

Samplers register by name in :data:`SAMPLERS` (``"euler"``, ``"heun"``, ``"edm_heun"``,
``"edm_euler"``), where :mod:`generators.sampler_spec` declares each with its parameters,
read without torch; the classes here are their implementations.
Nothing here disables autograd: a short sampler can be differentiated through (the
fair-CRPS fine-tune does so); wrap calls in ``torch.no_grad()`` for inference.
"""

from __future__ import annotations

import dataclasses
import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor

from generators.sampler_spec import SAMPLERS, EDMParameters, FlowParameters
from pipeline.errors import InputError

NetworkFn = Callable[[Tensor, Tensor], Tensor]
"""``fn(x (N, ...) float64, s (N,) float64) -> (N, ...)``: a velocity or a denoiser."""

Callback = Callable[[int, Tensor], None]
"""``callback(step, x)`` after each solver step, e.g. to keep a trajectory."""


class BlockGenerators:
    """Generators that each draw one block of consecutive rows: a draw of N rows takes its
    rows ``k * N / K`` to ``(k + 1) * N / K`` from the k-th of the K generators, so a
    block's noise does not depend on the blocks drawn beside it (a forecast's members of
    one initial time, whatever else shares its batch). Passed wherever a sampler takes a
    ``generator``."""

    def __init__(self, generators: Sequence[torch.Generator]):
        if not generators or len({g.device for g in generators}) != 1:
            raise ValueError("BlockGenerators needs one or more generators on one device")
        self.generators = tuple(generators)

    @property
    def device(self) -> torch.device:
        return self.generators[0].device

    def randn(self, shape: Sequence[int]) -> Tensor:
        """N(0, I) float32 of ``shape`` (its first size a multiple of the generators)."""
        rows, blocks = shape[0], len(self.generators)
        if rows % blocks:
            raise ValueError(f"{rows} rows do not split into {blocks} equal blocks")
        block = (rows // blocks, *shape[1:])
        draws = [torch.randn(block, generator=g, device=self.device) for g in self.generators]
        return torch.cat(draws)


def standard_normal(
    shape: Sequence[int],
    generator: torch.Generator | BlockGenerators | None,
    device: torch.device | str,
    dtype: torch.dtype = torch.float64,
) -> Tensor:
    """N(0, I) of ``shape`` as ``dtype`` on ``device``, drawn in float32 on ``generator``'s
    device (on ``device`` from the global generator when ``generator`` is None; block by
    block from :class:`BlockGenerators`)."""
    if isinstance(generator, BlockGenerators):
        return generator.randn(tuple(shape)).to(device, dtype)
    source = device if generator is None else generator.device
    return torch.randn(tuple(shape), generator=generator, device=source).to(device, dtype)


class Sampler(ABC):
    """A sampler config that is callable: ``sampler(fn, shape, *, generator, device)``."""

    name: ClassVar[str]

    @property
    @abstractmethod
    def nfe(self) -> int:
        """Network evaluations per draw."""

    @abstractmethod
    def __call__(
        self,
        fn: NetworkFn,
        shape: Sequence[int],
        *,
        generator: torch.Generator | None,
        device: torch.device | str,
        callback: Callback | None = None,
    ) -> Tensor:
        """Draw one sample per leading index of ``shape``; float64. ``generator=None``
        uses the global generator (training only; inference passes one)."""


class FlowSampler(Sampler):
    """An ODE solver for ``dx/dt = v(x, t)``, t from 0 to 1, x(0) ~ N(0, noise_scale^2 I)."""

    nfe: int
    noise_scale: float

    @abstractmethod
    def heun_steps(self) -> tuple[bool, ...]:
        """One flag per step of the uniform grid: Heun-corrected (2 evaluations) or Euler (1)."""

    def __post_init__(self) -> None:
        if self.nfe < 1:
            raise InputError(f"{self.name} sampler: nfe must be at least 1, got {self.nfe}")
        if self.noise_scale <= 0:
            raise InputError(
                f"{self.name} sampler: noise_scale must be positive, got {self.noise_scale}"
            )

    def __call__(self, fn, shape, *, generator, device, callback=None) -> Tensor:
        x = self.noise_scale * standard_normal(shape, generator, device)
        heun = self.heun_steps()
        times = [i / len(heun) for i in range(len(heun) + 1)]
        return solve_ode(fn, x, times, heun, callback)


def solve_ode(
    fn: NetworkFn,
    x: Tensor,
    times: Sequence[float],
    heun: Sequence[bool],
    callback: Callback | None = None,
) -> Tensor:
    """Explicit Euler / Heun (trapezoidal predictor-corrector) steps over ``times``.

    Step i: d = f(x, t_i); x' = x + h d; if heun[i]: x' = x + h (d + f(x', t_{i+1})) / 2,
    with h = t_{i+1} - t_i. ``x`` (N, ...) is float64; ``times`` has one more entry than
    ``heun``.
    """
    for i, correct in enumerate(heun):
        t, t_next = times[i], times[i + 1]
        d = fn(x, _full(x, t)).to(torch.float64)
        x_next = x + (t_next - t) * d
        if correct:
            d_next = fn(x_next, _full(x, t_next)).to(torch.float64)
            x_next = x + (t_next - t) * 0.5 * (d + d_next)
        x = x_next
        if callback is not None:
            callback(i, x)
    return x


def _full(x: Tensor, value: float) -> Tensor:
    """(N,) float64 filled with ``value``, on ``x``'s device."""
    return torch.full((x.shape[0],), value, dtype=torch.float64, device=x.device)


@SAMPLERS.implement("euler")
@dataclass(frozen=True)
class EulerSampler(FlowParameters, FlowSampler):
    """``nfe`` Euler steps of size 1/nfe. ArchesWeatherGen: 25 steps, noise_scale 1.05."""

    name: ClassVar[str] = "euler"

    def heun_steps(self) -> tuple[bool, ...]:
        return (False,) * self.nfe


@SAMPLERS.implement("heun")
@dataclass(frozen=True)
class HeunSampler(FlowParameters, FlowSampler):
    """Heun steps using exactly ``nfe`` evaluations: ceil(nfe/2) steps, 2 evaluations
    each; for an odd ``nfe`` the last step is a plain Euler step."""

    name: ClassVar[str] = "heun"

    def heun_steps(self) -> tuple[bool, ...]:
        n = self.nfe
        steps = (n + 1) // 2
        return (True,) * (n // 2) + (False,) * (steps - n // 2)


class DiffusionSampler(Sampler):
    """A sampler over a denoiser ``D(x; sigma)``, from x ~ N(0, sigma_max^2 I) to sigma = 0."""


def karras_sigmas(num_steps: int, sigma_min: float, sigma_max: float, rho: float) -> list[float]:
    """Noise levels of Karras et al. 2022, eq. 5, with a final 0: num_steps + 1 values.

    sigma_i = (sigma_max^(1/rho) + i/(N-1) (sigma_min^(1/rho) - sigma_max^(1/rho)))^rho,
    i = 0 ... N-1 (a single step uses sigma_max alone).
    """
    span = max(num_steps - 1, 1)
    a, b = sigma_max ** (1.0 / rho), sigma_min ** (1.0 / rho)
    return [(a + i / span * (b - a)) ** rho for i in range(num_steps)] + [0.0]


@dataclass(frozen=True)
class EDMSampler(EDMParameters, DiffusionSampler):
    """Karras et al. 2022 Algorithm 2 (NVlabs/edm ``edm_sampler``), first or second order.

    num_steps noise levels on the rho schedule (:func:`karras_sigmas`), then 0, starting
    from ``noise_scale * sigma_max * eps`` (``noise_scale`` > 1 widens the ensemble of a
    few-step sampler, as the flow samplers' ``noise_scale`` does; 1 is the paper's). Each step
    raises sigma to ``t_hat = (1 + gamma) t`` by fresh noise of std
    ``noise_inflation * sqrt(t_hat^2 - t^2)`` (gamma = min(churn / num_steps, sqrt 2 - 1)
    while churn_sigma_min <= t <= churn_sigma_max, else 0), then steps the
    probability-flow ODE dx/dsigma = (x - D(x; sigma)) / sigma to the next level: Euler,
    plus the Heun correction when :attr:`second_order` (never on the last step, to
    sigma = 0). churn = 0 gives the deterministic sampler.
    GenCast: sigma in [0.02, 88], churn 2.5 on [0.75, 80], noise inflation 1.05.
    """

    second_order: ClassVar[bool]

    def __post_init__(self) -> None:
        if self.num_steps < 1:
            raise InputError(
                f"{self.name} sampler: num_steps must be at least 1, got {self.num_steps}"
            )
        if not 0 < self.sigma_min < self.sigma_max:
            raise InputError(
                f"{self.name} sampler: need 0 < sigma_min < sigma_max, "
                f"got {self.sigma_min}, {self.sigma_max}"
            )
        if not 0 <= self.churn_sigma_min <= self.churn_sigma_max:
            raise InputError(
                f"{self.name} sampler: need 0 <= churn_sigma_min <= churn_sigma_max, got "
                f"{self.churn_sigma_min}, {self.churn_sigma_max} (the noise levels the churn "
                "acts on; churn=0 turns it off)"
            )
        if self.churn < 0 or min(self.noise_inflation, self.noise_scale, self.rho) <= 0:
            raise InputError(
                f"{self.name} sampler: churn must be >= 0, noise_inflation, noise_scale and rho "
                f"positive; got churn={self.churn}, noise_inflation={self.noise_inflation}, "
                f"noise_scale={self.noise_scale}, rho={self.rho}"
            )
        try:
            finite = all(map(math.isfinite, self._sigmas()))
        except OverflowError:
            finite = False
        if not finite:
            raise InputError(
                f"{self.name} sampler: rho={self.rho} makes the noise levels overflow "
                f"(sigma_max ** (1 / rho)); give a rho of about 1 or more (EDM's is 7)"
            )

    def _sigmas(self) -> list[float]:
        """The noise levels of the steps, then 0 (:func:`karras_sigmas`)."""
        return karras_sigmas(self.num_steps, self.sigma_min, self.sigma_max, self.rho)

    @property
    def nfe(self) -> int:
        return 2 * self.num_steps - 1 if self.second_order else self.num_steps

    def __call__(self, fn, shape, *, generator, device, callback=None) -> Tensor:
        sigmas = self._sigmas()
        gamma_max = min(self.churn / self.num_steps, math.sqrt(2.0) - 1.0)
        x = standard_normal(shape, generator, device) * (self.noise_scale * sigmas[0])
        for i in range(self.num_steps):
            t, t_next = sigmas[i], sigmas[i + 1]
            gamma = gamma_max if self.churn_sigma_min <= t <= self.churn_sigma_max else 0.0
            t_hat = t * (1.0 + gamma)
            if gamma > 0:
                eps = standard_normal(shape, generator, device)
                x = x + math.sqrt(t_hat**2 - t**2) * self.noise_inflation * eps
            d = (x - fn(x, _full(x, t_hat)).to(torch.float64)) / t_hat
            x_next = x + (t_next - t_hat) * d
            if self.second_order and i < self.num_steps - 1:
                d_next = (x_next - fn(x_next, _full(x, t_next)).to(torch.float64)) / t_next
                x_next = x + (t_next - t_hat) * 0.5 * (d + d_next)
            x = x_next
            if callback is not None:
                callback(i, x)
        return x


@SAMPLERS.implement("edm_heun")
@dataclass(frozen=True)
class EDMHeunSampler(EDMSampler):
    """Stochastic Heun with churn (the paper's sampler): NFE = 2 num_steps - 1.

    Few steps are inaccurate even with the exact denoiser: on a Gaussian target the
    deterministic sampler's std is too large at a few steps and converges to the target's
    as ``num_steps`` grows (the exact-denoiser test in tests/generators/test_samplers.py).
    """

    name: ClassVar[str] = "edm_heun"
    second_order: ClassVar[bool] = True


@SAMPLERS.implement("edm_euler")
@dataclass(frozen=True)
class EDMEulerSampler(EDMSampler):
    """Stochastic Euler with churn: NFE = num_steps. Each deterministic step is
    x' = D + (sigma'/sigma)(x - D) (DDIM); one step returns D(sigma_max eps; sigma_max).
    Well conditioned at very few steps: the fair-CRPS term of EDM draws through it."""

    name: ClassVar[str] = "edm_euler"
    second_order: ClassVar[bool] = False


def sampler_from_config(name: str, **params: object) -> Sampler:
    """Build a registered sampler by name, e.g. ``sampler_from_config("heun", nfe=20)``."""
    cls = SAMPLERS[name]
    floats = {f.name for f in dataclasses.fields(cls) if f.type in ("float", float)}
    params = {  # "churn=0" and "churn=0.0" are one sampler, with one spec
        k: float(v) if k in floats and isinstance(v, int) and not isinstance(v, bool) else v
        for k, v in params.items()
    }
    try:
        return cls(**params)  # type: ignore[call-arg]
    except TypeError as err:
        raise InputError(f"sampler {name!r}: {err}") from None
