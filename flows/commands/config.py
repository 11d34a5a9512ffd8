"""``wxens config --store S [--lead 24h] [--budget 30min] [--end DATE] [--set KEY=VALUE]``:
print the training config derived from a store (:func:`generators.config_derive.derive_config`;
its times up to ``--end``, the later ones left out to verify on) as
YAML to edit and pass to ``wxens train --config``; ``--set steps=N`` derives it for N
steps without timing any (``--budget`` times steps of the derived model, which on a large
grid takes minutes and the training's memory)."""

from __future__ import annotations

import argparse

from flows.commands.derive import add_derive_arguments, derive_for, with_overrides
from flows.commands.options import add_threads
from flows.threads import set_threads

NAME = "config"
HELP = "print the training config derived from an analysis store, as YAML to edit"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--store", required=True, help="the analysis store to train on")
    add_derive_arguments(parser)
    add_threads(
        parser,
        "CPU threads to measure the per-step time with (default: one per core); "
        "give the number the training will use",
    )


def run(args: argparse.Namespace) -> int:
    set_threads(args.threads)
    # --set as wxens train applies it
    derived = with_overrides(derive_for(args), args.overrides, args.store)
    print(derived.to_yaml(), end="")
    return 0
