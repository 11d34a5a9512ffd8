"""Bad input and faults: each fails fast with a clear message and no partial output, or
recovers — a killed forecast rerun writes each (init_time, lead) region once; an I/O
error raised once is retried."""

from __future__ import annotations

import errno
import os
import signal
import sys
import time
from pathlib import Path

import icechunk
import numpy as np
import pandas as pd
import pytest
import zarr

from pipeline.errors import InputError, StoreError

pytestmark = pytest.mark.slow

KILL_INIT_TIMES = [t.isoformat() for t in pd.date_range("2000-01-02T00", periods=12, freq="6h")]


def task_run_counts(state) -> list[int]:
    """How many times each task of the flow run behind ``state`` ran (1: no retry)."""
    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    flow_run_id = state.state_details.flow_run_id
    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
        )
    return [run.run_count for run in runs]


def test_a_missing_store_fails_at_once_and_writes_nothing(chain, tmp_path, monkeypatch):
    from flows.pipelines import forecast, verify

    monkeypatch.chdir(tmp_path)
    missing = tmp_path / "missing.zarr"
    out = tmp_path / "forecast.zarr"
    state = forecast(
        str(chain.checkpoint),
        str(missing),
        ["2000-01-08T00"],
        str(out),
        members=2,
        return_state=True,
    )
    with pytest.raises(StoreError, match=f"{missing}: no such store; create it with `wxens ingest"):
        state.result()
    assert task_run_counts(state) == [1]  # a StoreError is not retried
    assert not out.exists()

    scores = tmp_path / "scores.nc"
    with pytest.raises(StoreError, match="missing.zarr: no such store"):
        verify(str(chain.forecast), str(missing), str(scores), dask_scheduler=None)
    assert not scores.exists() and not list(tmp_path.glob(".scores.nc*"))


def test_wxens_run_reports_a_bad_input_in_its_flow_without_a_traceback(
    chain, prefect_server, tmp_path
):
    """Prefect logs the exception that fails a flow run with its traceback; for an error
    meant for a person the CLI keeps Prefect's one line and ends with its own message."""
    import subprocess

    argv = [sys.executable, "-m", "flows.cli", "run", "--store", str(tmp_path / "gone.zarr")]
    argv += ["--checkpoint", str(chain.checkpoint), "--out", "f.zarr", "--scores", "s.nc"]
    done = subprocess.run(
        argv, cwd=tmp_path, env=prefect_server.env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert "Encountered exception during execution: StoreError" in done.stderr
    assert done.stderr.count("gone.zarr: no such store") == 2  # Prefect's line, and the CLI's
    assert f"wxens run: error: {tmp_path / 'gone.zarr'}: no such store" in done.stderr
    verbose = subprocess.run(
        argv[:3] + ["-v"] + argv[3:],
        cwd=tmp_path,
        env=prefect_server.env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert verbose.returncode == 2 and "Traceback" in verbose.stderr  # -v keeps it


def test_a_rerun_asking_other_members_is_refused_not_skipped_as_done(chain, tmp_path, monkeypatch):
    """The chain's store holds its initial times: asking them again with other members was
    skipped as done, the store keeping its members silently."""
    from flows.pipelines import forecast

    monkeypatch.chdir(tmp_path)
    inits, members = chain.parameters["init_times"], chain.parameters["members"]
    args = (str(chain.checkpoint), str(chain.store), inits, str(chain.forecast))
    done = forecast(*args, members=members)  # the same request: skipped as done
    assert pd.DatetimeIndex(done).equals(pd.DatetimeIndex(inits))
    with pytest.raises(StoreError, match=f"holds {members} members, this forecast 3"):
        forecast(*args, members=3)


def test_an_unknown_variable_fails_at_once_and_writes_nothing(
    tmp_path, monkeypatch, dask_scheduler
):
    from flows.pipelines import ingest

    monkeypatch.chdir(tmp_path)
    store = tmp_path / "truth.zarr"
    state = ingest(
        ["synthetic:n_lat=6,n_lon=8,n_times=8"],
        str(store),
        variables=["t2mm"],
        dask_scheduler=dask_scheduler,
        return_state=True,
    )
    with pytest.raises(InputError, match="t2mm"):
        state.result()
    assert task_run_counts(state) == [1]
    assert not store.exists()


def test_a_checkpoint_from_another_grid_fails_at_once_and_writes_nothing(
    chain, tmp_path, monkeypatch
):
    from flows.pipelines import forecast
    from pipeline.store import ingest

    monkeypatch.chdir(tmp_path)
    other = ingest(
        "synthetic:n_lat=6,n_lon=10,n_times=40,step=6h", tmp_path / "other.zarr", progress=False
    )
    out = tmp_path / "forecast.zarr"
    state = forecast(
        str(chain.checkpoint),
        str(other.path),
        ["2000-01-08T00"],
        str(out),
        members=2,
        return_state=True,
    )
    with pytest.raises(InputError, match="was trained on a 8 x 12 grid.*has a 6 x 10 grid"):
        state.result()
    assert task_run_counts(state) == [1]
    assert not out.exists()


def test_an_io_error_raised_once_is_retried_and_the_run_succeeds(
    tmp_path, monkeypatch, dask_scheduler
):
    import pipeline.store
    from flows.pipelines import ingest
    from pipeline.store import open_store

    monkeypatch.chdir(tmp_path)
    store = tmp_path / "truth.zarr"
    real_ingest = pipeline.store.ingest
    calls = []

    def flaky_ingest(*args, **kwargs):
        calls.append(args)
        if len(calls) == 1:
            raise OSError(
                errno.EIO, "Input/output error (simulated, e.g. a dropped NFS mount)", str(store)
            )
        return real_ingest(*args, **kwargs)

    monkeypatch.setattr(pipeline.store, "ingest", flaky_ingest)
    state = ingest(
        ["synthetic:n_lat=6,n_lon=8,n_times=8"],
        str(store),
        dask_scheduler=dask_scheduler,
        return_state=True,
    )
    assert state.is_completed()
    assert len(calls) == 2
    assert task_run_counts(state) == [2]
    assert open_store(store).dataset.sizes["time"] == 8


def written_so_far(out: Path) -> pd.DatetimeIndex:
    """Complete initial times of a forecast store another process may be creating now."""
    from pipeline.forecast_store import complete_init_times

    try:
        return complete_init_times(str(out))
    except (StoreError, OSError, KeyError, ValueError):  # caught mid-creation: nothing yet
        return pd.DatetimeIndex([])


@pytest.mark.parametrize(
    ("error", "retried"),
    [
        (OSError(errno.EIO, "Input/output error"), True),
        (TimeoutError("read timed out"), True),
        (ConnectionResetError("connection reset by peer"), True),
        (FileNotFoundError(errno.ENOENT, "No such file"), False),
        (PermissionError(errno.EACCES, "Permission denied"), False),
        (StoreError("x.zarr: no such store"), False),
        (InputError("unknown variable 't2mm'"), False),
        (ValueError("a bug"), False),
    ],
)
def test_only_transient_io_errors_are_retried(error, retried):
    from prefect.states import Failed

    from flows.runtime import is_transient_io_error

    assert is_transient_io_error(None, None, Failed(data=error)) is retried


@pytest.mark.parametrize(
    ("error", "attempts"),
    [
        # wrapped by the library, as opening a Zarr source on a dropped mount is: retried
        (InputError("era5.zarr: cannot be opened"), 2),
        # a full disk: fails at once (EROFS, EDQUOT, ...: tests/pipeline/test_errors.py)
        (OSError(errno.ENOSPC, "No space left on device"), 1),
    ],
    ids=["wrapped-EIO", "ENOSPC"],
)
def test_a_wxens_task_retries_a_wrapped_transient_error_and_never_a_full_disk(
    prefect_server, tmp_path, monkeypatch, error, attempts
):
    from prefect import flow

    import flows.runtime

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(flows.runtime, "IO_RETRY_DELAYS_S", [0] * flows.runtime.IO_RETRIES)
    calls: list[int] = []

    @flows.runtime.wxens_task(name="flaky-write", reads=())
    def flaky_write(path: str) -> str:
        calls.append(1)
        if len(calls) == 1:
            if isinstance(error, InputError):
                cause = OSError(errno.EIO, "Input/output error", path)
                raise error from cause
            raise error
        return path

    @flow(name="write-once")
    def write_once(path: str) -> str:
        return flaky_write(path)

    state = write_once(str(tmp_path / "out.zarr"), return_state=True)
    assert len(calls) == attempts
    assert task_run_counts(state) == [attempts]
    if attempts == 1:
        with pytest.raises(OSError, match=error.strerror):
            state.result()
    else:
        assert state.result() == str(tmp_path / "out.zarr")


def rewritten_inits(store: Path, since: str) -> set[int]:
    """Indexes of the initial times whose chunks a commit after snapshot ``since`` wrote
    (in the arrays of one chunk per initial time, the members; the coordinates along
    init_time hold thousands a chunk, which every append rewrites)."""
    repo = icechunk.Repository.open(icechunk.local_filesystem_storage(str(store)))
    diff = repo.diff(from_snapshot_id=since, to_branch="main")
    group = zarr.open_group(repo.readonly_session(branch="main").store, mode="r")
    along = {
        f"/{name}"
        for name, a in group.arrays()
        if a.metadata.dimension_names[0] == "init_time" and a.chunks[0] == 1
    }
    return {
        int(i[0]) for name, chunks in diff.updated_chunks.items() if name in along for i in chunks
    }


def tip(store: Path) -> str:
    repo = icechunk.Repository.open(icechunk.local_filesystem_storage(str(store)))
    return repo.lookup_branch("main")


def test_a_forecast_killed_midway_then_rerun_writes_each_region_once(
    chain, tmp_path, spawn, monkeypatch
):
    from flows.pipelines import forecast
    from pipeline.forecast_store import complete_init_times, open_forecast
    from pipeline.transaction import open_dataset

    out = tmp_path / "forecast.zarr"
    arguments = dict(
        checkpoint=str(chain.checkpoint),
        store=str(chain.store),
        init_times=KILL_INIT_TIMES,
        out=str(out),
        members=16,
        batch_members=16,  # one initial time per task
        sampler="euler:nfe=8",
    )
    code = f"from flows.pipelines import forecast; forecast(**{arguments!r})"
    log = tmp_path / "killed.log"
    process = spawn([sys.executable, "-c", code], cwd=tmp_path, log=log)
    deadline = time.monotonic() + 300
    while len(written_so_far(out)) < 2:
        assert process.poll() is None, (
            f"the forecast ended before it could be killed:\n{log.read_text()[-3000:]}"
        )
        assert time.monotonic() < deadline, log.read_text()[-3000:]
        time.sleep(0.1)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    finished = complete_init_times(str(out))
    assert 2 <= len(finished) < len(KILL_INIT_TIMES), "the kill came too late to test anything"
    stored = pd.DatetimeIndex(open_forecast(out, complete_only=False)["init_time"].values)
    assert stored.equals(finished), "a killed batch leaves nothing behind"
    after_kill = tip(out)

    monkeypatch.chdir(tmp_path)
    done = forecast(**arguments)

    assert done == KILL_INIT_TIMES
    ds = open_forecast(out)  # complete initial times only
    inits = pd.DatetimeIndex(ds["init_time"].values)
    assert inits.is_unique and inits.equals(pd.DatetimeIndex(KILL_INIT_TIMES))
    assert not inits.difference(complete_init_times(str(out))).size
    assert np.isfinite(ds["t2m"]).all()
    rewritten = rewritten_inits(out, after_kill)
    raw = pd.DatetimeIndex(open_dataset(out)["init_time"].values)  # store order, not sorted
    finished_at = {int(raw.get_loc(t)) for t in finished}
    assert rewritten and not rewritten & finished_at, "finished before the kill: not rewritten"
