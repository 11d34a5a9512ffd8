"""Fixtures of the flow tests: a real Prefect server, an isolated Prefect home, small stores.

One ``prefect server start`` subprocess (sqlite, loopback address, free port, its own
``PREFECT_HOME`` under a tmp dir) serves every test of the session; the pytest process
talks to it through ``temporary_settings`` so nothing is read from or written to
``~/.prefect``. The server and its children run in their own process group, stopped
(SIGTERM, then SIGKILL) when the session ends.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

SERVER_START_TIMEOUT_S = 180.0
"""A cold ``prefect server start`` migrates its sqlite database: ~15 s on 2 busy cores (the
tests' servers start from a migrated copy, :func:`migrated_database`)."""
QUIET_CLUSTER = {
    "distributed.worker.profile.enabled": False,
    "distributed.admin.tick.interval": "500ms",
    "distributed.worker.memory.monitor-interval": "1s",
    "distributed.admin.system-monitor.interval": "2s",
}
"""Dask settings of a cluster the tests keep up between tests. Idle, a 2-worker
``LocalCluster`` used about 6 CPU s a minute with dask's defaults (its statistical profiler
every 10 ms, event-loop tick every 20 ms and memory monitor every 100 ms, in each process),
about 1 s with these: the flows' cluster, made on first use, idled for the rest of the
session on each test process. The tests read none of what those serve (the dashboard's
profiles, blocked-loop warnings, memory limits)."""


REPOSITORY = Path(__file__).resolve().parents[2]
RESULT_FOLDERS = ("prefect-results", "outputs")
"""What a flow run leaves under ``.wxens`` in its working directory (:mod:`flows.runtime`)."""


def _results_in(root: Path) -> set[str]:
    """The folders of :data:`RESULT_FOLDERS` under ``root/.wxens`` and their entries."""
    found = set()
    for name in RESULT_FOLDERS:
        folder = root / ".wxens" / name
        if folder.is_dir():
            found |= {name, *(f"{name}/{entry}" for entry in os.listdir(folder))}
    return found


@pytest.fixture(autouse=True)
def _no_results_in_the_repository() -> Iterator[None]:
    """Fail a test whose flow ran in the repository's working directory: its Prefect
    results (``.wxens``, gitignored) piled up there unseen, and a later run of the same
    inputs there could read them. Under xdist a test beside it may be the one that wrote."""
    before = _results_in(REPOSITORY)
    yield
    left = sorted(_results_in(REPOSITORY) - before)
    assert not left, (
        f"a flow left {left} under {REPOSITORY / '.wxens'}: run it in a directory of its "
        "own (monkeypatch.chdir(tmp_path))"
    )


@dataclass(frozen=True)
class PrefectServer:
    """A running ``prefect server start`` and the environment its clients need."""

    api_url: str
    home: Path
    env: dict[str, str]
    process: subprocess.Popen
    log: Path


def _free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def prefect_env(home: Path, api_url: str | None = None) -> dict[str, str]:
    """The environment of a Prefect process isolated in ``home``, offline, quiet."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(
        PREFECT_HOME=str(home),
        PREFECT_PROFILES_PATH=str(home / "profiles.toml"),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_UI_ENABLED="false",
        PREFECT_SERVER_API_HOST="127.0.0.1",
        PREFECT_RESULTS_LOCAL_STORAGE_PATH=str(home / "storage"),
        PREFECT_LOGGING_LEVEL="INFO",
        # Served flow runs start a subprocess each; a busy 2-core machine needs time.
        PREFECT_RUNNER_POLL_FREQUENCY="2",
    )
    if api_url is not None:
        env["PREFECT_API_URL"] = api_url
    return env


def _healthy(api_url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{api_url}/health", timeout=5) as response:
            return response.status == 200
    except OSError:
        return False


def stop_process_group(process: subprocess.Popen, timeout: float = 30.0) -> None:
    """SIGTERM the group that ``process`` leads (started with a new session), then SIGKILL."""
    if process.poll() is not None:
        return
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 10.0)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


@pytest.fixture(scope="session")
def prefect_server(
    tmp_path_factory: pytest.TempPathFactory, migrated_database: Path
) -> Iterator[PrefectServer]:
    """A real ``prefect server start`` on 127.0.0.1, the pytest process pointed at it, its
    database a copy of :func:`migrated_database`."""
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker
    from prefect.settings import (
        PREFECT_API_URL,
        PREFECT_FLOWS_HEARTBEAT_FREQUENCY,
        PREFECT_HOME,
        PREFECT_RESULTS_LOCAL_STORAGE_PATH,
        PREFECT_SERVER_ANALYTICS_ENABLED,
        temporary_settings,
    )

    home = tmp_path_factory.mktemp("prefect-home")
    shutil.copyfile(migrated_database, home / "prefect.db")
    port = _free_loopback_port()
    api_url = f"http://127.0.0.1:{port}/api"
    log = home / "server.log"
    server_env = prefect_env(home)
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1"]
            + ["--port", str(port)],
            env=server_env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        while not _healthy(api_url):
            if process.poll() is not None or time.monotonic() > deadline:
                tail = log.read_text(errors="replace")[-3000:]
                pytest.fail(f"prefect server did not start on {api_url}:\n{tail}")
            time.sleep(0.5)
        with temporary_settings(
            updates={
                PREFECT_API_URL: api_url,
                PREFECT_HOME: str(home),
                PREFECT_RESULTS_LOCAL_STORAGE_PATH: str(home / "storage"),
                PREFECT_SERVER_ANALYTICS_ENABLED: False,
                # no heartbeat thread: each flow's end joined it, asleep in a 1 s step
                PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None,
            }
        ):
            yield PrefectServer(api_url, home, prefect_env(home, api_url), process, log)
            # The logs and events still queued, sent while the server is up: after it
            # stopped, their sends retried at exit for 75-85 s ("Error logging to API")
            # in each test process. Prefect's own test harness drains them so.
            APILogWorker.drain_all(timeout=30)
            EventsWorker.drain_all(timeout=30)
    finally:
        stop_process_group(process)


@pytest.fixture(scope="session")
def migrated_database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Prefect SQLite database migrated once per test run (``prefect server database
    upgrade``, in a Prefect home of its own), read-only: a copy spares each server the
    migration of a fresh database, the most of its start (:func:`temporary_server_env`,
    :func:`prefect_server`). The test processes of one run share it, the first to ask
    migrating it under a lock (each migrated its own: 10-20 s of CPU on 2 busy cores)."""
    from filelock import FileLock

    shared = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):  # the folder of this run's test processes
        shared = shared.parent
    home = shared / "prefect-migrated"
    with FileLock(shared / "prefect-migrated.lock"):
        if not (home / "migrated").exists():
            shutil.rmtree(home, ignore_errors=True)  # a process stopped mid-way
            home.mkdir()
            argv = [sys.executable, "-m", "prefect", "server", "database", "upgrade", "-y"]
            done = subprocess.run(argv, env=prefect_env(home), capture_output=True, text=True)
            assert done.returncode == 0, f"{' '.join(argv)} failed:\n{done.stderr[-3000:]}"
            (home / "migrated").touch()
    return home / "prefect.db"


@pytest.fixture
def temporary_server_env(migrated_database: Path) -> Callable[[Path], dict[str, str]]:
    """The environment of a command that starts Prefect's temporary server (no
    ``PREFECT_API_URL``) with its home in ``home``, made here holding a copy of
    :func:`migrated_database` (``prefect.db``, where that server keeps its runs)."""

    def env(home: Path) -> dict[str, str]:
        home.mkdir(parents=True)
        shutil.copyfile(migrated_database, home / "prefect.db")
        return prefect_env(home)

    return env


@pytest.fixture
def spawn(prefect_server: PrefectServer) -> Iterator[Callable[..., subprocess.Popen]]:
    """Start a command in its own process group with the Prefect server's environment,
    output to a log file (``env``: more variables, e.g. a PYTHONPATH); every group started
    is stopped after the test."""
    started: list[subprocess.Popen] = []

    def start(
        args: list[str], *, cwd: Path, log: Path, env: dict[str, str] | None = None
    ) -> subprocess.Popen:
        with log.open("wb") as sink:
            process = subprocess.Popen(
                args,
                cwd=cwd,
                env={**prefect_server.env, **(env or {})},
                stdout=sink,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        started.append(process)
        return process

    yield start
    for process in started:
        stop_process_group(process)


SYNTHETIC = "synthetic:n_lat=8,n_lon=12,n_times=40,step=6h,seed=1"
"""Ten days, 6-hourly, of the synthetic t2m on an 8 x 12 grid: small, with a known law."""
TINY_TRAINING = {
    "model": {
        "kind": "flow_matching",
        "backbone": {"widths": [8, 16], "attention_heads": 0, "embedding_dim": 16},
        "sample_nfe": 2,
    },
    "data": {"history": [-1, 0], "leads": [1, 2], "train": {"end": "2000-01-07"}},
    "optim": {"warmup_steps": 2},
    "steps": 12,
    "batch_size": 4,
    "validate_every": 100,
    "checkpoint_every": 6,
    "device": "cpu",
}
"""A model trained in seconds: the flows are under test here, not its skill."""


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The synthetic analysis store (:data:`SYNTHETIC`, t2m) and the training directory of
    a model trained on it with :data:`TINY_TRAINING` (``last.pt``), made once by ``wxens
    ingest`` and ``wxens train``; the tests read them and write elsewhere."""
    import yaml

    from flows.cli import main as wxens

    workdir = tmp_path_factory.mktemp("tiny-model")
    store, model, config = workdir / "truth.zarr", workdir / "model", workdir / "tiny.yaml"
    argv = ["ingest", SYNTHETIC, "--store", str(store), "--variables", "t2m", "--no-progress"]
    assert wxens(argv) == 0
    config.write_text(yaml.safe_dump(TINY_TRAINING))
    argv = ["train", "--store", str(store), "--config", str(config), "--out", str(model)]
    assert wxens([*argv, "--no-progress"]) == 0
    return store, model


CHAIN_INIT_TIMES = ["2000-01-08T00", "2000-01-08T06", "2000-01-08T12", "2000-01-08T18"]
CHAIN_MEMBERS = 8


@dataclass(frozen=True)
class ChainRun:
    """The outputs of one ``ensemble_run`` over the synthetic source (ingest, train,
    forecast, verify, report) and the summary it returned."""

    workdir: Path
    store: Path
    checkpoint: Path
    forecast: Path
    scores: Path
    report: Path
    parameters: dict
    summary: dict


@pytest.fixture(scope="session")
def dask_scheduler() -> Iterator[str]:
    """The address of a 2-worker, 1-thread-each ``LocalCluster`` (processes) shared by the
    flow tests; one cluster instead of one per flow keeps the suite fast."""
    import dask
    from distributed import LocalCluster

    with (
        dask.config.set(QUIET_CLUSTER),
        LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            dashboard_address=":0",
            silence_logs=logging.WARNING,
        ) as cluster,
    ):
        yield cluster.scheduler_address


@pytest.fixture(scope="session")
def chain(prefect_server, dask_scheduler, tmp_path_factory) -> ChainRun:
    """One whole ``ensemble_run`` (every step from the synthetic source), run in a
    working directory of its own (Prefect results go to its ``.wxens``)."""
    import yaml

    from flows.pipelines import ensemble_run

    workdir = tmp_path_factory.mktemp("chain")
    config = workdir / "tiny.yaml"
    config.write_text(yaml.safe_dump(TINY_TRAINING))
    paths = {
        "store": workdir / "truth.zarr",
        "checkpoint": workdir / "model",
        "forecast": workdir / "forecast.zarr",
        "scores": workdir / "scores.nc",
        "report": workdir / "report.html",
    }
    parameters = dict(
        store=str(paths["store"]),
        checkpoint=str(paths["checkpoint"]),
        forecast_store=str(paths["forecast"]),
        scores=str(paths["scores"]),
        report=str(paths["report"]),
        init_times=CHAIN_INIT_TIMES,
        members=CHAIN_MEMBERS,
        sources=[SYNTHETIC],
        variables=["t2m"],
        train_config=str(config),
        dask_scheduler=dask_scheduler,
    )
    with in_directory(workdir):
        summary = ensemble_run(**parameters)
    return ChainRun(workdir=workdir, parameters=parameters, summary=summary, **paths)


@contextlib.contextmanager
def in_directory(path: Path) -> Iterator[None]:
    """Run the block with ``path`` as the working directory (Prefect's results land there)."""
    old = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


def modification_times(*roots: Path) -> dict[Path, int]:
    """mtime (ns) of every file under ``roots``: what a skipped step must leave unchanged."""
    files = (p for root in roots for p in ([root] if root.is_file() else root.rglob("*")))
    return {p: p.stat().st_mtime_ns for p in files if p.is_file()}


@pytest.fixture
def file_times() -> Callable[..., dict[Path, int]]:
    """:func:`modification_times`, for the tests."""
    return modification_times
