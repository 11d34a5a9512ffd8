"""``wxens export STORE --out plain.zarr`` (or ``F.nc``): a plain Zarr v3 or CF NetCDF-4 copy
of a store's last commit."""

from __future__ import annotations

import argparse

from flows.commands.options import add_no_progress, add_threads
from flows.threads import set_threads

NAME = "export"
HELP = (
    "copy a store (its last complete commit) into a plain Zarr v3 store, or, to an --out "
    "ending .nc, a CF NetCDF-4 file, for tools that do not read transactional (Icechunk) stores"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("store", help="a wxens analysis or forecast store")
    parser.add_argument(
        "--out",
        required=True,
        help="the copy to create: a plain Zarr store, or a CF NetCDF-4 file if it ends .nc",
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an earlier export at --out (anything else there is refused, never deleted)",
    )
    add_no_progress(parser)
    add_threads(parser)


def run(args: argparse.Namespace) -> int:
    from pipeline.analysis_store import readers_snapshot
    from pipeline.store_export import export, writer_for

    set_threads(args.threads, torch=False)
    # an analysis store whose append has not finished: what its readers read, not fill values
    snapshot = readers_snapshot(args.store)
    out = export(
        args.store,
        args.out,
        progress=not args.no_progress,
        snapshot=snapshot,
        overwrite=args.overwrite,
    )
    print(f"{out}: {writer_for(out).description} of {args.store}")
    return 0
