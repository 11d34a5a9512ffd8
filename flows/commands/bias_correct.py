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
    import dataclasses
    from pathlib import Path

    import numpy as np

    from generators.bias_correction import DecayingAverageBias, bias_correct
    from pipeline.errors import InputError
    from pipeline.forecast_store import ForecastProvenance, open_forecast, write_forecast
    from pipeline.schema import LEAD_TIME
    from pipeline.store import open_store

    correction = DecayingAverageBias(args.weight)
    if Path(args.out).resolve() == Path(args.forecast).resolve():
        raise InputError(
            f"--out {args.out} is the forecast store itself; write the corrected forecast to "
            "another store (the raw one is what later corrections learn from)"
        )
    forecast = open_forecast(args.forecast)
    provenance = ForecastProvenance.from_attrs(forecast.attrs)
    if provenance.bias_correction:
        raise InputError(
            f"{args.forecast} is already bias-corrected ({provenance.bias_correction}); correct "
            "the generator's own forecast store instead"
        )
    corrected, bias = bias_correct(forecast, open_store(args.truth).dataset, correction)
    write_forecast(
        args.out,
        corrected,
        dataclasses.replace(provenance, bias_correction=correction.to_attrs()),
    )
    print(f"{args.out}: {corrected.sizes['init_time']} initial time(s), weight {args.weight:g}")
    for name, b in bias.data_vars.items():
        by_lead = np.abs(b).mean([d for d in b.dims if d != LEAD_TIME]).values
        hours = bias[LEAD_TIME].values / np.timedelta64(1, "h")
        print(
            f"  {name}: mean |bias| removed by lead "
            + ", ".join(f"{h:g} h {v:.3f}" for h, v in zip(hours, by_lead, strict=True))
        )
    return 0
