"""Prefect settings that wxens needs on a small offline machine, applied before Prefect loads.

An ad hoc run (``wxens run``, ``wxens demo``) without ``PREFECT_API_URL`` makes Prefect
start a temporary local API server; on a small, busy machine that can take longer than
Prefect's default start-up timeout, and nothing may phone home. Values the user has set win.
"""

from __future__ import annotations

import ctypes
import functools
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pipeline.errors import InputError

OFFLINE_DEFAULTS = {
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "300",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
}


def apply_offline_defaults(verbose: bool = False) -> None:
    """Set :data:`OFFLINE_DEFAULTS` in the environment where unset; call before importing
    prefect (its settings are read once, at import). Also keeps the HTTP client's
    one-line-per-request INFO logs (Prefect's API calls) off the console and, unless
    ``verbose`` (``wxens -v``), the web link of :func:`without_server_guide` and the line
    of :func:`without_server_stop`; and keeps the temporary server out of the command's
    process group (:func:`offline_temporary_server`)."""
    logging.getLogger("httpx").setLevel(logging.WARNING)
    prefect = logging.getLogger("prefect")  # its temporary server logs here, not below
    for only_verbose in (without_server_guide, without_server_stop):
        (prefect.removeFilter if verbose else prefect.addFilter)(only_verbose)
    offline_temporary_server()


def offline_temporary_server() -> None:
    """Set :data:`OFFLINE_DEFAULTS` in the environment where unset (the temporary server,
    a subprocess, reads them when it starts; the start-up timeout only where Prefect is not
    imported yet) and keep that server out of this process group
    (:func:`temporary_server_apart`). The CLI calls it, and so does the import of
    :mod:`flows.steps` (and of :mod:`flows.pipelines`, which imports it): a script calling
    the flows as functions got a server in its own group, which Ctrl-C stopped with it
    (minutes of retries to report the run, connection tracebacks, exit 1, the run left
    Running), and that logged an ERROR of telemetry it failed to send on every offline
    run."""
    for name, value in OFFLINE_DEFAULTS.items():
        os.environ.setdefault(name, value)
    check_server_database()
    temporary_server_apart()


@contextmanager
def ad_hoc_heartbeats_off() -> Iterator[None]:
    """Flow runs without heartbeats within the block where Prefect's temporary server runs
    them (no ``PREFECT_API_URL``: ``wxens run``, ``wxens demo``). Each flow's end waited for
    its heartbeat thread's 1 s sleep: a parent flow and six subflows took 9.2 s with them and
    2.0 s without on this machine's temporary server; and a server that stops with the
    command has no one to tell of a crashed run, which is what they are for. A run on a
    server of the user's keeps them."""
    from prefect.settings import (
        PREFECT_API_URL,
        PREFECT_FLOWS_HEARTBEAT_FREQUENCY,
        temporary_settings,
    )

    if PREFECT_API_URL.value():
        yield
        return
    with temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        yield


def check_server_database() -> None:
    """InputError, before any work, where Prefect would start its temporary server (no
    ``PREFECT_API_URL``) on a SQLite database in a folder that cannot be written: by
    default ``~/.prefect``, read-only for a service account or a shared home. That server
    never started: up to 300 s of waiting, then thousands of lines of SQLite tracebacks."""
    from prefect.settings import get_current_settings

    settings = get_current_settings()
    url = settings.server.database.connection_url.get_secret_value()
    if settings.api.url or not url.startswith("sqlite") or ":memory:" in url:
        return
    database = Path(url.split(":///", 1)[1])
    at = next(p for p in (database, *database.parents) if p.exists())
    if not os.access(at, os.W_OK) or (at == database and not os.access(at.parent, os.W_OK)):
        raise InputError(
            f"Prefect's temporary server keeps its database at {database}, and {at} cannot "
            "be written (a read-only home, or no permission): set PREFECT_HOME to a folder "
            "you can write (PREFECT_HOME=$TMPDIR/prefect), or PREFECT_API_URL to a server"
        )


def temporary_server_apart() -> None:
    """Start Prefect's temporary server (no ``PREFECT_API_URL``) in a process group of its
    own. In the command's group, a signal to the group (Ctrl-C at a terminal, ``kill --
    -PGID``) stopped the server with the command, which then reported each run crashed to a
    server gone: a minute of retries per report, then a wall of connection tracebacks and
    exit 1, minutes after Ctrl-C. Apart, it records the runs' states and Prefect stops it
    at exit, as before. On Linux it gets SIGTERM when the command dies without exiting
    (SIGKILL, SIGHUP), as it did in the group, rather than being left running."""
    from prefect.settings import get_current_settings

    if get_current_settings().api.url:  # a server of the user's: none is started
        return
    from prefect.server.api import server

    server.subprocess = ServerSubprocess()  # type: ignore[assignment]


class ServerSubprocess:
    """The ``subprocess`` module as Prefect's server module sees it (the Popen of its
    temporary server is the only one there): a process group of its own and, on Linux, the
    parent's death signalled (``prctl``, resolved here: the child of a process with
    threads only calls it)."""

    def __getattr__(self, name: str) -> Any:
        return getattr(subprocess, name)

    @staticmethod
    def Popen(*args: Any, **kwargs: Any) -> subprocess.Popen:
        if sys.platform == "linux":
            prctl = ctypes.CDLL(None, use_errno=True).prctl
            kwargs["preexec_fn"] = functools.partial(prctl, PR_SET_PDEATHSIG, signal.SIGTERM)
        return subprocess.Popen(*args, process_group=0, **kwargs)


PR_SET_PDEATHSIG = 1
"""Linux ``prctl`` option: the signal a process gets when its parent dies."""


def without_server_guide(record: logging.LogRecord) -> bool:
    """Cut Prefect's "Starting temporary server on ADDRESS" record to that line: its second,
    a link to Prefect's guide to running a dedicated server, opens nothing on an offline
    machine, printed on every ``wxens run`` and ``wxens demo`` (docs/flows.md says how to
    run one). The address stays: it explains the wait while the server starts."""
    if isinstance(record.msg, str) and record.msg.startswith("Starting temporary server"):
        record.msg = record.msg.split("\n", 1)[0]
    return True


def without_server_stop(record: logging.LogRecord) -> bool:
    """Drop Prefect's "Stopping temporary server on ADDRESS" record, logged at exit, after
    the command's own last line: its error (``wxens run: error: ...``), its "interrupted"
    line, or its summary, which then was not the last on a terminal. It says nothing the
    user acts on; the "Starting" line, which explains the wait, stays."""
    return not (isinstance(record.msg, str) and record.msg.startswith("Stopping temporary"))
