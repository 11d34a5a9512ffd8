"""How a store's costs grow with its history: an analysis store grown by daily appends and
a forecast store grown one cycle at a time (8 x 8 synthetic t2m, hourly; persistence
baseline, 10 members, leads 6/12/24 h), measured at checkpoints in one run; results to
benchmarks/results/long_history.json.

At each checkpoint (a number of appends, or cycles): the time of the last append, of
opening the store, of ``wxens info``; the root attributes' size, the commits, the files on
disk, and the chunks of the forecast store's ``init_time``. A cost per append that grows
with the checkpoint is a cost of the whole history paid again by every append. Then one
day appended to stores of 2000, 8000 and 20000 hourly times (32 x 32), beside the same
append to a copy without the running sums (read whole again, as before 2026-12-05).

Run: ``python -m benchmarks.long_history [--quick]`` (about a minute and a half on two
cores; ``--quick``: few appends, to check the script itself).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import os
import tempfile
import time
from pathlib import Path

import pandas as pd
import zarr

RESULTS = Path(__file__).parent / "results" / "long_history.json"
SOURCE = "synthetic:n_lat=8,n_lon=8,n_times=8760,step=1h"


def _timed(call) -> float:
    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        call()
    return round(time.perf_counter() - start, 4)


def _files(path: Path) -> int:
    return sum(len(files) for _, _, files in os.walk(path))


def _analysis(root: Path, checkpoints: list[int]) -> list[dict]:
    from flows.cli import main
    from pipeline.store import ingest, open_store
    from pipeline.transaction import commits, read_attrs

    path, rows = root / "analysis.zarr", []
    for day in range(max(checkpoints)):
        start = pd.Timestamp("2000-01-01") + pd.Timedelta(days=day)
        hours = slice(start, start + pd.Timedelta(hours=23))
        took = _timed(
            lambda h=hours: ingest(SOURCE, path, variables=["t2m"], time=h, progress=False)
        )
        if day + 1 in checkpoints:
            rows.append(
                {
                    "appends": day + 1,
                    "append_s": took,
                    "open_store_s": _timed(lambda: open_store(path)),
                    "info_s": _timed(lambda: main(["info", str(path)])),
                    "attrs_bytes": len(json.dumps(read_attrs(path), default=str)),
                    "commits": len(commits(path)),
                    "files": _files(path),
                }
            )
    return rows


def _forecast(root: Path, checkpoints: list[int]) -> list[dict]:
    from generators.correction.baseline_store import baseline_to_store
    from generators.correction.baselines import BaselineConfig
    from pipeline.forecast_store import open_forecast
    from pipeline.store import ingest
    from pipeline.transaction import reader

    store, out, rows = root / "truth.zarr", root / "forecast.zarr", []
    ingest(SOURCE.replace("8760", "2400"), store, variables=["t2m"], progress=False)
    config = BaselineConfig("2000-01-01", "2000-01-31", 10, 0, None)
    for cycle in range(max(checkpoints)):
        init = pd.Timestamp("2000-02-01") + pd.Timedelta(hours=6 * cycle)
        took = _timed(
            lambda t=init: baseline_to_store(
                "persistence", store, config, [t], [6, 12, 24], out, progress=False
            )
        )
        if cycle + 1 in checkpoints:
            group = zarr.open_group(reader(out), mode="r")
            rows.append(
                {
                    "cycles": cycle + 1,
                    "cycle_s": took,
                    "open_forecast_s": _timed(lambda: open_forecast(out)),
                    "attrs_bytes": len(json.dumps(dict(group.attrs), default=str)),
                    "init_time_chunks": group["init_time"].nchunks_initialized,
                    "files": _files(out),
                }
            )
    return rows


def _long_stores(root: Path, sizes: list[int]) -> list[dict]:
    """One day appended to stores of ``sizes`` hourly times (32 x 32 t2m), and to a copy of
    each without the running sums in its state, which reads the whole store again as every
    append did before 2026-12-05; side by side."""
    import shutil

    import zarr

    from pipeline.analysis_store import STATE_ATTR
    from pipeline.store import ingest
    from pipeline.transaction import transaction

    rows, source = [], "synthetic:n_lat=32,n_lon=32,n_times={n},step=1h,start={start}"
    for size in sizes:
        path, day = root / f"long{size}.zarr", pd.Timestamp("2000-01-01") + pd.Timedelta(hours=size)
        ingest(source.format(n=size, start="2000-01-01"), path, variables=["t2m"], progress=False)
        shutil.copytree(path, unsummed := root / f"unsummed{size}.zarr")
        with transaction(unsummed, "forget the running sums") as store:
            group = zarr.open_group(store, mode="r+")
            group.attrs[STATE_ATTR] = {**group.attrs[STATE_ATTR], "running_sums": None}
        grown = source.format(n=24, start=f"{day:%Y-%m-%dT%H}")  # the next day alone
        seconds = {
            key: _timed(lambda p=p, g=grown: ingest(g, p, variables=["t2m"], progress=False))
            for key, p in (("append_day_s", path), ("append_day_reading_the_store_s", unsummed))
        }
        rows.append({"times": size, **seconds})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="few appends (checks the script)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    checkpoints = [2, 4] if args.quick else [10, 40, 120]
    sizes = [240, 480] if args.quick else [2000, 8000, 20000]
    logging.disable(logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        result = {
            "analysis": _analysis(Path(tmp), checkpoints),
            "forecast": _forecast(Path(tmp), checkpoints),
            "long_store_append": _long_stores(Path(tmp), sizes),
        }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
