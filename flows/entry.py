"""The ``wxens`` console script. Python imports the command line (numpy, pandas, xarray)
for about half a second before :func:`flows.cli.main` runs; a Ctrl-C then ended in the
traceback of whichever import it hit (exit 1), and a SIGTERM killed the process silently
(-15), where a command stopped later says "wxens CMD: interrupted", 130, or "terminated
(SIGTERM)", 143. This module imports only :mod:`pipeline.signals`, installs its SIGTERM
handler first, and says what a stop before the command began means: nothing ran."""

from __future__ import annotations

import os
import signal

from pipeline.signals import RaiseOnSigterm, one_of_several, stopped_before_a_command


def main() -> int:
    """Run :func:`flows.cli.main` on ``sys.argv``; its exit code."""
    if not one_of_several():  # a rank dies of it (pipeline.signals)
        signal.signal(signal.SIGTERM, RaiseOnSigterm(os.getpid()))
    try:
        from flows.cli import main as wxens

        return wxens()
    except KeyboardInterrupt as interrupt:  # outside a command's own handling of it
        return stopped_before_a_command(interrupt)
