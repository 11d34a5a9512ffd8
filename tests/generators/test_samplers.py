"""Samplers against stub networks whose answer is exact (anemoi-core style)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from generators.samplers import (
    SAMPLERS,
    BlockGenerators,
    EDMEulerSampler,
    EDMHeunSampler,
    EulerSampler,
    HeunSampler,
    karras_sigmas,
    sampler_from_config,
    solve_ode,
    standard_normal,
)
from pipeline.errors import InputError


class CountingFn:
    """A network stub that counts its calls and returns ``value(x, s)``."""

    def __init__(self, value):
        self.value = value
        self.calls = 0

    def __call__(self, x, s):
        self.calls += 1
        assert s.shape == (x.shape[0],) and s.dtype == torch.float64
        return self.value(x, s)


def _noise(shape, seed):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed)).double()


@pytest.mark.parametrize("nfe", [1, 2, 3, 4, 7, 10])
def test_flow_samplers_use_exactly_nfe_evaluations(nfe):
    for sampler in (EulerSampler(nfe=nfe), HeunSampler(nfe=nfe)):
        fn = CountingFn(lambda x, t: torch.zeros_like(x))
        sampler(fn, (3, 2), generator=torch.Generator().manual_seed(0), device="cpu")
        assert fn.calls == nfe == sampler.nfe


@pytest.mark.parametrize("sampler", [EulerSampler(nfe=3), HeunSampler(nfe=5), HeunSampler(nfe=1)])
def test_constant_velocity_moves_x_by_exactly_one(sampler):
    shape = (4, 1, 3, 5)
    x1 = sampler(
        lambda x, t: torch.ones_like(x),
        shape,
        generator=torch.Generator().manual_seed(7),
        device="cpu",
    )
    torch.testing.assert_close(x1, _noise(shape, 7) + 1.0, rtol=0, atol=1e-12)


def test_noise_scale_scales_the_initial_state():
    shape = (2, 6)
    zero = lambda x, t: torch.zeros_like(x)  # noqa: E731
    x1 = EulerSampler(nfe=2, noise_scale=1.05)(
        zero, shape, generator=torch.Generator().manual_seed(3), device="cpu"
    )
    torch.testing.assert_close(x1, 1.05 * _noise(shape, 3), rtol=0, atol=1e-12)


@pytest.mark.parametrize("sampler", [EDMEulerSampler, EDMHeunSampler])
def test_edm_noise_scale_scales_members_of_a_linear_denoiser(sampler):
    # D(x; s) = x v / (v + s^2), the exact denoiser of N(0, v) data, is linear in x: without
    # churn every step is linear, so scaling the initial noise scales the members.
    def denoiser(x, s):
        return x * 0.3 / (0.3 + s[:, None] ** 2)

    def draw(scale: float) -> torch.Tensor:
        config = sampler(num_steps=3, churn=0.0, noise_scale=scale)
        return config(denoiser, (4, 5), generator=torch.Generator().manual_seed(2), device="cpu")

    torch.testing.assert_close(draw(1.3), 1.3 * draw(1.0), rtol=1e-12, atol=1e-12)


def test_heun_step_of_a_linear_ode_unrolled_by_hand():
    a, b = -0.7, 2.0

    def f(x, t):
        return a * x + b * t[:, None]

    shape = (3, 4)
    x0 = _noise(shape, 11)
    # One Heun step over [0, 1]: predictor x' = x0 + f(x0, 0), corrector trapezoid.
    predictor = x0 + a * x0
    expected = x0 + 0.5 * (a * x0 + (a * predictor + b))
    got = HeunSampler(nfe=2)(f, shape, generator=torch.Generator().manual_seed(11), device="cpu")
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-12)
    # Two Euler steps of size 1/2.
    mid = x0 + 0.5 * a * x0
    expected_euler = mid + 0.5 * (a * mid + b * 0.5)
    got_euler = EulerSampler(nfe=2)(
        f, shape, generator=torch.Generator().manual_seed(11), device="cpu"
    )
    torch.testing.assert_close(got_euler, expected_euler, rtol=0, atol=1e-12)


def test_convergence_orders_of_euler_and_heun():
    # dx/dt = a x: exact x(1) = x(0) e^a. Euler's error is O(h), Heun's O(h^2).
    a = 1.3
    x0 = torch.ones(1, 1, dtype=torch.float64)

    def error(heun_flags):
        x1 = solve_ode(
            lambda x, t: a * x, x0, np.linspace(0, 1, len(heun_flags) + 1).tolist(), heun_flags
        )
        return abs(float(x1) - math.exp(a))

    euler_ratio = error((False,) * 20) / error((False,) * 40)
    heun_ratio = error((True,) * 20) / error((True,) * 40)
    assert euler_ratio == pytest.approx(2.0, rel=0.05)
    assert heun_ratio == pytest.approx(4.0, rel=0.05)


def test_callback_sees_every_step():
    steps = []
    HeunSampler(nfe=6)(
        lambda x, t: torch.zeros_like(x),
        (2, 2),
        generator=torch.Generator().manual_seed(0),
        device="cpu",
        callback=lambda i, x: steps.append(i),
    )
    assert steps == [0, 1, 2]


def test_karras_sigmas_match_eq5_and_rho_one_is_linear():
    sigmas = karras_sigmas(5, 0.02, 80.0, 7.0)
    assert len(sigmas) == 6 and sigmas[-1] == 0.0
    assert sigmas[0] == pytest.approx(80.0) and sigmas[-2] == pytest.approx(0.02)
    assert all(a > b for a, b in zip(sigmas, sigmas[1:], strict=False))
    # With rho = 1 the schedule is a straight line between sigma_max and sigma_min.
    np.testing.assert_allclose(karras_sigmas(5, 1.0, 9.0, 1.0)[:-1], np.linspace(9.0, 1.0, 5))
    # Middle level for rho = 7, from the paper's formula written out.
    mid = (80.0 ** (1 / 7) + 0.5 * (0.02 ** (1 / 7) - 80.0 ** (1 / 7))) ** 7
    assert karras_sigmas(3, 0.02, 80.0, 7.0)[1] == pytest.approx(mid)


@pytest.mark.parametrize("churn", [0.0, 2.5])
@pytest.mark.parametrize("num_steps", [1, 2, 5])
def test_edm_zero_denoiser_calls_and_result(num_steps, churn):
    # D = 0 makes dx/dsigma = x / sigma, solved exactly by Euler and Heun: x shrinks with
    # sigma and is exactly 0 at sigma = 0. Heun costs 2 calls a step, the last step 1.
    for sampler, calls in (
        (EDMHeunSampler(num_steps=num_steps, churn=churn), 2 * num_steps - 1),
        (EDMEulerSampler(num_steps=num_steps, churn=churn), num_steps),
    ):
        fn = CountingFn(lambda x, s: torch.zeros_like(x))
        x = sampler(fn, (3, 4), generator=torch.Generator().manual_seed(0), device="cpu")
        assert fn.calls == calls == sampler.nfe
        torch.testing.assert_close(x, torch.zeros_like(x), rtol=0, atol=1e-12)


def test_edm_euler_steps_are_ddim_steps_unrolled_by_hand():
    # Deterministic Euler on dx/dsigma = (x - D) / sigma: x' = D + (sigma' / sigma)(x - D).
    def denoiser(x, sigma):
        return 0.5 * x + 0.1 * sigma[:, None]

    shape = (2, 3)
    sigmas = karras_sigmas(3, 0.02, 80.0, 7.0)
    x = 80.0 * _noise(shape, 9)
    for sigma, sigma_next in zip(sigmas, sigmas[1:], strict=False):
        d = 0.5 * x + 0.1 * sigma
        x = d + sigma_next / sigma * (x - d)
    got = EDMEulerSampler(num_steps=3, churn=0.0)(
        denoiser, shape, generator=torch.Generator().manual_seed(9), device="cpu"
    )
    torch.testing.assert_close(got, x, rtol=1e-12, atol=1e-12)


def _gaussian_denoiser(mu, s):
    """Exact E[y | y + n] for y ~ N(mu, s^2), n ~ N(0, sigma^2)."""

    def denoise(x, sigma):
        sig2 = sigma[:, None] ** 2
        return (s**2 * x + sig2 * mu) / (s**2 + sig2)

    return denoise


@pytest.mark.parametrize("churn", [0.0, 2.5])
def test_edm_sampler_recovers_a_gaussian_target(churn):
    # Few steps over-disperse even with the exact denoiser (std x1.16 at 10 steps, x2.1 at
    # 5, churn adds more); at 64 steps the discretisation error is below 1%.
    mu, s = 1.5, 0.6
    sampler = EDMHeunSampler(num_steps=64, churn=churn, sigma_min=0.002, sigma_max=80.0)
    x = sampler(
        _gaussian_denoiser(mu, s),
        (20_000, 2),
        generator=torch.Generator().manual_seed(1),
        device="cpu",
    )
    assert float(x.mean()) == pytest.approx(mu, abs=0.01)
    assert float(x.std()) == pytest.approx(s, rel=0.02)


def test_edm_noise_inflation_widens_the_draws():
    mu, s = 0.0, 0.5
    shape = (20_000, 1)
    churned = dict(num_steps=64, churn=30.0, churn_sigma_min=0.0, churn_sigma_max=1e9)
    plain = EDMHeunSampler(**churned)
    inflated = EDMHeunSampler(**churned, noise_inflation=1.2)
    std_plain = float(
        plain(
            _gaussian_denoiser(mu, s),
            shape,
            generator=torch.Generator().manual_seed(2),
            device="cpu",
        ).std()
    )
    std_inflated = float(
        inflated(
            _gaussian_denoiser(mu, s),
            shape,
            generator=torch.Generator().manual_seed(2),
            device="cpu",
        ).std()
    )
    assert std_plain == pytest.approx(s, rel=0.04)
    assert std_inflated > 1.05 * std_plain


@pytest.mark.parametrize(
    "sampler", [EulerSampler(nfe=4), HeunSampler(nfe=3), EDMHeunSampler(num_steps=4)]
)
def test_same_seed_same_draws(sampler):
    fn = _gaussian_denoiser(0.3, 1.0) if isinstance(sampler, EDMHeunSampler) else (lambda x, t: -x)

    def draw(seed):
        return sampler(fn, (5, 3), generator=torch.Generator().manual_seed(seed), device="cpu")

    torch.testing.assert_close(draw(4), draw(4), rtol=0, atol=0)
    assert not torch.equal(draw(4), draw(5))


def test_registry_builds_by_name_and_fails_loudly():
    assert set(SAMPLERS.names()) >= {"euler", "heun", "edm_heun", "edm_euler"}
    assert sampler_from_config("heun", nfe=20) == HeunSampler(nfe=20)
    assert sampler_from_config("edm_heun", num_steps=10).nfe == 19
    with pytest.raises(InputError, match="unknown sampler 'rk4'.*euler"):
        sampler_from_config("rk4")
    with pytest.raises(InputError, match="heun"):
        sampler_from_config("heun", steps=3)


@pytest.mark.parametrize(
    "build",
    [
        lambda: EulerSampler(nfe=0),
        lambda: HeunSampler(nfe=4, noise_scale=0.0),
        lambda: EDMHeunSampler(num_steps=0),
        lambda: EDMHeunSampler(sigma_min=10.0, sigma_max=1.0),
        lambda: EDMHeunSampler(churn=-1.0),
        lambda: EDMEulerSampler(num_steps=0),
        lambda: EDMEulerSampler(noise_scale=0.0),
    ],
)
def test_invalid_sampler_configs_raise(build):
    with pytest.raises(InputError):
        build()


def test_block_generators_draw_each_block_as_its_generator_alone():
    # a churned EDM sampler draws noise at every step: with one generator per block of
    # rows, a block's sample is the one its generator gives for that block alone
    sampler = EDMHeunSampler(num_steps=4, churn=10.0)
    denoiser = CountingFn(lambda x, s: 0.5 * x)

    def draw(*seeds: int) -> torch.Tensor:
        generators = BlockGenerators([torch.Generator().manual_seed(k) for k in seeds])
        return sampler(denoiser, (3 * len(seeds), 2), generator=generators, device="cpu")

    both = draw(1, 2)
    torch.testing.assert_close(both[:3], draw(1), rtol=0, atol=0)
    torch.testing.assert_close(both[3:], draw(2), rtol=0, atol=0)
    assert not torch.allclose(both[:3], both[3:])
    with pytest.raises(ValueError, match="5 rows do not split into 2 equal blocks"):
        standard_normal((5, 2), BlockGenerators([torch.Generator()] * 2), "cpu")
