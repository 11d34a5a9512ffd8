"""A writer waiting for another writer's lock: what it tells the operator."""

from __future__ import annotations

import threading

from filelock import FileLock

from pipeline import transaction
from pipeline.transaction import lock_path, locked


def test_a_writer_waiting_for_the_lock_names_the_lock_file_and_how_to_find_its_holder(
    tmp_path, monkeypatch, caplog
):
    """A forecast (or compact, ingest) waiting for another writer said only "another
    process is writing this store; waiting for it": nothing to look for when the wait goes
    on (a stopped or hung process holds the lock; a dead one's is freed by the system)."""
    store = tmp_path / "f.zarr"
    monkeypatch.setattr(transaction, "LOCK_NOTICE_S", 0.05)
    held, done = threading.Event(), threading.Event()

    def other_writer():  # another thread: filelock refuses a second holder in one thread
        with FileLock(lock_path(store)):
            held.set()
            done.wait(0.5)

    threading.Thread(target=other_writer).start()
    held.wait()
    with caplog.at_level("INFO", logger="pipeline.transaction"), locked(store):
        pass
    said = caplog.text
    assert "another process is writing this store" in said
    assert str(lock_path(store)) in said and f"fuser {lock_path(store)}" in said
