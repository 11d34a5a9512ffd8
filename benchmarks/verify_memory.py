"""Peak memory of ``verify`` under dask's local threads: every result computed together
against one at a time (:mod:`verification.compute`), side by side on the same stores in
one run; results to benchmarks/results/verify_memory.json.

A forecast store of 50 members, 4 leads and t2m on the 1° global grid (181 x 360) and its
truth (``benchmarks.verify_speed.write_stores``) are verified with
:func:`verification.scorecard.verify` for the first N initial times, each case in a fresh
process (its peak resident memory, ``ru_maxrss``, is the case's alone), with the scores
alone (no physics, energy score, intervals or rank floors) and with every check on (the
physics checks load their 8 initial times whole: a memory the forecast's length does not
change).
``together`` raises :data:`verification.compute.LOCAL_MEMORY_SHARE` so that nothing is
computed apart; ``apart`` lowers it to 0. The scores of both are checked equal.

Run: ``python -m benchmarks.verify_memory [--quick]`` (``--quick``: a small grid, to check
the script itself).
"""

from __future__ import annotations

import argparse
import itertools
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).parent / "results" / "verify_memory.json"
MODES = {"together": 1e9, "apart": 0.0}
"""The LOCAL_MEMORY_SHARE of each mode."""
SCORES_ALONE = dict(
    physics_init_times=0,
    energy_score=False,
    interval_level=0,
    perfect_model_stand_ins=0,
    error_surrogate_replicas=0,
)
CHECKS = {"scores alone": SCORES_ALONE, "every check": {}}


def run_case(forecast: str, truth: str, n_init: int, mode: str, checks: str) -> dict:
    """Verify the first ``n_init`` initial times in this process; its time and peak memory."""
    import xarray as xr

    from pipeline.forecast_store import open_forecast
    from verification import compute
    from verification.config import VerifyConfig
    from verification.scorecard import verify

    compute.LOCAL_MEMORY_SHARE = MODES[mode]
    f = open_forecast(forecast).isel(init_time=slice(n_init))
    start = time.perf_counter()
    config = VerifyConfig(progress=False, **CHECKS[checks])
    tree = verify(f, xr.open_zarr(truth, consolidated=False), config)
    card = tree["scorecard"].to_dataset()
    return {
        "n_init": n_init,
        "mode": mode,
        "checks": checks,
        "forecast_bytes": int(f.t2m.nbytes),
        "verify_s": round(time.perf_counter() - start, 1),
        "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "fair_crps_by_lead": card["fair_crps"].sel(variable="t2m").values.tolist(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (checks the script)")
    parser.add_argument("--case", nargs=5, metavar=("FORECAST", "TRUTH", "N", "MODE", "CHECKS"))
    args = parser.parse_args()
    if args.case:  # one case, in the process the main run started
        forecast, truth, n, mode, checks = args.case
        print(json.dumps(run_case(forecast, truth, int(n), mode, checks)))
        return
    from benchmarks.verify_speed import machine, write_json, write_stores

    n_inits, grid = ((2, 4), (19, 36)) if args.quick else ((4, 16), (181, 360))
    root = Path(tempfile.mkdtemp(prefix="wxens-bench-"))
    results: dict = {
        "machine": machine(),
        "quick": args.quick,
        "shape": {"member": 50, "lead_time": 4, "latitude": grid[0], "longitude": grid[1]},
        "cases": [],
    }
    try:
        forecast, truth = write_stores(root, max(n_inits), 50, 4, *grid)
        for checks, n, mode in itertools.product(CHECKS, n_inits, MODES):
            command = [sys.executable, __file__, "--case", str(forecast), str(truth), str(n)]
            done = subprocess.run(
                [*command, mode, checks], capture_output=True, text=True, check=True
            )
            case = json.loads(done.stdout.strip().splitlines()[-1])
            print(json.dumps(case), flush=True)
            results["cases"].append(case)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    for checks, n in itertools.product(CHECKS, n_inits):
        pair = [
            c["fair_crps_by_lead"]
            for c in results["cases"]
            if (c["checks"], c["n_init"]) == (checks, n)
        ]
        np.testing.assert_allclose(*pair, rtol=1e-9)  # the same scores either way
    write_json(results, RESULTS, quick=args.quick)


if __name__ == "__main__":
    main()
