"""``wxens serve SCHEDULE.yaml``: register scheduled deployments on a Prefect server and
run them.

Needs a running server (``prefect server start``) and ``PREFECT_API_URL`` pointing at it;
the schedule file format is described in :mod:`flows.deployments`.
"""

from __future__ import annotations

import argparse

from flows.commands.options import at_least

NAME = "serve"
HELP = "serve scheduled flows (e.g. an ensemble run every 6 hours) on a Prefect server"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("schedule", help="YAML file of deployments (flow, cron, parameters)")
    parser.add_argument(
        "--limit",
        type=at_least(1),
        default=None,
        metavar="N",
        help="at most N flow runs at once (default: no limit)",
    )


def run(args: argparse.Namespace) -> int:
    from flows.settings import apply_offline_defaults

    apply_offline_defaults(args.verbose)  # before Prefect loads; quiets a line per poll
    from flows.deployments import load_schedule, serve
    from pipeline.errors import InputError

    if args.limit is not None and args.limit < 1:
        raise InputError(f"--limit {args.limit}: give at least 1 (or leave it out)")
    specs = load_schedule(args.schedule)
    serve(specs, limit=args.limit)
    return 0
