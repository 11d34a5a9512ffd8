"""Transactional stores: every store wxens writes is an Icechunk repository of Zarr v3.

A write is a transaction (:func:`transaction`): a writable session at the tip of the
repository's branch, committed atomically when the block ends without error, discarded
otherwise (the chunk files it wrote deleted). A reader (:func:`open_dataset`,
:func:`read_attrs`) opens the last commit, a read-only snapshot: it never sees a
half-resized array or a half-written batch, whatever happens to the writer (``kill -9``,
a full disk). Writers are serialised by a lock file beside the store (``.NAME.lock``,
:mod:`filelock`): Icechunk's commit on a local file system is not a conditional write,
so two processes committing at once could otherwise both succeed. Chunk data of a killed
writer stay unreferenced and invisible; the next writer of an interrupted ingest removes
them (:func:`collect_garbage`), ``wxens compact`` those of any store.

A plain Zarr v3 store (an export, :mod:`pipeline.store_export`, or another tool's) is read
as it is; wxens writes only transactional stores. In a notebook::

    ds = pipeline.transaction.open_dataset("era5.zarr")   # or pipeline.store.open_store(...)

References: Icechunk, "transactions and version control for Zarr"
(https://icechunk.io/en/latest/version-control/); anemoi-datasets' finalise step.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import islice, takewhile
from pathlib import Path
from typing import Any

import icechunk
import xarray as xr
import zarr
from filelock import FileLock, Timeout
from zarr.abc.store import Store

from pipeline.errors import StoreError, refuse_dangling_link
from pipeline.grace import GC_GRACE
from pipeline.store_undo import remove_empty, settle_writes, undo_creation

log = logging.getLogger(__name__)

BRANCH = "main"
#: Seconds a writer waits silently for another writer's lock before saying so.
LOCK_NOTICE_S = 2.0

# wxens serialises commits itself (the lock file), which is what Icechunk's warning about
# concurrent commits on a local file system asks for; keep its log to errors.
icechunk.set_logs_filter("icechunk=error")


def lock_path(path: str | Path) -> Path:
    """The lock file that serialises the writers of the store at ``path`` (resolved: a
    symbolic link to a store, or a path through ``..``, takes the store's own lock, so two
    writers by two paths still wait for each other; and ``"."``, a checkpoint in the
    working directory, has no name of its own)."""
    path = Path(path).resolve()
    return path.with_name(f".{path.name}.lock")


def _file_lock(path: str | Path) -> FileLock:
    """The (unheld) lock of ``path``, its directory made; StoreError if a file stands where
    one of its folders should be (``afile/x.zarr``)."""
    path = Path(path)
    for parent in path.absolute().parents:  # the nearest one that exists must be a folder
        if parent.exists():
            if not parent.is_dir():
                raise StoreError(
                    f"{path}: {parent} is a file, not a folder; give a path in a folder "
                    "(one that is missing is created)"
                )
            break
    path.parent.mkdir(parents=True, exist_ok=True)
    return FileLock(lock_path(path))


def _storage(path: Path) -> icechunk.Storage:
    return icechunk.local_filesystem_storage(str(path.resolve()))


def is_repository(path: str | Path) -> bool:
    """Whether ``path`` holds an Icechunk repository (a transactional wxens store)."""
    path = Path(path)
    return (path / "refs").is_dir() and icechunk.Repository.exists(_storage(path))


def is_plain_zarr(path: str | Path) -> bool:
    """Whether ``path`` holds a plain (not transactional) Zarr v3 store."""
    return (Path(path) / "zarr.json").is_file()


def is_store(path: str | Path) -> bool:
    """Whether ``path`` holds a Zarr store wxens can read (transactional or plain)."""
    return is_repository(path) or is_plain_zarr(path)


def reader(path: str | Path, snapshot: str | None = None) -> Store | str:
    """A read-only view of the store at ``path``: the last commit of a transactional store
    (a snapshot; pickles, so dask workers can read it), or the commit ``snapshot`` (an id
    of :func:`commits`), or the path of a plain Zarr store. StoreError if neither is there."""
    path = Path(path)
    if is_repository(path):
        repo = icechunk.Repository.open(_storage(path))
        at = {"branch": BRANCH} if snapshot is None else {"snapshot_id": snapshot}
        return repo.readonly_session(**at).store
    if is_plain_zarr(path):
        return str(path)
    refuse_dangling_link(path)
    raise StoreError(f"{path}: no Zarr store there")


def open_dataset(path: str | Path, **kwargs: Any) -> xr.Dataset:
    """The store at ``path`` as a lazy Dataset of its last commit (``xr.open_zarr`` keywords)."""
    return open_snapshot(reader(path), **kwargs)


def open_snapshot(store: Store | str, **kwargs: Any) -> xr.Dataset:
    """The Zarr v3 ``store`` as a lazy Dataset (``xr.open_zarr`` keywords), its variables in
    sorted order: Zarr lists a group's arrays in no fixed order (it varied with
    ``PYTHONHASHSEED``), and a derived config's channels follow this one."""
    ds = xr.open_zarr(store, consolidated=False, zarr_format=3, **kwargs)
    return ds[sorted(map(str, ds.data_vars))]


def read_attrs(path: str | Path) -> dict[str, Any]:
    """The root group attributes of the store at ``path`` (its last commit)."""
    return zarr.open_group(reader(path), mode="r").attrs.asdict()


def is_empty_repository(path: str | Path) -> bool:
    """A repository with nothing committed in it yet: another writer is creating it now,
    or its creation was interrupted (the next transaction creates it again)."""
    path = Path(path)
    if is_repository(path):
        return not has_root_group(reader(path))
    return path.is_dir() and any(path.iterdir()) and _is_interrupted_creation(path)


def has_root_group(store: Store) -> bool:
    """Whether a transaction's ``store`` already holds a root group (a created store)."""
    try:
        zarr.open_group(store, mode="r")
    except FileNotFoundError:  # zarr.errors.GroupNotFoundError included
        return False
    return True


@contextmanager
def transaction(
    path: str | Path, message: str, metadata: dict[str, Any] | None = None
) -> Iterator[Store]:
    """Hold the store's lock, yield a writable Zarr store at the branch tip, commit on success
    (with ``metadata``, JSON values, read back by :func:`metadata_since`).

    The repository is created if ``path`` is absent or an empty folder (a repository whose
    creation was interrupted is created again). Nothing is committed when the block
    raises, and what it wrote is deleted; the lock is released either way. Not re-entrant:
    one transaction per store at a time in a process.
    """
    path = Path(path)
    if is_plain_zarr(path):
        raise StoreError(
            f"{path} is a plain Zarr store (an export, or written by another tool or an older "
            "wxens); wxens writes only transactional stores: write to a new store"
        )
    with locked(path):
        creates = _creates(path)  # what a failure removes (pipeline.store_undo)
        was_empty = creates and path.is_dir() and not any(path.iterdir())
        try:
            repo = _open_or_create(path)
            session = repo.writable_session(BRANCH)
            try:
                yield session.store
                if session.has_uncommitted_changes:
                    session.commit(message, metadata=metadata)
            except BaseException as err:  # an error before any write costs no clean-up
                settle_writes()  # the failed write's other chunk writes: not after the undo
                failed = isinstance(err, icechunk.IcechunkError)  # a commit part way too
                if not creates and (failed or _has_changes(session)):
                    _remove_unreferenced(path)
                raise
        except BaseException as err:
            if creates:  # the first write: its half-made store
                undo_creation(path, was_empty)
            os_error = as_os_error(err, path) if isinstance(err, icechunk.IcechunkError) else None
            if os_error is not None:  # a full disk: one line with the fix (the CLI)
                raise os_error from err
            raise


def _has_changes(session: icechunk.Session) -> bool:
    try:  # a session whose state cannot be read may have written: clean up
        return session.has_uncommitted_changes
    except icechunk.IcechunkError:
        return True


def _remove_unreferenced(path: Path) -> None:
    """After a failed transaction, under its lock: delete the chunk files, manifest or
    snapshot it wrote (on a full disk they held the space a rerun needs). A failure to
    delete is logged, never raised over the transaction's own error."""
    try:
        collect_garbage(path, left_by="this failed write")  # not an earlier, killed one
    except Exception as err:  # the write's error is the one to report
        log.warning("%s: could not remove what the failed write left: %s", path, err)


_OS_ERROR = re.compile(r"\(os error (\d+)\)")


def as_os_error(error: Exception, path: str | Path) -> OSError | None:
    """The ``OSError`` of the file system under an Icechunk error (a full disk, a
    read-only or forbidden folder: its message ends in "(os error 28)"), naming ``path``;
    None for another error. The CLI prints such an error as one line with the fix."""
    found = _OS_ERROR.search(str(error))
    if found is None:
        return None
    code = int(found.group(1))
    return OSError(code, os.strerror(code), str(path))


@contextmanager
def locked(path: str | Path) -> Iterator[None]:
    """Hold the lock of the store at ``path`` (waiting for another writer, and saying so)."""
    lock = _file_lock(path)
    try:
        lock.acquire(timeout=LOCK_NOTICE_S)
    except Timeout:
        log.info(  # a dead holder's lock is freed by the system: a long wait is a live one's
            "%s: another process is writing this store (it holds %s); waiting for it "
            "(Ctrl-C stops this one; `fuser %s` names the other, if it seems stuck)",
            path, lock.lock_file, lock.lock_file,
        )  # fmt: skip
        lock.acquire()
    try:
        yield
    finally:
        lock.release()


@contextmanager
def held_alone(path: str | Path) -> Iterator[None]:
    """Hold the lock of ``path`` (``.NAME.lock`` beside it, as a store's) for a writer that
    must not wait its turn (a training run into a directory, hours long, or a calibration
    of its checkpoint): StoreError at once if another process holds it. One refused before
    ``path`` is made removes the lock file it made (``.r.lock`` was left beside no ``r``).
    A refused one also removes the folders it made that are still empty: ``path`` and its
    missing parents (``--out sub/r`` refused left an empty ``sub/r`` or ``sub``)."""
    made = [p for p in (Path(path).absolute(), *Path(path).absolute().parents) if not p.exists()]
    lock, created = _file_lock(path), not lock_path(path).exists()
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise StoreError(
            f"{path}: another process is writing it (a wxens train or calibrate: it holds "
            f"{lock_path(path)}); wait for it to end, or write somewhere else"
        ) from None
    try:
        yield
    except BaseException:  # held still: no other process holds the file removed
        remove_empty(made[:1])
        if created and not Path(path).exists():
            lock_path(path).unlink(missing_ok=True)
        remove_empty(made[1:])
        raise
    finally:
        lock.release()


def _creates(path: Path) -> bool:
    """Whether a transaction of ``path`` creates its repository: it is absent, an empty
    folder or a creation interrupted; StoreError for a folder holding anything else."""
    if not path.exists():
        return True
    if icechunk.Repository.exists(_storage(path)):
        return False
    if any(path.iterdir()) and not _is_interrupted_creation(path):
        raise StoreError(f"{path} exists and is not a Zarr store wxens writes; choose another path")
    return True


def _open_or_create(path: Path) -> icechunk.Repository:
    storage = _storage(path)
    if icechunk.Repository.exists(storage):
        return icechunk.Repository.open(storage)
    if path.exists() and any(path.iterdir()):
        log.warning("%s: its creation was interrupted; creating it again", path)
        shutil.rmtree(path)
    return icechunk.Repository.create(storage)


def _is_interrupted_creation(path: Path) -> bool:
    """A folder holding only what Icechunk writes before its first branch exists."""
    names = {p.name for p in path.iterdir()}
    return names <= {"config.yaml", "snapshots", "refs", "repo"} and not any(
        (path / "refs").glob("branch.*/*")
    )


def commits(path: str | Path, limit: int | None = None) -> list[tuple[str, str, datetime]]:
    """The commits of the store at ``path``, newest first: (snapshot id, message, time),
    the newest ``limit`` only if given (each older one is a file read); none for a plain
    Zarr store."""
    return [(c.id, c.message, c.written_at) for c in islice(_ancestry(path), limit)]


def metadata_since(path: str | Path, snapshot: str | None) -> list[dict[str, Any]]:
    """The metadata of the commits of the store at ``path`` made after the commit
    ``snapshot`` (an id of :func:`commits`; None: every commit), newest first; none for a
    store that is not there."""
    return [dict(c.metadata) for c in takewhile(lambda c: c.id != snapshot, _ancestry(path))]


def _ancestry(path: str | Path) -> Iterator[Any]:
    """The commits of the store at ``path``, newest first, read as iterated (Icechunk's
    snapshot infos); none for a store that is no repository."""
    if not is_repository(path):
        return iter(())
    return icechunk.Repository.open(_storage(Path(path))).ancestry(branch=BRANCH)


def collect_garbage(path: str | Path, left_by: str = "an interrupted write") -> int:
    """Delete chunk, manifest and snapshot files no commit refers to (left by a killed
    writer, or ``left_by`` as the log line says); the number of objects deleted. Call
    inside the store's lock."""
    repo = icechunk.Repository.open(_storage(Path(path)))
    summary = repo.garbage_collect(datetime.now(UTC))
    deleted = summary.chunks_deleted + summary.manifests_deleted + summary.snapshots_deleted
    if deleted:
        log.info("%s: removed %d object(s) left by %s", path, deleted, left_by)
    return deleted


@dataclass(frozen=True)
class Compaction:
    """What :func:`compact` did: commits taken out of the history and those left in it
    (as :func:`commits` lists them), the objects (chunks, manifests, snapshots) and bytes
    deleted from disk, and the commits older than ``keep`` that the grace spared."""

    commits_expired: int
    commits_left: int
    objects_deleted: int
    bytes_deleted: int
    commits_spared: int = 0


def compact(path: str | Path, keep: timedelta, *, grace: timedelta = GC_GRACE) -> Compaction:
    """Forget the commits of the store at ``path`` older than ``keep`` (the last commit is
    always kept, so its data are untouched) and delete from disk what no kept commit
    refers to, under the store's lock. Every ingest block and forecast batch is a commit,
    so a store written on a schedule grows a long history; this bounds it. Objects younger
    than ``grace`` stay, and so does every commit that was the last one within ``grace``
    (and its files, however old): a reader may have opened it just before."""
    path = Path(path)
    refuse_dangling_link(path)
    if not is_repository(path):
        raise StoreError(f"{path}: not a transactional wxens store; nothing to compact")
    now = datetime.now(UTC)
    with locked(path):
        repo = icechunk.Repository.open(_storage(path))
        written = [c.written_at for c in repo.ancestry(branch=BRANCH)]  # newest first
        before = len(written)
        repo.expire_snapshots(min(now - keep, _last_since(written, now - grace)))
        left = sum(1 for _ in repo.ancestry(branch=BRANCH))
        summary = repo.garbage_collect(now - grace)
    deleted = summary.chunks_deleted + summary.manifests_deleted + summary.snapshots_deleted
    older = sum(1 for at in written[1:-1] if at < now - keep)  # never the last, nor the first
    return Compaction(before - left, left, deleted, summary.bytes_deleted, older - before + left)


def _last_since(written: list[datetime], since: datetime) -> datetime:
    """The time of the oldest commit that was the last one at some moment since ``since``
    (commit times ``written``, newest first): a reader that opened the store since then
    may be reading it, however old its files are, so it and those after it stay."""
    for at in written:
        if at <= since:
            return at
    return written[-1]
