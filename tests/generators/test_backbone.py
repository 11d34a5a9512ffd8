"""The U-Net backbone: any grid size, conditioning, batching, FLOP count."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from generators.backbone import BackboneConfig, UNet, forward_flops, parameter_count, repeat_encoded
from generators.base import Condition
from pipeline.errors import InputError

from tiny import random_condition

TINY = BackboneConfig(
    channels=2,
    history=2,
    static_channels=3,
    calendar_features=4,
    widths=(8, 16, 16),
    embedding_dim=16,
    norm_groups=4,
    attention_heads=2,
)


def _randomised(config: BackboneConfig, seed: int = 0) -> UNet:
    """A U-Net whose zero-initialised layers are random too, so every input matters."""
    torch.manual_seed(seed)
    unet = UNet(config)
    with torch.no_grad():
        for p in unet.parameters():
            if not p.any():
                p.normal_(0.0, 0.2)
    return unet.eval()


@pytest.mark.parametrize("height,width", [(16, 16), (17, 13), (33, 49), (5, 3), (1, 1)])
def test_any_grid_size_comes_back_the_same_size(height, width):
    unet = _randomised(TINY)
    x = torch.randn(2, TINY.channels, height, width)
    with torch.no_grad():
        out = unet.denoise(
            x, torch.rand(2), random_condition(2, height, width, config=TINY, lead=None)
        )
    assert out.shape == x.shape
    assert torch.isfinite(out).all() and out.abs().sum() > 0


def test_periodic_longitude_padding_wraps_the_grid():
    config = BackboneConfig(**{**TINY.__dict__, "periodic_longitude": True})
    unet = _randomised(config)
    x = torch.arange(6.0).reshape(1, 1, 1, 6)
    padded = unet._pad(x)  # multiple of 4: 1 -> 4 rows, 6 -> 8 columns
    assert padded.shape == (1, 1, 4, 8)
    torch.testing.assert_close(padded[0, 0, 0], torch.tensor([0.0, 1, 2, 3, 4, 5, 0, 1]))
    torch.testing.assert_close(padded[0, 0, 3], padded[0, 0, 0])  # rows replicated


def test_a_fresh_network_outputs_zero():
    # Zero-initialised output layer: flow matching starts at v = 0, EDM at D = c_skip x.
    unet = UNet(TINY)
    out = unet.denoise(
        torch.randn(1, 2, 8, 8), torch.rand(1), random_condition(1, 8, 8, config=TINY, lead=None)
    )
    assert torch.count_nonzero(out) == 0


def test_every_input_changes_the_output():
    unet = _randomised(TINY)
    cond = random_condition(1, 12, 12, config=TINY, lead=None)
    x, label = torch.randn(1, 2, 12, 12), torch.tensor([0.3])

    def run(x=x, label=label, **changes):
        c = Condition(**{**cond.__dict__, **changes})
        with torch.no_grad():
            return unet.denoise(x, label, c)

    base = run()
    variants = {
        "x": run(x=x + 1),
        "noise label": run(label=label + 0.1),
        "history (oldest state)": run(
            history=cond.history + torch.eye(2)[None, :, 0, None, None, None]
        ),
        "static": run(static=cond.static + 1),
        "calendar": run(calendar=cond.calendar + 1),
        "lead": run(lead=cond.lead + 6),
    }
    for name, out in variants.items():
        assert (out - base).abs().max() > 1e-4, f"output ignores {name}"


def test_batched_members_equal_one_by_one_calls():
    # All members run as one batch: each must get its own sample's condition, and nothing
    # may mix the members of a batch.
    unet = _randomised(TINY)
    cond = random_condition(2, 9, 11, config=TINY, lead=None)
    members = 3
    x = torch.randn(2 * members, 2, 9, 11)
    labels = torch.rand(2 * members)
    with torch.no_grad():
        batched = unet(x, labels, *repeat_encoded(unet.encode(cond), members))
        single = [
            unet.denoise(
                x[i : i + 1],
                labels[i : i + 1],
                Condition(*(t[i // members : i // members + 1] for t in cond.__dict__.values())),
            )
            for i in range(2 * members)
        ]
    torch.testing.assert_close(batched, torch.cat(single), rtol=1e-4, atol=1e-5)


def test_channels_last_gives_the_same_answer():
    unet = _randomised(TINY)
    cond = random_condition(2, 16, 16, config=TINY, lead=None)
    x, label = torch.randn(2, 2, 16, 16), torch.rand(2)
    with torch.no_grad():
        expected = unet.denoise(x, label, cond)
        unet = unet.to(memory_format=torch.channels_last)
        got = unet.denoise(x.contiguous(memory_format=torch.channels_last), label, cond)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)


def test_mismatched_condition_is_a_clear_error():
    unet = UNet(TINY)
    cond = random_condition(
        1, 8, 8, config=BackboneConfig(**{**TINY.__dict__, "history": 3}), lead=None
    )
    with pytest.raises(InputError, match="K=3.*K=2"):
        unet.encode(cond)


@pytest.mark.parametrize(
    "changes",
    [{"widths": (8, 10)}, {"widths": ()}, {"history": 0}, {"attention_heads": 3}, {"dropout": 1.0}],
)
def test_invalid_configs_raise(changes):
    with pytest.raises(InputError):
        BackboneConfig(**{**TINY.__dict__, **changes})


def test_forward_flops_match_a_hand_count():
    # One level, no attention, no padding (grid multiple 1): count every conv and linear
    # as 2 * in * out * kernel_area * points (2 FLOPs per multiply-add).
    config = BackboneConfig(
        channels=1,
        history=1,
        static_channels=0,
        calendar_features=0,
        widths=(8,),
        embedding_dim=8,
        norm_groups=4,
        attention_heads=0,
    )
    h, w = 4, 6
    p = h * w

    def conv(cin, cout, k=3):
        return 2 * cin * cout * k * k * p

    def linear(cin, cout):
        return 2 * cin * cout

    block_8 = conv(8, 8) + linear(8, 16) + conv(8, 8)
    block_16_to_8 = conv(16, 8) + linear(8, 16) + conv(8, 8) + conv(16, 8, k=1)
    expected = (
        linear(8, 8)  # noise embedding
        + 2 * linear(8, 8)  # embedding MLP
        + conv(2, 8)  # input: x and one history state
        + 3 * block_8  # encoder, middle in, middle out
        + block_16_to_8  # decoder with the skip concatenated
        + conv(8, 1)  # output
    )
    assert forward_flops(config, h, w) == expected
    assert forward_flops(config, h, w, batch_size=3) == 3 * expected


def test_forward_flops_count_attention_and_padding():
    # The padded grid is what the network computes on: 15 x 15 costs what 16 x 16 does.
    # Attention over the P points of the coarsest grid with c channels costs
    # 2 c (3c) P (qkv) + 2 c c P (output) + 2 P P c (QK^T) + 2 P P c (AV) = 8 c^2 P + 4 c P^2.
    no_attention = BackboneConfig(**{**TINY.__dict__, "attention_heads": 0})
    assert forward_flops(TINY, 15, 15) == forward_flops(TINY, 16, 16)
    c = TINY.widths[-1]
    for n in (16, 32):
        points = (n // TINY.grid_multiple) ** 2
        extra = forward_flops(TINY, n, n) - forward_flops(no_attention, n, n)
        assert extra == 8 * c**2 * points + 4 * c * points**2


def test_parameter_count_counts_trainable_parameters():
    unet = UNet(TINY)
    assert parameter_count(unet) == sum(p.numel() for p in unet.parameters())
    nn.Module.requires_grad_(unet.output_conv, False)
    assert parameter_count(unet) == sum(p.numel() for p in unet.parameters()) - sum(
        p.numel() for p in unet.output_conv.parameters()
    )
