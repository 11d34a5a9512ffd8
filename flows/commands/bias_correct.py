"""``wxens bias-correct FORECAST --truth STORE --out CORRECTED (--checkpoint K |
--bias-weight W [--spread-weight S] [--rank-weight R])``: shift each forecast's members by the
decaying-average error of the earlier forecasts of the same lead and time of day that have
verified, optionally scale their spread by those forecasts' decaying-average spread-skill
ratio (:mod:`generators.correction.bias`) and remap them by the decaying-average rank
histogram of the verified forecasts (:mod:`generators.correction.ranks`), into a new
forecast store that records the correction.
Without weights it uses those ``wxens tune`` chose for the checkpoint ``K`` that made the
forecast (:mod:`generators.correction.tuned`); where it chose no correction, the corrected
store holds the forecast as it is and says so (:mod:`generators.correction.raw`).
Rerun it as new initial times arrive: the corrected store takes them in like ``wxens
forecast`` does."""

from __future__ import annotations

import argparse

from flows.commands.options import (
    add_no_progress,
    add_threads,
    check_out_writable,
    deprecated_alias,
)
from flows.threads import set_threads

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
        "--checkpoint",
        help="the checkpoint that made the forecast: without weights, correct with the ones "
        "`wxens tune` stored with it",
    )
    parser.add_argument(
        "--bias-weight",
        type=float,
        help="weight of the newest verified error, in (0, 1] (default: the --checkpoint's "
        "tuned weights; weights given replace all of them)",
    )
    deprecated_alias(parser, "--weight", "--bias-weight", type=float)
    parser.add_argument(
        "--spread-weight",
        type=float,
        help="also scale each forecast's spread so that the recent forecasts' spread-skill "
        "ratio (their decaying average with this weight, in (0, 1]) is 1 (default: the "
        "--checkpoint's tuned one, else spread unchanged)",
    )
    parser.add_argument(
        "--rank-weight",
        type=float,
        help="last, remap each forecast's members so that the rank histogram of the recent "
        "verified forecasts (their decaying average with this weight, in (0, 1], every time "
        "of day) would have been flat; each member keeps its rank at every point (default: "
        "the --checkpoint's tuned one, else members not remapped)",
    )
    add_threads(parser)
    add_no_progress(parser)


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from generators.correction.bias import bias_correct_store
    from generators.correction.decaying_average import without_verified_past
    from generators.correction.ranks import RANK_STATISTIC
    from generators.correction.tuned import chose_none, no_correction_reason, resolve_correction
    from pipeline.errors import InputError, counted
    from pipeline.schema import INIT_TIME, LEAD_TIME, TIME
    from pipeline.store import open_store

    writes = "wxens bias-correct writes it, and its lock beside it"
    check_out_writable(args.out, "--out", writes)  # before the forecast and truth are read
    set_threads(args.threads, torch=False)
    weights = (args.bias_weight, args.spread_weight, args.rank_weight)
    if (chosen := chose_none(args.checkpoint, args.forecast, *weights)) is not None:
        return _uncorrected(args, chosen)
    spec = resolve_correction(args.checkpoint, *weights, forecast=args.forecast)
    if not spec.applies:
        reason = no_correction_reason(
            args.checkpoint, *weights, store=args.truth, forecast=args.forecast
        )
        raise InputError(f"{reason}; nothing written: {args.forecast} is the forecast as it is")
    truth = open_store(args.truth)  # once: passed on, so its warnings are said once
    result = bias_correct_store(args.forecast, truth, args.out, spec, progress=not args.no_progress)
    inits, leads = result.bias[INIT_TIME].values, result.bias[LEAD_TIME].values
    left = len(without_verified_past(inits, leads, truth.dataset[TIME]))
    print(
        f"{args.out}: {counted(len(inits), 'initial time')}, {len(inits) - left} corrected and "
        f"{left} as they are (no earlier forecast verified by them), {spec.describe()}"
    )
    hours = result.bias[LEAD_TIME].values / np.timedelta64(1, "h")

    def by_lead(label: str, values) -> str:
        means = values.mean([d for d in values.dims if d != LEAD_TIME]).values
        return f"{label} by lead " + ", ".join(
            f"{h:g} h {v:.3f}" for h, v in zip(hours, means, strict=True)
        )

    for name, b in result.bias.data_vars.items():
        print(f"  {name}: " + by_lead("mean |bias| removed", np.abs(b)))
        if result.spread_factor is not None:
            print(f"  {name}: " + by_lead("mean spread factor", result.spread_factor[name]))
        if result.rank_table is not None:
            table = result.rank_table[name]
            m = table.sizes[RANK_STATISTIC] - 3
            beyond = table.isel({RANK_STATISTIC: 0}) + table.isel({RANK_STATISTIC: m})
            label = f"share of truths beyond the recent members (reliable: {2 / (m + 1):.3f})"
            print(f"  {name}: " + by_lead(label, beyond))
    return 0


def _uncorrected(args: argparse.Namespace, chosen) -> int:
    """Where `wxens tune` chose no correction: the forecast as it is into ``--out``, said."""
    from generators.correction.raw import write_uncorrected
    from pipeline.errors import counted

    n = write_uncorrected(args.forecast, args.out, chosen)
    print(f"{args.out}: {counted(n, 'initial time')}, as they are (bias weight 0, tune's choice)")
    return 0
