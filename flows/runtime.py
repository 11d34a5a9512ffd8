"""What every wxens task shares: retries on transient I/O, caching on inputs and files,
persisted results, and the library's log records shown in the Prefect UI.

- **Retries** (:func:`is_transient_io_error`): a transient I/O failure (a timeout, a
  dropped connection, ``EIO``/``EAGAIN`` of a flaky disk, network mount or object store)
  is retried, also where the library wrapped it into an
  :class:`~pipeline.errors.InputError` or :class:`~pipeline.errors.StoreError` (opening a
  Zarr source, reading a checkpoint); a permanent one (disk full, read-only file system,
  quota, a name too long, an invalid argument, a missing file, a denied permission), a
  bad input and any other exception fail at once with their message — retrying cannot
  fix them. :func:`pipeline.errors.is_transient` decides.
- **Caching** (:class:`FilesRead` + inputs + task source): the key hashes the task's
  arguments, its code, and the on-disk state (path, size, mtime of every file)
  of the paths it reads; a rerun with the same arguments over unchanged inputs is
  skipped. Flows pass ``refresh_cache=True`` (:func:`unless_done`) when a task's output
  is missing or incomplete, so a deleted output is rebuilt rather than trusted.
- **Results** are persisted as JSON (never pickle: a task returns only paths, lists and
  small dicts) under ``.wxens/prefect-results`` in the working directory (resolved when
  written), next to the project rather than in ``~/.prefect``. Prefect takes the
  serializer of a stored result from the file itself, so a file there is read only after
  :func:`is_plain_json_result` accepts it; any other file (a pickle, a result of an older
  wxens, a record naming another serializer) is deleted with a warning and the task runs
  again (:class:`PlainJsonResults`).
"""

from __future__ import annotations

import functools
import glob
import hashlib
import json
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from prefect import Task, task
from prefect.cache_policies import INPUTS, TASK_SOURCE, CachePolicy
from prefect.logging.handlers import APILogHandler
from prefect.serializers import JSONSerializer

from pipeline.errors import is_transient

RESULTS_DIR = Path(".wxens") / "prefect-results"
"""Relative: Prefect resolves it against the working directory when it writes a result."""
RESULT_SERIALIZER = JSONSerializer()
"""How task results are written: plain JSON, the standard library's encoder and decoder."""
MAX_RESULT_BYTES = 2**20
"""A stored result larger than this is not one of ours (they are a few hundred bytes)."""

log = logging.getLogger(__name__)

IO_RETRIES = 3
IO_RETRY_DELAYS_S = [2, 10, 30]
"""Waits before the 1st, 2nd and 3rd retry: long enough for a remount, short enough to see."""

LIBRARY_LOGGERS = ("pipeline", "generators", "verification", "flows")

F = TypeVar("F", bound=Callable[..., Any])


def is_transient_io_error(task: Task, task_run: Any, state: Any) -> bool:
    """Prefect ``retry_condition_fn``: retry the failure of ``state`` only when
    :func:`pipeline.errors.is_transient` says trying again may fix it."""
    return is_transient(state.result(raise_on_failure=False))


def files_state(spec: str | Path) -> str:
    """A digest of what is on disk at ``spec``: (path, size, mtime) of every file.

    ``spec`` is a file, a directory (a Zarr store, a checkpoint folder), a glob, or
    something else (a URL, ``synthetic:...``: "absent", its text being keyed already).
    Cost: one ``stat`` per file.
    """
    roots = (
        sorted(Path(p) for p in glob.glob(str(spec))) if glob.has_magic(str(spec)) else [Path(spec)]
    )
    digest = hashlib.sha256()
    for root in roots:
        if not root.exists():
            digest.update(f"{root}: absent\n".encode())
            continue
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
        for file in files:
            stat = file.stat()
            digest.update(f"{file}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


@dataclass
class FilesRead(CachePolicy):
    """Cache key part: the on-disk state (:func:`files_state`) of the task's input paths.

    parameters: names of the task arguments that are paths (or lists of paths) it reads.
    derived: ``(name, path_of)`` pairs: the task also reads ``path_of(argument)`` (the
    weights `wxens tune` stored beside a checkpoint) where the argument ``name`` is given.
    """

    parameters: tuple[str, ...] = ()
    derived: tuple[tuple[str, Callable[[Any], Path]], ...] = ()

    def compute_key(
        self,
        task_ctx: Any,
        inputs: dict[str, Any],
        flow_parameters: dict[str, Any],
        **kwargs: Any,
    ) -> str | None:
        digest = hashlib.sha256()
        for name in self.parameters:
            value = inputs.get(name)
            paths = value if isinstance(value, list | tuple) else [value]
            for path in paths:
                state = "none" if path is None else files_state(path)
                digest.update(f"{name}={path}:{state}\n".encode())
        for name, path_of in self.derived:
            value = inputs.get(name)
            state = "none" if value is None else files_state(path_of(value))
            digest.update(f"{name}->{state}\n".encode())
        return digest.hexdigest()


def is_plain_json_result(path: Path) -> bool:
    """Whether the stored result at ``path`` is a record Prefect can read without running
    code: JSON whose serializer is exactly :data:`RESULT_SERIALIZER` and whose value is
    plain JSON (strings, numbers, lists, objects; no ``__class__``/``__exc_type__`` object,
    which Prefect's decoder would turn into an imported type). Read with ``json`` only."""
    try:
        if path.stat().st_size > MAX_RESULT_BYTES:
            return False
        record = json.loads(path.read_bytes())
        serializer = record["metadata"]["serializer"]
        value = json.loads(record["result"])
    except (OSError, ValueError, KeyError, TypeError):
        return False
    return serializer == RESULT_SERIALIZER.model_dump(mode="json") and _plain(value)


def _plain(value: Any) -> bool:
    if isinstance(value, dict):
        return not {"__class__", "__exc_type__"} & value.keys() and all(
            _plain(v) for v in value.values()
        )
    if isinstance(value, list):
        return all(_plain(v) for v in value)
    return value is None or isinstance(value, str | int | float | bool)


@dataclass
class PlainJsonResults(CachePolicy):
    """The cache policy ``policy``, and a guard on what Prefect reads under its key.

    Prefect stores a task's result in the file named by the cache key and, on a cached
    run, reads it with the serializer the file names (``pickle`` included). Before the key
    is handed back, a file at :data:`RESULTS_DIR`/key that :func:`is_plain_json_result`
    refuses is deleted with a warning, so the task runs again instead of loading it.
    """

    policy: CachePolicy | None = None

    def compute_key(
        self,
        task_ctx: Any,
        inputs: dict[str, Any],
        flow_parameters: dict[str, Any],
        **kwargs: Any,
    ) -> str | None:
        if self.policy is None:
            return None
        key = self.policy.compute_key(task_ctx, inputs, flow_parameters, **kwargs)
        if key is not None:
            stored = RESULTS_DIR / key
            if stored.exists() and not is_plain_json_result(stored):
                log.warning(
                    "%s is not a plain JSON task result (written by an older wxens, or "
                    "replaced); deleted unread, the task runs again",
                    stored.resolve(),
                )
                stored.unlink()
        return key


def wxens_task(
    *,
    name: str,
    reads: tuple[str, ...],
    not_keyed: tuple[str, ...] = (),
    derived: tuple[tuple[str, Callable[[Any], Path]], ...] = (),
) -> Callable[[F], F]:
    """The decorator of every wxens task: retried on transient I/O errors, cached on its
    inputs, code and the state of the files named by ``reads``, result persisted as JSON
    (and read back only if plain JSON: :class:`PlainJsonResults`); the
    library's log records during the call go to the Prefect UI.

    not_keyed: arguments left out of the cache key (e.g. the dask scheduler address,
    which changes from run to run without changing the result); derived: files read
    beside an argument's path, keyed as :class:`FilesRead`'s.
    """
    inputs = INPUTS
    for argument in not_keyed:
        inputs = inputs - argument

    def decorate(fn: F) -> F:
        @functools.wraps(fn)
        def logged(*args: Any, **kwargs: Any) -> Any:
            with library_logs_to_run():
                return fn(*args, **kwargs)

        return task(
            name=name,
            cache_policy=PlainJsonResults(
                policy=inputs + TASK_SOURCE + FilesRead(parameters=reads, derived=derived)
            ),
            retries=IO_RETRIES,
            retry_delay_seconds=IO_RETRY_DELAYS_S,
            retry_condition_fn=is_transient_io_error,
            persist_result=True,
            result_storage=RESULTS_DIR,
            result_serializer=RESULT_SERIALIZER,
        )(logged)

    return decorate


def unless_done(task_: Task, done: bool) -> Task:
    """``task_`` set to run again, ignoring its cache, when its output is not ``done``."""
    return task_.with_options(refresh_cache=not done)


OUTPUTS_DIR = Path(".wxens") / "outputs"
"""Where :func:`record_outputs` notes which inputs wrote each output file (relative, as
:data:`RESULTS_DIR`)."""


def inputs_fingerprint(values: dict[str, Any], reads: tuple[str, ...] = ()) -> str:
    """A digest of a task's ``values`` (JSON-able arguments) and of the on-disk state
    (:func:`files_state`) of those of them named in ``reads`` (paths it reads)."""
    digest = hashlib.sha256(json.dumps(values, sort_keys=True, default=str).encode())
    for name in reads:
        value = values.get(name)
        for path in value if isinstance(value, list | tuple) else [value]:
            digest.update(
                f"{name}={path}:{'none' if path is None else files_state(path)}\n".encode()
            )
    return digest.hexdigest()


def _output_record(path: str) -> Path:
    return OUTPUTS_DIR / hashlib.sha256(str(Path(path).resolve()).encode()).hexdigest()


def outputs_current(paths: list[str | None], fingerprint: str) -> bool:
    """Whether every output file of ``paths`` (None: not asked for) is there as the inputs
    of ``fingerprint`` last wrote it (:func:`record_outputs`). Existing is not enough: a
    run of other inputs may have replaced the file since (a second forecast verified into
    the same scores file), and a cached rerun would then report that file as its own."""
    for path in paths:
        if path is None:
            continue
        if not Path(path).is_file():
            return False
        try:
            record = json.loads(_output_record(path).read_text())
        except (OSError, ValueError):
            return False
        if not isinstance(record, dict) or record.get("inputs") != fingerprint:
            return False
        if record.get("state") != files_state(path):
            return False
    return True


def record_outputs(paths: list[str | None], fingerprint: str) -> None:
    """Note that the inputs of ``fingerprint`` wrote the files ``paths`` as they are now
    (what :func:`outputs_current` checks)."""
    OUTPUTS_DIR.mkdir(parents=True, exist_ok=True)
    for path in paths:
        if path is not None and Path(path).is_file():
            record = {"path": str(Path(path).resolve()), "inputs": fingerprint}
            _output_record(path).write_text(json.dumps({**record, "state": files_state(path)}))


class _RunIds(logging.Filter):
    """Stamp records with one run's ids, so the API handler accepts them from any thread."""

    def __init__(self, flow_run_id: Any, task_run_id: Any) -> None:
        super().__init__()
        self.flow_run_id = flow_run_id
        self.task_run_id = task_run_id

    def filter(self, record: logging.LogRecord) -> bool:
        record.flow_run_id = getattr(record, "flow_run_id", None) or self.flow_run_id
        record.task_run_id = getattr(record, "task_run_id", None) or self.task_run_id
        return True


@contextmanager
def library_logs_to_run(level: int = logging.INFO) -> Iterator[None]:
    """Send the wxens library's log records (``pipeline``, ``generators``, ...) at
    ``level`` and above to the Prefect API, attached to the current flow or task run, for
    the duration of the block. Outside a run it does nothing."""
    from prefect.context import get_run_context
    from prefect.exceptions import MissingContextError

    try:
        context = get_run_context()
    except MissingContextError:
        yield
        return
    task_run = getattr(context, "task_run", None)
    flow_run = getattr(context, "flow_run", None)
    flow_run_id = flow_run.id if flow_run is not None else task_run.flow_run_id
    handler = APILogHandler(level=level)
    handler.addFilter(_RunIds(flow_run_id, task_run.id if task_run is not None else None))
    loggers = [logging.getLogger(name) for name in LIBRARY_LOGGERS]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.addHandler(handler)
        if logger.getEffectiveLevel() > level:
            logger.setLevel(level)
    try:
        yield
    finally:
        for logger, old in zip(loggers, levels, strict=True):
            logger.removeHandler(handler)
            logger.setLevel(old)


def subflow_seconds(state: Any) -> list[tuple[str, float]]:
    """(flow name, run time in seconds) of each subflow of the flow run behind ``state``
    (a flow's ``return_state=True`` result), in the order they started."""
    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterParentFlowRunId
    from prefect.client.schemas.sorting import FlowRunSort

    with get_client(sync_client=True) as client:
        parent = client.read_flow_run(state.state_details.flow_run_id)
        children = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(
                parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[parent.id])
            ),
            sort=FlowRunSort.START_TIME_ASC,
        )
        names = {run.flow_id: client.read_flow(run.flow_id).name for run in children}
    return [(names[run.flow_id], run.total_run_time.total_seconds()) for run in children]
