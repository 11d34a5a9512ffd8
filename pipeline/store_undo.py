"""Undoing what a failed write made: the store its first transaction was creating
(:func:`pipeline.transaction.transaction`), and the empty folders a refused writer made
(:func:`pipeline.transaction.held_alone`).

A full disk or a file-size limit met while a new store is created (``wxens forecast --out
new/f.zarr``) left a half-made store, which a rerun had to recognise. It is removed now,
under the store's lock; a store that was there before is never touched. The lock file and
the folder made for it stay: another process may be waiting on that lock file, and one
that took it after it was removed would write beside a process holding a new one.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

log = logging.getLogger(__name__)


def undo_creation(store: Path, was_empty: bool) -> None:
    """Remove the store a failed first write was making (only its content, if it was an
    empty folder before). Call holding the lock. A failure is logged, never raised over
    the write's own error."""
    try:
        if was_empty:
            for part in store.iterdir():
                shutil.rmtree(part) if part.is_dir() else part.unlink()
        else:
            shutil.rmtree(store, ignore_errors=not store.exists())
    except OSError as err:
        log.warning("%s: could not remove what the failed first write made: %s", store, err)


def remove_empty(folders: list[Path]) -> None:
    """Remove each of ``folders`` (nearest first) that exists and is empty; stop at the
    first that holds something (a file another step wrote, which is kept)."""
    for folder in folders:
        try:
            folder.rmdir()
        except FileNotFoundError:
            continue
        except OSError:  # not empty (or not ours to remove): its parents hold it
            return
