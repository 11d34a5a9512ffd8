"""The local dask cluster's dashboard listens on this machine only unless asked otherwise."""

from __future__ import annotations

import logging
from urllib.parse import urlparse

import psutil
import pytest

from flows.cluster import DASHBOARD_ENV, LocalClusterConfig, dask_client
from pipeline.errors import is_transient

THREADS = LocalClusterConfig(n_workers=1, processes=False)


def listening_hosts(port: int) -> set[str]:
    """The addresses with a socket listening on ``port``, as the operating system sees it."""
    return {
        c.laddr.ip
        for c in psutil.net_connections(kind="tcp")
        if c.status == psutil.CONN_LISTEN and c.laddr.port == port
    }


def test_dashboard_binds_loopback_and_the_log_says_where(caplog, monkeypatch):
    monkeypatch.delenv(DASHBOARD_ENV, raising=False)
    caplog.set_level(logging.INFO, logger="flows.cluster")
    with dask_client(None, THREADS) as client:
        port = urlparse(client.dashboard_link).port
        assert listening_hosts(port) == {"127.0.0.1"}
    assert f"dask dashboard: http://127.0.0.1:{port}/status" in caplog.text


def test_dashboard_address_from_the_environment(caplog, monkeypatch):
    monkeypatch.setenv(DASHBOARD_ENV, "0.0.0.0:0")
    caplog.set_level(logging.INFO, logger="flows.cluster")
    with dask_client(None, THREADS) as client:
        port = urlparse(client.dashboard_link).port
        assert listening_hosts(port) == {"0.0.0.0"}
    assert "listening on every interface" in caplog.text


@pytest.mark.parametrize(
    ("given", "env", "expected"),
    [
        (None, None, "127.0.0.1:0"),
        (None, ":8787", ":8787"),
        ("127.0.0.1:9000", ":8787", "127.0.0.1:9000"),
    ],
)
def test_dashboard_address_precedence(monkeypatch, given, env, expected):
    if env is None:
        monkeypatch.delenv(DASHBOARD_ENV, raising=False)
    else:
        monkeypatch.setenv(DASHBOARD_ENV, env)
    assert LocalClusterConfig(dashboard_address=given).dashboard() == expected


@pytest.mark.parametrize(
    ("address", "message"),
    [
        ("x", "is not a scheduler address"),
        ("tcp://", "is not a scheduler address"),
        ("tcp://127.0.0.1:1", "no dask scheduler answers"),
    ],
)
def test_a_scheduler_address_without_a_scheduler_is_an_input_error_and_leaves_dask_as_it_was(
    address, message, monkeypatch
):
    # the Client made itself dask's default before it failed: every later computation of
    # the process asked for a client that was not there (168 tests of one CI worker erred)
    # or, with 'tcp://', waited on it for good
    import dask
    import dask.array as da

    from flows import cluster as flows_dask
    from pipeline.errors import InputError

    monkeypatch.setattr(flows_dask, "CONNECT_TIMEOUT_S", 1)
    with pytest.raises(InputError, match=message) as raised:
        with dask_client(address):
            pass
    assert dask.config.get("scheduler", None) is None
    assert int(da.ones(3).sum().compute()) == 3
    # the client waited CONNECT_TIMEOUT_S (30 s) already: the task's retries on transient
    # I/O tried 3 times more, `wxens run --dask-scheduler` of a stopped scheduler erred
    # after about 3 minutes instead of 30 s
    assert not is_transient(raised.value)
