"""EDM: preconditioning against the paper, the loss of the exact denoiser of a Gaussian
target (identically 1), sampling through the preconditioning, seeds, a tiny fit."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from generators import EDM, GENERATORS, Batch, EDMConfig, Generator
from generators.diffusion import edm_loss_weight, edm_preconditioning
from generators.samplers import EDMEulerSampler, EDMHeunSampler, EulerSampler
from pipeline.errors import InputError

from tiny import TINY, random_condition


class GaussianNetwork(nn.Module):
    """The raw network F that makes D(x; sigma) exact for y ~ N(mu, s^2), mu = current state.

    It sees c_in x and c_noise, recovers sigma = exp(4 c_noise) and x, and returns
    F = (D*(x) - c_skip x) / c_out with D*(x) = (s^2 x + sigma^2 mu) / (s^2 + sigma^2).
    """

    def __init__(self, s: float, sigma_data: float):
        super().__init__()
        self.s, self.sigma_data = s, sigma_data

    def encode(self, condition):
        return condition.history[:, -1], torch.zeros(condition.history.shape[0], 1)

    def forward(self, x_in, c_noise, mu, embedding):
        sigma = torch.exp(4 * c_noise.double())[:, None, None, None]
        c_skip, c_out, c_in, _ = edm_preconditioning(sigma, self.sigma_data)
        x = x_in.double() / c_in
        exact = (self.s**2 * x + sigma**2 * mu) / (self.s**2 + sigma**2)
        return ((exact - c_skip * x) / c_out).to(x_in.dtype)


def _model(network=None, **changes) -> EDM:
    model = EDM(EDMConfig(backbone=TINY, **changes))
    if network is not None:
        model.backbone = network
    return model


def test_is_a_registered_generator():
    assert isinstance(_model(), Generator)
    assert GENERATORS["edm"] is EDM and EDM.config_class is EDMConfig


@pytest.mark.parametrize("sigma_data", [0.5, 1.0])
def test_preconditioning_matches_the_paper(sigma_data):
    # Karras et al. 2022, Table 1 and Appendix B.6, checked through properties rather
    # than the formulas themselves.
    sd = sigma_data
    sigma = torch.tensor([1e-3, 0.02, sd, 1.0, 10.0, 80.0], dtype=torch.float64)
    c_skip, c_out, c_in, c_noise = edm_preconditioning(sigma, sd)
    # At sigma = sd: c_skip = 1/2, c_out = sd / sqrt 2, c_in = 1 / (sd sqrt 2).
    i = 2
    assert float(c_skip[i]) == pytest.approx(0.5)
    assert float(c_out[i]) == pytest.approx(sd / math.sqrt(2))
    assert float(c_in[i]) == pytest.approx(1 / (sd * math.sqrt(2)))
    torch.testing.assert_close(c_noise, torch.log(sigma) / 4)
    # Unit-variance network input: Var(c_in (y + n)) = 1 for Var y = sd^2.
    torch.testing.assert_close(c_in**2 * (sd**2 + sigma**2), torch.ones_like(sigma))
    # Unit-variance effective target (y - c_skip (y + n)) / c_out, and c_skip minimises it.
    target_var = ((1 - c_skip) ** 2 * sd**2 + c_skip**2 * sigma**2) / c_out**2
    torch.testing.assert_close(target_var, torch.ones_like(sigma))
    # The loss weight makes the effective weight lambda c_out^2 = 1.
    torch.testing.assert_close(edm_loss_weight(sigma, sd) * c_out**2, torch.ones_like(sigma))
    # Limits: D -> x as sigma -> 0; the skip vanishes at large sigma.
    assert float(c_skip[0]) == pytest.approx(1.0, abs=1e-5) and float(c_out[0]) < 1e-3
    assert float(c_skip[-1]) < 1e-3


def test_a_fresh_model_denoises_by_the_skip_alone():
    model = _model()
    cond = random_condition(3, 5, 7)
    x = torch.randn(3, 1, 5, 7)
    sigma = torch.tensor([0.1, 1.0, 30.0])
    denoised = model.denoise(x, sigma, model.backbone.encode(cond))
    c_skip = 1.0 / (sigma**2 + 1.0)
    torch.testing.assert_close(denoised, c_skip[:, None, None, None] * x)


def test_loss_of_the_exact_denoiser_is_one():
    # With sigma_data = s, lambda(sigma) Var(y | y + n) = 1 at every sigma, so the
    # expected loss of the exact denoiser is 1 whatever the noise-level law.
    s = 0.7
    model = _model(GaussianNetwork(s, sigma_data=s), sigma_data=s)
    cond = random_condition(4096, 4, 4, seed=1)
    target = cond.history[:, -1] + s * torch.randn(
        4096, 1, 4, 4, generator=torch.Generator().manual_seed(2)
    )
    loss = model.loss(Batch(cond, target), generator=torch.Generator().manual_seed(3))
    assert float(loss) == pytest.approx(1.0, abs=0.03)


@pytest.mark.parametrize("churn", [0.0, 2.5])
def test_exact_denoiser_samples_the_conditional_law_of_each_sample(churn):
    s, members = 0.6, 3000
    model = _model(GaussianNetwork(s, sigma_data=1.0))
    cond = random_condition(2, 3, 2, seed=4)
    sampler = EDMHeunSampler(num_steps=48, churn=churn, sigma_min=0.002)
    x = model.sample(cond, members, sampler=sampler, generator=torch.Generator().manual_seed(5))
    assert x.shape == (2, members, 1, 3, 2)
    mu = cond.history[:, -1]
    # Starting from N(0, sigma_max^2) rather than N(mu, sigma_max^2 + s^2) biases the
    # mean by about mu s / sigma_max.
    torch.testing.assert_close(x.mean(dim=1), mu, rtol=0, atol=4 * s / members**0.5 + 0.01)
    torch.testing.assert_close(x.std(dim=1), torch.full_like(mu, s), rtol=0.07, atol=0)


def test_same_seed_same_members():
    torch.manual_seed(0)
    model = _model()
    with torch.no_grad():
        model.backbone.output_conv.weight.normal_(0, 0.1)
    cond = random_condition(2, 6, 9)

    def draw(seed):
        return model.sample(
            cond,
            2,
            sampler=EDMHeunSampler(num_steps=3),
            generator=torch.Generator().manual_seed(seed),
        )

    torch.testing.assert_close(draw(1), draw(1), rtol=0, atol=0)
    assert not torch.equal(draw(1), draw(2))


def test_default_and_crps_samplers_follow_the_config():
    model = _model(sample_steps=12, sigma_max=88.0, crps_nfe=5)
    assert model.default_sampler() == EDMHeunSampler(num_steps=12, sigma_max=88.0)
    assert model.crps_sampler == EDMEulerSampler(num_steps=5, sigma_max=88.0, churn=0.0)
    assert model.crps_sampler.nfe == 5


def test_rejects_a_flow_sampler_and_bad_configs():
    with pytest.raises(InputError, match="edm cannot sample with the 'euler'"):
        _model().sample(
            random_condition(1, 4, 4), 2, sampler=EulerSampler(), generator=torch.Generator()
        )
    for bad in ({"sigma_data": 0.0}, {"sigma_min": 5.0, "sigma_max": 1.0}, {"sample_steps": 0}):
        with pytest.raises(InputError):
            EDMConfig(backbone=TINY, **bad)


def test_tiny_model_fits_a_tiny_batch():
    torch.manual_seed(0)
    model = _model()
    g = torch.Generator()
    batch = Batch(
        random_condition(4, 8, 8, seed=5),
        torch.randn(4, 1, 8, 8, generator=torch.Generator().manual_seed(6)),
    )
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(60):
        optimiser.zero_grad()
        loss = model.loss(batch, generator=g.manual_seed(0))  # same noise levels and noise
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    assert losses[-1] < 0.2 * losses[0]
