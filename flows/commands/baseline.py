"""``wxens baseline NAME --store S --train START/END --init ... --lead ... --out F.zarr``:
a reference ensemble (climatology, or persistence + past tendencies) drawn from the
store's training period into a forecast store, to verify beside a model's
(:mod:`generators.correction.baselines`)."""

from __future__ import annotations

import argparse
import math
from dataclasses import astuple

from flows.commands import forecast
from flows.commands.forecast import add_time_arguments, parse_inits, parse_leads
from flows.commands.options import SEED, add_no_progress, add_threads
from flows.threads import set_threads

NAME = "baseline"
HELP = (
    "draw a reference ensemble (climatology, or persistence + past tendencies) from a "
    "training period into a forecast store, to verify beside a model's"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "name",
        metavar="NAME",
        help="climatology (training fields valid at the same time of day) or persistence "
        "(the initial state plus training-period changes over the same lead)",
    )
    parser.add_argument("--store", required=True, help="analysis store to draw from")
    parser.add_argument(
        "--train",
        required=True,
        metavar="START/END",
        help="period the members are drawn from, ends included: 2019-03-01/2019-03-21 "
        "(keep it apart from the initial times, as a model's training period)",
    )
    add_time_arguments(parser)
    parser.add_argument("--seed", type=SEED, default=0, help="random seed (default 0)")
    parser.add_argument(
        "--window-days",
        type=window_days,
        metavar="N|inf",
        help="draw only from training times within N days of the year of the valid "
        "(climatology) or initial (persistence) date; inf: the whole period (default: 15 on a "
        "training period of a year or more, so March is not forecast from July; else inf)",
    )
    parser.add_argument("--out", required=True, help="forecast store to create or extend")
    parser.add_argument(
        "--recompute",
        action="store_true",
        help="draw again the initial times --out already holds (default: skip them; a store "
        "of other settings is refused either way)",
    )
    add_no_progress(parser)
    add_threads(parser)


def window_days(text: str) -> float:
    """An argparse ``type``: ``--window-days`` as a number of days >= 0 or ``inf``, refused
    by the parser otherwise, naming the value and what to give."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not value >= 0:  # NaN too
        raise argparse.ArgumentTypeError(
            f"{text!r}: give a number of days >= 0, or inf for the whole period"
        )
    return value


def run(args: argparse.Namespace) -> int:
    from generators.correction.baseline_store import baseline_to_store
    from generators.correction.baselines import BaselineConfig
    from pipeline.errors import counted
    from pipeline.schema import Period
    from pipeline.store import open_store
    from pipeline.timeaxis import fixed_step

    set_threads(args.threads, torch=False)
    start, end = astuple(Period.parse(args.train, "training period"))
    config = BaselineConfig(start, end, args.members, args.seed, args.window_days)
    init_times = parse_inits(args.init)  # refused before the store opens
    store = open_store(args.store)  # once: passed on, so its warnings are said once
    native_hours = fixed_step(store.native_step, args.store).total_seconds() / 3600
    leads = parse_leads(args.lead, args.every, native_hours)
    drawn = baseline_to_store(
        args.name,
        store,
        config,
        init_times,
        leads,
        args.out,
        progress=not args.no_progress,
        recompute=args.recompute,
    )
    held = len(init_times) - len(drawn)  # held complete by the store: kept
    print(
        f"{args.out}: {args.name} baseline, {counted(len(drawn), 'initial time')} x "
        f"{counted(args.members, 'member')} x {counted(len(leads), 'lead')}, drawn from {start} "
        f"to {end}, {config.describe_window()} (seed {args.seed})"
        + (f"; {held} already in the store, kept (--recompute draws them again)" if held else "")
    )
    return 0


def kept(args: argparse.Namespace) -> str:
    """What an interrupted baseline kept in ``--out``: as a forecast, its initial times are
    written batch by batch, and the same command draws only those missing."""
    return forecast.kept(args)
