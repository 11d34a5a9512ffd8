"""The fair CRPS and the fair-CRPS loss term shared by flow matching and EDM."""

from __future__ import annotations

import itertools
from dataclasses import replace

import numpy as np
import properscoring
import pytest
import torch

from generators import (
    EDM,
    Batch,
    EDMConfig,
    EDMHeunSampler,
    EulerSampler,
    FlowMatching,
    FlowMatchingConfig,
    HeunSampler,
    ObjectiveConfig,
    fair_crps,
    objective,
)
from pipeline.errors import InputError

from tiny import TINY as SHARED_TINY
from tiny import random_condition

TINY = replace(SHARED_TINY, attention_heads=0)


def brute_force_fair_crps(members: np.ndarray, y: float) -> float:
    """O(M^2) definition: mean |x_i - y| - sum_{i != j} |x_i - x_j| / (2 M (M - 1))."""
    m = len(members)
    pairs = sum(abs(a - b) for a, b in itertools.permutations(members, 2))
    return float(np.mean(np.abs(members - y)) - pairs / (2 * m * (m - 1)))


@pytest.mark.parametrize("m", [2, 3, 5, 8])
def test_fair_crps_matches_the_pairwise_definition(m):
    rng = np.random.default_rng(m)
    members = rng.normal(size=(4, m, 3))
    target = rng.normal(size=(4, 3))
    got = fair_crps(torch.from_numpy(members), torch.from_numpy(target)).numpy()
    expected = np.array(
        [
            [brute_force_fair_crps(members[b, :, k], target[b, k]) for k in range(3)]
            for b in range(4)
        ]
    )
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)


def test_two_member_fair_crps_is_unbiased_for_the_gaussian_crps():
    # E over members drawn from N(0, 1) of the fair CRPS = CRPS(N(0, 1), y) (closed form);
    # the ecdf CRPS of 2 members is biased upward by E|X - X'| / 4 = 1 / (2 sqrt(pi)).
    n = 400_000
    g = torch.Generator().manual_seed(0)
    y = torch.randn(n, generator=g, dtype=torch.float64)
    members = torch.randn(n, 2, generator=g, dtype=torch.float64)
    expected = properscoring.crps_gaussian(y.numpy(), 0.0, 1.0).mean()
    assert float(fair_crps(members, y).mean()) == pytest.approx(expected, abs=0.004)
    ecdf = properscoring.crps_ensemble(y.numpy(), members.numpy()).mean()
    assert ecdf - expected == pytest.approx(1 / (2 * np.sqrt(np.pi)), abs=0.006)


def test_fair_crps_gradients():
    members = torch.randn(2, 4, 3, dtype=torch.float64, requires_grad=True)
    target = torch.randn(2, 3, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda x: fair_crps(x, target), (members,))


def test_fair_crps_needs_two_members():
    with pytest.raises(InputError, match="at least 2 members"):
        fair_crps(torch.zeros(1, 1, 3), torch.zeros(1, 3))


@pytest.mark.parametrize(
    "bad",
    [
        {"regression_weight": 0.0, "crps_weight": 0.0},
        {"crps_weight": -1.0},
        {"crps_members": 1},
        {"crps_nfe": 0},
    ],
)
def test_invalid_objective_configs_raise(bad):
    with pytest.raises(InputError):
        ObjectiveConfig(**bad)


def test_crps_term_scores_members_drawn_through_the_short_sampler():
    # A fresh flow-matching model has v = 0, so its members are the initial noise itself:
    # the loss must be the fair CRPS of those draws against the target.
    model = FlowMatching(
        FlowMatchingConfig(
            backbone=TINY, regression_weight=0.0, crps_weight=2.0, crps_members=3, crps_nfe=2
        )
    )
    assert model.crps_sampler == EulerSampler(nfe=2)
    g = torch.Generator().manual_seed(0)
    batch = Batch(random_condition(2, 8, 8, generator=g), torch.randn(2, 1, 8, 8, generator=g))
    loss = model.loss(batch, generator=torch.Generator().manual_seed(1))
    members = (
        torch.randn(6, 1, 8, 8, generator=torch.Generator().manual_seed(1))
        .reshape(2, 3, 64)
        .double()
        .numpy()
    )
    target = batch.target.reshape(2, 64).double().numpy()
    expected = np.mean(
        [brute_force_fair_crps(members[b, :, k], target[b, k]) for b in range(2) for k in range(64)]
    )
    assert loss.item() == pytest.approx(2.0 * expected, rel=1e-5)


@pytest.mark.parametrize(
    "model_class,config_class", [(FlowMatching, FlowMatchingConfig), (EDM, EDMConfig)]
)
def test_crps_fine_tune_fixes_an_under_dispersed_short_sampler(model_class, config_class):
    # Targets N(0, 2^2) whatever the condition. A fresh model's short-sampler members have
    # std 1 (flow matching: the noise) or ~0.03 (EDM: c_skip of the noise); a few steps
    # of the fair CRPS alone, back-propagated through the sampler, must widen them
    # towards 2.
    torch.manual_seed(0)
    config = config_class(
        backbone=TINY, regression_weight=0.0, crps_weight=1.0, crps_members=4, crps_nfe=2
    )
    model = model_class(config)
    g = torch.Generator().manual_seed(0)
    probe = random_condition(4, 8, 8, generator=g)

    def spread() -> float:
        x = model.sample(
            probe, 16, sampler=model.crps_sampler, generator=torch.Generator().manual_seed(1)
        )
        return x.std(dim=1).mean().item()

    before = spread()
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(50):
        optimiser.zero_grad()
        model.loss(
            Batch(random_condition(4, 8, 8, generator=g), 2 * torch.randn(4, 1, 8, 8, generator=g)),
            generator=g,
        ).backward()
        optimiser.step()
    after = spread()
    assert before < 1.1
    assert abs(after - 2.0) < 0.5


@pytest.mark.parametrize(
    "model,sampler",
    [
        (FlowMatching(FlowMatchingConfig(backbone=TINY)), HeunSampler(nfe=3)),
        (EDM(EDMConfig(backbone=TINY)), EDMHeunSampler(num_steps=3, churn=10.0)),
    ],
    ids=["flow_matching", "edm_churn"],
)
def test_cpu_sampling_in_slices_gives_the_members_of_one_batch(model, sampler, monkeypatch):
    # On a CPU the network runs on slices of the B*M members; the noise (and EDM's churn)
    # is still drawn for the whole batch, so the members are those of one batch.
    torch.manual_seed(0)
    with torch.no_grad():
        model.backbone.output_conv.weight.normal_(0, 0.1)
    model.eval()
    condition = random_condition(3, 8, 8)

    def draw() -> tuple[torch.Tensor, list[int]]:
        seen: list[int] = []
        hook = model.backbone.register_forward_hook(lambda m, args, out: seen.append(len(out)))
        members = model.sample(
            condition, 4, sampler=sampler, generator=torch.Generator().manual_seed(5)
        )
        hook.remove()
        return members, seen

    whole, seen = draw()
    assert set(seen) == {12}
    row = model.backbone.encode(condition)[0][0].numel() * 4
    monkeypatch.setattr(objective, "CPU_EVALUATION_BYTES", 5 * row)
    sliced, seen = draw()
    assert seen[:3] == [5, 5, 2] and len(seen) == 3 * sampler.nfe
    torch.testing.assert_close(sliced, whole, rtol=1e-5, atol=1e-6)
