"""The estimated memory of a training step (:mod:`generators.step_memory`) beside the peak
resident memory of real CPU steps, case by case in one run; results to
benchmarks/results/train_memory.json.

Each case (a grid, channels, history window and phase, the backbone as
:func:`generators.config_derive.backbone_for` sizes it) runs in a fresh process: two
optimiser steps of the phase's loss (AdamW, the EMA updated, as
:meth:`generators.train.Trainer.update` does), so that the second holds the optimiser's
moments as every later step does. The peak resident memory (``ru_maxrss``) above that of
the process before the model is built is set beside the count of
:func:`generators.step_memory.step_memory` without its margin (``counted``) and with it
(``estimate``). One thread.

Run: ``python -m benchmarks.train_memory [--quick]`` (``--quick``: small grids, to check
the script itself).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import resource
import subprocess
import sys
from pathlib import Path

RESULTS = Path(__file__).parent / "results" / "train_memory.json"
CASES = [  # name, grid, channels, history, phase, batch
    ("UK sample grid, hourly", (33, 49), 1, 24, "main", 16),
    ("UK sample grid, hourly", (33, 49), 1, 24, "fine-tune", 16),
    ("2 degree global, 6-hourly", (91, 180), 3, 4, "main", 16),
    ("2 degree global, 6-hourly", (91, 180), 3, 4, "fine-tune", 8),
    ("1 degree global, 6-hourly", (181, 360), 8, 4, "main", 4),
    ("1 degree global, 6-hourly", (181, 360), 8, 4, "fine-tune", 2),
]
QUICK = [("small", (16, 24), 2, 2, "main", 4), ("small", (16, 24), 2, 2, "fine-tune", 4)]


def run_case(grid: tuple[int, int], channels: int, history: int, phase: str, batch: int) -> dict:
    """Two real steps of ``phase`` at ``batch`` in this process, and the estimate."""
    import torch

    from generators.base import Batch, Condition
    from generators.config import FineTuneConfig, ModelSpec, TrainConfig
    from generators.config_data import DataConfig
    from generators.config_derive import backbone_for
    from generators.data import CALENDAR_FEATURES
    from generators.ema import EMA
    from generators.models import GENERATORS, FlowMatchingConfig
    from generators.step_memory import step_memory

    torch.set_num_threads(1)
    static = 5  # the geometry and an insolation
    backbone = dataclasses.replace(
        backbone_for(grid, 5_000, channels, periodic=True),
        channels=channels,
        history=history,
        static_channels=static,
        calendar_features=len(CALENDAR_FEATURES),
    )
    model_config = FlowMatchingConfig(backbone=backbone)
    config = TrainConfig(
        model=ModelSpec("flow_matching", model_config),
        data=DataConfig(channels=tuple(f"c{k}" for k in range(channels))),
        fine_tune=FineTuneConfig(),
    )
    (memory,) = [p for p in step_memory(config, model_config, grid).phases if p.name == phase]
    start = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    if phase == "fine-tune":
        model_config = dataclasses.replace(model_config, **config.fine_tune.objective_overrides())
    model = GENERATORS["flow_matching"](model_config)
    ema = EMA(model, 0.995)
    optimizer = torch.optim.AdamW(model.parameters())
    h, w = grid
    batch_tensors = Batch(
        Condition(
            history=torch.randn(batch, history, channels, h, w),
            static=torch.randn(batch, static, h, w),
            calendar=torch.randn(batch, len(CALENDAR_FEATURES)),
            lead=torch.ones(batch),
        ),
        target=torch.randn(batch, channels, h, w),
    )
    for step in range(2):
        loss = model.loss(batch_tensors, generator=torch.Generator().manual_seed(step))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        ema.update(model, step)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - start
    counted, estimate = memory.counted(batch), memory.estimate(batch)
    return {
        "grid": list(grid),
        "channels": channels,
        "history": history,
        "widths": list(backbone.widths),
        "phase": phase,
        "batch": batch,
        "peak_rss_bytes": peak,
        "counted_bytes": counted,
        "estimate_bytes": estimate,
        "peak_over_counted": round(peak / counted, 2),
        "estimate_over_peak": round(estimate / peak, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (checks the script)")
    parser.add_argument("--case", help="one case as JSON (internal: run in a fresh process)")
    args = parser.parse_args()
    if args.case:
        grid, channels, history, phase, batch = json.loads(args.case)
        print(json.dumps(run_case(tuple(grid), channels, history, phase, batch)))
        return
    from benchmarks.verify_speed import machine, write_json

    results: dict = {"machine": machine(), "quick": args.quick, "cases": []}
    for name, *case in QUICK if args.quick else CASES:
        command = [sys.executable, "-m", "benchmarks.train_memory", "--case", json.dumps(case)]
        done = subprocess.run(command, capture_output=True, text=True, check=True)
        result = {"case": name, **json.loads(done.stdout.strip().splitlines()[-1])}
        print(json.dumps(result), flush=True)
        results["cases"].append(result)
    write_json(results, RESULTS, quick=args.quick)


if __name__ == "__main__":
    main()
