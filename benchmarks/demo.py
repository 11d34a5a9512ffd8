"""``wxens demo`` timed and scored against the issue's quality bar, in one command.

Runs ``wxens demo --fresh`` in a fresh process and records its wall time and CPU time
(user + sys of it and every process it waited for, ``getrusage(RUSAGE_CHILDREN)``), then
scores what it delivered with the rank histogram's error-correlation floor
(``--error-surrogate-replicas``) and draws the climatology baseline for the same
forecasts. A lead passes when the fair CRPS is below the better of persistence and
climatology, the spread-skill ratio is in [0.9, 1.1] and ``rank_max_min`` is at most 1.1
x the median of its error-correlation floor (issue #27). Writes
``benchmarks/results/NAME.json`` and ``.md``.

Two splits, so the demo's settings are chosen without the test days:

- ``validation``: train, tune and draw the baselines on 1–16 March, forecast 17–20
  March every 6 h (truth to 21 March). Choose settings here.
- ``test`` (default): the demo as shipped, 1–21 March -> 22–30 March. Look once.

    OMP_NUM_THREADS=1 python -m benchmarks.demo --split test --workdir /tmp/wxens-demo
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import xarray as xr

from flows.commands.demo import FIRST_DAY, LEADS_HOURS
from verification.config import VerifyConfig
from verification.ranks import PASS_FACTOR, PASSES, with_rank_pass
from verification.run import verify_store

ROOT = Path(__file__).resolve().parents[1]
SPLITS = {
    "validation": ("2019-03-16", "2019-03-17T00/2019-03-20T18/6h"),
    "test": ("2019-03-21", "2019-03-22T00/2019-03-30T18/6h"),
}
"""Each split's last training day and initial times."""
SURROGATE_REPLICAS = 20
SSR_RANGE = (0.9, 1.1)
SCORED = (
    "fair_crps",
    "reference_fair_crps",
    "spread_skill_ratio",
    "rank_max_min",
    "rank_floor_median",
)


def run_demo(workdir: Path, split: str, extra: list[str]) -> tuple[str, float, float]:
    """The demo's output, wall seconds and CPU seconds (user + sys of its process tree),
    ``split`` a key of :data:`SPLITS`."""
    train_end, inits = SPLITS[split]
    argv = [sys.executable, "-m", "flows.cli", "demo", "--fresh", "--workdir", str(workdir)]
    argv += ["--train-end", train_end, "--init", inits, *extra]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT, env=os.environ)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode:
        sys.exit(f"wxens demo failed ({done.returncode}):\n{done.stdout}\n{done.stderr[-4000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return done.stdout, wall, cpu


def climatology_crps(workdir: Path, train_end: str) -> np.ndarray:
    """(lead,) fair CRPS of the climatology baseline drawn from ``FIRST_DAY``..``train_end``
    for the delivered forecasts' initial times, leads and members."""
    from flows.tasks import draw_baseline

    delivered = delivered_store(workdir)
    out = extras(workdir) / "climatology.zarr"
    shutil.rmtree(out, ignore_errors=True)  # this script's, drawn for another run
    store, period = str(workdir / "era5-uk.zarr"), f"{FIRST_DAY}/{train_end}"
    draw_baseline.fn("climatology", store, period, delivered, str(out))
    config = VerifyConfig(perfect_model_stand_ins=0, physics_init_times=0, progress=False)
    scored = verify_store(out, store, extras(workdir) / "climatology.nc", config=config)
    return scored.tree["scorecard"].to_dataset().squeeze()["fair_crps"].values


def extras(workdir: Path) -> Path:
    """Where this script's own outputs go: beside the demo's work directory, which
    ``--fresh`` deletes only when it holds the demo's outputs alone."""
    folder = workdir.with_name(f"{workdir.name}-extras")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def delivered_store(workdir: Path) -> str:
    """The corrected store when the tuned weights corrected, else the raw forecast."""
    corrected = workdir / "corrected.zarr"
    return str(corrected if corrected.exists() else workdir / "forecast.zarr")


def floor_scores(workdir: Path) -> xr.Dataset:
    """The delivered forecast's scorecard with the error-correlation floor of its ranks
    (the scorecard's median over replicas, ``rank_max_min_error_surrogate``) and the pass
    rule's mark (:func:`verification.ranks.with_rank_pass`, as ``wxens verify`` reads it)."""
    config = VerifyConfig(error_surrogate_replicas=SURROGATE_REPLICAS, progress=False)
    scored = verify_store(
        delivered_store(workdir),
        workdir / "era5-uk.zarr",
        extras(workdir) / "scores-floor.nc",
        config=config,
        reference=workdir / "persistence.zarr",
    )
    card = with_rank_pass(scored.tree["scorecard"].to_dataset().squeeze())
    return card.assign(rank_floor_median=card["rank_max_min_error_surrogate"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--split", choices=sorted(SPLITS), default="test")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/wxens-demo-bench"))
    parser.add_argument("--name", help="results file name (default demo, demo_validation)")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    args = parser.parse_args()
    name = args.name or ("demo" if args.split == "test" else f"demo_{args.split}")
    extra = [item for o in args.overrides for item in ("--set", o)]
    stdout, wall, cpu = run_demo(args.workdir, args.split, extra)
    card = floor_scores(args.workdir)
    climatology = climatology_crps(args.workdir, SPLITS[args.split][0])
    tuned = json.loads((args.workdir / "model" / "correction.json").read_text())
    rows = []
    for k, lead in enumerate(LEADS_HOURS):
        row = {key: float(card[key].values[k]) for key in SCORED}
        row |= {"lead_hours": lead, "climatology_fair_crps": float(climatology[k])}
        better = min(row["reference_fair_crps"], row["climatology_fair_crps"])
        row["beats_better_baseline"] = row["fair_crps"] < better
        row["ssr_in_range"] = SSR_RANGE[0] <= row["spread_skill_ratio"] <= SSR_RANGE[1]
        row["rank_passes"] = bool(card[PASSES].values[k] == 1)
        rows.append(row)
    steps = next((ln for ln in stdout.splitlines() if ln.startswith("steps ")), "").split(None, 1)
    payload = {
        "split": args.split,
        "train_end": SPLITS[args.split][0],
        "init_times": SPLITS[args.split][1],
        "overrides": args.overrides,
        "wall_seconds": round(wall, 1),
        "cpu_seconds": round(cpu, 1),
        "steps_wall_seconds": steps[-1] if steps else "",
        "machine": f"{os.cpu_count()} cores, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}"
        ", load average at the end " + " ".join(f"{v:.2f}" for v in os.getloadavg()),
        "tuned_correction": {k: tuned[k] for k in ("bias_weight", "spread_weight", "rank_weight")},
        "derived_config": (args.workdir / "config.yaml").read_text(),
        "by_lead": rows,
    }
    write(payload, name)
    print(stdout)
    print((ROOT / "benchmarks" / "results" / f"{name}.md").read_text())


def write(payload: dict, name: str) -> None:
    """``benchmarks/results/NAME.json`` and a Markdown table of it beside."""
    results = ROOT / "benchmarks" / "results"
    (results / f"{name}.json").write_text(json.dumps(payload, indent=1) + "\n")
    tick = {True: "yes", False: "**no**"}
    lines = [
        f"# `wxens demo`, {payload['split']} split: train to {payload['train_end']}, "
        f"forecast {payload['init_times']}",
        "",
        f"Wall {payload['wall_seconds']:.0f} s, CPU (user+sys) {payload['cpu_seconds']:.0f} s; "
        f"{payload['machine']}. Steps (wall s): {payload['steps_wall_seconds']}. Tuned "
        f"correction: {payload['tuned_correction']}.",
        "",
        "| lead | fair CRPS (K) | persistence | climatology | beats better | spread/skill | "
        "in [0.9, 1.1] | rank max/min | floor median x 1.1 | rank passes |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in payload["by_lead"]:
        lines.append(
            f"| {r['lead_hours']:g} h | {r['fair_crps']:.3f} | {r['reference_fair_crps']:.3f} | "
            f"{r['climatology_fair_crps']:.3f} | {tick[r['beats_better_baseline']]} | "
            f"{r['spread_skill_ratio']:.2f} | {tick[r['ssr_in_range']]} | "
            f"{r['rank_max_min']:.2f} | {PASS_FACTOR * r['rank_floor_median']:.2f} | "
            f"{tick[r['rank_passes']]} |"
        )
    (results / f"{name}.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
