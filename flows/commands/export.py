"""``wxens export STORE --out plain.zarr``: a plain Zarr v3 copy of a store's last commit."""

from __future__ import annotations

import argparse

from flows.commands.options import add_no_progress, add_threads
from flows.threads import set_threads

NAME = "export"
HELP = (
    "copy a store (its last complete commit) into a plain Zarr v3 store, for tools that do "
    "not read transactional (Icechunk) stores"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("store", help="a wxens analysis or forecast store")
    parser.add_argument("--out", required=True, help="the plain Zarr store to create")
    add_no_progress(parser)
    add_threads(parser)


def run(args: argparse.Namespace) -> int:
    from pipeline.analysis_store import readers_snapshot
    from pipeline.store_export import export

    set_threads(args.threads, torch=False)
    # an analysis store whose append has not finished: what its readers read, not fill values
    snapshot = readers_snapshot(args.store)
    out = export(args.store, args.out, progress=not args.no_progress, snapshot=snapshot)
    print(f"{out}: plain Zarr v3 copy of {args.store}")
    return 0
