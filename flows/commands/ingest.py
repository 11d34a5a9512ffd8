"""``wxens ingest SOURCE... --store PATH``: files, globs, URLs or synthetic data into Zarr."""

from __future__ import annotations

import argparse
from contextlib import nullcontext

from flows.commands.options import add_no_progress, add_threads, check_out_writable
from flows.threads import set_threads

NAME = "ingest"
HELP = "ingest GRIB/NetCDF/Zarr files (or 'synthetic') into a canonical analysis store"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "sources",
        nargs="+",
        metavar="SOURCE",
        help="files, globs (quote them), Zarr paths/URLs, or 'synthetic[:key=value,...]'",
    )
    parser.add_argument("--store", required=True, help="the analysis store to create or extend")
    parser.add_argument(
        "--variables", nargs="+", help="canonical names to keep (default: all known)"
    )
    parser.add_argument("--start", help="first time to ingest, e.g. 2019-03-01T00")
    parser.add_argument("--end", help="last time to ingest (inclusive)")
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an analysis store of another grid or other variables (anything else at "
        "--store is refused, never deleted)",
    )
    parser.add_argument(
        "--allow-nan", action="store_true", help="keep NaNs (counted) instead of refusing"
    )
    parser.add_argument(
        "--rename",
        action="append",
        default=[],
        metavar="OLD=NEW",
        help="read the file's variable (or coordinate) OLD as NEW, e.g. Tair=t2m (repeatable)",
    )
    parser.add_argument(
        "--units",
        action="append",
        default=[],
        metavar="VAR=UNITS",
        help="the units of a variable whose file lacks (or misstates) them, e.g. slp=hPa; VAR "
        "by its name in the file, its --rename target or its canonical name (repeatable)",
    )
    parser.add_argument(
        "--select",
        action="append",
        default=[],
        metavar="DIM=VALUE",
        help="keep one index of a dimension, e.g. number=3 for one member of an ensemble file "
        "(repeatable)",
    )
    add_no_progress(parser)
    add_threads(parser)


def run(args: argparse.Namespace) -> int:
    from flows.commands.info import describe
    from pipeline.duplicate_times import store_holds
    from pipeline.sources import Adjustments, adjust_sources
    from pipeline.store import held_times, ingest

    writes = "wxens ingest writes it, and its lock and claim files beside it"
    check_out_writable(args.store, "--store", writes)  # before any source is opened
    set_threads(args.threads, torch=False)
    time = slice(args.start, args.end) if args.start or args.end else None
    adjustments = Adjustments.parse(args.rename, args.units, args.select)
    # adjustments open the sources (none else): told the store's times as ingest does, read
    # once (ingest is given them)
    held = held_times(args.store, args.overwrite) if adjustments else None
    with nullcontext() if held is None else store_holds(held):
        sources = adjust_sources(args.sources, adjustments)  # opened once: a resent day too
    store = ingest(
        sources,
        args.store,
        variables=args.variables,
        time=time,
        overwrite=args.overwrite,
        allow_nan=args.allow_nan,
        progress=not args.no_progress,
        held=held,
    )
    if store is None:  # its writes are done (any late times warned); the store waits for others
        print(
            f"{args.store}: this ingest's writes are done; the store is finalised "
            "(statistics, missing times) once every time of it is; `wxens info` then"
        )
        return 0
    print(describe(store, weigh=False))  # not all it wrote read back: `wxens info` weighs
    return 0


def kept(args: argparse.Namespace) -> str:
    """What an interrupted ingest kept, read from the store, and how to go on: each block
    of times is committed whole, and the same command writes only those still missing.
    ``--overwrite`` builds the new store aside and removes it when stopped."""
    from pipeline.analysis_store import read_state
    from pipeline.errors import StoreError

    if args.overwrite:
        return (
            f"nothing of this ingest kept (--overwrite builds the new store aside, and it was "
            f"removed; {args.store} is as it was); rerun the same command to start again"
        )
    try:
        state = read_state(args.store)
    except StoreError:  # none yet, or its creation was interrupted
        return f"nothing written to {args.store}; rerun the same command to ingest"
    written = sum(j - i for i, j in state["written"])
    if state["complete"]:
        return f"{args.store} is complete: all {written} times written, nothing to resume"
    return (
        f"{args.store}: {written} of {state['n_times']} times written, kept (each block is "
        "committed whole); rerun the same command to write the rest"
    )
