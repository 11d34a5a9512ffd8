"""Pushforward fine-tune: partners one lead earlier, items moved onto the model's own draw
with their true future kept, the config's refusals, and a run that resumes exactly."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from generators import BackboneConfig, FlowMatchingConfig
from generators.base import Condition
from generators.checkpoint import load_checkpoint
from generators.config import DataConfig, FineTuneConfig, ModelSpec, OptimConfig, TrainConfig
from generators.data import ResidualDataset, SampleSpec
from generators.models import GENERATORS
from generators.pushforward import Pushforward, partner_items
from generators.train import train
from generators.train_plan import model_config_for, trained_sampler
from pipeline.errors import InputError
from pipeline.schema import Period
from pipeline.store import ingest

from tiny import train_interrupted_at

TRAIN_END = "2000-02-29"


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return ingest(
        "synthetic:n_lat=8,n_lon=12,n_times=240,step=6h,seed=3",
        tmp_path_factory.mktemp("pushforward") / "syn.zarr",
        variables=["t2m"],
        progress=False,
    )


def config(**fine_tune) -> TrainConfig:
    model = FlowMatchingConfig(
        backbone=BackboneConfig(widths=(8, 16), attention_heads=0, embedding_dim=16), sample_nfe=3
    )
    return TrainConfig(
        model=ModelSpec("flow_matching", model),
        data=DataConfig(
            channels=("t2m",), history=2, leads=(1, 2, 3), train=Period(None, TRAIN_END)
        ),
        optim=OptimConfig(lr=1e-3, warmup_steps=2),
        steps=2,
        batch_size=8,
        checkpoint_every=2,
        device="cpu",
        fine_tune=FineTuneConfig(steps=4, crps_members=2, **fine_tune),
    )


def test_each_partner_is_the_same_lead_one_lead_earlier(store):
    spec = SampleSpec(history=(-2, 0), leads=(1, 2, 3))
    data = ResidualDataset.from_store(store, spec, period=Period(None, TRAIN_END))
    partners = partner_items(data)
    times, step = data.times, data.native_step
    has = partners >= 0
    positions, leads = data.pairs[:, 0], data.pairs[:, 1]
    # leads 1 and 2 divide the offsets (-2, 0): every item has a partner but the first one
    # (lead 1) or two (lead 2), whose earlier time lacks its history; lead 3 never has one
    assert has[leads == 0].sum() == (leads == 0).sum() - 1
    assert has[leads == 1].sum() == (leads == 1).sum() - 2
    assert not has[leads == 2].any()
    lead = np.asarray(spec.leads)[leads[has]]
    np.testing.assert_array_equal(leads[partners[has]], leads[has])
    np.testing.assert_array_equal(
        times[positions[partners[has]]], times[positions[has]] - lead * step
    )


def test_pushed_items_start_from_the_models_draw_and_keep_their_true_future(store):
    """A pushed item's "now" is its partner's now plus the residual the model draws there
    (redrawn here from the same generator state), and now + target is still the true state
    one lead later; items not chosen are untouched."""
    cfg = config(pushforward=0.5)
    data = ResidualDataset.from_store(store, cfg.data.sample_spec, period=cfg.data.train)
    torch.manual_seed(0)
    model = GENERATORS["flow_matching"](model_config_for(cfg, data))
    pushforward = Pushforward.of(data, cfg)
    index = np.flatnonzero(pushforward.partners >= 0)[::7][:12]
    items = data[index]
    generator = torch.Generator().manual_seed(11)
    replay = torch.Generator().set_state(generator.get_state())
    pushed = pushforward(model, index, items, generator, torch.device("cpu"))

    chosen = (torch.rand(len(index), generator=replay) < 0.5).numpy()
    assert 0 < chosen.sum() < len(index)
    for key in ("static", "calendar", "lead", "valid"):
        torch.testing.assert_close(pushed[key], items[key], rtol=0, atol=0)
    kept = torch.from_numpy(~chosen)
    torch.testing.assert_close(pushed["history"][kept], items["history"][kept], rtol=0, atol=0)
    torch.testing.assert_close(pushed["target"][kept], items["target"][kept], rtol=0, atol=0)

    earlier = data[pushforward.partners[index[chosen]]]
    condition = Condition(
        earlier["history"], earlier["static"], earlier["calendar"], earlier["lead"]
    )
    model.eval()
    drawn = model.sample(condition, 1, sampler=trained_sampler(cfg, model), generator=replay)[:, 0]
    norm = data.normalization
    to_state = torch.from_numpy(
        np.stack(
            [norm.residual_to_state(data.leads_hours[j]) for j in data.pairs[index[chosen], 1]]
        )
    )
    rows = torch.from_numpy(chosen)
    now = pushed["history"][rows, -1]
    torch.testing.assert_close(now, earlier["history"][:, -1] + drawn * to_state, rtol=0, atol=1e-5)
    assert (now - items["history"][rows, -1]).abs().mean() > 0.01  # it did move
    torch.testing.assert_close(
        now + pushed["target"][rows] * to_state,
        items["history"][rows, -1] + items["target"][rows] * to_state,
        rtol=0,
        atol=1e-5,
    )


def test_a_pushforward_fine_tune_resumes_to_the_same_weights(store, tmp_path, monkeypatch):
    cfg = config(pushforward=0.5)
    whole = train(store, cfg, tmp_path / "whole", progress=False)
    resumed = train_interrupted_at(4, store, cfg, tmp_path / "split", monkeypatch)  # fine-tune
    a, b = load_checkpoint(whole.checkpoint), load_checkpoint(resumed.checkpoint)
    assert a.step == b.step == 6 and a.train_config.fine_tune.pushforward == 0.5
    for key in a.model_state:
        torch.testing.assert_close(a.model_state[key], b.model_state[key], rtol=0, atol=0)


@pytest.mark.parametrize("fraction", [-0.1, 1.5])
def test_a_fraction_outside_0_1_is_refused(fraction):
    with pytest.raises(InputError, match=r"pushforward .* in \[0, 1\]"):
        FineTuneConfig(pushforward=fraction)


def test_pushforward_with_variability_scaling_is_refused():
    cfg = config(pushforward=0.5)
    with pytest.raises(InputError, match="variability_scaling"):
        dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, variability_scaling=True))
