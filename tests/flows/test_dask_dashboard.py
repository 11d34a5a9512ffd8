"""The local dask cluster's dashboard listens on this machine only unless asked otherwise."""

from __future__ import annotations

import logging
from urllib.parse import urlparse

import psutil
import pytest

from flows.dask import DASHBOARD_ENV, LocalClusterConfig, dask_client

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
    caplog.set_level(logging.INFO, logger="flows.dask")
    with dask_client(None, THREADS) as client:
        port = urlparse(client.dashboard_link).port
        assert listening_hosts(port) == {"127.0.0.1"}
    assert f"dask dashboard: http://127.0.0.1:{port}/status" in caplog.text


def test_dashboard_address_from_the_environment(caplog, monkeypatch):
    monkeypatch.setenv(DASHBOARD_ENV, "0.0.0.0:0")
    caplog.set_level(logging.INFO, logger="flows.dask")
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


@pytest.mark.parametrize("address", ["x", "tcp://"])
def test_malformed_scheduler_address_is_an_input_error(address):
    from pipeline.errors import InputError

    with pytest.raises(InputError, match="--dask-scheduler"):
        with dask_client(address):
            pass
