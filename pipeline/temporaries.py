"""The temporary files an atomic write leaves beside its target when it is killed before its
rename (``kill -9``: no ``finally`` runs). A write makes ``.NAME.XXXXXXXX.SUFFIX`` with
``tempfile.mkstemp`` (8 random characters) and renames it onto ``NAME``; nothing else would
ever remove one left behind, so the next write of ``NAME`` does (:func:`remove_left`)."""

from __future__ import annotations

import contextlib
import glob
import re
import time
from pathlib import Path


def temporary_pattern(path: Path, suffix: str) -> re.Pattern[str]:
    """Names of the temporaries of a write of ``path`` ending in ``suffix``."""
    return re.compile(rf"\.{re.escape(path.name)}\.[A-Za-z0-9_]{{8}}{re.escape(suffix)}")


def remove_left(
    path: Path, suffix: str, *, idle_s: float = 0.0, keep: Path | None = None
) -> list[Path]:
    """Remove the temporaries of ``path`` (only names of exactly :func:`temporary_pattern`:
    other files, and other targets' temporaries, are kept) unwritten for at least
    ``idle_s`` seconds (0: all; more where a live writer's may be among them), but ``keep``
    (the caller's own). Returns those removed."""
    pattern, removed = temporary_pattern(path, suffix), []
    for stale in path.parent.glob(f".{glob.escape(path.name)}.*{glob.escape(suffix)}"):
        if stale == keep or not pattern.fullmatch(stale.name) or not stale.is_file():
            continue
        with contextlib.suppress(OSError):  # gone meanwhile: another writer removed it
            if time.time() - stale.stat().st_mtime >= idle_s:
                stale.unlink()
                removed.append(stale)
    return removed
