"""Sampling throughput: members per second, time per member-step and MFU, fp32 eager against
bf16 autocast (eager, then + ``torch.compile``) in one run, on CUDA when present, and on the CPU.
``--cuda-modes`` adds channels-last, cuDNN's autotuner, ``max-autotune`` (autotuned kernels,
CUDA graphs), bfloat16 weights in place of autocast and inductor's coordinate-descent tuning of
its own kernels; ``--profile`` records where the GPU time of one call goes (convolutions,
inductor's fused norm/pointwise kernels, the rest).

A member-step is one residual drawn for one member at one lead: ``NFE`` network
evaluations of the backbone (the condition is encoded once per initial time and reused).
MFU = (FLOPs per evaluation x NFE x member-steps per second) / peak, the FLOPs counted by
:func:`generators.backbone.forward_flops` (matmuls, convolutions, attention; 2 per
multiply-add), the peak the H100 SXM dense bf16 figure (989 TFLOP/s). On a machine without
CUDA the GPU rows are recorded as not measured.

Models (documented sizes; ``--cases MODEL:GRID``; declared with the grids and modes in
:mod:`benchmarks.sampling_cases`): ``medium`` (the production size, 25.7 M
parameters: 6 channels, widths 96/192/384, 2 blocks per level, attention at the coarsest
level, 258 GFLOP per evaluation on the European grid) on a 0.25 degree European grid
(161 x 241) or a 1 degree global grid (181 x 360); ``large`` (the same with every width
doubled, 102.7 M parameters, 1.01 TFLOP per evaluation there: 4x the FLOPs for 2x the
activation traffic of the memory-bound norms, so a larger share of the time is
convolution); ``uk-small`` (the CPU model of configs/uk_t2m_flow_matching.yaml) on the
33 x 49 UK grid.

    python -m benchmarks.sampling                      # all that this machine can run
    python -m benchmarks.sampling --devices cuda --cases medium:global-1deg --members 32
"""

from __future__ import annotations

import argparse
import contextlib
import json
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from unittest.mock import patch

import torch

from benchmarks.sampling_cases import (
    CPU_INITS,
    CPU_MEMBERS,
    CPU_MODES,
    CUDA_MODES,
    GRIDS,
    MODELS,
    MODES,
)
from generators import (
    BackboneConfig,
    EulerSampler,
    FlowMatching,
    FlowMatchingConfig,
    forward_flops,
    objective,
    parameter_count,
)
from generators.base import Condition

RESULTS = Path(__file__).resolve().parent / "results"
H100_BF16_PEAK = 989e12
KERNEL_KINDS = (  # (kind, name fragments) of GPU kernels, first match wins (inductor names
    # its Triton kernels after the ops they fuse, "convolution" and "cudnn" included)
    ("inductor fused norm / pointwise (Triton)", ("triton",)),
    ("attention", ("sdpa", "flash", "fmha", "attention")),
    ("convolution (cuDNN / CUTLASS)", ("conv", "fprop", "xmma", "implicit", "cudnn", "cutlass")),
    ("matmul", ("gemm", "nvjet")),
)


def build(model: str, grid: str, device: torch.device) -> FlowMatching:
    backbone = MODELS[model]
    if grid == "global-1deg":
        backbone = BackboneConfig(**{**asdict(backbone), "periodic_longitude": True})
    return FlowMatching(FlowMatchingConfig(backbone=backbone)).to(device).eval()


def condition(
    model: FlowMatching, inits: int, grid: tuple[int, int], device: torch.device
) -> Condition:
    c = model.backbone.config
    g = torch.Generator().manual_seed(0)
    h, w = grid
    return Condition(
        history=torch.randn(inits, c.history, c.channels, h, w, generator=g),
        static=torch.randn(inits, c.static_channels, h, w, generator=g),
        calendar=torch.randn(inits, c.calendar_features, generator=g),
        lead=torch.full((inits,), 6.0),
    ).to(device)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(
    make_model: Callable[[], FlowMatching],
    cond: Condition,
    members: int,
    nfe: int,
    device: torch.device,
    mode: str,
    repeats: int,
    profile: bool = False,
) -> dict:
    """Seconds per ``model.sample`` call (after warm-up) and the derived rates, on a fresh
    model (each mode sets its own dtype, memory format and compiled graphs)."""
    sampler = EulerSampler(nfe=nfe)
    how = MODES[mode]
    model = make_model()
    if how.bf16_weights:
        model.to(torch.bfloat16)
    if how.channels_last:
        model.to(memory_format=torch.channels_last)
    if how.compile:  # anew: the last mode's graphs assume its weights' memory format
        torch._dynamo.reset()
        torch._inductor.config.coordinate_descent_tuning = how.coordinate_descent
        torch._inductor.config.layout_optimization = not how.nchw
        model.backbone.compile(dynamic=False, mode=how.compile)
    torch.backends.cudnn.benchmark = how.cudnn_benchmark
    torch.backends.cudnn.allow_tf32 = how.tf32
    generator = torch.Generator().manual_seed(0)

    def call() -> None:
        with (
            torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=how.bf16),
            patch.object(objective, "CPU_EVALUATION_BYTES", sys.maxsize)
            if how.one_slice
            else contextlib.nullcontext(),
        ):
            model.sample(cond, members, sampler=sampler, generator=generator)

    start = time.perf_counter()
    for _ in range(3 if how.compile else 1):  # compile (CUDA graphs record on the 2nd), warm-up
        call()
    synchronize(device)
    warmup = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(repeats):
        call()
    synchronize(device)
    seconds = (time.perf_counter() - start) / repeats
    member_steps = cond.history.shape[0] * members
    h, w = cond.history.shape[-2:]
    flops = forward_flops(model.backbone.config, h, w)
    rate = member_steps / seconds
    row = {
        "mode": mode,
        "nfe": nfe,
        "inits": cond.history.shape[0],
        "members": members,
        "seconds_per_call": seconds,
        "members_per_second": rate,
        "seconds_per_member_step": 1.0 / rate,
        "flops_per_evaluation": flops,
        "achieved_flop_per_second": flops * nfe * rate,
        "mfu_h100_bf16": flops * nfe * rate / H100_BF16_PEAK if device.type == "cuda" else None,
        "repeats": repeats,
        "convolutions_tf32": how.tf32 and not how.bf16 and device.type == "cuda",
        "warmup_seconds": warmup,  # the compile, for compiled modes
    }
    if profile and device.type == "cuda":
        row["gpu_time"] = kernel_time_shares(call)
    return row


def kernel_time_shares(call: Callable[[], None], top: int = 12) -> dict:
    """GPU time of one ``call`` by kernel kind (:data:`KERNEL_KINDS`) and its ``top``
    kernels, from :mod:`torch.profiler` (CUDA activity only)."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        call()
        torch.cuda.synchronize()
    kernels = [
        (e.key, e.self_device_time_total, e.count)
        for e in prof.key_averages()
        if e.self_device_time_total > 0
    ]
    total = sum(t for _, t, _ in kernels)
    kinds: dict[str, float] = {}
    for name, t, _ in kernels:
        lower = name.lower()
        kind = next((k for k, parts in KERNEL_KINDS if any(p in lower for p in parts)), "other")
        kinds[kind] = kinds.get(kind, 0.0) + t / total
    kernels.sort(key=lambda k: -k[1])
    return {
        "total_ms": total / 1e3,
        "share_by_kind": kinds,
        "top_kernels": [
            {"name": n[:160], "ms": t / 1e3, "calls": c, "share": t / total}
            for n, t, c in kernels[:top]
        ],
    }


def run_case(
    model_name: str,
    grid_name: str,
    device: torch.device,
    args: argparse.Namespace,
    case: dict,
    save: Callable[[], None],
) -> None:
    """Measure one model on one grid into ``case``, calling ``save`` after each CUDA mode (a
    run cut short by a time limit keeps the modes it measured)."""
    grid = GRIDS[grid_name]
    case.update(model=model_name, grid=grid_name, grid_shape=grid, device=str(device))

    def make_model() -> FlowMatching:
        return build(model_name, grid_name, device)

    model = make_model()  # for its size and the condition; each mode builds its own

    case["parameters"] = parameter_count(model)
    case["backbone"] = asdict(model.backbone.config)
    if device.type == "cuda":
        case["gpu_name"] = torch.cuda.get_device_name(device)
        cond = condition(model, args.inits, grid, device)
        case["rows"], case["speedup_over_fp32_eager"] = [], {}
        for mode in args.cuda_modes:
            row = measure(
                make_model, cond, args.members, args.nfe, device, mode, args.repeats, args.profile
            )
            case["rows"].append(row)
            eager = case["rows"][0]["members_per_second"]
            case["speedup_over_fp32_eager"][mode] = row["members_per_second"] / eager
            save()
    else:
        cond = condition(model, CPU_INITS[model_name], grid, device)
        case["rows"] = [
            measure(make_model, cond, CPU_MEMBERS[model_name], args.cpu_nfe, device, mode, 1)
            for mode in CPU_MODES[model_name]
        ]
        case["gpu"] = "not measured: no CUDA device on this machine"


def case_name(text: str) -> str:
    """``text`` if it is MODEL:GRID of known names; argparse's error naming them otherwise."""
    model, _, grid = text.partition(":")
    if model not in MODELS or grid not in GRIDS:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not MODEL:GRID with MODEL one of {', '.join(MODELS)} and GRID one of "
            f"{', '.join(GRIDS)}"
        )
    return text


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--cases",
        nargs="+",
        type=case_name,
        default=["medium:europe-0.25deg", "medium:global-1deg", "uk-small:uk-0.25deg"],
        help=f"MODEL:GRID, MODEL one of {', '.join(MODELS)}, GRID one of {', '.join(GRIDS)}",
    )
    parser.add_argument("--inits", type=int, default=4, help="initial times per batch on CUDA")
    parser.add_argument("--members", type=int, default=16, help="members per initial time on CUDA")
    parser.add_argument("--nfe", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--cpu-nfe", type=int, default=2)
    parser.add_argument(
        "--devices",
        nargs="+",
        choices=["cuda", "cpu"],
        default=["cuda", "cpu"],
        help="devices to measure (cuda is skipped without a CUDA device)",
    )
    parser.add_argument(
        "--cuda-modes",
        nargs="+",
        choices=list(MODES),
        default=list(CUDA_MODES),
        help="modes measured on CUDA, in order (fp32-eager first: the speed-ups are over it)",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="on CUDA, record each mode's GPU time of one call by kernel kind (torch.profiler)",
    )
    parser.add_argument("--out", default=str(RESULTS / "sampling.json"))
    args = parser.parse_args(argv)
    if args.cuda_modes[0] != "fp32-eager":
        parser.error("--cuda-modes must start with fp32-eager (the reference of the speed-ups)")
    devices = [
        torch.device(name) for name in args.devices if name == "cpu" or torch.cuda.is_available()
    ]
    results = {
        "description": __doc__.split("\n\n")[0],
        "peak_flop_per_second_h100_bf16": H100_BF16_PEAK,
        "torch": torch.__version__,
        "cpu": platform.processor() or platform.machine(),
        "cpu_threads": torch.get_num_threads(),
        "cuda": torch.cuda.is_available(),
        "cases": [],
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)

    def save() -> None:
        out.write_text(json.dumps(results, indent=1))

    for device in devices:
        for item in args.cases:
            model_name, grid_name = item.split(":")
            case: dict = {}
            results["cases"].append(case)
            run_case(model_name, grid_name, device, args, case, save)
            print(json.dumps({k: v for k, v in case.items() if k != "backbone"}, indent=1))
            save()
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
