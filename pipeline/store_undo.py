"""Undoing what a failed write made: the store its first transaction was creating
(:func:`pipeline.transaction.transaction`), and the empty folders a refused writer made
(:func:`pipeline.transaction.held_alone`).

A full disk or a file-size limit met while a new store is created (``wxens forecast --out
new/f.zarr``) left a half-made store, which a rerun had to recognise. It is removed now,
under the store's lock; a store that was there before is never touched. The lock file and
the folder made for it stay: another process may be waiting on that lock file, and one
that took it after it was removed would write beside a process holding a new one.

Zarr writes an array's chunks concurrently on its event loop (``asyncio.gather``): the
first chunk write that fails reaches the writer while the others go on, and a store removed
then was made again by them (its folder and chunk files back after the undo, seen under
load). :func:`settle_writes` waits for them first.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
from pathlib import Path

from zarr.core.sync import sync

log = logging.getLogger(__name__)

#: Seconds :func:`settle_writes` waits at most for zarr's writes still running.
SETTLE_S = 60.0


def settle_writes(timeout: float = SETTLE_S) -> None:
    """Wait until the tasks still running on zarr's event loop end (the other chunk writes of
    a write one of which failed), at most ``timeout`` seconds; their errors are theirs."""

    async def others_ended() -> None:
        running = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        if running:
            await asyncio.wait(running, timeout=timeout)

    sync(others_ended())


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
