"""Options shared by the sub-commands: one flag vocabulary across the CLI.

Every command spells the same thing the same way (``--lead``, ``--out``,
``--bias-weight``/``--spread-weight``/``--rank-weight``). An old spelling is kept for one
release through :func:`deprecated_alias`: it still works and says what replaces it.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any


class _DeprecatedAlias(argparse.Action):
    """Stores into the new option's ``dest`` and warns once on stderr."""

    def __init__(self, option_strings: list[str], dest: str, replacement: str, **kwargs: Any):
        self.replacement = replacement
        super().__init__(option_strings, dest, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        print(
            f"wxens: {option_string} is deprecated and will be removed in the next release; "
            f"use {self.replacement}",
            file=sys.stderr,
        )
        setattr(namespace, self.dest, values)


def deprecated_alias(
    parser: argparse.ArgumentParser, old: str, new: str, dest: str | None = None, **kwargs: Any
) -> None:
    """Accept ``old`` as a hidden, deprecated spelling of the option ``new``.

    ``dest`` is the new option's (derived from ``new`` by default); ``kwargs`` are its
    ``type``/``nargs``/``metavar`` so that the old spelling parses the same values.
    """
    dest = dest or new.lstrip("-").replace("-", "_")
    parser.add_argument(
        old, dest=dest, action=_DeprecatedAlias, replacement=new, help=argparse.SUPPRESS, **kwargs
    )
