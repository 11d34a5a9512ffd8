"""``wxens config --store S [--lead 24h] [--budget 30min]``: print the training config
derived from a store (:func:`generators.config_derive.derive_config`) as YAML to edit and
pass to ``wxens train --config``."""

from __future__ import annotations

import argparse

from flows.commands.options import at_least
from flows.commands.train import add_derive_arguments, set_threads

NAME = "config"
HELP = "print the training config derived from an analysis store, as YAML to edit"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--store", required=True, help="the analysis store to train on")
    add_derive_arguments(parser)
    parser.add_argument(
        "--threads",
        type=at_least(1),
        help="CPU threads to measure the per-step time with (default: one per core); "
        "give the number the training will use",
    )


def run(args: argparse.Namespace) -> int:
    from generators.config_derive import derive_config

    set_threads(args.threads)
    print(derive_config(args.store, lead=args.lead, budget=args.budget).to_yaml(), end="")
    return 0
