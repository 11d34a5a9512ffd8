"""How often the tendency check fails a perfect member, and how often it catches one that
moves too fast or too slowly, with its tolerance from one cut of the initial times into
halves (the first against the second: ``cuts=1``) and from the median over every cut of
them taken as a circle (the default), side by side on the same members.

Members are drawn from the synthetic source's exact conditional law of ``t2m``
(:func:`pipeline.sources.synthetic.oracle_ensemble`), then their change since the initial
time is scaled by a factor (1: the oracle itself). Eight initial times are checked, as
``wxens verify`` does by default (``physics_init_times``), evenly spaced over two kinds of
forecast set: every 6 h for 9 days, and every hour for 2 days. Writes
``benchmarks/results/tendency_tolerance.json`` (or ``--out``).

    python -m benchmarks.tendency_tolerance [--seeds 64] [--out PATH]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from pipeline.alignment import align_with_truth
from pipeline.sources.synthetic import SyntheticConfig, oracle_ensemble, synthetic_dataset
from verification.physics import TendencyDistribution

RESULTS = Path(__file__).resolve().parents[1] / "benchmarks" / "results"
FACTORS = (1.0, 0.5, 0.8, 1.25, 1.5, 2.5)
MEMBERS = 8
CHECKED_INITS = 8
RULES = {"first half against second (cuts=1)": 1, "median over every cut (default)": None}
SETS = {  # name: (hours between initial times, how many, leads in hours)
    "every 6 h for 9 days": (6, 36, (6, 12, 24)),
    "every hour for 2 days": (1, 48, (6, 12, 18)),
}


def oracle_members(seed: int, step_h: int, n_init: int, leads_h) -> tuple[xr.Dataset, ...]:
    """(members, truth, initial) of ``CHECKED_INITS`` evenly spaced initial times of a
    set of ``n_init``, ``step_h`` hours apart, on a 16 x 24 synthetic grid."""
    hours = step_h * n_init + max(leads_h) + 1
    config = SyntheticConfig(n_lat=16, n_lon=24, n_times=hours, seed=seed)
    truth = synthetic_dataset(config)[["t2m"]].load()
    picks = np.linspace(0, n_init - 1, CHECKED_INITS).round().astype(int) * step_h
    state = truth["t2m"].isel(time=picks)
    leads = pd.to_timedelta(list(leads_h), unit="h")
    members = xr.concat(
        [
            oracle_ensemble(state, lead, MEMBERS, seed * 100 + k, config)
            .swap_dims(time="init_time")
            .drop_vars(["time", "lead_time"])
            for k, lead in enumerate(leads)
        ],
        dim=pd.Index(leads, name="lead_time"),
    )
    forecast = xr.Dataset({"t2m": members.transpose("init_time", "member", "lead_time", ...)})
    aligned = align_with_truth(forecast, truth)
    return aligned.forecast, aligned.truth, aligned.initial


def failures(seeds: int, step_h: int, n_init: int, leads_h) -> dict[str, dict[str, int]]:
    """{rule: {factor: members failed}} over ``seeds`` x ``MEMBERS`` members."""
    out = {rule: dict.fromkeys(map(str, FACTORS), 0) for rule in RULES}
    for seed in range(seeds):
        forecast, truth, initial = oracle_members(seed, step_h, n_init, leads_h)
        for factor in FACTORS:
            scaled = initial + factor * (forecast - initial)
            for rule, cuts in RULES.items():
                (result,) = TendencyDistribution(cuts=cuts)(scaled, truth, initial)
                out[rule][str(factor)] += int((~result.passed).sum())
        print(f"seed {seed}: {out}", flush=True)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=64)
    parser.add_argument("--out", type=Path, default=RESULTS / "tendency_tolerance.json")
    args = parser.parse_args(argv)
    results = {
        "members": args.seeds * MEMBERS,
        "checked_initial_times": CHECKED_INITS,
        "factors": "each member's change since the initial time scaled by it; 1 is the oracle",
        "failed": {name: failures(args.seeds, *setup) for name, setup in SETS.items()},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1) + "\n")
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
