"""A failed first write leaves no store even while other chunk writes of it still run.

Zarr writes an array's chunks concurrently on its event loop: the first that fails reaches
the writer while the others go on. A store removed at once was made again by them (its
folder and a chunk file back after the undo: ``test_first_write_fails`` failed so under
load). A write still running is modelled by a task on zarr's loop that writes a chunk
file into the store a moment after the error."""

from __future__ import annotations

import asyncio
import time

import pytest
from zarr.core.sync import _get_loop

from pipeline.store_undo import settle_writes
from pipeline.transaction import lock_path, transaction


async def late_chunk_write(path, delay: float) -> None:
    await asyncio.sleep(delay)
    (path / "chunks").mkdir(parents=True, exist_ok=True)  # as the object store's put does
    (path / "chunks" / "late").write_bytes(b"x" * 100)


def test_a_failed_first_write_waits_for_its_other_chunk_writes_before_removing_the_store(
    tmp_path,
):
    path = tmp_path / "new.zarr"
    with pytest.raises(OSError, match="first chunk"):
        with transaction(path, "first write"):
            asyncio.run_coroutine_threadsafe(late_chunk_write(path, 0.5), _get_loop())
            raise OSError("the first chunk write failed")
    settle_writes()  # the late write has landed, whether the undo waited for it or not
    assert {p.name for p in tmp_path.iterdir()} == {lock_path(path).name}


def test_settle_writes_returns_once_the_loops_tasks_end_and_at_once_without_any(tmp_path):
    started = time.perf_counter()
    settle_writes()
    assert time.perf_counter() - started < 0.5  # nothing running: no wait
    asyncio.run_coroutine_threadsafe(late_chunk_write(tmp_path, 0.3), _get_loop())
    settle_writes()
    assert (tmp_path / "chunks" / "late").exists()
