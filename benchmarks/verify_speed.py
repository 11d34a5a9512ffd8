"""Verification benchmarks, side by side in one run; results to
benchmarks/results/verification.json.

1. **Kernels against xskillscore.** A 50-member ensemble of 100 init times on a
   181 x 360 (1°) grid, held in memory and wrapped in the same dask chunks for both:
   fair CRPS + rank histogram + spread-skill ratio with wxens, against xskillscore's
   ``crps_ensemble`` (its only, ecdf, form) + ``rank_histogram`` + a spread-skill ratio
   in plain xarray (xskillscore has none; ``xs.rmse`` refuses chunked averaging dims),
   all cos-latitude weighted over
   (init_time, latitude, longitude). Same results checked: wxens ecdf CRPS against
   xskillscore's, rank counts equal, spread-skill ratios equal, and wxens fair CRPS
   against ``scores`` (fair) on two init times.

2. **Out of core.** A forecast store (written with ``pipeline.forecast_store``) about
   4 x larger than the memory limit of a dask ``LocalCluster`` is verified with
   :func:`verification.scorecard.verify`; the peak memory of the workers (dask's
   ``MemorySampler``) and of this process (psutil, sampled) is reported.

Run: ``python benchmarks/verify_speed.py [--quick]`` (``--quick``: small sizes, to check the
script itself).
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import tempfile
import threading
import time
from pathlib import Path

import dask
import dask.array as da
import numpy as np
import pandas as pd
import psutil
import xarray as xr

RESULTS = Path(__file__).parent / "results" / "verification.json"
DIMS = ("init_time", "latitude", "longitude")


def ensemble(
    n_init: int, n_member: int, n_lat: int, n_lon: int, seed: int = 0
) -> tuple[xr.DataArray, xr.DataArray]:
    """In-memory float32 truth and members (reliable: exchangeable draws about a signal)."""
    rng = np.random.default_rng(seed)
    coords = {
        "init_time": pd.date_range("2020-01-01", periods=n_init, freq="12h"),
        "latitude": np.linspace(-90, 90, n_lat),
        "longitude": np.arange(n_lon) * 360.0 / n_lon,
    }
    signal = 280.0 + 10.0 * rng.standard_normal((n_init, 1, n_lat, n_lon), dtype=np.float32)
    members = signal + 2.0 * rng.standard_normal((n_init, n_member, n_lat, n_lon), dtype=np.float32)
    truth = signal[:, 0] + 2.0 * rng.standard_normal((n_init, n_lat, n_lon), dtype=np.float32)
    forecast = xr.DataArray(
        members, dims=("init_time", "member", "latitude", "longitude"), coords=coords
    )
    return forecast, xr.DataArray(truth, dims=DIMS, coords=coords)


def timed(compute) -> tuple[float, object]:
    start = time.perf_counter()
    result = compute()
    return time.perf_counter() - start, result


def wxens_scores(forecast: xr.DataArray, truth: xr.DataArray):
    from verification import ranks as vr
    from verification import scores as vs

    return dask.compute(
        vs.fair_crps(forecast, truth, mean_over=DIMS),
        vr.rank_histogram(forecast, truth, mean_over=DIMS, seed=0),
        vs.spread_skill_ratio(forecast, truth, mean_over=DIMS),
    )


def xskillscore_scores(forecast: xr.DataArray, truth: xr.DataArray):
    import xskillscore as xs

    weights = np.cos(np.deg2rad(truth.latitude)).broadcast_like(truth)
    m = forecast.sizes["member"]
    spread = np.sqrt(forecast.var("member", ddof=1).weighted(weights).mean(DIMS))
    # xs.rmse needs the averaged dims in one chunk; this is the same weighted RMSE.
    skill = np.sqrt(((forecast.mean("member") - truth) ** 2).weighted(weights).mean(DIMS))
    return dask.compute(
        xs.crps_ensemble(truth, forecast, dim=list(DIMS), weights=weights),
        xs.rank_histogram(truth, forecast, dim=list(DIMS)),
        np.sqrt((m + 1) / m) * spread / skill,
    )


def benchmark_kernels(n_init: int, n_member: int, n_lat: int, n_lon: int, lat_chunks: int) -> dict:
    """wxens and xskillscore on the same arrays, same chunks, same scheduler."""
    import scores.probability

    from verification import scores as vs

    forecast, truth = ensemble(n_init, n_member, n_lat, n_lon)
    chunks = {"init_time": 1, "latitude": -(-n_lat // lat_chunks)}
    f, t = forecast.chunk(chunks), truth.chunk(chunks)
    ours_s, (fair, ranks, ssr) = timed(lambda: wxens_scores(f, t))
    print(f"wxens: {ours_s:.1f} s", flush=True)
    theirs_s, (xs_crps, xs_ranks, xs_ssr) = timed(lambda: xskillscore_scores(f, t))
    print(f"xskillscore: {theirs_s:.1f} s", flush=True)
    ecdf, ties = dask.compute(vs.ecdf_crps(f, t, mean_over=DIMS), (f == t).any("member").sum())
    ties = int(ties)
    sub = {"init_time": slice(0, 2)}
    reference_fair = scores.probability.crps_for_ensemble(
        forecast.isel(sub).astype(float),
        truth.isel(sub).astype(float),
        "member",
        method="fair",
        preserve_dims="all",
    )
    fair_pointwise = vs.fair_crps(forecast.isel(sub), truth.isel(sub))
    return {
        "shape": {"init_time": n_init, "member": n_member, "latitude": n_lat, "longitude": n_lon},
        "forecast_bytes": int(forecast.nbytes),
        "chunks": {k: int(v) for k, v in chunks.items()},
        "wxens_s": round(ours_s, 2),
        "xskillscore_s": round(theirs_s, 2),
        "speedup": round(theirs_s / ours_s, 1),
        "wxens_computes": "fair_crps + rank_histogram + spread_skill_ratio",
        "xskillscore_computes": "crps_ensemble (ecdf) + rank_histogram + SSR "
        "(xarray: weighted RMSE of the mean, member variance)",
        "fair_crps": float(fair),
        "ecdf_crps_wxens": float(ecdf),
        "ecdf_crps_xskillscore": float(xs_crps),
        "ecdf_crps_abs_diff": float(abs(ecdf - xs_crps)),
        "fair_crps_vs_scores_max_abs_diff_pointwise": float(
            np.abs(
                fair_pointwise.values - reference_fair.transpose(*fair_pointwise.dims).values
            ).max()
        ),
        # float32 members can equal the truth exactly; both break such ties at random
        # (different generators), so the counts may differ by at most the tied points.
        "points_with_ties": ties,
        "rank_count_max_abs_diff": int(np.abs(ranks.values - xs_ranks.values).max()),
        "rank_histograms_equal_up_to_ties": bool(
            np.abs(ranks.values - xs_ranks.values).sum() <= 2 * ties
        ),
        "spread_skill_ratio_wxens": float(ssr),
        "spread_skill_ratio_xskillscore": float(xs_ssr),
    }


class PeakRss:
    """Peak resident memory of this process, sampled every 50 ms in a thread."""

    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        process = psutil.Process()
        while not self._stop.is_set():
            self.peak = max(self.peak, process.memory_info().rss)
            time.sleep(0.05)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def write_stores(
    root: Path, n_init: int, n_member: int, n_lead: int, n_lat: int, n_lon: int
) -> tuple[Path, Path]:
    """A forecast store (lazily generated, written chunk by chunk) and its truth."""
    from pipeline.forecast_store import ForecastProvenance, write_forecast

    step = pd.Timedelta(hours=6)
    init = pd.date_range("2020-01-01", periods=n_init, freq=step)
    lead = pd.to_timedelta(np.arange(1, n_lead + 1) * 6, unit="h")
    lat, lon = np.linspace(-90, 90, n_lat), np.arange(n_lon) * 360.0 / n_lon
    rng = da.random.default_rng(1)
    shape = (n_init, n_member, n_lead, n_lat, n_lon)
    members = 280.0 + 3.0 * rng.standard_normal(
        shape, chunks=(1, n_member, 1, n_lat, n_lon), dtype=np.float32
    )
    forecast = xr.Dataset(
        {
            "t2m": (
                ("init_time", "member", "lead_time", "latitude", "longitude"),
                members,
                {"units": "K"},
            )
        },
        coords={
            "init_time": init,
            "member": np.arange(n_member),
            "lead_time": lead,
            "latitude": lat,
            "longitude": lon,
        },
    )
    forecast_path = root / "forecast.zarr"
    provenance = ForecastProvenance(
        generator="benchmark", checkpoint_digest="none", sampler="random", nfe=0, seed=1
    )
    write_forecast(forecast_path, forecast, provenance)
    times = pd.date_range(init[0], init[-1] + lead[-1], freq=step)
    values = 280.0 + 3.0 * rng.standard_normal(
        (times.size, n_lat, n_lon), chunks=(1, n_lat, n_lon), dtype=np.float32
    )
    truth = xr.Dataset(
        {"t2m": (("time", "latitude", "longitude"), values, {"units": "K"})},
        coords={"time": times, "latitude": lat, "longitude": lon},
    )
    truth_path = root / "truth.zarr"
    truth.to_zarr(truth_path, zarr_format=3, consolidated=False)
    return forecast_path, truth_path


def benchmark_out_of_core(
    n_init: int, n_member: int, n_lead: int, n_lat: int, n_lon: int, memory_limit: str
) -> dict:
    from distributed import Client, LocalCluster
    from distributed.diagnostics import MemorySampler

    from pipeline.forecast_store import open_forecast
    from verification.config import VerifyConfig
    from verification.scorecard import verify

    root = Path(tempfile.mkdtemp(prefix="wxens-bench-"))
    try:
        start = time.perf_counter()
        forecast_path, truth_path = write_stores(root, n_init, n_member, n_lead, n_lat, n_lon)
        write_s = time.perf_counter() - start
        store_bytes = sum(p.stat().st_size for p in forecast_path.rglob("*") if p.is_file())
        print(
            f"stores written in {write_s:.0f} s: forecast {store_bytes / 2**30:.2f} GiB", flush=True
        )
        with (
            LocalCluster(
                n_workers=1, threads_per_worker=2, memory_limit=memory_limit, dashboard_address=":0"
            ) as cluster,
            Client(cluster),
        ):
            limit = sum(w.memory_manager.memory_limit for w in cluster.workers.values())
            sampler = MemorySampler()
            config = VerifyConfig(physics_init_times=2, energy_score=False, progress=False)
            with sampler.sample("verify", interval=0.2), PeakRss() as driver:
                start = time.perf_counter()
                tree = verify(
                    open_forecast(forecast_path),
                    xr.open_zarr(truth_path, consolidated=False),
                    config,
                )
                verify_s = time.perf_counter() - start
            workers_peak = float(sampler.to_pandas()["verify"].max())
        card = tree["scorecard"].to_dataset()
        return {
            "forecast_store_bytes": int(store_bytes),
            "shape": {
                "init_time": n_init,
                "member": n_member,
                "lead_time": n_lead,
                "latitude": n_lat,
                "longitude": n_lon,
            },
            "cluster": "LocalCluster: 1 worker x 2 threads",
            "dask_memory_limit_bytes": int(limit),
            "store_over_limit": round(store_bytes / limit, 2),
            "forecast_uncompressed_bytes": int(n_init * n_member * n_lead * n_lat * n_lon * 4),
            "verify_s": round(verify_s, 1),
            "workers_peak_memory_bytes": int(workers_peak),
            "workers_peak_over_limit": round(workers_peak / limit, 2),
            "driver_peak_rss_bytes": int(driver.peak),
            "config": "VerifyConfig(physics_init_times=2, energy_score=False)",
            "fair_crps_by_lead": card["fair_crps"].sel(variable="t2m").values.round(4).tolist(),
        }
    finally:
        shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (checks the script)")
    parser.add_argument("--skip", choices=["kernels", "out_of_core"], help="leave one part out")
    args = parser.parse_args()
    sizes = (
        {"kernels": (4, 50, 19, 36, 1), "out_of_core": (4, 10, 2, 19, 36, "600MiB")}
        if args.quick
        else {"kernels": (100, 50, 181, 360, 4), "out_of_core": (64, 50, 4, 181, 360, "600MiB")}
    )
    results = {"machine": machine(), "quick": args.quick}
    if args.skip != "kernels":
        results["kernels_vs_xskillscore"] = benchmark_kernels(*sizes["kernels"])
        print(json.dumps(results["kernels_vs_xskillscore"], indent=1), flush=True)
    if args.skip != "out_of_core":
        results["out_of_core"] = benchmark_out_of_core(*sizes["out_of_core"])
        print(json.dumps(results["out_of_core"], indent=1), flush=True)
    write_json(results, RESULTS, quick=args.quick)


def machine() -> dict:
    """The machine a benchmark ran on, and how busy it was when it started."""
    return {
        "cpus": psutil.cpu_count(),
        "memory_bytes": psutil.virtual_memory().total,
        "python": platform.python_version(),
        "load_average_at_start": list(psutil.getloadavg()),
    }


def write_json(results: dict, path: Path, *, quick: bool) -> None:
    """``results`` to ``path``, or beside it as ``NAME-quick.json`` for a ``--quick`` run."""
    out = path.with_name(f"{path.stem}-quick.json") if quick else path
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"written {out}")


if __name__ == "__main__":
    main()
