"""Fixtures of the flow tests: a real Prefect server, an isolated Prefect home, small stores.

One ``prefect server start`` subprocess (sqlite, loopback address, free port, its own
``PREFECT_HOME`` under a tmp dir) serves every test of the session; the pytest process
talks to it through ``temporary_settings`` so nothing is read from or written to
``~/.prefect``. The server and its children run in their own process group, stopped
(SIGTERM, then SIGKILL) when the session ends.
"""

from __future__ import annotations

import os
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
"""A cold ``prefect server start`` migrates its sqlite database: ~15 s on 2 busy cores."""


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
def prefect_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrefectServer]:
    """A real ``prefect server start`` on 127.0.0.1, the pytest process pointed at it."""
    from prefect.settings import (
        PREFECT_API_URL,
        PREFECT_HOME,
        PREFECT_RESULTS_LOCAL_STORAGE_PATH,
        PREFECT_SERVER_ANALYTICS_ENABLED,
        temporary_settings,
    )

    home = tmp_path_factory.mktemp("prefect-home")
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
            }
        ):
            yield PrefectServer(api_url, home, prefect_env(home, api_url), process, log)
    finally:
        stop_process_group(process)


@pytest.fixture
def spawn(prefect_server: PrefectServer) -> Iterator[Callable[..., subprocess.Popen]]:
    """Start a command in its own process group with the Prefect server's environment,
    output to a log file; every group started is stopped after the test."""
    started: list[subprocess.Popen] = []

    def start(args: list[str], *, cwd: Path, log: Path) -> subprocess.Popen:
        with log.open("wb") as sink:
            process = subprocess.Popen(
                args,
                cwd=cwd,
                env=prefect_server.env,
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
