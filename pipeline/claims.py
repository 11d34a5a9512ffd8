"""Claims a process makes in small JSON files beside a store, so that other writers of it
can order their work around what it is about to write: forecasts share a store's batches
(:mod:`pipeline.forecast_claims`), ingests of consecutive periods append in time order
(:mod:`pipeline.ingest_turns`).

A claim names its process (:func:`this_process`: host, pid, start time) and when it was last
renewed (``taken``). It counts only while :func:`is_alive`: its process still runs on this
host (a later process given the same pid is not it), or, made on another host (nodes of a
cluster writing a store on a shared file system), it was renewed within
:data:`OTHER_HOST_CLAIM_S`. A claim never makes a writer wait for good: a claimant that
died or is stuck only costs the others some order.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from pathlib import Path

import psutil

log = logging.getLogger(__name__)

OTHER_HOST_CLAIM_S = 24 * 3600.0
"""Seconds another host's claim counts as alive after its process last renewed it (a
forecast run takes its claim again with each batch): this host cannot ask whether that
process is still there, and a batch never takes a day."""


def read_json(file: Path) -> dict:
    """The claims in ``file``: none if it is absent, unreadable (logged) or not an object (a
    claim only orders the work: a writer without one does it itself)."""
    try:
        claims = json.loads(file.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as err:
        log.warning("%s: unreadable (%s); its claims are ignored", file, err)
        return {}
    return claims if isinstance(claims, dict) else {}


def write_json(file: Path, claims: dict) -> None:
    """Replace ``file`` by ``claims`` at once (a reader never sees half of it)."""
    part = file.with_name(f"{file.name}.{os.getpid()}")
    try:
        part.write_text(json.dumps(claims, indent=1))
    except OSError as err:  # a full disk: a write error names no file; leave no part behind
        part.unlink(missing_ok=True)
        raise OSError(err.errno, err.strerror, str(part)) from err
    part.replace(file)


def is_alive(claim: dict) -> bool:
    """Whether the process of ``claim`` may still write: it exists and started when the
    claim says (a later process given the same pid is not it), or it ran on another host
    (which this one cannot ask) and renewed the claim within :data:`OTHER_HOST_CLAIM_S` (a
    claim without that time, of an older wxens, is as old as its process)."""
    if claim.get("host") != socket.gethostname():
        return age_s(claim) < OTHER_HOST_CLAIM_S
    try:
        process = psutil.Process(int(claim["pid"]))
        started = process.create_time()
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:  # another user's process
        return True
    return "started" not in claim or abs(started - float(claim["started"])) < 1.0


def age_s(claim: dict) -> float:
    """Seconds since ``claim`` was last renewed (since its process started, for a claim
    without that time; 0 for one without either)."""
    return time.time() - float(claim.get("taken", claim.get("started", time.time())))


def age_text(seconds: float) -> str:
    """``40 s``, ``12 min``, ``3.5 h``, ``2.0 d``: an age to read in a log line."""
    if seconds < 120:
        return f"{max(seconds, 0):.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h" if seconds < 172800 else f"{seconds / 86400:.1f} d"


def this_process() -> dict:
    """The claim fields naming this process: host, pid and start time (:func:`is_alive`)."""
    started = psutil.Process().create_time()
    return {"host": socket.gethostname(), "pid": os.getpid(), "started": started}
