"""Analyses that arrive after later ones (in a gap of the store, which only grows at its
end): what an ingest of them writes and says.

Two ingests of consecutive days started together, the later day's growing the store first,
left the earlier day missing for good; its ingest warned, then said its times were written
and exited 0, and a rerun said the store held every requested time."""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from flows.cli import main
from pipeline.errors import StoreError
from pipeline.store import ingest, open_store

TIMES = pd.date_range("2021-06-01", periods=12, freq="6h")


def netcdf(path: Path, times: pd.DatetimeIndex) -> Path:
    """A small file of 2 m temperature at ``times`` (values from the times: the same
    time has the same values in every file)."""
    hours = ((times - TIMES[0]) / pd.Timedelta("1h")).to_numpy()
    data = 280.0 + 0.1 * hours[:, None, None] + 0.01 * np.arange(6.0).reshape(1, 2, 3)
    xr.Dataset(
        {"tas": (("time", "lat", "lon"), data, {"units": "K"})},
        coords={"time": times, "lat": [50.0, 51.0], "lon": [0.0, 1.0, 2.0]},
    ).to_netcdf(path)
    return path


def store_with_a_gap(tmp_path: Path) -> Path:
    """``s.zarr`` of TIMES[:4] and TIMES[8:]: the next day grew it before the day between
    (TIMES[4:8]) came."""
    store = tmp_path / "s.zarr"
    ingest(netcdf(tmp_path / "first.nc", TIMES[:4]), store, progress=False)
    ingest(netcdf(tmp_path / "third.nc", TIMES[8:]), store, progress=False)
    return store


def test_an_ingest_of_only_late_times_is_refused_naming_the_first_and_the_remedy(tmp_path):
    store = store_with_a_gap(tmp_path)
    late = netcdf(tmp_path / "second.nc", TIMES[4:8])
    for _ in range(2):  # the rerun too: it said the store held every requested time
        with pytest.raises(StoreError) as refused:
            ingest(late, store, progress=False)
        said = str(refused.value)
        assert "none of the input's 4 time(s) was written" in said
        assert "first 2021-06-02T00:00" in said and "up to 2021-06-03T18:00" in said
        assert "wxens ingest STORE INPUT --store STORE --overwrite" in said  # tested below
        assert "new store= (--store)" in said
        assert open_store(store).missing_times == tuple(TIMES[4:8])


def test_the_cli_ends_with_the_refusal_and_exit_code_2(tmp_path, capsys):
    store = store_with_a_gap(tmp_path)
    late = netcdf(tmp_path / "second.nc", TIMES[4:8])
    capsys.readouterr()
    assert main(["ingest", str(late), "--store", str(store), "--no-progress"]) == 2
    out, err = capsys.readouterr()
    assert "is finalised" not in out + err and "nothing to do" not in out + err
    assert "none of the input's 4 time(s) was written" in err.strip().splitlines()[-1]


def test_late_times_beside_held_ones_are_warned_of_not_refused(tmp_path, caplog):
    """A rerun of the two first days: the first is in the store, the second is late. Not
    refused: a served ingest of a glob reads again the files the store holds, and one late
    file among them would fail every run that finds no new file."""
    store = store_with_a_gap(tmp_path)
    for name in ("pipeline.ingest_report", "pipeline.store"):
        logging.getLogger(name).addHandler(caplog.handler)
    caplog.set_level(logging.INFO)
    try:
        ingest(netcdf(tmp_path / "two.nc", TIMES[:8]), store, progress=False)
    finally:
        for name in ("pipeline.ingest_report", "pipeline.store"):
            logging.getLogger(name).removeHandler(caplog.handler)
    assert (
        "0 of the input's 8 time(s) written (4 were in the store already); 4 stay missing, "
        "in a gap of the store, first 2021-06-02T00:00" in caplog.text
    )
    assert "nothing to do" not in caplog.text
    assert open_store(store).missing_times == tuple(TIMES[4:8])


def test_an_ingest_of_some_late_times_says_how_many_it_wrote_and_lost(tmp_path, caplog):
    store = tmp_path / "s.zarr"
    ingest(netcdf(tmp_path / "first.nc", TIMES[[0, 1, 2, 3, 6, 7]]), store, progress=False)
    logger = logging.getLogger("pipeline.ingest_report")
    logger.addHandler(caplog.handler)
    try:
        ingest(netcdf(tmp_path / "all.nc", TIMES), store, progress=False)
    finally:
        logger.removeHandler(caplog.handler)
    assert (
        "4 of the input's 12 time(s) written (6 were in the store already); 2 stay missing"
        in caplog.text
    )
    assert open_store(store).missing_times == tuple(TIMES[4:6])


def test_the_store_and_the_file_of_its_gap_make_a_store_as_one_in_order(tmp_path):
    """The cheap recovery: the store itself an input beside the late file. Its times ran
    across the late ones, so combining the two failed ("no monotonic global indexes")."""
    store = store_with_a_gap(tmp_path)
    late = netcdf(tmp_path / "second.nc", TIMES[4:8])
    fixed = ingest([store, late], tmp_path / "fixed.zarr", progress=False)
    whole = ingest(netcdf(tmp_path / "all.nc", TIMES), tmp_path / "whole.zarr", progress=False)
    assert fixed.missing_times == () and list(fixed.dataset.time.values) == list(TIMES)
    xr.testing.assert_identical(fixed.dataset.t2m.load(), whole.dataset.t2m.load())
    xr.testing.assert_identical(fixed.statistics, whole.statistics)
    assert fixed.native_step == whole.native_step


def test_two_files_of_alternate_days_combine_sorted_by_time(tmp_path):
    """The files of a glob, combined by the file source, not by the ingest."""
    days = [TIMES[4 * d : 4 * d + 4] for d in range(3)]
    netcdf(tmp_path / "a.nc", days[0].append(days[2]))
    netcdf(tmp_path / "b.nc", days[1])
    got = ingest(str(tmp_path / "*.nc"), tmp_path / "s.zarr", progress=False)
    assert got.missing_times == () and list(got.dataset.time.values) == list(TIMES)


def test_the_store_rebuilt_in_place_from_itself_and_the_late_file(tmp_path, capsys):
    store = store_with_a_gap(tmp_path)
    late = netcdf(tmp_path / "second.nc", TIMES[4:8])
    argv = ["ingest", str(store), str(late), "--store", str(store), "--overwrite"]
    assert main([*argv, "--no-progress"]) == 0, capsys.readouterr().err
    rebuilt = open_store(store)
    assert rebuilt.missing_times == () and list(rebuilt.dataset.time.values) == list(TIMES)


def test_a_rebuild_in_place_killed_midway_leaves_the_old_store(tmp_path):
    """The store is read while its replacement is built aside; a kill before the swap
    (here SIGKILL right after the first chunk written) leaves it as it was, and the rerun
    of the same command rebuilds it."""
    store = store_with_a_gap(tmp_path)
    late = netcdf(tmp_path / "second.nc", TIMES[4:8])
    script = (
        "import os, signal\n"
        "import pipeline.ingest_blocks as blocks\n"
        "real = blocks.write_region\n"
        "def killed(*args, **kwargs):\n"
        "    real(*args, **kwargs)\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
        "blocks.write_region = killed\n"
        "from pipeline.store import ingest\n"
        f"ingest([{str(store)!r}, {str(late)!r}], {str(store)!r}, overwrite=True, progress=False)"
    )
    child = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert child.returncode == -signal.SIGKILL, child.stderr[-3000:]
    old = open_store(store)
    assert old.missing_times == tuple(TIMES[4:8]) and old.dataset.sizes["time"] == 8
    assert (tmp_path / "s.zarr.ingest-tmp").exists()  # the half-built one, beside it
    rebuilt = ingest([store, late], store, overwrite=True, progress=False)
    assert rebuilt.missing_times == () and list(rebuilt.dataset.time.values) == list(TIMES)
    assert sorted(p.name for p in tmp_path.glob("s.zarr*")) == ["s.zarr"]
