"""SIGTERM as a graceful stop: what ``timeout``, SLURM, Kubernetes, systemd and a cancelled
Prefect run send to end a command. By default it killed the process at once, as ``kill
-9`` does: no message, and ``wxens train`` lost every step since its last checkpoint,
where Ctrl-C (SIGINT) checkpoints, keeps whole batches and says "interrupted".

:func:`sigterm_raises` makes SIGTERM raise :class:`Terminated`, a ``KeyboardInterrupt``,
so every path written for Ctrl-C applies to it too; the CLI says "terminated (SIGTERM)"
and exits 143 (128 + 15, as a shell reports a process that SIGTERM stopped).

Python runs a signal handler at the next bytecode of the main thread, wherever that is: in
a ``__del__`` method or a garbage-collector callback (``distributed`` registers one), an
exception it raises is printed as "Exception ignored in ..." and dropped, and the command
ran on to its end, exit 0, as if the signal had never come (seen under load:
``wxens verify --local-cluster`` stopped by SIGTERM). There the handlers of
:func:`sigterm_raises` (SIGTERM, and Ctrl-C where Python's own handler was set) do not
raise: they send the signal again a moment later (:data:`REDELIVER_AFTER_S`), once out.
"""

from __future__ import annotations

import contextlib
import gc
import os
import signal
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from types import FrameType

REDELIVER_AFTER_S = 0.05
"""How long after a signal that came in a place that drops exceptions it is sent again."""


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
        if not redelivered_later(signum, frame):
            raise Terminated


def raise_on_sigint(signum: int, frame: FrameType | None) -> None:
    """Python's Ctrl-C handler (:func:`signal.default_int_handler`), but sent again later
    where its ``KeyboardInterrupt`` would be dropped (:func:`redelivered_later`)."""
    if not redelivered_later(signum, frame):
        signal.default_int_handler(signum, frame)


def redelivered_later(signum: int, frame: FrameType | None) -> bool:
    """Whether an exception raised at ``frame`` would be dropped (it runs in, or under, a
    ``__del__`` method or a garbage-collector callback), and ``signum`` is then sent to
    this process again after :data:`REDELIVER_AFTER_S`, to be raised where it counts."""
    if not drops_exceptions(frame):
        return False
    timer = threading.Timer(REDELIVER_AFTER_S, os.kill, (os.getpid(), signum))
    timer.daemon = True
    timer.start()
    return True


def drops_exceptions(frame: FrameType | None) -> bool:
    """Whether ``frame`` or a frame that called it is a ``__del__`` method or one of
    :data:`gc.callbacks`: Python prints an exception raised there and goes on."""
    callbacks = {getattr(getattr(c, "__func__", c), "__code__", None) for c in gc.callbacks}
    while frame is not None:
        if frame.f_code.co_name == "__del__" or frame.f_code in callbacks:
            return True
        frame = frame.f_back
    return False


@contextlib.contextmanager
def sigterm_raises() -> Iterator[None]:
    """SIGTERM raises :class:`Terminated` in this process within the block, and neither it
    nor Ctrl-C is lost where Python drops exceptions (module docstring); the handlers before
    are restored after. Nothing off the main thread (Python runs signal handlers
    there only), nor in a process of a launch of several (``WORLD_SIZE`` > 1): torchrun
    sends SIGTERM to the other ranks when one fails, and a rank must then die at once, as
    its failure report expects (``-SIGTERM``: a consequence, not the cause), not wait,
    blocked in a collective, for torchrun's SIGKILL after its grace period."""
    if threading.current_thread() is not threading.main_thread() or os.environ.get(
        "WORLD_SIZE", "1"
    ) not in ("", "1"):
        yield
        return
    before = signal.signal(signal.SIGTERM, RaiseOnSigterm(os.getpid()))
    own_sigint = signal.getsignal(signal.SIGINT) is signal.default_int_handler
    if own_sigint:
        signal.signal(signal.SIGINT, raise_on_sigint)
    try:
        yield
    finally:  # None: a handler not set from Python, which it cannot set back
        signal.signal(signal.SIGTERM, signal.SIG_DFL if before is None else before)
        if own_sigint:
            signal.signal(signal.SIGINT, signal.default_int_handler)
