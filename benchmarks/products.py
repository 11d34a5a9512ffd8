"""Time and peak memory of ``wxens products``, ``wxens export`` and ``wxens plume``'s library
calls on a forecast store larger than their memory, side by side in one run; results to
benchmarks/results/products_cpu.json.

A forecast store of 50 members, N initial times, 8 leads and t2m on the 1° global grid
(``benchmarks.verify_speed.write_stores``: one chunk per initial time and lead, every member
and grid point in it, as ``wxens forecast`` writes) is read by each case in a fresh process,
whose peak resident memory (``ru_maxrss``) is the case's alone:

- ``products_zarr``, ``products_netcdf``: :func:`verification.product_output.write_products`
  of the mean, spread, quantiles 10, 50, 90 and ``t2m<0degC``, streamed through dask;
- ``numpy_in_memory``: the same numbers by plain xarray and numpy on the loaded forecast
  (``ds.mean("member")``, ``np.quantile``), nothing written, checked equal to the Zarr
  products;
- ``export_netcdf``: :func:`pipeline.store_export.export` to CF NetCDF, and its bytes;
- ``plume``: :func:`verification.plume.point_series` at London and
  :func:`verification.plume.plot_plume` saved as PNG, and the bytes it read (``read_chars``
  of /proc/self/io: every byte a read call returned, page cache or not).

All of it is CPU work (dask's local threads, numpy, NetCDF's zlib): the script runs
unchanged on a CUDA machine, which does not change it. Each case also records the memory of
its process before the work (the imports), so the work's own share can be read off.

With ``--init-times-scaling 2,16,64`` the products and export cases (not numpy's nor the
plume's) are run again on stores of each of those numbers of initial times, the same grid,
into ``init_times_scaling`` of the JSON: how their peak grows with the store's length;
``--mmap-threshold 1048576`` runs each of them also with glibc's ``MALLOC_MMAP_THRESHOLD_``
fixed at 1 MiB, side by side (glibc raises its threshold to the size of a freed chunk, up to
32 MiB, and keeps later chunks of that size in its heap, fragmented, after they are freed).

Run: ``python -m benchmarks.products [--quick] [--init-times-scaling 2,16,64
[--mmap-threshold 1048576]]``
(``--quick``: a small grid, to check the script itself, written beside the result as
``products_cpu-quick.json``).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import psutil
import xarray as xr

RESULTS = Path(__file__).parent / "results" / "products_cpu.json"
QUANTILES = (0.1, 0.5, 0.9)
FROST = 273.15
"""``t2m<0degC`` in the store's kelvin."""
PLACE = (51.5, -0.12)
CASES = ("products_zarr", "products_netcdf", "numpy_in_memory", "export_netcdf", "plume")
SCALING_CASES = ("products_zarr", "products_netcdf", "export_netcdf")
MMAP_THRESHOLD = "MALLOC_MMAP_THRESHOLD_"


def _bytes(path: Path) -> int:
    """Bytes of a file, or of every file under a folder (a Zarr store)."""
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _peak_rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _read_chars() -> int:
    return psutil.Process().io_counters().read_chars


def run_case(case: str, forecast: Path, root: Path) -> dict:
    """One case in this process: its wall time, peak memory and what it wrote or read."""
    from pipeline.forecast_store import open_forecast
    from pipeline.store_export import export
    from verification.plume import plot_plume, point_series
    from verification.product_output import ProductRequest, write_products

    request = ProductRequest(
        mean=True, spread=True, quantiles="10,50,90", probability=("t2m<0degC",)
    )
    out = root / {"products_netcdf": "p.nc", "export_netcdf": "e.nc"}.get(case, f"{case}.zarr")
    result: dict = {"case": case, "rss_before_bytes": psutil.Process().memory_info().rss}
    read_before, start = _read_chars(), time.perf_counter()
    if case.startswith("products"):
        write_products(forecast, out, request, progress=False)
    elif case == "export_netcdf":
        export(forecast, out, progress=False)
    elif case == "plume":  # the bytes the point's read takes, not the figure's fonts
        series = point_series(forecast, *PLACE)
        result["point_series_s"] = round(time.perf_counter() - start, 2)
        result["point_series_read_chars"] = _read_chars() - read_before
        out = out.with_suffix(".png")
        plot_plume(series, quantiles=QUANTILES).savefig(out)
    else:
        t2m = open_forecast(forecast).t2m.load()
        axis = t2m.get_axis_num("member")
        numbers = {
            "mean": t2m.mean("member"),
            "spread": t2m.std("member", ddof=1),
            "quantile": np.moveaxis(np.quantile(t2m.values, QUANTILES, axis=axis), 0, -1),
            "frost": (t2m < FROST).mean("member"),
        }
    result["wall_s"] = round(time.perf_counter() - start, 2)
    result["peak_rss_bytes"] = _peak_rss()
    result["read_chars"] = _read_chars() - read_before
    if case == "numpy_in_memory":
        result["max_abs_difference_to_products_zarr"] = _difference(numbers, root)
    else:
        result["written_bytes"] = _bytes(out)
    return result


def _difference(numbers: dict, root: Path) -> float:
    """The largest difference between ``numbers`` and the products Zarr output; raises
    where they are not the same numbers (1e-3 K: xarray sums float32)."""
    products = xr.open_zarr(root / "products_zarr.zarr").load()
    pairs = [
        (numbers["mean"], products["t2m_mean"]),
        (numbers["spread"], products["t2m_spread"]),
        (numbers["quantile"], products["t2m_quantiles"].values),
        (numbers["frost"], products[next(n for n in products.data_vars if "_below_" in str(n))]),
    ]
    worst = 0.0
    for expected, got in pairs:
        np.testing.assert_allclose(np.asarray(got), np.asarray(expected), atol=1e-3)
        worst = max(worst, float(np.abs(np.asarray(got) - np.asarray(expected)).max()))
    return worst


def _in_fresh_process(case: str, forecast: Path, root: Path, env: dict | None = None) -> dict:
    """:func:`run_case` of ``case`` in a process of its own, so its peak is the case's;
    ``env``: its whole environment (None: this process's)."""
    command = [sys.executable, "-m", "benchmarks.products", "--case", case]
    done = subprocess.run(
        [*command, str(forecast), str(root)],
        stdout=subprocess.PIPE,
        text=True,
        check=True,
        env=env,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def _scaling(
    sizes: list[int], grid: tuple[int, int], root: Path, thresholds: list[int | None]
) -> list[dict]:
    """:data:`SCALING_CASES` on a store of each of ``sizes`` initial times (each deleted once
    measured), a fresh process each, under glibc's default allocator (threshold None) and
    with ``MALLOC_MMAP_THRESHOLD_`` fixed at each other of ``thresholds`` (bytes), side by
    side: one result per size, case and threshold, ``init_times`` and
    ``malloc_mmap_threshold`` set."""
    from benchmarks.verify_speed import write_stores

    results = []
    for n_init in sizes:
        where = root / f"scaling-{n_init}"
        where.mkdir()
        forecast, _ = write_stores(where, n_init, 50, 8, *grid)
        for case in SCALING_CASES:
            for threshold in thresholds:
                # the default rows too without a threshold this process was started with
                env = {k: v for k, v in os.environ.items() if k != MMAP_THRESHOLD}
                env |= {} if threshold is None else {MMAP_THRESHOLD: str(threshold)}
                outputs = where / f"{case}-{threshold or 'default'}"  # each writes anew
                outputs.mkdir()
                result = {"init_times": n_init, "malloc_mmap_threshold": threshold}
                result |= _in_fresh_process(case, forecast, outputs, env)
                print(json.dumps(result), flush=True)
                results.append(result)
        shutil.rmtree(where, ignore_errors=True)
    return results


def _sizes(text: str) -> list[int]:
    """``"2,16,64"`` -> ``[2, 16, 64]``, for ``--init-times-scaling``."""
    sizes = [int(size) for size in text.split(",")]
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: give initial times >= 1, e.g. 2,16,64")
    return sizes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (checks the script)")
    parser.add_argument("--case", nargs=3, metavar=("CASE", "FORECAST", "ROOT"))
    parser.add_argument("--init-times", type=int, default=8, help="initial times in the store")
    parser.add_argument(
        "--init-times-scaling",
        type=_sizes,
        metavar="N,N,...",
        help="also run the products and export cases on stores of these initial times",
    )
    parser.add_argument(
        "--mmap-threshold",
        type=int,
        metavar="BYTES",
        help="with --init-times-scaling: each case also with glibc's MALLOC_MMAP_THRESHOLD_ "
        "fixed at BYTES (e.g. 1048576), beside the default",
    )
    args = parser.parse_args()
    if args.mmap_threshold and not args.init_times_scaling:
        parser.error("--mmap-threshold applies to --init-times-scaling's cases: give both")
    if args.case:  # one case, in the process the main run started
        case, forecast, root = args.case
        print(json.dumps(run_case(case, Path(forecast), Path(root))))
        return
    from benchmarks.verify_speed import machine, write_json, write_stores

    n_init, grid = (2, (19, 36)) if args.quick else (args.init_times, (181, 360))
    shape = {"init_time": n_init, "member": 50, "lead_time": 8}
    shape |= {"latitude": grid[0], "longitude": grid[1]}
    results: dict = {"machine": machine(), "quick": args.quick, "shape": shape, "cases": []}
    root = Path(tempfile.mkdtemp(prefix="wxens-bench-"))
    try:
        forecast, _ = write_stores(root, n_init, 50, 8, *grid)
        results["forecast_store_bytes"] = _bytes(forecast)
        results["forecast_uncompressed_bytes"] = int(np.prod(list(shape.values())) * 4)
        results["one_init_time_uncompressed_bytes"] = (
            results["forecast_uncompressed_bytes"] // n_init
        )
        for case in CASES:
            result = _in_fresh_process(case, forecast, root)
            result["peak_over_store"] = round(
                result["peak_rss_bytes"] / results["forecast_uncompressed_bytes"], 2
            )
            print(json.dumps(result), flush=True)
            results["cases"].append(result)
        if args.init_times_scaling:
            thresholds = [None] + ([args.mmap_threshold] if args.mmap_threshold else [])
            results["init_times_scaling"] = _scaling(
                args.init_times_scaling, grid, root, thresholds
            )
    finally:
        shutil.rmtree(root, ignore_errors=True)
    by = {c["case"]: c for c in results["cases"]}
    base = by["numpy_in_memory"]
    results["ratios_to_numpy_in_memory"] = {
        case: {
            "wall": round(by[case]["wall_s"] / base["wall_s"], 2),
            "peak_rss": round(by[case]["peak_rss_bytes"] / base["peak_rss_bytes"], 2),
        }
        for case in ("products_zarr", "products_netcdf")
    }
    write_json(results, RESULTS, quick=args.quick)


if __name__ == "__main__":
    main()
