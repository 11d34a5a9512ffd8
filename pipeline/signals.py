"""SIGTERM as a graceful stop: what ``timeout``, SLURM, Kubernetes, systemd and a cancelled
Prefect run send to end a command. By default it killed the process at once, as ``kill
-9`` does: no message, and ``wxens train`` lost every step since its last checkpoint,
where Ctrl-C (SIGINT) checkpoints, keeps whole batches and says "interrupted".

:func:`sigterm_raises` makes SIGTERM raise :class:`Terminated`, a ``KeyboardInterrupt``,
so every path written for Ctrl-C applies to it too; the CLI says "terminated (SIGTERM)"
and exits 143 (128 + 15, as a shell reports a process that SIGTERM stopped).

Python runs a signal handler at the next bytecode of the main thread, wherever that is: in
a ``__del__`` method, a weakref or garbage-collector callback (``distributed`` registers
one), the ``KeyboardInterrupt`` or :class:`Terminated` it raises is handed to
:func:`sys.unraisablehook`, printed as "Exception ignored in ..." and dropped, and the
command ran on to its end, exit 0, as if the signal had never come (seen under load:
``wxens verify --local-cluster`` stopped by SIGTERM, ``wxens forecast`` by Ctrl-C). Within
:func:`sigterm_raises` that hook sends the signal again a moment later
(:data:`REDELIVER_AFTER_S`), to be raised where it counts.
"""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import sys
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from types import FrameType

REDELIVER_AFTER_S = 0.05
"""How long after its interrupt was dropped (module docstring) a signal is sent again."""


class Terminated(KeyboardInterrupt):
    """SIGTERM in a process that :func:`sigterm_raises` prepared: stop as on Ctrl-C."""

    exit_code = 128 + signal.SIGTERM


@dataclass(frozen=True)
class RaiseOnSigterm:
    """The SIGTERM handler: raises :class:`Terminated` in the process ``pid`` that
    installed it. A process forked from that one (a DataLoader worker, a forked pool's
    child) inherits the handler, and must still die of the signal as before: there it
    restores the default action and sends SIGTERM to itself again."""

    pid: int

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        if os.getpid() != self.pid:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGTERM)
            return
        raise Terminated


def stop_words(interrupt: KeyboardInterrupt) -> tuple[str, int]:
    """What a command stopped by ``interrupt``'s signal says, and its exit code."""
    if isinstance(interrupt, Terminated):
        return "terminated (SIGTERM)", Terminated.exit_code
    return "interrupted", 130


def stopped_before_a_command(interrupt: KeyboardInterrupt) -> int:
    """Say on stderr, in one write (the ranks of a launch share it), that ``wxens`` was
    stopped by ``interrupt`` before a command ran: nothing ran, nothing was kept. Its exit
    code (:func:`stop_words`)."""
    what, code = stop_words(interrupt)
    sys.stderr.write(f"wxens: {what}\n")
    sys.stderr.flush()
    return code


def one_of_several(environ: Mapping[str, str] = os.environ) -> bool:
    """Whether this process is one of a torchrun launch of several (``WORLD_SIZE`` > 1)."""
    return environ.get("WORLD_SIZE", "1") not in ("", "1")


def redeliver_dropped(unraisable: sys.UnraisableHookArgs, before=sys.__unraisablehook__) -> None:
    """:func:`sys.unraisablehook` for :func:`sigterm_raises`: an interrupt dropped where
    Python ignores exceptions (module docstring) is signalled again after
    :data:`REDELIVER_AFTER_S`; anything else goes to the hook ``before``."""
    if not isinstance(unraisable.exc_value, KeyboardInterrupt):
        before(unraisable)
        return
    terminated = isinstance(unraisable.exc_value, Terminated)
    signum = signal.SIGTERM if terminated else signal.SIGINT
    timer = threading.Timer(REDELIVER_AFTER_S, os.kill, (os.getpid(), signum))
    timer.daemon = True
    timer.start()


@contextlib.contextmanager
def sigterm_raises() -> Iterator[None]:
    """SIGTERM raises :class:`Terminated` in this process within the block, and neither it
    nor Ctrl-C is lost where Python drops exceptions (module docstring); the handler and
    hook before are restored after. Nothing off the main thread (Python runs signal handlers
    there only), nor in a process of a launch of several (``WORLD_SIZE`` > 1): torchrun
    sends SIGTERM to the other ranks when one fails, and a rank must then die at once, as
    its failure report expects (``-SIGTERM``: a consequence, not the cause), not wait,
    blocked in a collective, for torchrun's SIGKILL after its grace period."""
    if threading.current_thread() is not threading.main_thread() or one_of_several():
        yield
        return
    before = signal.signal(signal.SIGTERM, RaiseOnSigterm(os.getpid()))
    hook = sys.unraisablehook
    sys.unraisablehook = functools.partial(redeliver_dropped, before=hook)
    try:
        yield
    finally:  # None: a handler not set from Python, which it cannot set back
        signal.signal(signal.SIGTERM, signal.SIG_DFL if before is None else before)
        sys.unraisablehook = hook
