"""Prefect settings that wxens needs on a small offline machine, applied before Prefect loads.

An ad hoc run (``wxens run``, ``wxens demo``) without ``PREFECT_API_URL`` makes Prefect
start a temporary local API server; on a small, busy machine that can take longer than
Prefect's default start-up timeout, and nothing may phone home. Values the user has set win.
"""

from __future__ import annotations

import logging
import os

OFFLINE_DEFAULTS = {
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "300",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
}


def apply_offline_defaults(verbose: bool = False) -> None:
    """Set :data:`OFFLINE_DEFAULTS` in the environment where unset; call before importing
    prefect (its settings are read once, at import). Also keeps the HTTP client's
    one-line-per-request INFO logs (Prefect's API calls) off the console and, unless
    ``verbose`` (``wxens -v``), the web link of :func:`without_server_guide`."""
    for name, value in OFFLINE_DEFAULTS.items():
        os.environ.setdefault(name, value)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    prefect = logging.getLogger("prefect")  # its temporary server logs here, not below
    (prefect.removeFilter if verbose else prefect.addFilter)(without_server_guide)


def without_server_guide(record: logging.LogRecord) -> bool:
    """Cut Prefect's "Starting temporary server on ADDRESS" record to that line: its second,
    a link to Prefect's guide to running a dedicated server, opens nothing on an offline
    machine, printed on every ``wxens run`` and ``wxens demo`` (docs/flows.md says how to
    run one). The address stays: it explains the wait while the server starts."""
    if isinstance(record.msg, str) and record.msg.startswith("Starting temporary server"):
        record.msg = record.msg.split("\n", 1)[0]
    return True
