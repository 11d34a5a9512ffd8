"""The crash matrix: a writer killed (``kill -9``) or out of disk space (``ENOSPC``) at
every write point of an ingest and of a forecast. After each, the store opens at its last
commit, ``wxens info`` tells the truth, the rerun gives data bit-identical to an
uninterrupted run, and no stray file or unreferenced object is left.

A kill is real: the writer runs in a child process that sends itself SIGKILL right after
the write point (mid-transaction, nothing flushed or cleaned up). ``ENOSPC`` is raised in
process at the same points.
"""

from __future__ import annotations

import errno
import importlib
import multiprocessing
import os
import signal
import traceback
from datetime import UTC, datetime
from pathlib import Path

import icechunk
import numpy as np
import pandas as pd
import pytest
import xarray as xr

import pipeline.ingest_blocks as blocks_module
import pipeline.store as store_module
from flows.cli import main
from pipeline.analysis_store import STATE_ATTR
from pipeline.forecast_store import ForecastProvenance, open_forecast, write_forecast
from pipeline.store import ingest, open_store, read_state

SOURCE = "synthetic:n_lat=5,n_lon=4,n_times=8,step=6h,seed=3"
FIRST = slice(None, "2000-01-01T18")  # the first 4 of the 8 times
PROVENANCE = ForecastProvenance("test", "0" * 16, "euler:nfe=2", 2, 0)

# (write point, target "module:attribute", call that fails, the scenario it belongs to).
# "create" ingests 8 times into a new store; "append" grows a 4-time store to 8.
INGEST_POINTS = [
    ("creation", "pipeline.store:_create", 1, "create"),
    ("time-axis growth", "pipeline.store:_append_template", 1, "append"),
    ("chunk write", "pipeline.ingest_blocks:write_region", 2, "create"),
    ("chunk write (append)", "pipeline.ingest_blocks:write_region", 1, "append"),
    ("state update", "pipeline.ingest_blocks:update_state", 1, "create"),
    ("statistics in one pass", "pipeline.running_statistics:RunningStatistics.result", 1, "create"),
    ("append statistics", "pipeline.running_statistics:RunningStatistics.result", 1, "append"),
    ("final state update", "pipeline.analysis_store:update_state", 1, "append"),
    ("commit", "icechunk:Session.commit", 3, "create"),
]
# a forecast writes batch A (2 new initial times), then batch B (1 rerun + 1 new)
FORECAST_POINTS = [
    ("creation", "xarray:Dataset.to_zarr", 1),
    ("region rewrite", "xarray:Dataset.to_zarr", 2),
    ("append", "xarray:Dataset.to_zarr", 3),
    ("commit", "icechunk:Session.commit", 2),
]


def fail_at(target: str, call: int, action: str, setattr=setattr) -> None:
    """Make the ``call``-th call of ``target`` ("module:attribute") fail with ``action``:
    ``kill`` (SIGKILL to this process) or ``enospc`` (OSError ENOSPC), right after the real
    call, or right before it for a commit (a transaction torn before it lands)."""
    module_name, attribute = target.split(":")
    owner = importlib.import_module(module_name)
    *parents, name = attribute.split(".")
    for parent in parents:
        owner = getattr(owner, parent)
    real, calls = getattr(owner, name), []

    def fail() -> None:
        if action == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        raise OSError(errno.ENOSPC, "No space left on device (simulated)")

    def wrapped(*args, **kwargs):
        calls.append(1)
        if len(calls) == call and name == "commit":
            fail()
        result = real(*args, **kwargs)
        if len(calls) == call:
            fail()
        return result

    setattr(owner, name, wrapped)


def ensemble(inits: list[str], value: float) -> xr.Dataset:
    shape = (len(inits), 3, 2, 4, 5)
    data = value + np.arange(np.prod(shape), dtype=np.float32).reshape(shape)
    return xr.Dataset(
        {"t2m": (("init_time", "member", "lead_time", "latitude", "longitude"), data)},
        coords={
            "init_time": pd.DatetimeIndex(inits),
            "member": np.arange(3),
            "lead_time": pd.to_timedelta([6, 12], unit="h"),
            "latitude": np.linspace(50, 53, 4),
            "longitude": np.linspace(0, 4, 5),
        },
    )


BATCH_A = (["2000-01-01T00", "2000-01-01T06"], 1.0)
BATCH_B = (["2000-01-01T06", "2000-01-01T12"], 100.0)


def write_both_batches(path: Path) -> None:
    for inits, value in (BATCH_A, BATCH_B):
        write_forecast(path, ensemble(inits, value), PROVENANCE)


def small_blocks(setattr=setattr) -> None:
    setattr(store_module, "MIN_CHUNK_BYTES", 1)  # one time a chunk
    setattr(blocks_module, "BLOCK_BYTES", 2 * 5 * 4 * 4)  # two times a block


# what this module imports, for the fork server to import once: not this module itself,
# which Python 3.11's server cannot find (it does not take in the tests' sys.path)
CHILD_IMPORTS = ("flows.cli", "pipeline.forecast_store", "pipeline.store", "pytest")


def killed(write: str, target: str, call: int, path: Path) -> None:
    """Run ``write(path)`` of this module in a child process killed at the write point. The
    child is forked from a server that imported what this module imports once, before any
    write was made (a new interpreter a child spent 1.5 s of CPU importing it anew)."""
    server = multiprocessing.get_context("forkserver")
    server.set_forkserver_preload(list(CHILD_IMPORTS))
    receive, send = server.Pipe(duplex=False)
    child = server.Process(target=write_until_killed, args=(write, target, call, path, send))
    child.start()
    send.close()
    child.join(timeout=300)
    if child.exitcode is None:
        child.kill()
        child.join()
        pytest.fail(f"the {write} child, to be killed at {target}, still ran after 300 s")
    try:
        said = receive.recv()  # nothing: the pipe closed as the child died
    except EOFError:
        said = ""
    assert child.exitcode == -signal.SIGKILL, f"exit code {child.exitcode}: {said[-3000:]}"


def write_until_killed(write: str, target: str, call: int, path: Path, said) -> None:
    """In the child process: ``write(path)`` with ``target``'s ``call``-th call killing it;
    a traceback that ended it otherwise is sent back on the pipe end ``said``."""
    os.chdir(path.parent)
    try:
        small_blocks()
        fail_at(target, call, "kill")
        globals()[write](path)
    except BaseException:
        said.send(traceback.format_exc())
        raise


def crash(write: str, target: str, call: int, action: str, path: Path, monkeypatch) -> None:
    """Run ``write(path)`` of this module until ``target``'s ``call``-th call fails with
    ``action``: a kill in a child process, ENOSPC in this one."""
    if action == "kill":
        killed(write, target, call, path)
        return
    with monkeypatch.context() as patch:
        fail_at(target, call, action, patch.setattr)
        with pytest.raises(OSError) as err:
            globals()[write](path)
    assert err.value.errno == errno.ENOSPC


def ingest_all(path: Path) -> None:
    ingest(SOURCE, path, progress=False)


@pytest.fixture(autouse=True)
def small_chunks(monkeypatch):
    small_blocks(monkeypatch.setattr)


@pytest.fixture(scope="module")
def ingest_reference(tmp_path_factory) -> dict[str, Path]:
    """Uninterrupted runs of both scenarios: one ingest, and one appended to."""
    root = tmp_path_factory.mktemp("reference")
    with pytest.MonkeyPatch.context() as patch:
        small_blocks(patch.setattr)
        ingest_all(root / "create.zarr")
        ingest(SOURCE, root / "append.zarr", time=FIRST, progress=False)
        ingest_all(root / "append.zarr")
    return {"create": root / "create.zarr", "append": root / "append.zarr"}


def comparable(content: dict[str, tuple]) -> dict[str, tuple]:
    """A store's content without its history (creation times) and written ranges (their
    split follows the block boundaries, the data do not)."""
    (attrs,) = content["/"]
    kept = {k: v for k, v in attrs.items() if k != "history"}
    if STATE_ATTR in kept:
        kept[STATE_ATTR] = {k: v for k, v in kept[STATE_ATTR].items() if k != "statistics"}
    return {**content, "/": (kept,)}


def assert_clean(path: Path) -> None:
    """No temporary file beside or in the store, no object no commit refers to."""
    names = [p.name for p in path.parent.rglob("*")]
    assert not [n for n in names if "tmp" in n or "#" in n], names
    repo = icechunk.Repository.open(icechunk.local_filesystem_storage(str(path)))
    left = repo.garbage_collect(datetime.now(UTC), dry_run=True)
    assert (left.chunks_deleted, left.manifests_deleted, left.snapshots_deleted) == (0, 0, 0)


def info(path: Path, capsys) -> tuple[int, str]:
    capsys.readouterr()
    code = main(["info", str(path)])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


@pytest.mark.parametrize("action", ["kill", "enospc"])
@pytest.mark.parametrize(
    ("point", "target", "call", "scenario"), INGEST_POINTS, ids=[p[0] for p in INGEST_POINTS]
)
def test_ingest_crash(
    tmp_path,
    capsys,
    monkeypatch,
    store_content,
    ingest_reference,
    point,
    target,
    call,
    scenario,
    action,
):
    path = tmp_path / "store.zarr"
    if scenario == "append":
        ingest(SOURCE, path, time=FIRST, progress=False)
    before = store_content(path) if scenario == "append" else None
    crash("ingest_all", target, call, action, path, monkeypatch)

    code, said = info(path, capsys)
    if scenario == "append":
        # the last commit is the 4-time store, or a later, incomplete one: readers then
        # read (and info describes) the 4-time store, the last complete commit
        assert code == 0 and "4 times" in said, said
        if read_state(path)["complete"]:
            assert comparable(store_content(path)) == comparable(before)
    elif point == "creation" and action == "enospc":  # a failed first write removes its store
        assert code == 2 and "no such store" in said and not path.exists(), said
    else:
        assert code == 2 and ("incomplete" in said or "empty store" in said), said

    resumed = ingest(SOURCE, path, progress=False)
    reference = ingest_reference[scenario]
    assert comparable(store_content(path)) == comparable(store_content(reference))
    xr.testing.assert_allclose(resumed.statistics, open_store(reference).statistics, rtol=1e-12)
    assert info(path, capsys)[0] == 0
    assert_clean(path)


@pytest.fixture(scope="module")
def forecast_reference(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("reference") / "forecast.zarr"
    write_both_batches(path)
    return path


@pytest.mark.parametrize("action", ["kill", "enospc"])
@pytest.mark.parametrize(
    ("point", "target", "call"), FORECAST_POINTS, ids=[p[0] for p in FORECAST_POINTS]
)
def test_forecast_crash(
    tmp_path, capsys, monkeypatch, store_content, forecast_reference, point, target, call, action
):
    path = tmp_path / "forecast.zarr"
    crash("write_both_batches", target, call, action, path, monkeypatch)

    code, said = info(path, capsys)
    if call == 1 and action == "enospc":  # a failed first write removes the store it made
        assert code == 2 and "no such store" in said and not path.exists(), said
    elif call == 1:  # the first batch never committed (killed: its empty store is left)
        assert code == 2 and "empty store" in said, said
    else:  # batch A, whole, as its commit left it
        assert code == 0 and "2 complete of 2 written" in said, said
        xr.testing.assert_identical(
            open_forecast(path).load(), open_forecast_after_batch_a(tmp_path).load()
        )

    write_both_batches(path)  # the rerun
    assert comparable(store_content(path)) == comparable(store_content(forecast_reference))
    assert_clean(path)


def open_forecast_after_batch_a(tmp_path: Path) -> xr.Dataset:
    path = tmp_path / "batch-a.zarr"
    write_forecast(path, ensemble(*BATCH_A), PROVENANCE)
    return open_forecast(path)


def test_a_failed_forecast_write_removes_the_chunks_it_wrote(tmp_path, monkeypatch):
    """Chunks too large to inline in a manifest (here 3 KB) are files the moment they are
    written; a write that fails before its commit lands (a full disk, or any error) left
    them unreferenced on disk, where only `wxens compact`, ten minutes later, found them:
    on a real full disk, 8 chunks, 4 manifests and a snapshot stayed after the rerun."""
    path = tmp_path / "forecast.zarr"
    big = ensemble(*BATCH_A).interp(
        latitude=np.linspace(50, 53, 16), longitude=np.linspace(0, 4, 16)
    )
    write_forecast(path, big.isel(init_time=[0]), PROVENANCE)
    with monkeypatch.context() as patch:
        fail_at("icechunk:Session.commit", 1, "enospc", patch.setattr)
        with pytest.raises(OSError):
            write_forecast(path, big.isel(init_time=[1]) + 1.0, PROVENANCE)
    assert_clean(path)
    assert open_forecast(path).sizes["init_time"] == 1
