"""Room on disk, checked before an ingest writes its data: an ingest whose data,
uncompressed, exceed the free space is warned of with the sizes and the fix (it may still
fit compressed, and a full disk stops it cleanly), and goes on."""

from __future__ import annotations

import shutil
from collections import namedtuple

import numpy as np
import pytest

from flows.cli import main
from pipeline.canonical import open_canonical
from pipeline.disk_space import bytes_per_time, warn_if_short_of_room

Usage = namedtuple("Usage", "total used free")
#: 744 times of 33 x 49 float32 t2m: the shipped sample, uncompressed.
SAMPLE_BYTES = 744 * 33 * 49 * 4


def fake_free(monkeypatch, free: int) -> None:
    monkeypatch.setattr(shutil, "disk_usage", lambda path: Usage(10 * free, 9 * free, free))


def test_an_ingest_larger_than_the_free_space_is_warned_of_and_goes_on(
    tmp_path, caplog, monkeypatch, uk_sample
):
    fake_free(monkeypatch, 2**20)
    caplog.set_level("WARNING", logger="pipeline.disk_space")
    store = tmp_path / "sub" / "s.zarr"
    assert main(["ingest", str(uk_sample), "--store", str(store), "--no-progress"]) == 0
    said = caplog.text
    assert "4.59 MiB (744 times of 6.32 KiB, uncompressed" in said and "1 MiB free" in said
    assert "the same command resumes it" in said and "--start/--end" in said


def test_times_the_store_holds_need_no_room(tmp_path, caplog, monkeypatch, uk_sample):
    store = tmp_path / "s.zarr"
    args = ["ingest", str(uk_sample), "--store", str(store), "--no-progress"]
    assert main([*args, "--end", "2019-03-01T05"]) == 0
    fake_free(monkeypatch, 6 * 33 * 49 * 4)  # room for 6 more times, not for 738
    caplog.set_level("WARNING", logger="pipeline.disk_space")
    assert main([*args, "--end", "2019-03-01T11"]) == 0
    assert not caplog.records
    assert main(args) == 0
    assert "732 times" in caplog.text


@pytest.mark.parametrize("free", [SAMPLE_BYTES - 1])
def test_the_bound_is_times_grid_variables_dtype(tmp_path, monkeypatch, caplog, uk_sample, free):
    ds, _ = open_canonical([str(uk_sample)], None, None, allow_nan=False)
    assert bytes_per_time(ds) == 33 * 49 * np.dtype(ds["t2m"].dtype).itemsize
    caplog.set_level("WARNING", logger="pipeline.disk_space")
    fake_free(monkeypatch, free)
    warn_if_short_of_room(ds, ds.sizes["time"], tmp_path / "s.zarr")
    assert "4.59 MiB" in caplog.text
    caplog.clear()
    fake_free(monkeypatch, free + 1)
    warn_if_short_of_room(ds, ds.sizes["time"], tmp_path / "s.zarr")
    assert not caplog.records
    assert not (tmp_path / "s.zarr").exists()
