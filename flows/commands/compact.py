"""``wxens compact STORE --keep 7d``: forget a store's commits older than a week and delete
what no kept commit refers to (the data of the last commit never change)."""

from __future__ import annotations

import argparse
import logging
from datetime import UTC, datetime, timedelta

log = logging.getLogger(__name__)

NAME = "compact"
HELP = (
    "forget a store's commits older than --keep and delete the files only they used (a store "
    "written on a schedule gains a commit per ingest block and forecast batch)"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from pipeline.grace import GC_GRACE, grace_text

    grace = grace_text(GC_GRACE)
    parser.add_argument("store", help="a wxens analysis or forecast store")
    parser.add_argument(
        "--keep",
        default="7d",
        help="how much history to keep, e.g. 7d or 12h (default 7d; 0h keeps the last commit "
        f"only, beside the repository's empty first one); files younger than {grace} stay, "
        f"and so do the commits that were the last one within those {grace} (a reader may "
        "be using them): compact again later to delete those",
    )


def run(args: argparse.Namespace) -> int:
    from pipeline.errors import InputError, counted
    from pipeline.grace import GC_GRACE, grace_text
    from pipeline.spec import to_timedelta
    from pipeline.transaction import compact
    from pipeline.writable import check_can_write

    try:
        keep = to_timedelta(args.keep).to_pytimedelta()
    except ValueError as err:
        raise InputError(
            f"--keep {args.keep!r} is not a duration such as 7d or 12h: {err}"
        ) from None
    if keep.total_seconds() < 0:
        raise InputError(f"--keep {args.keep!r} is negative; give a duration such as 7d")
    check_can_write(  # its lock and the folders it deletes in: refused before any is read
        args.store,
        "compacting deletes in it and takes its lock beside it: only who may write it (its "
        "owner) can compact it; ask them, or leave it as it is (compacting only frees disk)",
    )
    keep_back = max(keep, _back_to_what_readers_read(args.store))
    done = compact(args.store, keep_back, grace=GC_GRACE)  # the grace its line says
    print(
        f"{args.store}: {counted(done.commits_expired, 'commit')} older than {args.keep} "
        f"forgotten, {done.commits_left} left; {counted(done.objects_deleted, 'file')} "
        f"({done.bytes_deleted / 1e6:.1f} MB) deleted"
        + (
            f"; {counted(done.commits_spared, 'commit')} older than {args.keep} kept: the "
            f"store's last commit within the last {grace_text(GC_GRACE)} (a reader may be "
            "using it): compact again later to forget them"
            if done.commits_spared
            else ""
        )
    )
    return 0


def _back_to_what_readers_read(path: str) -> timedelta:
    """How far back the commit that readers read lies in an analysis store whose latest
    ingest has not finished (its last complete one, :func:`pipeline.store.open_store`), and
    a minute more: compact keeps it, or every reader would be refused until the ingest is
    rerun. Zero for a complete store or any other."""
    from pipeline.analysis_store import last_complete_commit, read_state
    from pipeline.errors import StoreError

    try:
        if read_state(path)["complete"]:
            return timedelta(0)
    except StoreError:  # a forecast store: its last commit is what its readers read
        return timedelta(0)
    found = last_complete_commit(path)
    if found is None:
        return timedelta(0)
    log.info("%s: its latest ingest has not finished; keeping the last complete commit", path)
    return datetime.now(UTC) - found[2] + timedelta(minutes=1)
