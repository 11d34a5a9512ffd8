"""``wxens bias-correct FORECAST --truth STORE --out CORRECTED [--weight W]``: shift each
forecast's members by the decaying-average error of the earlier forecasts of the same lead
and time of day that have verified (:mod:`generators.bias_correction`), into a new
forecast store that records the correction. Rerun it as new initial times arrive: the
corrected store takes them in like ``wxens forecast`` does."""

from __future__ import annotations

import argparse

NAME = "bias-correct"
HELP = (
    "remove the recent bias of a forecast store by lead and time of day (decaying average of "
    "its verified errors) into a new store"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("forecast", metavar="FORECAST", help="wxens forecast store to correct")
    parser.add_argument("--truth", required=True, help="analysis store the errors are taken on")
    parser.add_argument("--out", required=True, help="corrected forecast store to write")
    parser.add_argument(
        "--weight",
        type=float,
        default=0.2,
        help="weight of the newest verified error, in (0, 1] (default 0.2, chosen on the UK "
        "cross-validation days; benchmarks/results/quality_uk.md)",
    )


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from generators.bias_correction import DecayingAverageBias, bias_correct_store
    from pipeline.schema import INIT_TIME, LEAD_TIME

    correction = DecayingAverageBias(args.weight)
    bias = bias_correct_store(args.forecast, args.truth, args.out, correction)
    print(f"{args.out}: {bias.sizes[INIT_TIME]} initial time(s), weight {args.weight:g}")
    hours = bias[LEAD_TIME].values / np.timedelta64(1, "h")
    for name, b in bias.data_vars.items():
        by_lead = np.abs(b).mean([d for d in b.dims if d != LEAD_TIME]).values
        print(
            f"  {name}: mean |bias| removed by lead "
            + ", ".join(f"{h:g} h {v:.3f}" for h, v in zip(hours, by_lead, strict=True))
        )
    return 0
