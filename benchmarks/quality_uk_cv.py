"""Correction weights chosen on cross-validation folds: each fold model (trained without one
period, ``data.exclude``) forecasts the days it held out
(:func:`generators.rollout_store.forecast_to_store`), and
:func:`generators.correction.select_weights.select_weights` corrects those forecasts with
every candidate chain and picks the bias weight of least mean fair CRPS, then the spread
weight of least mean abs(log SSR), then the rank weight of least mean rank max/min ratio.
Writes ``benchmarks/results/NAME.json`` and ``NAME.md``.

    python -m benchmarks.quality_uk_cv --store uk.zarr --workdir /tmp/quality \\
        --fold runs/cv1/last.pt --fold runs/cv2/last.pt --fold runs/cv3/last.pt \\
        --fold runs/cv4/last.pt --sampler euler:nfe=2,noise_scale=1.2 \\
        --bias 0.1,0.2,0.3,0.5 --spread 0.1,0.3,0.5,0.7,1 --rank 0.02,0.05,0.1,0.2
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.quality_tables import write_results
from generators.calibration import calibration_init_times, held_out_period
from generators.checkpoint import load_checkpoint
from generators.correction.select_weights import select_weights
from generators.data.forecast import ForecastData
from generators.rollout_store import forecast_to_store
from pipeline.forecast_store import complete_init_times, open_forecast
from pipeline.store import open_store


def weights(text: str) -> list[float]:
    return [float(w) for w in text.split(",") if w]


def fold_forecast(path: str, store: Path, args: argparse.Namespace) -> tuple[str, Path]:
    """A fold model's forecast of the initial times of the period it held out, every
    ``--every`` hours with their history in the store and their truth in the period."""
    checkpoint = load_checkpoint(path)
    period = held_out_period(checkpoint)
    data = ForecastData.from_store(checkpoint, store)
    leads = [float(h) for h in args.leads.split(",")]
    inits = calibration_init_times(data.times, period.start, period.end, args.every, max(leads))
    inits = data.usable_inits(inits, leads)
    out = args.workdir / f"fold-{checkpoint.digest}.zarr"
    if not (out.exists() and inits.isin(complete_init_times(out)).all()):
        forecast_to_store(
            checkpoint, store, inits, leads, args.members, str(out),
            sampler=args.sampler, calibrate=False, device="cpu", progress=False,
        )  # fmt: skip
    return str(period), out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--store", required=True, type=Path, help="the analysis store")
    parser.add_argument("--workdir", required=True, type=Path)
    parser.add_argument("--fold", action="append", required=True, help="a fold checkpoint")
    parser.add_argument("--sampler", help="sampler spec (default: each checkpoint's)")
    parser.add_argument("--members", type=int, default=50)
    parser.add_argument("--leads", default="1,3,6,12,24", help="lead hours")
    parser.add_argument("--every", type=float, default=6.0, help="hours between initial times")
    parser.add_argument("--bias", type=weights, required=True, help="candidate bias weights")
    parser.add_argument("--spread", type=weights, default=[], help="candidate spread weights")
    parser.add_argument("--rank", type=weights, default=[], help="candidate rank weights")
    parser.add_argument("--name", default="quality_uk_cv")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    args.workdir.mkdir(parents=True, exist_ok=True)

    folds = dict(fold_forecast(path, args.store, args) for path in args.fold)
    forecasts = [open_forecast(path) for path in folds.values()]
    chosen = select_weights(
        forecasts, open_store(args.store).dataset, args.bias, args.spread, args.rank
    )
    by_lead = chosen.by_lead
    hours = [f"{h / pd.Timedelta(hours=1):g}" for h in pd.to_timedelta(by_lead.lead_time.values)]
    payload = {
        "study": "uk_cv_weights",
        "folds": {period: path for period, path in zip(folds, args.fold, strict=True)},
        "sampler": args.sampler,
        "members": args.members,
        "init_times": int(sum(f.sizes["init_time"] for f in forecasts)),
        "chosen": None if chosen.spec is None else chosen.spec.label(),
        "table": chosen.table.reset_index().to_dict(orient="records"),
        "by_lead": {
            str(c): {
                name: dict(
                    zip(hours, np.asarray(by_lead[name].sel(candidate=c)).tolist(), strict=True)
                )
                for name in by_lead.data_vars
            }
            for c in by_lead.candidate.values
        },
    }
    write_results(args.name, payload, markdown(payload, hours))


def markdown(p: dict, hours: list[str]) -> str:
    titles = (("SSR", "spread_skill_ratio", "{:.2f}"), ("CRPS", "fair_crps", "{:.3f}"))
    titles += (("rank", "rank_max_min", "{:.2f}"),)
    lines = [
        "# Decaying-average correction weights chosen on cross-validation folds",
        "",
        f"Each fold model's forecasts of the days it held out ({', '.join(p['folds'])}; "
        f"{p['init_times']} initial times in all, {p['members']} members, "
        f"`{p['sampler'] or 'default sampler'}`), corrected by each candidate `W[:S[:R]]` "
        "(0: none) within each fold's days, scored on all folds together "
        "(`generators.correction.select_weights`). Chosen: "
        f"**{p['chosen'] or 'no correction'}**.",
        "",
        "| w | stage | "
        + " | ".join(f"{t} {h} h" for t, _, _ in titles for h in hours)
        + " | mean CRPS | mean abs(log SSR) | mean rank max/min |",
        "| --- | --- | " + " | ".join("---" for _ in range(3 * len(hours) + 3)) + " |",
    ]
    for row in p["table"]:
        scores = p["by_lead"][row["candidate"]]
        cells = [fmt.format(scores[key][h]) for _, key, fmt in titles for h in hours]
        lines.append(
            f"| {row['candidate']} | {row['stage']} | "
            + " | ".join(cells)
            + f" | {row['mean_fair_crps']:.4f} | {row['mean_abs_log_ssr']:.3f} | "
            f"{row['mean_rank_max_min']:.2f} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
