"""What :mod:`benchmarks.sampling` can measure: its models (``--cases MODEL:GRID``) and
grids, the modes a network runs in (``--cuda-modes``; :class:`Mode`), those measured on
CUDA by default, and on the CPU, where the larger models are slow, each model's modes and
batch. The sizes are documented in :mod:`benchmarks.sampling`'s docstring.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from generators import BackboneConfig

GRIDS = {"europe-0.25deg": (161, 241), "global-1deg": (181, 360), "uk-0.25deg": (33, 49)}
MEDIUM = BackboneConfig(
    channels=6,
    history=2,
    static_channels=4,
    calendar_features=4,
    widths=(96, 192, 384),
    blocks_per_level=2,
    embedding_dim=256,
    norm_groups=16,
    attention_heads=8,
)
MODELS = {
    "medium": MEDIUM,
    "large": replace(MEDIUM, widths=(192, 384, 768), embedding_dim=512, norm_groups=32),
    "uk-small": BackboneConfig(
        channels=1,
        history=24,
        static_channels=4,
        calendar_features=4,
        widths=(16, 32, 64),
        embedding_dim=32,
        attention_heads=0,
    ),
}


@dataclass(frozen=True)
class Mode:
    """How the network runs: bf16 autocast or not, ``torch.compile`` mode (None: eager),
    weights and activations in channels-last memory format or not, cuDNN timing its
    convolution algorithms for these shapes (``cudnn.benchmark``) or choosing by heuristics,
    bfloat16 weights (every activation stored in bf16, norms included; autocast keeps norm
    outputs in float32), inductor's coordinate-descent tuning of its generated kernels,
    inductor's layout optimisation off (``nchw``: it otherwise stores convolution
    activations channels-last, so the group norms that follow reduce over strided memory;
    the price is cuDNN's own transposes), on a CPU the whole batch through the network at
    once (``one_slice``) instead of the slices of
    :data:`generators.objective.CPU_EVALUATION_BYTES` that sampling uses there, and fp32
    convolutions in TF32 on tensor cores (PyTorch's default, ``cudnn.allow_tf32``) or in
    full fp32 (``tf32=False``: the strict fp32 reference)."""

    bf16: bool
    compile: str | None = None
    channels_last: bool = False
    cudnn_benchmark: bool = False
    bf16_weights: bool = False
    coordinate_descent: bool = False
    nchw: bool = False
    one_slice: bool = False
    tf32: bool = True


MODES = {
    "fp32-eager": Mode(bf16=False),
    "fp32-eager-no-tf32": Mode(bf16=False, tf32=False),
    "fp32-eager-one-slice": Mode(bf16=False, one_slice=True),
    "bf16-eager": Mode(bf16=True),
    "bf16-compile": Mode(bf16=True, compile="default"),
    "bf16-compile-channels-last": Mode(bf16=True, compile="default", channels_last=True),
    "bf16-compile-channels-last-cudnn-benchmark": Mode(
        bf16=True, compile="default", channels_last=True, cudnn_benchmark=True
    ),
    "bf16-max-autotune-channels-last": Mode(  # autotuned kernels + CUDA graphs; long compile
        bf16=True, compile="max-autotune", channels_last=True
    ),
    "bf16-compile-coordinate-descent": Mode(bf16=True, compile="default", coordinate_descent=True),
    "bf16-compile-nchw": Mode(bf16=True, compile="default", nchw=True),
    "bf16-compile-nchw-coordinate-descent": Mode(
        bf16=True, compile="default", nchw=True, coordinate_descent=True
    ),
    "bf16-weights-compile": Mode(bf16=False, compile="default", bf16_weights=True),
    "bf16-weights-compile-coordinate-descent": Mode(
        bf16=False, compile="default", bf16_weights=True, coordinate_descent=True
    ),
}
CPU_MEMBERS = {"medium": 2, "large": 1, "uk-small": 50}  # per CPU call (the larger are slow)
CPU_INITS = {"medium": 1, "large": 1, "uk-small": 8}  # uk-small: a batch of wxens forecast
CPU_MODES = {
    "medium": ("fp32-eager",),
    "large": ("fp32-eager",),
    "uk-small": ("fp32-eager", "fp32-eager-one-slice", "bf16-compile"),
}
CUDA_MODES = ("fp32-eager", "bf16-eager", "bf16-compile")
