"""What the rank histogram's error-correlation floor costs ``wxens verify``: the same
stores verified with ``--error-surrogate-replicas 0`` and ``20``, side by side in one run;
results to benchmarks/results/verify_error_floor.json.

Two synthetic grids (``benchmarks.verify_speed.write_stores``: t2m, leads every 6 h), so
that no real test day is read:

- ``uk``: the UK sample's size, 40 x 60, 16 initial times, 50 members, 5 leads (the
  validation forecasts of ``benchmarks/demo.py``);
- ``global``: 1° (181 x 360), 10 initial times, 20 members, 2 leads.

Each ``wxens verify`` runs in a fresh process under ``/usr/bin/time``: its wall time, CPU
time (user + sys) and peak resident memory, the run of least CPU time of :data:`REPEATS`;
everything else at the command's defaults.
The floor's cost grows as replicas · N² · (M + 1) · points (N initial times, M members):
``verification.kernels.error_surrogate_rank_counts``.

Run: ``python -m benchmarks.verify_error_floor [--quick]`` (``--quick``: small sizes, to
check the script itself).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.verify_speed import machine, write_json, write_stores

RESULTS = Path(__file__).parent / "results" / "verify_error_floor.json"
ROOT = Path(__file__).resolve().parents[1]
REPLICAS = (0, 20)
REPEATS = 2
"""Runs of each case; the one of least CPU time is kept (the machine is shared)."""
GRIDS = {  # name: (init times, members, leads, latitudes, longitudes)
    "uk": (16, 50, 5, 40, 60),
    "global": (10, 20, 2, 181, 360),
}
QUICK = {"uk": (4, 10, 2, 10, 15), "global": (4, 10, 2, 19, 36)}
TIME_FORMAT = "%e %U %S %M"
"""``/usr/bin/time``: wall s, user s, sys s, peak resident KiB."""


def timed_verify(forecast: Path, truth: Path, out: Path, replicas: int) -> dict:
    """``wxens verify`` of ``forecast`` against ``truth`` in a fresh process: its times, peak
    memory and the scorecard's rank max/min and floors (first variable, by lead)."""
    import xarray as xr

    argv = ["/usr/bin/time", "-f", TIME_FORMAT, "-o", str(out.with_suffix(".time"))]
    argv += [sys.executable, "-m", "flows.cli", "verify", str(forecast), "--truth", str(truth)]
    argv += ["--out", str(out), "--no-progress", "--error-surrogate-replicas", str(replicas)]
    done = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT)
    if done.returncode:
        sys.exit(f"wxens verify failed ({done.returncode}):\n{done.stdout}\n{done.stderr[-4000:]}")
    wall, user, system, peak_kib = out.with_suffix(".time").read_text().split()[-4:]
    card = xr.open_datatree(out)["scorecard"].to_dataset().isel(variable=0)
    floors = ("rank_max_min", "rank_max_min_perfect_model", "rank_max_min_error_surrogate")
    return {
        "replicas": replicas,
        "wall_s": float(wall),
        "cpu_s": round(float(user) + float(system), 2),
        "peak_rss_bytes": int(peak_kib) * 1024,
        **{name: card[name].values.round(3).tolist() for name in floors if name in card},
    }


def analysis_store(plain: Path) -> Path:
    """``plain`` (a Zarr of the truth) ingested beside it as a wxens analysis store, which
    ``wxens verify --truth`` reads."""
    import xarray as xr

    from pipeline.store import ingest

    netcdf, store = plain.with_suffix(".nc"), plain.with_name("analysis.zarr")
    xr.open_zarr(plain, consolidated=False).to_netcdf(netcdf)
    ingest(netcdf, store, progress=False)
    return store


def benchmark_grid(shape: tuple[int, int, int, int, int]) -> dict:
    """Both replica counts on one pair of stores; the floor's extra wall and CPU time."""
    root = Path(tempfile.mkdtemp(prefix="wxens-floor-bench-"))
    try:
        forecast, plain = write_stores(root, *shape)
        truth = analysis_store(plain)
        runs = [
            min(
                (timed_verify(forecast, truth, root / f"scores-{n}.nc", n) for _ in range(REPEATS)),
                key=lambda run: run["cpu_s"],
            )
            for n in REPLICAS
        ]
    finally:
        shutil.rmtree(root, ignore_errors=True)
    off, on = runs
    names = ("init_time", "member", "lead_time", "latitude", "longitude")
    return {
        "shape": dict(zip(names, shape, strict=True)),
        "runs": runs,
        "extra_wall_s": round(on["wall_s"] - off["wall_s"], 2),
        "extra_cpu_s": round(on["cpu_s"] - off["cpu_s"], 2),
        "cpu_ratio": round(on["cpu_s"] / off["cpu_s"], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (checks the script)")
    args = parser.parse_args()
    results = {"machine": machine(), "quick": args.quick, "command": "wxens verify (defaults)"}
    for name, shape in (QUICK if args.quick else GRIDS).items():
        results[name] = benchmark_grid(shape)
        print(name, json.dumps(results[name], indent=1), flush=True)
    write_json(results, RESULTS, quick=args.quick)


if __name__ == "__main__":
    main()
