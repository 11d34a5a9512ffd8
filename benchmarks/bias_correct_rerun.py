"""What a daily ``wxens bias-correct`` rerun writes: the initial times whose correction
changed only (``write_forecast(skip_unchanged=True)``, what the command does) against every
initial time written back, side by side in one run; results to
benchmarks/results/bias_correct_rerun.json.

A synthetic analysis store (t2m, 6-hourly) and a raw forecast store of ``--inits`` initial
times (members: the truth plus a warm offset plus noise, ``--members`` of them, leads
6-24 h) are corrected once (bias weight 0.2); the raw store then takes one more initial
time, as the next cycle of a daily run brings, and each mode corrects it again into its own
copy of the first corrected store. Measured: the rerun's wall time and how much the corrected
store grew on disk (a transactional store keeps the chunks a commit replaced until
``wxens compact``). The two stores are checked identical.

Run: ``python -m benchmarks.bias_correct_rerun [--quick]`` (``--quick``: a small store, to
check the script itself).
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from generators.correction.bias import DecayingAverageBias, bias_correct, bias_correct_store
from generators.correction.spec import CorrectionSpec
from pipeline.analysis_store import open_store
from pipeline.forecast_store import ForecastProvenance, open_forecast, write_forecast
from pipeline.store import ingest

RESULTS = Path(__file__).parent / "results" / "bias_correct_rerun.json"
LEADS = pd.to_timedelta([6, 12, 18, 24], unit="h")
PROVENANCE = ForecastProvenance("flow_matching", "benchmark", "euler:nfe=2", 2, 0)


def warm_forecast(truth: xr.DataArray, n_inits: int, members: int) -> xr.Dataset:
    """Members = the truth at each valid time + 1 K + noise, for the first ``n_inits``
    initial times after a day of analyses."""
    inits = pd.DatetimeIndex(truth.time.values[4 : 4 + n_inits])
    valid = truth.sel(
        time=xr.DataArray(inits.values[:, None] + LEADS.values, dims=("init_time", "lead_time"))
    )
    noise = np.random.default_rng(2).normal(size=(members, *valid.shape)).astype(np.float32)
    values = (valid.values[None] + 1.0 + noise).transpose(1, 0, 2, 3, 4)
    dims = ("init_time", "member", "lead_time", "latitude", "longitude")
    coords = {"init_time": inits, "member": np.arange(members), "lead_time": LEADS}
    coords |= {d: truth[d].values for d in ("latitude", "longitude")}
    return xr.Dataset({"t2m": (dims, values)}, coords=coords)


def disk_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def rerun(mode: str, raw: Path, truth: Path, out: Path, spec: CorrectionSpec) -> dict:
    """Correct ``raw`` into ``out`` again: as the command does, or writing every time back."""
    before = disk_bytes(out)
    start = time.perf_counter()
    if mode == "changed only":
        bias_correct_store(raw, truth, out, spec)
    else:
        correction = DecayingAverageBias.from_spec(spec)
        result = bias_correct(open_forecast(raw), open_store(truth).dataset, correction)
        provenance = ForecastProvenance.from_attrs(result.forecast.attrs)
        write_forecast(out, result.forecast, provenance)
    seconds = time.perf_counter() - start
    return {"seconds": round(seconds, 2), "store_growth_mb": (disk_bytes(out) - before) / 1e6}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--inits", type=int, default=120)
    parser.add_argument("--members", type=int, default=20)
    parser.add_argument("--grid", type=int, default=64, help="points along each side")
    parser.add_argument("--quick", action="store_true", help="small sizes (checks the script)")
    parser.add_argument(
        "--out", type=Path, help=f"default {RESULTS.name}; a --quick run writes only to --out"
    )
    args = parser.parse_args(argv)
    path = args.out or (None if args.quick else RESULTS)
    if args.quick:
        args.inits, args.members, args.grid = 12, 4, 8
    spec = CorrectionSpec(0.2)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        times = args.inits + 12
        source = f"synthetic:n_lat={args.grid},n_lon={args.grid},n_times={times},step=6h,seed=3"
        store = ingest(source, work / "truth.zarr", variables=["t2m"], progress=False)
        forecast = warm_forecast(store.dataset.t2m.load(), args.inits + 1, args.members)
        raw, first = work / "raw.zarr", work / "first.zarr"
        write_forecast(raw, forecast.isel(init_time=slice(args.inits)), PROVENANCE)
        bias_correct_store(raw, store.path, first, spec)
        write_forecast(raw, forecast.isel(init_time=[args.inits]), PROVENANCE)  # the next cycle
        cases = {}
        for mode in ("changed only", "every time"):
            out = work / f"{mode.replace(' ', '_')}.zarr"
            shutil.copytree(first, out)
            cases[mode] = rerun(mode, raw, store.path, out, spec)
            print(mode, cases[mode], flush=True)
        xr.testing.assert_identical(
            open_forecast(work / "changed_only.zarr").load(),
            open_forecast(work / "every_time.zarr").load(),
        )
        result = {
            "inits_before": args.inits,
            "members": args.members,
            "grid": [args.grid, args.grid],
            "leads_hours": [6, 12, 18, 24],
            "store_mb_before": disk_bytes(first) / 1e6,
            "rerun": cases,
            "identical": True,
        }
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
