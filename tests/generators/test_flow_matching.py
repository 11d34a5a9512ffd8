"""Flow matching: the path and loss in closed form, exact sampling of a Gaussian law
through an oracle velocity, seeds, and a tiny model that fits a tiny batch."""

from __future__ import annotations

import contextlib
import copy

import pytest
import torch
from torch import nn

from generators import (
    GENERATORS,
    Batch,
    FlowMatching,
    FlowMatchingConfig,
    Generator,
)
from generators.samplers import EDMHeunSampler, EulerSampler, HeunSampler
from pipeline.errors import InputError

from tiny import TINY, random_condition


class StubBackbone(nn.Module):
    """Stands in for the U-Net: the condition is the current state; ``velocity(x, t, mu)``."""

    def __init__(self, velocity):
        super().__init__()
        self.velocity = velocity

    def encode(self, condition):
        return condition.history[:, -1], torch.zeros(condition.history.shape[0], 1)

    def forward(self, x, t, mu, embedding):
        return self.velocity(x, t[:, None, None, None], mu)


def gaussian_velocity(s):
    """E[x1 - x0 | x_t] for x0 ~ N(0, 1), x1 ~ N(mu, s^2) independent, x_t = (1-t) x0 + t x1."""

    def velocity(x, t, mu):
        var_t = (1 - t) ** 2 + t**2 * s**2
        return mu + (t * s**2 - (1 - t)) / var_t * (x - t * mu)

    return velocity


def _model(backbone=None, **changes) -> FlowMatching:
    model = FlowMatching(FlowMatchingConfig(backbone=TINY, **changes))
    if backbone is not None:
        model.backbone = backbone
    return model


def test_is_a_registered_generator():
    model = _model()
    assert isinstance(model, Generator)
    assert (
        GENERATORS["flow_matching"] is FlowMatching
        and FlowMatching.config_class is FlowMatchingConfig
    )
    with pytest.raises(InputError, match="unknown generator 'flow'"):
        GENERATORS["flow"]


def test_loss_in_closed_form_for_an_identity_velocity():
    # v(x_t, t) = x_t against the target x1 - x0, with x1 = mu fixed:
    # E[((2 - t) x0 - (1 - t) mu)^2] = int_0^1 (2 - t)^2 dt + mu^2 int_0^1 (1 - t)^2 dt
    #                                = 7/3 + mu^2 / 3   for t ~ U[0, 1], x0 ~ N(0, 1).
    mu = 1.5
    model = _model(StubBackbone(lambda x, t, m: x))
    cond = random_condition(8192, 2, 2)
    loss = model.loss(
        Batch(cond, torch.full((8192, 1, 2, 2), mu)), generator=torch.Generator().manual_seed(0)
    )
    assert float(loss) == pytest.approx(7 / 3 + mu**2 / 3, abs=0.06)


@pytest.mark.parametrize("sampler", [HeunSampler(nfe=20), EulerSampler(nfe=100)])
def test_oracle_velocity_samples_the_conditional_law_of_each_sample(sampler):
    s, members = 0.5, 4000
    model = _model(StubBackbone(gaussian_velocity(s)))
    cond = random_condition(2, 3, 4, seed=1)
    x = model.sample(cond, members, sampler=sampler, generator=torch.Generator().manual_seed(2))
    assert x.shape == (2, members, 1, 3, 4) and x.dtype == torch.float32
    mu = cond.history[:, -1]
    torch.testing.assert_close(x.mean(dim=1), mu, rtol=0, atol=4 * s / members**0.5)
    torch.testing.assert_close(x.std(dim=1), torch.full_like(mu, s), rtol=0.06, atol=0)


def test_default_sampler_and_noise_scale():
    model = _model(StubBackbone(lambda x, t, m: torch.zeros_like(x)), sample_nfe=7)
    assert model.default_sampler() == EulerSampler(nfe=7)
    x = model.sample(
        random_condition(1, 8, 8),
        500,
        sampler=EulerSampler(nfe=2, noise_scale=1.05),
        generator=torch.Generator().manual_seed(0),
    )
    assert float(x.std()) == pytest.approx(1.05, rel=0.02)


def _randomised_model(seed=0) -> FlowMatching:
    torch.manual_seed(seed)
    model = _model()
    with torch.no_grad():
        for p in model.parameters():
            if not p.any():
                p.normal_(0.0, 0.1)
    return model.eval()


def test_same_seed_same_members_for_any_grid_size():
    model = _randomised_model()
    cond = random_condition(2, 7, 5)

    def draw(seed):
        return model.sample(
            cond, 3, sampler=HeunSampler(nfe=3), generator=torch.Generator().manual_seed(seed)
        )

    first = draw(0)
    assert first.shape == (2, 3, 1, 7, 5)
    torch.testing.assert_close(draw(0), first, rtol=0, atol=0)
    assert not torch.equal(draw(1), first)
    assert not torch.equal(first[:, 0], first[:, 1])  # members differ


def _bf16(model: FlowMatching, precision: str, device: str):
    """The model and the context that run its network in bf16: under autocast, or with
    bf16 weights (every activation bf16; the backbone casts its inputs)."""
    model = copy.deepcopy(model).to(device)
    if precision == "weights":
        return model.to(torch.bfloat16), contextlib.nullcontext()
    return model, torch.autocast(device, dtype=torch.bfloat16)


@pytest.mark.parametrize("precision", ["autocast", "weights"])
def test_bf16_sampling_returns_float32_close_to_fp32(precision):
    # The CUDA path runs the network in bf16; the solver state stays float64.
    model = _randomised_model()
    cond = random_condition(2, 9, 9)
    sampler = HeunSampler(nfe=4)
    reference = model.sample(cond, 4, sampler=sampler, generator=torch.Generator().manual_seed(0))
    bf16, context = _bf16(model, precision, "cpu")
    with context:
        mixed = bf16.sample(cond, 4, sampler=sampler, generator=torch.Generator().manual_seed(0))
    assert mixed.dtype == torch.float32
    torch.testing.assert_close(mixed, reference, rtol=0, atol=0.05)
    assert not torch.equal(mixed, reference)  # it did run in bf16


@pytest.mark.gpu
@pytest.mark.parametrize("precision", ["autocast", "weights"])
def test_cuda_compiled_bf16_members_match_cpu_fp32(precision):
    # Same CPU generator -> same noise on any device; compiled bf16 network within bf16
    # tolerance of the eager fp32 one.
    model = _randomised_model()
    cond = random_condition(2, 33, 49)
    sampler = HeunSampler(nfe=4)
    reference = model.sample(cond, 8, sampler=sampler, generator=torch.Generator().manual_seed(0))
    gpu, context = _bf16(model, precision, "cuda")
    gpu.backbone.compile()
    with context:
        got = gpu.sample(
            cond.to("cuda"), 8, sampler=sampler, generator=torch.Generator().manual_seed(0)
        )
    assert got.device.type == "cuda" and got.dtype == torch.float32
    torch.testing.assert_close(got.cpu(), reference, rtol=0, atol=0.05)


def test_training_noise_follows_the_generator():
    model = _randomised_model()
    batch = Batch(random_condition(2, 6, 6), torch.randn(2, 1, 6, 6))
    a = model.loss(batch, generator=torch.Generator().manual_seed(3))
    b = model.loss(batch, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a.detach(), b.detach())


def test_rejects_a_diffusion_sampler():
    with pytest.raises(InputError, match="flow_matching cannot sample with the 'edm_heun'"):
        _model().sample(
            random_condition(1, 4, 4), 2, sampler=EDMHeunSampler(), generator=torch.Generator()
        )


def test_invalid_config_raises():
    with pytest.raises(InputError):
        FlowMatchingConfig(backbone=TINY, sample_nfe=0)


def test_tiny_model_fits_a_tiny_batch():
    torch.manual_seed(0)
    model = _model()
    g = torch.Generator()
    batch = Batch(
        random_condition(4, 8, 8, seed=5),
        2.0 + torch.randn(4, 1, 8, 8, generator=torch.Generator().manual_seed(6)),
    )
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(60):
        optimiser.zero_grad()
        loss = model.loss(batch, generator=g.manual_seed(0))  # same noise and t: pure fitting
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    assert losses[-1] < 0.2 * losses[0]
