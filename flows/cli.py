"""The ``wxens`` command line: one sub-command per module in :mod:`flows.commands`.

Exit codes: 0 success, 2 bad input or store (a :class:`~pipeline.errors.WxensError`,
printed without a traceback), 130 interrupted; anything else is a bug.
"""

from __future__ import annotations

import argparse
import logging
import sys

from flows.commands import COMMANDS
from pipeline.errors import WxensError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="wxens",
        description="Weather ensembles: ingest, train, forecast, verify, orchestrate.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        p = sub.add_parser(command.NAME, help=command.HELP, description=command.HELP)
        command.add_arguments(p)
        p.set_defaults(run=command.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.run(args) or 0)
    except WxensError as err:
        print(f"wxens {args.command}: error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print(f"wxens {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
