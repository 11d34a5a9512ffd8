"""``--overwrite`` swaps the new store in without a moment where there is none at its path,
and a swap a kill interrupted (the two renames of an older wxens, or where the system
cannot exchange folders) is finished, never taken for "no such store"."""

from __future__ import annotations

import subprocess
import sys

import pytest

from pipeline.analysis_store import STORE_ID
from pipeline.errors import StoreError
from pipeline.store import ingest, open_store, read_state
from pipeline.store_swap import exchange
from pipeline.transaction import lock_path

SMALL = "synthetic:n_lat=4,n_lon=4,n_times=2"
OTHER = "synthetic:n_lat=5,n_lon=6,n_times=3,seed=7"
#: Counts, until the file ``stop`` appears, the times it found no store at its path.
READER = """
import os, sys
store, stop = sys.argv[1:]
missing = looked = 0
while not os.path.exists(stop):
    looked += 1
    missing += not os.path.exists(store)
print(missing, looked)
"""


def test_a_reader_never_finds_the_store_missing_while_it_is_overwritten(tmp_path):
    # Was: renamed away, then the new one renamed in; a reader looking between the two
    # (a forecast opening the store) was told "no such store": 35 of 720,000 looks during
    # 20 overwrites of this store missed it. Now the two folders are exchanged in one step.
    path, stop = tmp_path / "s.zarr", tmp_path / "stop"
    ingest(SMALL, path, progress=False)
    reader = subprocess.Popen(
        [sys.executable, "-c", READER, str(path), str(stop)], stdout=subprocess.PIPE, text=True
    )
    try:
        for _ in range(12):
            ingest(SMALL, path, overwrite=True, progress=False)
    finally:
        stop.touch()
        missing, looked = map(int, reader.communicate(timeout=60)[0].split())
    assert looked > 1000, "the reader looked while the store was replaced"
    assert missing == 0, f"{missing} of {looked} looks found no store at {path}"
    assert sorted(p.name for p in tmp_path.iterdir()) == [".s.zarr.lock", "s.zarr", "stop"]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="renameat2 is Linux's")
def test_exchange_swaps_two_folders_in_one_step(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    (a / "x").write_text("old")
    (b / "x").write_text("new")
    assert exchange(a, b)
    assert (a / "x").read_text() == "new" and (b / "x").read_text() == "old"
    with pytest.raises(FileNotFoundError):
        exchange(tmp_path / "absent", a)


def stranded(tmp_path):
    """An --overwrite of the store ``s.zarr`` (of SMALL, with OTHER) as a kill between its
    two renames leaves it: no s.zarr, the old store as s.zarr.replaced-tmp, the new and
    complete one as s.zarr.ingest-tmp."""
    path, aside = tmp_path / "s.zarr", tmp_path / "s.zarr.ingest-tmp"
    ingest(SMALL, path, progress=False)
    ingest(OTHER, aside, progress=False)
    lock_path(aside).unlink()  # as --overwrite does once the store aside is built
    path.rename(tmp_path / "s.zarr.replaced-tmp")
    return path, aside


def test_readers_of_an_interrupted_swap_are_told_what_is_there(tmp_path):
    path, aside = stranded(tmp_path)
    with pytest.raises(StoreError) as err:  # was "no such store; create it with ..."
        open_store(path)
    assert str(aside) in str(err.value) and "--overwrite" in str(err.value)
    info = subprocess.run(
        [sys.executable, "-m", "flows.cli", "info", str(path)], capture_output=True, text=True
    )
    assert info.returncode != 0
    assert str(aside) in info.stderr and f"mv {aside} {path}" in info.stderr


def test_the_next_ingest_finishes_an_interrupted_swap(tmp_path):
    # Was: the ingest started a new store at s.zarr from its inputs alone, beside the
    # complete new store the --overwrite had built (s.zarr.ingest-tmp) and the old one.
    path, aside = stranded(tmp_path)
    built = read_state(aside)[STORE_ID]
    later = OTHER.replace("n_times=3", "n_times=4")  # one more time, appended
    code = subprocess.run(
        [sys.executable, "-m", "flows.cli", "ingest", later, "--store", str(path),
         "--no-progress"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert code.returncode == 0, code.stderr
    assert "swapping it in now" in code.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == [".s.zarr.lock", "s.zarr"]
    state = read_state(path)  # the new store, appended to: not another one
    assert state[STORE_ID] == built and state["complete"] and state["n_times"] == 4
    sizes = open_store(path).dataset.sizes
    assert (sizes["time"], sizes["latitude"], sizes["longitude"]) == (4, 5, 6)
