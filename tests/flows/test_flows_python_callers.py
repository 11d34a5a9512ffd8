"""A script that calls a flow as a Python function (docs/flows.md: each flow's Python
signature is the reference) with a bad input gets the library's exception, and the log
gets Prefect's record of it without a page of traceback (as ``wxens run`` shows one line)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

import pytest

from flows.cli import RUN_LOGGERS
from flows.deployments import prepare_flow_process
from pipeline.errors import InputError, StoreError


@pytest.fixture
def script_process():
    """Prefect's flow and task run loggers (where it logs a failed run) as in a script's
    own process: without the filters an earlier ``wxens`` command of this test process left
    on them, with what the script's import of :mod:`flows.pipelines` runs."""
    loggers = [logging.getLogger(name) for name in RUN_LOGGERS]
    kept = {logger: logger.filters[:] for logger in loggers}
    for logger in loggers:
        logger.filters.clear()
    prepare_flow_process()
    yield
    for logger in loggers:
        logger.filters[:] = kept[logger]


@contextlib.contextmanager
def run_records(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Capture in ``caplog`` what Prefect's run loggers log in the block."""
    loggers = [logging.getLogger(name) for name in RUN_LOGGERS]
    for logger in loggers:
        logger.addHandler(caplog.handler)
    try:
        yield
    finally:
        for logger in loggers:
            logger.removeHandler(caplog.handler)


def without_traceback(records: list[logging.LogRecord], error: str) -> None:
    """Prefect logged the failed run's exception (naming ``error``), no record a traceback."""
    failed = [r.getMessage() for r in records if "Encountered exception" in r.getMessage()]
    assert failed and all(error in message for message in failed), failed
    assert not [r.getMessage() for r in records if r.exc_info or r.exc_text]


def test_a_flow_called_on_a_missing_store_raises_its_store_error_without_a_traceback(
    prefect_server, tiny_model, tmp_path, script_process, caplog, monkeypatch
):
    """The failure is a task's (the forecast's read of the store): its record and the
    flow's come without traceback, and the caller gets the StoreError itself."""
    from flows.pipelines import forecast

    monkeypatch.chdir(tmp_path)  # Prefect's results (.wxens) land here, not in the repository

    _, model = tiny_model
    with run_records(caplog), pytest.raises(StoreError, match="gone.zarr: no such store"):
        forecast(str(model), str(tmp_path / "gone.zarr"), ["2000-01-08T00"], str(tmp_path / "f"))
    without_traceback(caplog.records, "gone.zarr: no such store")


def test_a_flow_called_with_an_unknown_variable_raises_its_input_error_without_a_traceback(
    prefect_server, tmp_path, script_process, caplog, monkeypatch
):
    from flows.pipelines import ingest

    monkeypatch.chdir(tmp_path)  # Prefect's results (.wxens) land here, not in the repository

    source = "synthetic:n_lat=4,n_lon=6,n_times=4,step=6h,seed=1"
    with run_records(caplog), pytest.raises(InputError, match="nope") as raised:
        ingest([source], str(tmp_path / "a.zarr"), variables=["nope"])
    without_traceback(caplog.records, str(raised.value)[:40])
