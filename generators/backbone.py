"""The U-Net shared by both objectives: a conditional field-to-field network on the grid.

The network maps a noisy residual ``x`` (N, C, H, W), a scalar noise label per sample
(flow time ``t`` for flow matching, ``c_noise = ln(sigma) / 4`` for EDM) and a
:class:`~generators.base.Condition` to a field of the same shape as ``x``.

Conditioning:

- the last K states (``history``, (N, K, C, H, W)) and the static fields (N, S, H, W)
  are stacked with ``x`` as input channels;
- the noise label, the lead time and the calendar features go through sinusoidal
  embeddings and an MLP into one vector per sample, which modulates every residual
  block by adaptive group norm (FiLM: ``norm(h) * (1 + scale) + shift``; Dhariwal &
  Nichol 2021, "Diffusion models beat GANs", sec. 3).

Any grid size works: the input is padded to a multiple of ``2 ** (levels - 1)``
(replicated edges, or wrapped longitude for a global grid) and the output cropped back.

The condition is encoded once per sample (:meth:`UNet.encode`) and reused by every
member and every sampler step; :meth:`UNet.forward` takes tensors only, so it can be
compiled (``unet.compile()``, which keeps the state-dict keys) or captured in a CUDA
graph. All members run as one batch.

Sizes (parameters; :func:`forward_flops` per member and network evaluation):

- default ``BackboneConfig(channels=1, history=2)`` (widths 32/64/128, 1 block a level,
  4 heads): 2.11 M parameters, 0.883 GFLOP on the 33 x 49 UK grid (0.906 with
  history=24);
- "base" ``widths=(64, 128, 256, 512), blocks_per_level=2, embedding_dim=256,
  attention_heads=8``, 10 channels, history 2: 45.3 M parameters, 186 GFLOP on a
  0.25 degree European grid of 169 x 281, 244 GFLOP on the 1 degree global 181 x 360.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.flop_counter import FlopCounterMode

from generators.base import BACKBONES, BaseBackboneConfig, Condition
from pipeline.errors import InputError


@dataclass(frozen=True)
class BackboneConfig(BaseBackboneConfig):
    """Size of the U-Net (backbone ``unet``), beyond the inputs every backbone has
    (:class:`~generators.base.BaseBackboneConfig`).

    widths:            channels at each resolution level; the grid halves between levels.
    blocks_per_level:  residual blocks per level in the encoder and in the decoder.
    embedding_dim:     width of the noise/lead/calendar embedding.
    norm_groups:       groups of every GroupNorm; divides every width.
    attention_heads:   heads of the self-attention at the coarsest level (0: none).
    dropout:           dropout inside residual blocks.
    periodic_longitude: wrap the longitude when padding (global grids).
    """

    widths: tuple[int, ...] = (32, 64, 128)
    blocks_per_level: int = 1
    embedding_dim: int = 128
    norm_groups: int = 8
    attention_heads: int = 4
    dropout: float = 0.0
    periodic_longitude: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        positive = {
            "blocks_per_level": self.blocks_per_level,
            "embedding_dim": self.embedding_dim,
            "norm_groups": self.norm_groups,
        }
        for name, value in positive.items():
            if value < 1:
                raise InputError(f"BackboneConfig.{name} must be at least 1, got {value}")
        if self.attention_heads < 0:
            raise InputError(
                f"BackboneConfig.attention_heads must be >= 0, got {self.attention_heads}"
            )
        if not self.widths:
            raise InputError(
                "BackboneConfig.widths is empty: give one width per level, e.g. [32, 64, 128]"
            )
        bad = [w for w in self.widths if w % self.norm_groups]
        if bad:
            raise InputError(
                f"BackboneConfig.widths {list(self.widths)}: {bad} not divisible by "
                f"norm_groups={self.norm_groups}; choose widths that are multiples of it"
            )
        if self.attention_heads and self.widths[-1] % self.attention_heads:
            raise InputError(
                f"BackboneConfig.attention_heads={self.attention_heads} does not divide the "
                f"coarsest width {self.widths[-1]}"
            )
        if self.embedding_dim % 2:
            raise InputError(f"BackboneConfig.embedding_dim must be even, got {self.embedding_dim}")
        if not 0.0 <= self.dropout < 1.0:
            raise InputError(f"BackboneConfig.dropout must be in [0, 1), got {self.dropout}")

    @property
    def grid_multiple(self) -> int:
        """The padded grid is a multiple of this in both directions."""
        return 2 ** (len(self.widths) - 1)


def sinusoidal_embedding(x: Tensor, dim: int, min_frequency: float, max_frequency: float) -> Tensor:
    """(N,) -> (N, dim): ``[sin(f_i x), cos(f_i x)]`` with f_i log-spaced in [min, max].

    Vaswani et al. 2017 positional encoding, with the frequency range chosen for the
    quantity (the lowest frequency's period must exceed the range of ``x``).
    """
    half = dim // 2
    exponents = torch.linspace(0.0, 1.0, half, device=x.device, dtype=torch.float32)
    frequencies = min_frequency * (max_frequency / min_frequency) ** exponents
    angles = x.float()[:, None] * frequencies[None, :]
    return torch.cat([angles.sin(), angles.cos()], dim=1)


class ResidualBlock(nn.Module):
    """GroupNorm-SiLU-conv twice, the second norm modulated by the embedding (FiLM).

    out = skip(x) + conv2(drop(silu(norm2(h) * (1 + scale) + shift))),
    h = conv1(silu(norm1(x))), (scale, shift) = linear(silu(emb)). conv2 starts at zero,
    so each block starts as the identity (Dhariwal & Nichol 2021).
    """

    def __init__(
        self, in_channels: int, out_channels: int, embedding_dim: int, groups: int, dropout: float
    ):
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, in_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.film = nn.Linear(embedding_dim, 2 * out_channels)
        self.norm2 = nn.GroupNorm(groups, out_channels)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        nn.init.zeros_(self.conv2.weight)
        nn.init.zeros_(self.conv2.bias)
        self.skip = (
            nn.Identity()
            if in_channels == out_channels
            else nn.Conv2d(in_channels, out_channels, 1)
        )

    def forward(self, x: Tensor, emb: Tensor) -> Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        scale, shift = self.film(F.silu(emb))[:, :, None, None].chunk(2, dim=1)
        h = self.norm2(h) * (1 + scale) + shift
        h = self.conv2(self.dropout(F.silu(h)))
        return self.skip(x) + h


class SelfAttention(nn.Module):
    """Multi-head self-attention over the grid points of one level, residual."""

    def __init__(self, channels: int, heads: int, groups: int):
        super().__init__()
        self.heads = heads
        self.norm = nn.GroupNorm(groups, channels)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.out = nn.Conv2d(channels, channels, 1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: Tensor) -> Tensor:
        n, c, h, w = x.shape
        qkv = self.qkv(self.norm(x)).reshape(n, 3, self.heads, c // self.heads, h * w)
        # (3, N, heads, HW, head_dim), contiguous: the fused (flash / memory-efficient)
        # kernels need it; strided inputs fall back to the math kernel, which materialises
        # the (HW x HW) weights (33 GB for 64 members on a 1 degree grid).
        q, k, v = qkv.permute(1, 0, 2, 4, 3).contiguous().unbind(0)
        a = F.scaled_dot_product_attention(q, k, v)
        return x + self.out(a.transpose(-1, -2).reshape(n, c, h, w))


@BACKBONES.register("unet")
class UNet(nn.Module):
    """Conditional U-Net: ``forward(x, noise_label, cond_map, cond_embedding) -> (N, C, H, W)``.

    Use :meth:`encode` to turn a :class:`Condition` into ``(cond_map, cond_embedding)``
    once, then call the network as often as the sampler needs; or :meth:`denoise` for
    both in one call. Encoder levels ``widths[i]`` with ``blocks_per_level`` residual
    blocks each and a stride-2 convolution between levels; a middle of two blocks around
    self-attention; a mirrored decoder with skip connections and nearest upsampling.
    The default :class:`~generators.base.Backbone`.
    """

    config_class: ClassVar[type] = BackboneConfig

    def __init__(self, config: BackboneConfig):
        super().__init__()
        self.config = config
        c = config
        emb = c.embedding_dim
        self.noise_embedding = nn.Linear(emb, emb)
        self.lead_embedding = nn.Linear(emb, emb)
        self.calendar_embedding = (
            nn.Linear(c.calendar_features, emb) if c.calendar_features else None
        )
        self.embedding_mlp = nn.Sequential(
            nn.SiLU(), nn.Linear(emb, emb), nn.SiLU(), nn.Linear(emb, emb)
        )

        in_channels = c.channels * (1 + c.history) + c.static_channels
        self.input_conv = nn.Conv2d(in_channels, c.widths[0], 3, padding=1)
        block = functools.partial(
            ResidualBlock, embedding_dim=emb, groups=c.norm_groups, dropout=c.dropout
        )

        self.encoder = nn.ModuleList()
        self.downsample = nn.ModuleList()
        previous = c.widths[0]
        for level, width in enumerate(c.widths):
            self.encoder.append(
                nn.ModuleList(
                    block(previous if i == 0 else width, width) for i in range(c.blocks_per_level)
                )
            )
            previous = width
            if level < len(c.widths) - 1:
                self.downsample.append(
                    nn.Conv2d(width, c.widths[level + 1], 3, stride=2, padding=1)
                )
                previous = c.widths[level + 1]

        bottom = c.widths[-1]
        self.middle_in = block(bottom, bottom)
        self.attention = (
            SelfAttention(bottom, c.attention_heads, c.norm_groups)
            if c.attention_heads
            else nn.Identity()
        )
        self.middle_out = block(bottom, bottom)

        self.decoder = nn.ModuleList()
        self.upsample = nn.ModuleList()
        for level in reversed(range(len(c.widths))):
            width = c.widths[level]
            self.decoder.append(
                nn.ModuleList(
                    block(2 * width if i == 0 else width, width) for i in range(c.blocks_per_level)
                )
            )
            if level > 0:
                self.upsample.append(nn.Conv2d(width, c.widths[level - 1], 3, padding=1))

        self.output_norm = nn.GroupNorm(c.norm_groups, c.widths[0])
        self.output_conv = nn.Conv2d(c.widths[0], c.channels, 3, padding=1)
        nn.init.zeros_(self.output_conv.weight)
        nn.init.zeros_(self.output_conv.bias)

    @property
    def dtype(self) -> torch.dtype:
        """The weights' dtype, in which the network runs: inputs are cast to it (bfloat16
        weights, ``unet.to(torch.bfloat16)``, run without autocast's float32 norms)."""
        return self.input_conv.weight.dtype

    # -- condition ---------------------------------------------------------------------

    def encode(self, condition: Condition) -> tuple[Tensor, Tensor]:
        """Condition -> (cond_map (N, K*C+S, H', W') on the padded grid, cond_embedding (N, E)).

        Computed once per sample; repeat it over members (``repeat_interleave``) and pass
        it to every call of :meth:`forward`.
        """
        history, static = condition.history, condition.static
        n, k, ch, h, w = history.shape
        c = self.config
        if k != c.history or ch != c.channels or static.shape[1] != c.static_channels:
            raise InputError(
                f"condition does not match the backbone: history (K={k}, C={ch}) and "
                f"{static.shape[1]} static fields given, the model was built for K={c.history}, "
                f"C={c.channels} and {c.static_channels} static fields"
            )
        if condition.calendar.shape[1] != c.calendar_features:
            raise InputError(
                f"condition has {condition.calendar.shape[1]} calendar features, the model "
                f"was built for {c.calendar_features}"
            )
        dtype = self.dtype
        cond_map = self._pad(torch.cat([history.reshape(n, k * ch, h, w), static], dim=1))
        embedding = self.lead_embedding(
            sinusoidal_embedding(condition.lead, c.embedding_dim, 1e-3, 1.0).to(dtype)
        )
        if self.calendar_embedding is not None:
            embedding = embedding + self.calendar_embedding(condition.calendar.to(dtype))
        return cond_map.to(dtype), embedding

    # -- network -----------------------------------------------------------------------

    def forward(
        self, x: Tensor, noise_label: Tensor, cond_map: Tensor, cond_embedding: Tensor
    ) -> Tensor:
        """(N, C, H, W), (N,), (N, K*C+S, H', W'), (N, E) -> (N, C, H, W).

        ``noise_label`` is O(1): flow time t in [0, 1] or EDM's ln(sigma)/4; it is embedded
        at frequencies 0.1 ... 1000 per unit.
        """
        height, width = x.shape[-2:]
        dtype = self.dtype
        noise = self.noise_embedding(
            sinusoidal_embedding(noise_label, self.config.embedding_dim, 0.1, 1000.0).to(dtype)
        )
        emb = self.embedding_mlp(noise + cond_embedding.to(dtype))

        h = self.input_conv(torch.cat([self._pad(x.to(dtype)), cond_map.to(dtype)], dim=1))
        skips = []
        for level, blocks in enumerate(self.encoder):
            for blk in blocks:
                h = blk(h, emb)
            skips.append(h)
            if level < len(self.downsample):
                h = self.downsample[level](h)
        h = self.middle_out(self.attention(self.middle_in(h, emb)), emb)
        for i, blocks in enumerate(self.decoder):
            h = torch.cat([h, skips.pop()], dim=1)
            for blk in blocks:
                h = blk(h, emb)
            if i < len(self.upsample):
                h = self.upsample[i](F.interpolate(h, scale_factor=2.0, mode="nearest"))
        out = self.output_conv(F.silu(self.output_norm(h)))
        return out[..., :height, :width]

    def denoise(self, x: Tensor, noise_label: Tensor, condition: Condition) -> Tensor:
        """:meth:`encode` and :meth:`forward` in one call (condition batch = x batch)."""
        return self(x, noise_label, *self.encode(condition))

    def _pad(self, x: Tensor) -> Tensor:
        """Pad the bottom/right edges up to a multiple of :attr:`BackboneConfig.grid_multiple`."""
        m = self.config.grid_multiple
        pad_h, pad_w = -x.shape[-2] % m, -x.shape[-1] % m
        if not (pad_h or pad_w):
            return x
        if self.config.periodic_longitude and pad_w:
            x = F.pad(x, (0, pad_w, 0, 0), mode="circular")
            pad_w = 0
        return F.pad(x, (0, pad_w, 0, pad_h), mode="replicate")


def repeat_encoded(encoded: tuple[Tensor, ...], n_members: int) -> tuple[Tensor, ...]:
    """(B, ...) encoded condition -> (B*M, ...), members of one sample adjacent."""
    return tuple(t.repeat_interleave(n_members, dim=0) for t in encoded)


def parameter_count(module: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def forward_flops(config: BackboneConfig, height: int, width: int, batch_size: int = 1) -> int:
    """Floating-point operations of one :meth:`UNet.forward` on a (height, width) grid.

    Counted by :class:`torch.utils.flop_counter.FlopCounterMode` on the meta device (no
    weights, no compute): matmuls, convolutions and attention at 2 FLOPs per multiply-add;
    norms and activations are not counted, as is usual for MFU. The condition encoding,
    done once per sample, is excluded. MFU = forward_flops * forwards per second / peak.
    """
    c = config
    with torch.device("meta"):
        unet = UNet(config)
        condition = Condition(
            history=torch.zeros(batch_size, c.history, c.channels, height, width),
            static=torch.zeros(batch_size, c.static_channels, height, width),
            calendar=torch.zeros(batch_size, c.calendar_features),
            lead=torch.ones(batch_size),
        )
        x = torch.zeros(batch_size, c.channels, height, width)
        encoded = unet.encode(condition)
        counter = FlopCounterMode(display=False)
        with counter:
            unet(x, torch.zeros(batch_size), *encoded)
    return int(counter.get_total_flops())
