"""``wxens compact STORE --keep 7d``: forget a store's commits older than a week and delete
what no kept commit refers to (the data of the last commit never change)."""

from __future__ import annotations

import argparse

NAME = "compact"
HELP = (
    "forget a store's commits older than --keep and delete the files only they used (a store "
    "written on a schedule gains a commit per ingest block and forecast batch)"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("store", help="a wxens analysis or forecast store")
    parser.add_argument(
        "--keep",
        default="7d",
        help="how much history to keep, e.g. 7d or 12h (default 7d; 0h keeps the last commit "
        "only, beside the repository's empty first one); files younger than 10 minutes stay, "
        "and so do the commits that were the last one within those 10 minutes (a reader may "
        "be using them): compact again later to delete those",
    )


def run(args: argparse.Namespace) -> int:
    from pipeline.errors import InputError
    from pipeline.spec import to_timedelta
    from pipeline.transaction import compact

    try:
        keep = to_timedelta(args.keep).to_pytimedelta()
    except ValueError as err:
        raise InputError(
            f"--keep {args.keep!r} is not a duration such as 7d or 12h: {err}"
        ) from None
    if keep.total_seconds() < 0:
        raise InputError(f"--keep {args.keep!r} is negative; give a duration such as 7d")
    done = compact(args.store, keep)
    print(
        f"{args.store}: {done.commits_expired} commit(s) older than {args.keep} forgotten, "
        f"{done.commits_left} left; {done.objects_deleted} file(s) "
        f"({done.bytes_deleted / 1e6:.1f} MB) deleted"
    )
    return 0
