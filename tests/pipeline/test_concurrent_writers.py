"""Writers in several processes at once on one store, and readers while they write.

Two forecasts on disjoint initial times both land; on the same initial times the later
writer keeps what the first wrote (whole, never mixed); two ingests of one range never
duplicate a time; a reader during writes never crashes and never sees a half-written batch.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from pipeline.errors import StoreError
from pipeline.forecast_store import ForecastProvenance, open_forecast, write_forecast
from pipeline.store import ingest, open_store

PROVENANCE = ForecastProvenance("test", "0" * 16, "euler:nfe=2", 2, 0)
SOURCE = "synthetic:n_lat=6,n_lon=5,n_times=24,step=6h,seed=5"
INITS = pd.date_range("2000-01-01", periods=8, freq="6h")


def ensemble(init: pd.Timestamp, value: float) -> xr.Dataset:
    """One initial time's ensemble whose every value is ``value`` + its position."""
    shape = (1, 4, 3, 6, 5)
    data = value + np.arange(np.prod(shape), dtype=np.float32).reshape(shape)
    return xr.Dataset(
        {"t2m": (("init_time", "member", "lead_time", "latitude", "longitude"), data)},
        coords={
            "init_time": [init],
            "member": np.arange(4),
            "lead_time": pd.to_timedelta([6, 12, 18], unit="h"),
            "latitude": np.linspace(50, 55, 6),
            "longitude": np.linspace(0, 4, 5),
        },
    )


def write_each(path: str, positions: list[int], value: float, replace: bool) -> None:
    """Write INITS[positions] one batch each (what a forecast run does batch by batch)."""
    for i in positions:
        write_forecast(path, ensemble(INITS[i], value + i), PROVENANCE, replace=replace)


def start_together(tmp_path: Path, calls: list[str]) -> list[subprocess.Popen]:
    """Start one child per ``calls`` entry (Python run after this module is imported);
    each waits for a go file, so they begin their writes at the same moment."""
    go = tmp_path / "go"
    children = []
    for k, call in enumerate(calls):
        script = (
            f"import sys, time, pathlib; sys.path.insert(0, {str(Path(__file__).parent)!r})\n"
            "from test_concurrent_writers import *\n"
            f"while not pathlib.Path({str(go)!r}).exists(): time.sleep(0.01)\n"
            f"{call}\n"
        )
        log = (tmp_path / f"child{k}.log").open("w")
        children.append(
            subprocess.Popen([sys.executable, "-c", script], stdout=log, stderr=log, cwd=tmp_path)
        )
    time.sleep(3)  # let them import
    go.touch()
    return children


def finish(children: list[subprocess.Popen], tmp_path: Path) -> None:
    for k, child in enumerate(children):
        assert child.wait(timeout=300) == 0, (tmp_path / f"child{k}.log").read_text()[-3000:]


def two_writers(tmp_path: Path, first: tuple, second: tuple) -> str:
    """``write_each`` with the arguments ``first`` and ``second`` in two processes at once."""
    path = str(tmp_path / "f.zarr")
    calls = [f"write_each({path!r}, {list(a)!r}, {v!r}, {r!r})" for a, v, r in (first, second)]
    finish(start_together(tmp_path, calls), tmp_path)
    return path


def test_two_forecasts_on_disjoint_initial_times_both_land(tmp_path):
    path = two_writers(tmp_path, ([0, 2, 4, 6], 0.0, True), ([1, 3, 5, 7], 0.0, True))
    single = tmp_path / "single.zarr"
    write_each(str(single), list(range(8)), 0.0, True)
    got = open_forecast(path).load()
    assert pd.DatetimeIndex(got.init_time.values).equals(INITS)
    xr.testing.assert_identical(got, open_forecast(single).load())


def test_two_forecasts_on_the_same_initial_times_never_mix(tmp_path):
    path = two_writers(tmp_path, (range(8), 0.0, False), (range(8), 1000.0, False))
    got = open_forecast(path).load()
    assert pd.DatetimeIndex(got.init_time.values).equals(INITS), "each initial time once"
    for i in range(8):  # each initial time whole from one writer: its first value says which
        one = got.t2m.isel(init_time=i).values
        first = float(one.flat[0])
        assert first in (i, 1000.0 + i)
        np.testing.assert_array_equal(one, ensemble(INITS[i], first).t2m.values[0])


def test_two_ingests_of_the_same_range_never_duplicate_a_time(tmp_path, store_content):
    path = str(tmp_path / "a.zarr")
    call = f"ingest({SOURCE!r}, {path!r}, progress=False)"
    children = start_together(tmp_path, [call, call])
    finish(children, tmp_path)
    reference = ingest(SOURCE, tmp_path / "reference.zarr", progress=False)
    times = pd.DatetimeIndex(open_store(path).dataset.time.values)
    assert times.is_unique and times.is_monotonic_increasing and times.size == 24
    got, want = store_content(Path(path)), store_content(reference.path)
    for content in (got, want):
        content["/"][0].pop("history")
        content["/"][0]["wxens_ingest"].pop("statistics")
    assert got == want
    xr.testing.assert_allclose(open_store(path).statistics, reference.statistics, rtol=1e-12)


def test_a_reader_during_writes_sees_whole_batches_only(tmp_path):
    path = tmp_path / "f.zarr"
    write_each(str(path), [0], 0.0, True)
    (writer,) = start_together(
        tmp_path, [f"write_each({str(path)!r}, list(range(1, 8)), 0.0, True)"]
    )
    seen, reads = [], 0
    while writer.poll() is None or reads == 0:
        try:
            ds = open_forecast(path).load()
        except StoreError as err:  # never: the store exists from the start
            pytest.fail(f"a reader failed during a write: {err}")
        reads += 1
        n = ds.sizes["init_time"]
        seen.append(n)
        expected = xr.concat([ensemble(t, float(i)) for i, t in enumerate(INITS[:n])], "init_time")
        np.testing.assert_array_equal(ds.t2m.values, expected.t2m.values)
    finish([writer], tmp_path)
    assert seen == sorted(seen) and reads > 1


def test_a_writer_waits_for_a_repository_another_writer_is_creating(tmp_path):
    """Another writer holds the lock and has written only part of the new repository: its
    first snapshot and a branch ref still in its temporary file (Icechunk writes then
    renames). A second writer must wait for the lock, not judge that folder from outside
    it as foreign ("exists and is not a Zarr store", seen on a loaded CI machine)."""
    import shutil
    import threading

    import icechunk

    from pipeline.transaction import locked

    path = tmp_path / "f.zarr"
    outcome: list[object] = []
    with locked(path):
        (path / "snapshots").mkdir(parents=True)
        (path / "snapshots" / "1CECHNKREP0F1RSTCMT0").write_bytes(b"")
        (path / "refs" / "branch.main").mkdir(parents=True)
        (path / "refs" / "branch.main" / "ref.json#1").write_bytes(b"")

        def second_writer() -> None:
            try:
                outcome.append(write_forecast(path, ensemble(INITS[1], 1.0), PROVENANCE))
            except Exception as err:  # noqa: BLE001 (the assertion below reports it)
                outcome.append(err)

        thread = threading.Thread(target=second_writer)
        thread.start()
        thread.join(timeout=2.0)
        assert outcome == [], outcome  # waiting for the lock, not failed
        for part in path.iterdir():  # the first writer finishes its repository
            shutil.rmtree(part)
        icechunk.Repository.create(icechunk.local_filesystem_storage(str(path)))
    thread.join(timeout=60)
    assert len(outcome) == 1 and not isinstance(outcome[0], Exception), outcome
    assert list(open_forecast(path).init_time.values) == [INITS[1]]


def finish_any(children: list[subprocess.Popen], tmp_path: Path) -> list[int]:
    """Each child's exit code (waited for); the log of one that crashed fails the test."""
    codes = [child.wait(timeout=300) for child in children]
    for k, code in enumerate(codes):
        log = (tmp_path / f"child{k}.log").read_text()
        assert code == 0 or "StoreError" in log, log[-3000:]
    return codes


def test_two_overwrites_leave_one_whole_store(tmp_path, store_content):
    """Two ``--overwrite`` ingests of different inputs at once: each replaces the store
    whole in turn (the second waits for the first), never a mix or a store half-built."""
    path = tmp_path / "a.zarr"
    ingest(SOURCE, path, progress=False)
    sources = [SOURCE.replace("seed=5", f"seed={seed}") for seed in (6, 7)]
    calls = [f"ingest({s!r}, {str(path)!r}, overwrite=True, progress=False)" for s in sources]
    finish(start_together(tmp_path, calls), tmp_path)
    got = store_content(path)
    whole = []
    for k, source in enumerate(sources):
        want = store_content(ingest(source, tmp_path / f"want{k}.zarr", progress=False).path)
        for content in (got, want):
            content["/"][0].pop("history", None)
        whole.append(got == want)
    assert any(whole), "the store is neither input's whole"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("a.zarr")) == [
        "a.zarr"
    ], "a temporary store was left"


def test_two_exports_to_one_path_leave_one_whole_copy(tmp_path):
    """Two exports to the same path at once: one writes it, the other says it exists; the
    copy is whole (neither deletes the other's temporary)."""
    from pipeline.store_export import EXPORT_ATTR
    from pipeline.transaction import open_dataset

    path = tmp_path / "a.zarr"
    ingest(SOURCE, path, progress=False)
    out = tmp_path / "plain.zarr"
    call = f"export({str(path)!r}, {str(out)!r}, progress=False)"
    script = "from pipeline.store_export import export\n"
    codes = finish_any(start_together(tmp_path, [script + call] * 2), tmp_path)
    assert sorted(codes) == [0, 1]
    copy = xr.open_zarr(out, consolidated=False).load()
    copy.attrs.pop(EXPORT_ATTR)  # the mark of an export
    store = open_dataset(path).load()
    assert copy.attrs.pop("title").startswith("wxens analysis of ")  # CF 2.6.2's, added
    history = copy.attrs.pop("history")  # the store's, the export appended
    assert history.startswith(store.attrs.pop("history"))
    assert history.endswith(f"wxens export {path} --out {out}")
    xr.testing.assert_identical(copy, store)
    left = [p.name for p in tmp_path.iterdir() if "plain" in p.name and p.suffix != ".lock"]
    assert left == ["plain.zarr"], "a temporary copy was left"


def test_an_ingest_whose_store_is_replaced_midway_stops(tmp_path, monkeypatch, store_content):
    """An appending ingest plans its writes against the store it found; when an
    ``--overwrite`` replaces that store before its first block is committed, it stops with
    a StoreError and writes nothing into the new store."""
    import pipeline.ingest_blocks as blocks

    path = tmp_path / "a.zarr"
    first_half = slice(None, pd.Timestamp("2000-01-03T18"))
    ingest(SOURCE, path, time=first_half, progress=False)
    other = SOURCE.replace("seed=5", "seed=6")
    read_block = blocks._read_block

    def replaced_while_reading(*args):
        monkeypatch.setattr(blocks, "_read_block", read_block)  # once, not in the overwrite
        ingest(other, path, overwrite=True, progress=False)
        return read_block(*args)

    monkeypatch.setattr(blocks, "_read_block", replaced_while_reading)
    with pytest.raises(StoreError, match="replaced by another ingest"):
        ingest(SOURCE, path, progress=False)
    reference = ingest(other, tmp_path / "reference.zarr", progress=False)
    got, want = store_content(path), store_content(reference.path)
    for content in (got, want):
        content["/"][0].pop("history")
    assert got == want


def test_a_lone_writer_of_the_working_directory_takes_its_lock(tmp_path, monkeypatch):
    # `wxens calibrate --checkpoint k.pt` of a checkpoint in the working directory locked
    # Path("."), which has no name: a ValueError traceback instead of the calibration.
    from pipeline.transaction import held_alone

    monkeypatch.chdir(tmp_path)
    with held_alone("."):
        assert (tmp_path.parent / f".{tmp_path.name}.lock").exists()
        with pytest.raises(StoreError, match="another process is writing it"):
            with held_alone(tmp_path):
                pass


def test_two_paths_to_one_store_share_its_lock(tmp_path, monkeypatch):
    # A store reached through a symbolic link (or a path with "..") took the lock beside
    # the link, not the store's: two writers through two paths were not serialised.
    from pipeline.transaction import held_alone, lock_path

    real = tmp_path / "real.zarr"
    real.mkdir()
    (tmp_path / "link.zarr").symlink_to(real)
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path / "sub")
    for other in (tmp_path / "link.zarr", Path("../real.zarr"), Path("../link.zarr/")):
        assert lock_path(other) == lock_path(real)
        with held_alone(real):
            with pytest.raises(StoreError, match="another process is writing it"):
                with held_alone(other):
                    pass
