"""Sub-commands of the ``wxens`` CLI.

Each module defines ``NAME``, ``HELP``, ``add_arguments(parser)`` and
``run(args) -> int``; heavy imports happen inside ``run`` so ``wxens --help`` is fast.
Add a command by writing its module and listing it here.
"""

from flows.commands import (
    baseline,
    bias_correct,
    calibrate,
    compact,
    config,
    demo,
    export,
    forecast,
    info,
    ingest,
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
    export,
    compact,
    run,
    serve,
    demo,
)
