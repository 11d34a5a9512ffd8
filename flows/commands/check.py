"""``wxens check FILE``: run the checks ``wxens serve`` runs as it loads a schedule file on
a schedule file or on a prefect.yaml's wxens deployments (:mod:`flows.prefect_yaml`), before
``prefect deploy``: a bad parameter is refused now, not when a worker starts the run.

Registers and starts nothing; needs no server. Run it from the directory deployed from:
entrypoints and the parameters' relative paths are read from there, or, for a prefect.yaml,
from the directory its pull steps move each run to (:mod:`flows.pull_steps`).
"""

from __future__ import annotations

import argparse

NAME = "check"
HELP = "check a schedule file's or a prefect.yaml's wxens deployments before serving or deploying"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", help="a schedule file (wxens serve) or a prefect.yaml")


def run(args: argparse.Namespace) -> int:
    from flows.settings import apply_offline_defaults

    apply_offline_defaults(args.verbose)  # before Prefect loads, as wxens serve
    from pathlib import Path

    from flows.prefect_yaml import check_file
    from pipeline.errors import InputError

    lines, errors = check_file(Path(args.file))
    for line in lines:
        print(line)
    if errors:
        raise InputError("\n".join(errors))
    return 0
