"""Undoing what a failed write made: the store its first transaction was creating, and the
folders (and the lock file in them) made for it (:func:`pipeline.transaction.transaction`).

A full disk or a file-size limit met while a new store is created (``wxens forecast --out
new/f.zarr``, ``new/`` absent) left ``new/``, its lock file and a half-made store, which
a rerun had to recognise. What the failed write made is removed now, under the store's
lock; a store that was there before is never touched, and a lock file stays in a folder
that was there before, or that holds anything else (another process may be waiting on it).
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

log = logging.getLogger(__name__)


def missing_folders(path: Path) -> list[Path]:
    """The folders of ``path`` and its parents that do not exist yet, nearest first."""
    path = path.absolute()
    return [p for p in (path, *path.parents) if not p.exists()]


def undo_creation(store: Path, was_empty: bool, lock: Path, made: list[Path]) -> None:
    """Remove what a failed first write of ``store`` made: the store (only its content,
    if it was an empty folder before), then, if the folders ``made`` for it (nearest
    first, the lock's folder among them) hold nothing but ``lock``, the lock file and
    those folders. Call holding the lock. A failure is logged, never raised over the
    write's own error."""
    try:
        if was_empty:
            for part in store.iterdir():
                shutil.rmtree(part) if part.is_dir() else part.unlink()
        else:
            shutil.rmtree(store, ignore_errors=not store.exists())
        if made and lock.parent in made and [p.name for p in lock.parent.iterdir()] == [lock.name]:
            lock.unlink()
            remove_empty(made)
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
