"""End to end at scale: ``wxens forecast`` of 50 members x 10 days (6-hourly) on the 1 degree
global grid with the default model size, and data-parallel training throughput at 1 and
all devices of the machine; writes JSON.

1. A 1 degree global analysis store (181 x 360, every 6 h) of eight channels (t2m, msl,
   u10, v10, and z and t on 500 and 850 hPa: the size of a small operational set) is
   written as NetCDF and ingested by :func:`pipeline.store.ingest`. The fields are smooth
   Gaussian noise (a low-pass filter on the sphere's grid, AR(1) in time) about typical
   means: the timings depend on the sizes, not on the weather.
2. The model is the **default size**: :func:`generators.config_derive.derive_config` of
   that store, its backbone sized by :func:`~generators.config_derive.backbone_for` for
   ``--train-years`` of 6-hourly training times (a store of that length derives the same
   widths), trained 2 steps (the forecast's time does not depend on the weights).
3. ``wxens forecast`` of ``--members`` members from one initial time every 6 h up to
   ``--days``, timed as a user sees it: a new process, from start to exit, including
   reading the store, ``torch.compile`` on CUDA, the rollout and the store writes. Run
   twice (``first`` pays the compile cache, ``second`` reuses it), each into a new store.
4. ``wxens train --nproc N`` for N = 1 and every device (the GPUs; on a CPU, 2 gloo
   processes): samples per second over the steps between two log records, so start-up,
   compilation and the final validation are left out.

    python -m benchmarks.end_to_end                                 # the GPU case
    python -m benchmarks.end_to_end --grid 19x36 --members 4 --days 2 --out cpu.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import xarray as xr

from generators.config_derive import DerivedConfig, StepSeconds, backbone_for, derive_config
from generators.train import train
from pipeline.schema import LAT, LON, VARIABLES
from pipeline.store import ingest, open_store

RESULTS = Path(__file__).resolve().parent / "results"
START = pd.Timestamp("2020-01-01")
STEP = pd.Timedelta(hours=6)
SURFACE = {"t2m": (283.0, 8.0), "msl": (101_300.0, 1_200.0), "u10": (0.0, 6.0), "v10": (0.0, 6.0)}
UPPER = {"z": ((54_000.0, 14_500.0), 900.0), "t": ((253.0, 275.0), 6.0)}
LEVELS = (500, 850)
LOG_FIRST, LOG_SECOND = 50, 100
"""The two ``log.jsonl`` records (steps) between which throughput is measured."""


def smooth_noise(rng: np.random.Generator, n_times: int, grid: tuple[int, int]) -> np.ndarray:
    """Zero-mean unit-variance fields (time, lat, lon): white noise through a Gaussian
    low-pass (about 8 grid points) in both grid directions, AR(1) with coefficient 0.9 per
    step in time."""
    n_lat, n_lon = grid
    ky = np.fft.fftfreq(n_lat)[:, None]
    kx = np.fft.rfftfreq(n_lon)[None, :]
    response = np.exp(-((ky**2 + kx**2) * 8.0**2) * 2 * np.pi**2)
    out = np.empty((n_times, n_lat, n_lon), np.float32)
    state = None
    for i in range(n_times):
        white = rng.standard_normal(grid)
        field = np.fft.irfft2(np.fft.rfft2(white) * response, s=grid)
        field = (field - field.mean()) / field.std()
        state = field if state is None else 0.9 * state + np.sqrt(1 - 0.81) * field
        out[i] = state
    return out


def global_dataset(grid: tuple[int, int], n_times: int, seed: int) -> xr.Dataset:
    """The benchmark's fields on a global grid (latitudes -90..90, longitudes [0, 360))."""
    rng = np.random.default_rng(seed)
    coords = {
        "time": pd.date_range(START, periods=n_times, freq=STEP),
        "latitude": np.linspace(-90.0, 90.0, grid[0]),
        "longitude": np.arange(grid[1]) * 360.0 / grid[1],
    }
    dims = ("time", "latitude", "longitude")
    data = {
        name: (dims, mean + scale * smooth_noise(rng, n_times, grid))
        for name, (mean, scale) in SURFACE.items()
    }
    for name, (means, scale) in UPPER.items():
        levels = [m + scale * smooth_noise(rng, n_times, grid) for m in means]
        data[name] = (("time", "pressure_level", *dims[1:]), np.stack(levels, axis=1))
    ds = xr.Dataset(data, coords={**coords, "pressure_level": list(LEVELS)})
    ds["pressure_level"].attrs["units"] = "hPa"
    for name in ds.data_vars:
        ds[name].attrs["units"] = VARIABLES[name].units
    return ds


def default_config(store: str, train_years: float, device: str) -> DerivedConfig:
    """The derived config of ``store`` with the backbone of ``train_years`` of training
    times, shortened to 2 steps without fine-tune or calibration."""
    derived = derive_config(store, device=device, step_seconds=StepSeconds(1.0, 1.0, 0.1))
    config = derived.config
    data = config.data
    grid = tuple(open_store(store).dataset.sizes[d] for d in (LAT, LON))
    train_times = int(train_years * 365.25 * pd.Timedelta(days=1) / STEP)
    backbone = backbone_for(grid, train_times, len(data.channels), periodic=True)
    model = replace(config.model, config=replace(config.model.config, backbone=backbone))
    short = replace(
        config, model=model, steps=2, fine_tune=None, calibration=None, checkpoint_every=2
    )
    return DerivedConfig(short, (*derived.notes, f"backbone for {train_times} training times"))


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "flows.cli", *args]


def timed(command: list[str]) -> float:
    """Wall seconds of ``command`` in a new process (its output to ours; a failure raises)."""
    start = time.perf_counter()
    subprocess.run(command, check=True)
    return time.perf_counter() - start


def forecast_seconds(work: Path, store: str, members: int, days: int, device: str) -> dict:
    init = (START + 4 * STEP).isoformat()
    walls = {}
    for run in ("first", "second"):
        walls[run] = timed(
            cli(
                *("forecast", "--checkpoint", str(work / "model"), "--store", store),
                *("--init", init, "--members", str(members), "--lead", f"{24 * days}h"),
                *("--every", "6h", "--out", str(work / f"forecast-{run}.zarr")),
                *("--device", device, "--no-progress"),
            )
        )
    return {"members": members, "days": days, "lead_steps": 4 * days, "wall_s": walls}


def ddp_throughput(work: Path, store: str, nproc: int, batch_size: int) -> dict:
    """Samples per second of ``wxens train --nproc nproc`` between two log records."""
    out = work / f"ddp-{nproc}"
    steps = LOG_SECOND + 10  # the final validation comes after the second record
    timed(
        cli(
            *("train", "--store", store, "--config", str(work / "config.yaml")),
            *("--out", str(out), "--nproc", str(nproc), "--no-progress"),
            *("--set", f"steps={steps}", "--set", f"batch_size={batch_size}"),
            *("--set", "validate_every=1000", "--set", "checkpoint_every=1000"),
        )
    )
    records = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    seconds = {r["step"]: r["seconds"] for r in records}
    elapsed = seconds[LOG_SECOND] - seconds[LOG_FIRST]
    return {
        "nproc": nproc,
        "global_batch": batch_size,
        "steps_timed": LOG_SECOND - LOG_FIRST,
        "seconds": elapsed,
        "samples_per_s": (LOG_SECOND - LOG_FIRST) * batch_size / elapsed,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--grid", default="181x360", help="LATxLON points (default 181x360)")
    parser.add_argument("--members", type=int, default=50)
    parser.add_argument("--days", type=int, default=10)
    parser.add_argument("--train-years", type=float, default=10.0)
    parser.add_argument("--batch-size", type=int, default=16, help="DDP global batch")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument("--skip-ddp", action="store_true")
    parser.add_argument("--workdir", help="default: a temporary folder")
    parser.add_argument("--out", default=str(RESULTS / "end_to_end.json"))
    args = parser.parse_args(argv)
    grid = tuple(int(n) for n in args.grid.split("x"))
    cuda = torch.cuda.is_available() and args.device != "cpu"
    device = "cuda" if cuda else "cpu"
    if args.workdir:  # a folder to make, as --out's is
        Path(args.workdir).mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        work = Path(tmp)
        source = work / "global.nc"
        global_dataset(grid, n_times=64, seed=0).to_netcdf(source)
        store = str(work / "global.zarr")
        start = time.perf_counter()
        ingest(str(source), store, progress=False)
        ingest_s = time.perf_counter() - start
        derived = default_config(store, args.train_years, device)
        derived.write(work / "config.yaml")
        train(store, derived.config, work / "model", progress=False)
        backbone = derived.config.model.config.backbone
        result = {
            "date": pd.Timestamp.now(tz="UTC").isoformat(),
            "machine": {
                "python": platform.python_version(),
                "torch": torch.__version__,
                "cpus": os.cpu_count(),
                "gpu": torch.cuda.get_device_name(0) if cuda else None,
                "gpus": torch.cuda.device_count() if cuda else 0,
            },
            "grid": list(grid),
            "channels": list(derived.config.data.channels),
            "backbone_widths": list(backbone.widths),
            "ingest_s": ingest_s,
            "forecast": forecast_seconds(work, store, args.members, args.days, device),
        }
        write(result, args.out)
        if not args.skip_ddp:
            counts = sorted({1, torch.cuda.device_count() if cuda else 2})
            result["ddp"] = []
            for n in counts:
                result["ddp"].append(ddp_throughput(work, store, n, args.batch_size))
                write(result, args.out)
    print(json.dumps(result, indent=1))


def write(result: dict, out: str) -> None:
    """Write ``result`` to ``out`` (again after each part, so a run cut short keeps what it
    measured)."""
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
