"""Sub-commands of the ``wxens`` CLI.

Each module defines ``NAME``, ``HELP``, ``add_arguments(parser)`` and
``run(args) -> int``; heavy imports happen inside ``run`` so ``wxens --help`` is fast.
A command that writes as it goes also defines ``kept(args) -> str | None``: what an
interrupted run of it left written and how to go on, read back from disk, which the CLI
says before its "interrupted" line.
Add a command by writing its module and listing it here.
"""

from flows.commands import (
    baseline,
    bias_correct,
    calibrate,
    check,
    compact,
    compare,
    config,
    demo,
    export,
    forecast,
    info,
    ingest,
    plume,
    products,
    run,
    serve,
    train,
    tune,
    verify,
)

COMMANDS = (
    ingest,
    info,
    config,
    train,
    calibrate,
    tune,
    forecast,
    baseline,
    bias_correct,
    verify,
    products,
    plume,
    compare,
    export,
    compact,
    run,
    check,
    serve,
    demo,
)
