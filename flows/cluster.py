"""Dask clusters for the steps that scale out: ingestion and verification.

A task that computes with dask enters :func:`dask_client`: it attaches to the scheduler
the user named (``--dask-scheduler tcp://host:8786``: the cluster is theirs and stays up)
or starts a ``distributed.LocalCluster`` on this machine for the duration of the call.
Either way the client is dask's default scheduler inside the block, so every dask
computation of the library call runs on the cluster, and nothing is left running after
it. The cluster is started inside the task, so a cached (skipped) task starts none.

The local cluster's dashboard listens on 127.0.0.1 (a free port, logged), so it is not
reachable from other machines; set ``WXENS_DASK_DASHBOARD`` to another address (e.g.
``0.0.0.0:8787`` to open it to the network, ``:8787`` for a fixed port on every
interface) or pass :class:`LocalClusterConfig` ``dashboard_address``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any

from pipeline.errors import InputError, counted

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 30
"""How long a client waits for a scheduler before the address is reported unreachable."""
WORKER_WAIT_S = 60
"""How long a client of a scheduler without workers waits for one to connect before the
work is refused (it waited for good, silently, with nothing to compute on)."""

_DISTRIBUTED_LOG_LEVEL = "DASK_LOGGING__DISTRIBUTED"

DASHBOARD_ENV = "WXENS_DASK_DASHBOARD"
"""Environment variable naming the local cluster's dashboard address (``host:port``)."""
DEFAULT_DASHBOARD = "127.0.0.1:0"
"""This machine only, on a free port."""


def worker_path(path: str) -> str:
    """``path`` as a dask worker must be given it: a local path made absolute (a worker
    has a working directory of its own, not this process's: ``model`` there is another
    folder, or none); a URL unchanged. The cluster must see this machine's files at the
    same paths (a shared file system) for a local path to work at all."""
    text = str(path)
    return text if "://" in text else os.path.abspath(text)


@dataclass(frozen=True)
class LocalClusterConfig:
    """Shape of the ``LocalCluster`` started when no scheduler address is given.

    processes: separate worker processes (true scale-out: paths, tasks and results cross
    a process boundary as on a multi-machine cluster) rather than threads.
    dashboard_address: ``host:port`` of the dashboard; None: ``$WXENS_DASK_DASHBOARD``,
    else :data:`DEFAULT_DASHBOARD` (127.0.0.1 on a free port).
    codec_threads: Zarr's codec pool in each worker process (None: Zarr's default, one
    thread per core and 4 more).
    """

    n_workers: int = 2
    threads_per_worker: int = 1
    processes: bool = True
    dashboard_address: str | None = None
    codec_threads: int | None = None

    def dashboard(self) -> str:
        """The dashboard address to bind."""
        return self.dashboard_address or os.environ.get(DASHBOARD_ENV) or DEFAULT_DASHBOARD


_bounded: LocalClusterConfig | None = None
"""The shape ``--threads`` gave the local clusters of this process (None: the default)."""


def bound_local_cluster(threads: int | None) -> None:
    """Start every later local cluster of this process as one worker of ``threads``
    threads (``--threads``: :func:`flows.threads.set_threads`); None: the default shape."""
    global _bounded
    _bounded = None if threads is None else LocalClusterConfig(1, threads, codec_threads=threads)


def local_cluster_config() -> LocalClusterConfig:
    """The shape of a local cluster started without one given: ``--threads``'s, if given."""
    return _bounded or LocalClusterConfig()


@contextmanager
def dask_client(
    scheduler: str | None = None, config: LocalClusterConfig | None = None
) -> Iterator[Any]:
    """A ``distributed.Client``, dask's default scheduler inside the block.

    scheduler: address of a running scheduler (e.g. ``tcp://10.0.0.5:8786``), or None to
               start a ``LocalCluster`` shaped by ``config`` (None:
               :func:`local_cluster_config`), closed when the block exits.

    Raises :class:`~pipeline.errors.InputError` naming the address when no scheduler
    answers there, or when no worker connects to it within :data:`WORKER_WAIT_S`.
    """
    from distributed import Client, LocalCluster
    from distributed.deploy.spec import SpecCluster

    config = config or local_cluster_config()
    logging.getLogger("asyncio").addFilter(_not_all_exit)  # for good: once is enough
    scheduler_given = scheduler is not None
    with ExitStack() as stack:
        if scheduler is None:
            stack.enter_context(_quiet_distributed())
            log.info(
                "starting a dask LocalCluster: %s x %s (%s)",
                counted(config.n_workers, "worker"),
                counted(config.threads_per_worker, "thread"),
                "processes" if config.processes else "threads",
            )
            before = set(SpecCluster._instances)
            try:
                with _sigint_ignored():  # in the worker processes it spawns
                    cluster = LocalCluster(
                        n_workers=config.n_workers,
                        threads_per_worker=config.threads_per_worker,
                        processes=config.processes,
                        dashboard_address=config.dashboard(),
                        silence_logs=logging.WARNING,
                        **_worker_environment(config),
                    )
            except BaseException as err:  # SIGTERM while the workers start (Ctrl-C is ignored)
                if _stopped(err):
                    with _logging_off():
                        _close_half_started(set(SpecCluster._instances) - before)
                raise
            stack.enter_context(cluster)
            log.info("dask dashboard: %s (set %s to change)", dashboard_url(cluster), DASHBOARD_ENV)
            scheduler = cluster.scheduler_address
        before = _default_client()
        try:
            client = Client(scheduler, timeout=CONNECT_TIMEOUT_S, set_as_default=True)
        except (ValueError, OSError, TimeoutError) as err:
            # a Client makes itself dask's default before it connects: one left half made
            # there took every later computation of the process, which then waited for good
            stray = _default_client()
            if stray is not None and stray is not before:
                stray.close()
            # not `from err`: its timeout made the task's retries on transient I/O wait
            # 3 times more, after the client's own CONNECT_TIMEOUT_S of trying
            raise _no_client(scheduler, err) from None
        stack.enter_context(client)
        try:
            if scheduler_given:
                _wait_for_a_worker(client, scheduler)
            yield client
        except BaseException as err:  # Ctrl-C, or SIGTERM: the CLI or Prefect says so
            if _stopped(err):
                with _logging_off():
                    stack.close()
            raise


def _wait_for_a_worker(client: Any, scheduler: str) -> None:
    """Wait up to :data:`WORKER_WAIT_S` for a worker at ``scheduler``, saying so, when none
    is connected: the work waited for one for good, silently (a forecast logged its
    initial times dealt "over 1 dask worker", to none)."""
    from distributed.client import WorkerStartTimeoutError

    if client.nthreads():  # asked of the scheduler (scheduler_info() is a cache)
        return
    log.info("waiting for a dask worker at %s (up to %d s)", scheduler, WORKER_WAIT_S)
    try:
        client.wait_for_workers(1, timeout=WORKER_WAIT_S)
    except WorkerStartTimeoutError:
        raise InputError(
            f"no dask worker connected to the scheduler at {scheduler!r} in {WORKER_WAIT_S} s; "
            f"start workers with `dask worker {scheduler}` (they must see the inputs and "
            "outputs at the same paths), or leave --dask-scheduler out to run on this machine"
        ) from None


def _close_half_started(clusters: set[Any]) -> None:
    """Close ``clusters``, which a SIGTERM left half started. Left to ``distributed``'s
    own clean-up at exit, they closed after the CLI's "terminated" line, logging the
    scheduler's close and an "Exception ignored in atexit callback" traceback (an
    ``AssertionError`` of a worker still starting). Tried once: not again at exit."""
    for cluster in clusters:
        with contextlib.suppress(Exception):
            cluster.close(timeout=10)
        cluster.shutdown_on_close = False


def _worker_environment(config: LocalClusterConfig) -> dict[str, Any]:
    """The worker processes' environment (``LocalCluster``'s ``env``), if ``config`` sets
    any of it: Zarr reads its ``threading.max_workers`` from ``ZARR_THREADING__MAX_WORKERS``."""
    if config.codec_threads is None or not config.processes:
        return {}
    return {"env": {"ZARR_THREADING__MAX_WORKERS": str(config.codec_threads)}}


def _default_client() -> Any:
    """The ``distributed`` client dask computes on by default, or None."""
    from distributed import Client

    try:
        return Client.current(allow_global=True)
    except ValueError:
        return None


def _no_client(scheduler: str, err: Exception) -> InputError:
    """The error of a ``scheduler`` address that is malformed (distributed's ValueError) or
    that no scheduler answers at."""
    if isinstance(err, ValueError):
        return InputError(
            f"--dask-scheduler {scheduler!r} is not a scheduler address ({err}); give "
            "HOST:PORT or tcp://HOST:PORT, as `dask scheduler` prints it"
        )
    return InputError(
        f"no dask scheduler answers at {scheduler!r} ({err}); start one with "
        "`dask scheduler` and workers with `dask worker ADDRESS`, or leave "
        "--dask-scheduler out to run on a local cluster"
    )


def dashboard_url(cluster: Any) -> str:
    """Where the dashboard of ``cluster`` really listens: its bound address, or
    "every interface" (``0.0.0.0``/``::``) with the cluster's own link."""
    try:
        sockets = cluster.scheduler.http_server._sockets.values()  # tornado's bound sockets
        bound = sorted({sock.getsockname()[:2] for sock in sockets})
    except AttributeError:  # another distributed version: its link is the best we know
        return str(cluster.dashboard_link)
    if not bound:
        return str(cluster.dashboard_link)
    host, port = bound[0]
    if host in ("0.0.0.0", "::"):
        return f"{cluster.dashboard_link}, listening on every interface"
    host = f"[{host}]" if ":" in host else host
    return f"http://{host}:{port}/status"


@contextmanager
def _quiet_distributed() -> Iterator[None]:
    """Only warnings from ``distributed`` (its INFO lines on every worker start and stop
    would bury the flow's own progress), here and in the worker processes it spawns; after
    an interrupt, only errors, for good (a SIGTERM while the workers start: their nannies
    logged the workers' deaths, and warned of their exit status, after the CLI's last line)."""
    logger = logging.getLogger("distributed")
    old_level, old_env = logger.level, os.environ.get(_DISTRIBUTED_LOG_LEVEL)
    logger.setLevel(logging.WARNING)
    os.environ[_DISTRIBUTED_LOG_LEVEL] = "warning"
    interrupted = False
    try:
        yield
    except BaseException as err:  # on the way out: what distributed closes at exit stays
        interrupted = _stopped(err)  # quiet, its warnings too ("exit status was already read")
        if interrupted:
            logger.setLevel(logging.ERROR)
        raise
    finally:
        if not interrupted:
            logger.setLevel(old_level)
            if old_env is None:
                os.environ.pop(_DISTRIBUTED_LOG_LEVEL, None)
            else:
                os.environ[_DISTRIBUTED_LOG_LEVEL] = old_env


def _stopped(err: BaseException) -> bool:
    """Whether ``err`` stops the process rather than failing its work: Ctrl-C or SIGTERM as
    the CLI raises them (``KeyboardInterrupt``), or SIGTERM as Prefect's engine raises it in
    a flow run that ``wxens serve`` stops (its ``TerminationSignal``, no ``Exception``: the
    half-started cluster it left was closed at exit, logging its close in the served log)."""
    return not isinstance(err, (Exception, GeneratorExit))


@contextmanager
def _sigint_ignored() -> Iterator[None]:
    """SIGINT ignored within the block, in this process and in the processes it starts
    (they inherit it, through ``exec`` too, and Python keeps an ignored SIGINT ignored):
    Ctrl-C reaches every process of the terminal's foreground group, and each worker of a
    local cluster printed its own KeyboardInterrupt traceback as it died; this process alone
    stops on it, and closes them. A Ctrl-C while the workers start (a second or two) is
    lost. Nothing off the main thread: it alone can set signal handlers."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    before = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:  # None: a handler not set from Python, which it cannot set back
        signal.signal(signal.SIGINT, signal.SIG_DFL if before is None else before)


@contextmanager
def _logging_off() -> Iterator[None]:
    """No log records within the block: closing a client and cluster that an interrupt
    stopped mid-computation logged what it abandoned (workers removed, tasks lost) above
    the CLI's one "interrupted" line."""
    before = logging.root.manager.disable
    logging.disable(logging.CRITICAL)
    try:
        yield
    finally:
        logging.disable(before)


def _not_all_exit(record: logging.LogRecord) -> bool:
    """False for asyncio's "Task exception was never retrieved" of a ``distributed``
    client's ``AllExit``: the client's closing ends each gather it abandoned (an interrupted
    computation) with it, and each logged a 6-line traceback, some 15 of them, when
    collected, which may be after the client is gone. Nothing went wrong there."""
    from distributed.client import AllExit

    return not (record.exc_info and isinstance(record.exc_info[1], AllExit))
