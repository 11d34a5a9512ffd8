"""Where a training step's time goes, on the end-to-end benchmark's store and default model
size (:mod:`benchmarks.end_to_end`); writes JSON.

A step is the batch (``Trainer.shard``: the items gathered from the states in memory,
the targets scaled, the solar forcing and calendar computed, on the CPU, then moved to the
device) and the update (forward under autocast, backward, clipping, optimiser, EMA). Both
are timed over ``--steps`` steps after ``--warm-up`` ones, the device synchronised around
each part, so their sum is the step's time and their ratio says whether the GPU waits on
the CPU. On CUDA the items come from worker processes that build them ahead
(:mod:`generators.batch_ahead`), so the batch's time is the wait for them. Side by side:
``--in-process`` adds the rows of items built in the trainer's process; ``--networks
compiled eager`` times the network trained through ``torch.compile`` (the default on CUDA)
and eagerly; ``--states store`` reads the states from the store item by item
(``data.max_memory_bytes`` 0, as for a store larger than memory) instead of in memory.

    python -m benchmarks.train_step                                  # 1 degree global, GPU
    python -m benchmarks.train_step --states memory store --in-process   # and both reads
    python -m benchmarks.train_step --grid 19x36 --out cpu.json       # a CPU
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from benchmarks.end_to_end import default_config, global_dataset, write
from generators.batch_ahead import ItemsAhead
from generators.train import Trainer
from pipeline.store import ingest

RESULTS = Path(__file__).resolve().parent / "results"


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_steps(trainer: Trainer, steps: int, warm_up: int) -> dict[str, float]:
    """Median seconds of the batch, the update and the whole step over ``steps`` steps
    after ``warm_up`` ones, and the first step's seconds (with any compile)."""
    device = trainer.device
    batch_s, update_s = [], []
    for step in range(warm_up + steps):
        synchronize(device)
        start = time.perf_counter()
        batch, generator = trainer.shard(step, 0, trainer.shard_size)
        synchronize(device)
        built = time.perf_counter()
        trainer.update(step, batch, generator)
        synchronize(device)
        batch_s.append(built - start)
        update_s.append(time.perf_counter() - built)
    batch, update = float(np.median(batch_s[warm_up:])), float(np.median(update_s[warm_up:]))
    first = batch_s[0] + update_s[0]
    return {"batch_s": batch, "update_s": update, "step_s": batch + update, "first_step_s": first}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--grid", default="181x360", help="LATxLON points (default 181x360)")
    parser.add_argument("--train-years", type=float, default=10.0)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[16, 64])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warm-up", type=int, default=5)
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument(
        "--states",
        nargs="+",
        choices=["memory", "store"],
        default=["memory"],
        help="where items read the states: in memory, or from the store item by item",
    )
    parser.add_argument(
        "--networks",
        nargs="+",
        choices=["compiled", "eager"],
        default=["compiled"],
        help="the network trained through torch.compile (the default on CUDA) or eagerly",
    )
    parser.add_argument(
        "--in-process",
        action="store_true",
        help="also time items built in the trainer's process (no workers; as on a CPU)",
    )
    parser.add_argument("--out", default=str(RESULTS / "train_step.json"))
    args = parser.parse_args(argv)
    grid = tuple(int(n) for n in args.grid.split("x"))
    device = "cuda" if torch.cuda.is_available() and args.device != "cpu" else "cpu"
    result: dict = {
        "machine": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "gpu": torch.cuda.get_device_name(0) if device == "cuda" else None,
            "cpu_threads": torch.get_num_threads(),
        },
        "grid": list(grid),
        "rows": [],
    }
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        global_dataset(grid, n_times=64, seed=0).to_netcdf(work / "global.nc")
        store = str(work / "global.zarr")
        ingest(str(work / "global.nc"), store, progress=False)
        config = default_config(store, args.train_years, device).config
        result["backbone_widths"] = list(config.model.config.backbone.widths)
        runs = [
            (network, states, size, ahead)
            for network in args.networks
            for states in args.states
            for size in args.batch_sizes
            for ahead in ([True, False] if args.in_process else [True])
        ]
        for network, states, size, ahead in runs:
            memory = config.data.max_memory_bytes if states == "memory" else 0
            sized = replace(
                config,
                batch_size=size,
                steps=args.warm_up + args.steps,
                data=replace(config.data, max_memory_bytes=memory),
                compile_network=network == "compiled",
            )
            name = f"run-{network}-{states}-{size}-{ahead}"
            trainer = Trainer(store, sized, work / name, resume=False)
            if not ahead:
                trainer.items = ItemsAhead(0, sized.seed, pin_memory=False)
            row = {
                "network": network if trainer.device.type == "cuda" else "eager",
                "states": states,
                "batch_size": size,
                "workers": trainer.items.workers,
                **time_steps(trainer, args.steps, args.warm_up),
            }
            row["samples_per_s"] = size / row["step_s"]
            result["rows"].append(row)
            print(json.dumps(row))
            write(result, args.out)


if __name__ == "__main__":
    main()
