"""What ``wxens tune``'s choice does on days after the period it was chosen on, channel by
channel, for a model of several variables.

The commands a user runs, on a synthetic store of t2m and z, t, u, v at 500 and 850 hPa
(``upper_air_phi`` < 1, so the upper air has errors to correct): ``wxens ingest``,
``wxens train`` (the config derived from the store, a fixed step count), ``wxens tune``
(its held-out period, each variable its own weights), then ``wxens forecast`` of the days
after the store's end, read from one longer request of the same spec (its t2m extends the
store's; its upper air is another draw of the same process, docs/ingest.md),
``wxens bias-correct --checkpoint`` with the tuned choice and ``wxens verify`` of the raw and
the corrected forecasts. Per channel: the fair CRPS, mean over the leads of each lead's
weighted mean over the initial times, of the corrected forecast relative to the raw one,
with a 90 % paired bootstrap interval over the initial days (the same draws for every
channel); beside it, each candidate bias weight of ``wxens tune`` applied to every variable,
what the choice could have had. Writes ``benchmarks/results/NAME.json`` and ``.md``.

    OMP_NUM_THREADS=2 python -m benchmarks.tune_unseen --workdir /tmp/tune_unseen --seed 4
"""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from benchmarks.quality_tables import write_results
from generators.correction.spec import CANDIDATES
from pipeline.store import open_store

log = logging.getLogger("tune_unseen")
LATER_DAYS = 18
"""Days forecast after the store's end."""
MEAN = "mean of the channels"


def wxens(*args: object) -> None:
    """Run ``wxens ARGS`` as a user would (its own process), logging the command."""
    command = [sys.executable, "-m", "flows.cli", *map(str, args), "--no-progress"]
    log.info("%s", " ".join(command[2:]))
    subprocess.run(command, check=True)


def verified(forecast: Path, truth: Path) -> Path:
    """``wxens verify`` of ``forecast`` against ``truth`` (its scores only: no physics
    initial times, no energy score) into ``scores_NAME.nc`` beside it."""
    scores = forecast.with_name(f"scores_{forecast.stem}.nc")
    wxens("verify", forecast, "--truth", truth, "--out", scores,
          "--physics-init-times", 0, "--no-energy-score")  # fmt: skip
    return scores


def per_init(scores: Path) -> tuple[xr.DataArray, xr.DataArray]:
    """The verification's fair CRPS by initial time, lead and channel times its weight, and
    the weight (0 where no truth)."""
    tree = xr.open_dataset(scores, group="per_init")
    weight = tree["weight"].where(np.isfinite(tree["fair_crps"]), 0.0).fillna(0.0)
    return tree["fair_crps"].fillna(0.0) * weight, weight


def mean_over_leads(weighted: xr.DataArray, weight: xr.DataArray, inits: np.ndarray):
    """Each lead's weighted mean over the initial times ``inits`` (indices), then the mean
    over the leads, by channel."""
    chosen = {"init_time": inits}
    total = weighted.isel(chosen).sum("init_time") / weight.isel(chosen).sum("init_time")
    return total.mean("lead_time")


def relative_changes(raw: Path, corrected: Path, draws: int, seed: int) -> pd.DataFrame:
    """Per channel: the corrected forecast's fair CRPS relative to the raw one's, minus 1,
    and the 5 and 95 % points of its bootstrap over initial days (``draws`` resamples)."""
    raw_weighted, weight = per_init(raw)
    weighted, corrected_weight = per_init(corrected)
    if not (corrected_weight == weight).all():
        raise ValueError(f"{corrected} is verified where {raw} is not")
    days = pd.DatetimeIndex(weight["init_time"].values).floor("1D")
    by_day = [np.flatnonzero(days == day) for day in days.unique()]
    rng = np.random.default_rng(seed)

    def change(inits: np.ndarray) -> xr.DataArray:
        score = mean_over_leads(weighted, weight, inits)
        return score / mean_over_leads(raw_weighted, weight, inits) - 1

    def with_mean(changes: xr.DataArray) -> np.ndarray:
        return np.append(changes.values, changes.values.mean())

    point = change(np.arange(len(days)))
    resampled = np.stack(
        [
            with_mean(change(np.concatenate([by_day[k] for k in rng.integers(0, n, n)])))
            for n in [len(by_day)] * draws
        ]
    )
    low, high = np.percentile(resampled, [5, 95], axis=0)
    channels = [*point["variable"].values.astype(str), MEAN]
    return pd.DataFrame(
        {"change": with_mean(point), "low": low, "high": high},
        index=pd.Index(channels, name="channel"),
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workdir", required=True, type=Path)
    parser.add_argument("--seed", type=int, default=4, help="the synthetic store's seed")
    parser.add_argument("--grid", default="8x12", help="LATxLON points (default 8x12)")
    parser.add_argument("--times", type=int, default=600, help="6-hourly times of the store")
    parser.add_argument("--steps", type=int, default=500, help="training steps (main phase)")
    parser.add_argument("--members", type=int, default=20)
    parser.add_argument("--draws", type=int, default=1000, help="bootstrap resamples")
    parser.add_argument("--name", default=None, help="results name (default tune_unseen_seedS)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    work = args.workdir
    work.mkdir(parents=True, exist_ok=True)
    n_lat, n_lon = args.grid.split("x")
    spec = (
        f"synthetic:n_lat={n_lat},n_lon={n_lon},step=6h,seed={args.seed},upper_air_phi=0.9,"
        "n_times={}"
    )
    store, later, run = work / "S.zarr", work / "S2.zarr", work / "R"
    wxens("ingest", spec.format(args.times), "--store", store, "--overwrite")
    wxens("ingest", spec.format(args.times + 4 * LATER_DAYS), "--store", later, "--overwrite")
    if not (run / "last.pt").is_file():
        wxens("train", "--store", store, "--out", run, "--set", f"steps={args.steps}")
    wxens("tune", "--checkpoint", run, "--store", store, "--members", args.members)
    first = pd.Timestamp(open_store(store).dataset["time"].values[-1]) + pd.Timedelta("6h")
    last = first + pd.Timedelta(days=LATER_DAYS) - pd.Timedelta("6h")
    inits = f"{first:%Y-%m-%dT%H}/{last:%Y-%m-%dT%H}/6h"
    raw = work / "F.zarr"
    wxens("forecast", "--checkpoint", run, "--store", later, "--init", inits, "--lead", "24h",
          "--members", args.members, "--out", raw)  # fmt: skip
    corrections = {"tuned": ["--checkpoint", run]}  # and each candidate bias weight alone
    corrections |= {f"bias {w:g}": ["--bias-weight", w] for w in CANDIDATES["bias"]}
    scores = {"raw": verified(raw, later)}
    for name, how in corrections.items():
        out = work / f"F-{name.replace(' ', '')}.zarr"
        wxens("bias-correct", raw, "--truth", later, *how, "--out", out)
        scores[name] = verified(out, later)
    tables = {
        name: relative_changes(scores["raw"], scores[name], args.draws, args.seed)
        for name in corrections
    }
    choice = json.loads((run / "correction.json").read_text())
    weights = choice.get("by_variable", {"all": choice})

    def cell(row: pd.Series) -> str:
        return f"{100 * row.change:+.2f} % [{100 * row.low:+.2f}, {100 * row.high:+.2f}]"

    lines = [
        f"`wxens tune`'s choice on {LATER_DAYS} days after its tuning period, and each "
        f"candidate bias weight applied to every variable: {spec.format(args.times)}, "
        f"{args.steps} training steps, {args.members} members; fair CRPS relative to the raw "
        "forecast (mean over the leads), 90 % paired bootstrap over the initial days.",
        "",
        "Tuned: "
        + "; ".join(
            f"{v} bias {w['bias_weight']:g}, spread {w['spread_weight']:g}, "
            f"rank {w['rank_weight']:g}"
            for v, w in weights.items()
        ),
        "",
        "| channel | " + " | ".join(tables) + " |",
        "| --- |" + " --- |" * len(tables),
        *(
            f"| {c} | " + " | ".join(cell(t.loc[c]) for t in tables.values()) + " |"
            for c in tables["tuned"].index
        ),
    ]
    payload = {
        "spec": spec.format(args.times),
        "steps": args.steps,
        "members": args.members,
        "later_days": LATER_DAYS,
        "tuned": weights,
        "relative_fair_crps_change": {n: t.to_dict(orient="index") for n, t in tables.items()},
    }
    write_results(args.name or f"tune_unseen_seed{args.seed}", payload, "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
