"""Two ingests of consecutive days into one store started together (cron jobs that overlap):
the later day's ingest reaching the lock first lets the earlier day's write first, so
neither day falls in a gap of the store.

Each ingest runs in a process of its own. The earlier day's is held back just before its
first transaction (it has opened its input, and announced its times, by then) until the
test lets it go, so the later day's reaches the lock first."""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import xarray as xr

import pipeline.ingest_turns as turns
from pipeline.ingest_turns import announced
from pipeline.store import ingest, open_store

SOURCE = "synthetic:n_lat=8,n_lon=8,n_times=12,step=6h,seed=7"
TIMES = pd.date_range("2000-01-01", periods=12, freq="6h")
DAYS = [slice(TIMES[4 * d], TIMES[4 * d + 3]) for d in range(3)]


def day(d: int) -> str:
    return f"slice({str(DAYS[d].start)!r}, {str(DAYS[d].stop)!r})"


def start(tmp_path: Path, name: str, d: int, held_back: bool = False) -> subprocess.Popen:
    """An ingest of day ``d`` into ``s.zarr`` in a new process, logging at INFO to
    ``NAME.log``; ``held_back``: it touches ``NAME.ready`` before its first transaction and
    waits there until the file ``go`` exists."""
    hold = (
        "import pathlib, time\n"
        "import pipeline.store as store\n"
        "real = store.transaction\n"
        "def held_back(*args, **kwargs):\n"
        f"    pathlib.Path({str(tmp_path / f'{name}.ready')!r}).touch()\n"
        f"    while not pathlib.Path({str(tmp_path / 'go')!r}).exists():\n"
        "        time.sleep(0.02)\n"
        "    return real(*args, **kwargs)\n"
        "store.transaction = held_back\n"
    )
    script = (
        "import logging\n"
        "logging.basicConfig(level=logging.INFO)\n"
        f"{hold if held_back else ''}"
        "from pipeline.store import ingest\n"
        f"ingest({SOURCE!r}, {str(tmp_path / 's.zarr')!r}, time={day(d)}, progress=False)\n"
    )
    log = (tmp_path / f"{name}.log").open("w")
    return subprocess.Popen([sys.executable, "-c", script], stdout=log, stderr=log)


def until(done, what: str, child: subprocess.Popen | None = None) -> None:
    """Wait until ``done()``; fail naming ``what`` if it never comes (or ``child`` ends)."""
    for _ in range(3000):
        if done():
            return
        assert child is None or child.poll() is None, f"ended before {what}"
        time.sleep(0.02)
    pytest.fail(f"never {what}")


def first_day_then_later_ingest_waiting(tmp_path: Path) -> tuple[subprocess.Popen, ...]:
    """``s.zarr`` of day 0; the ingest of day 1 held back before the lock, that of day 2
    started then: the two processes, once the later one says it waits (or ends)."""
    ingest(SOURCE, tmp_path / "s.zarr", time=DAYS[0], progress=False)
    earlier = start(tmp_path, "earlier", 1, held_back=True)
    until(lambda: (tmp_path / "earlier.ready").exists(), "held back", earlier)
    later = start(tmp_path, "later", 2)
    log = tmp_path / "later.log"
    until(lambda: later.poll() is not None or "waiting for" in log.read_text(), "waiting")
    return earlier, later


def test_the_later_day_reaching_the_lock_first_lets_the_earlier_one_write_first(tmp_path):
    earlier, later = first_day_then_later_ingest_waiting(tmp_path)
    (tmp_path / "go").touch()
    for name, child in (("earlier", earlier), ("later", later)):
        assert child.wait(timeout=120) == 0, (tmp_path / f"{name}.log").read_text()[-3000:]
    said = (tmp_path / "later.log").read_text()
    # said once (the lock's own "waiting for it" may follow while the earlier one writes)
    assert said.count("to append its earlier times first") == 1
    assert f"pid {earlier.pid} on {socket.gethostname()}" in said
    assert "first time 2000-01-02T00:00" in said
    got = open_store(tmp_path / "s.zarr")
    in_order = tmp_path / "in_order.zarr"
    for d in range(3):
        expected = ingest(SOURCE, in_order, time=DAYS[d], progress=False)
    assert got.missing_times == () and list(got.dataset.time.values) == list(TIMES)
    xr.testing.assert_equal(got.dataset.load(), expected.dataset.load())  # not the history
    xr.testing.assert_allclose(got.statistics, expected.statistics)
    assert not list(tmp_path.glob(".s.zarr.*.claim"))  # each ingest removed its claim


def test_an_earlier_ingest_killed_while_the_later_one_waits_does_not_block_it(tmp_path):
    earlier, later = first_day_then_later_ingest_waiting(tmp_path)
    assert "waiting for" in (tmp_path / "later.log").read_text()
    earlier.send_signal(signal.SIGKILL)
    assert earlier.wait(timeout=60) == -signal.SIGKILL
    assert later.wait(timeout=120) == 0, (tmp_path / "later.log").read_text()[-3000:]
    got = open_store(tmp_path / "s.zarr")
    assert got.missing_times == tuple(TIMES[4:8])  # the killed one's day: never appended
    assert not list(tmp_path.glob(".s.zarr.*.claim"))  # the dead one's removed too


def test_a_claim_never_written_is_waited_for_no_longer_than_the_limit(
    tmp_path, monkeypatch, caplog
):
    """A live claimant that never takes the lock (stuck): the later ingest goes on after
    :data:`~pipeline.ingest_turns.WAIT_S`, saying so; the earlier day is then late."""
    store = tmp_path / "s.zarr"
    ingest(SOURCE, store, time=DAYS[0], progress=False)
    monkeypatch.setattr(turns, "WAIT_S", 0.5)
    logger = logging.getLogger("pipeline.ingest_turns")
    logger.addHandler(caplog.handler)
    caplog.set_level(logging.INFO)
    try:
        with announced(store, TIMES[4:8]):  # this process: alive, and never writes them
            got = ingest(SOURCE, store, time=DAYS[2], progress=False)
    finally:
        logger.removeHandler(caplog.handler)
    assert f"waiting for the ingest of pid {os.getpid()}" in caplog.text
    assert "going on" in caplog.text and "first time 2000-01-02T00:00" in caplog.text
    assert got.missing_times == tuple(TIMES[4:8])
