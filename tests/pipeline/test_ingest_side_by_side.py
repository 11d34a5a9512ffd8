"""Two ingests into one store at once, of different periods: the one done first."""

from __future__ import annotations

import pandas as pd
import pytest

import pipeline.ingest_blocks as blocks_module
import pipeline.store as store_module
from flows.cli import main
from pipeline.store import ingest, open_store
from tests.pipeline.test_ingest import make_netcdf


def test_an_ingest_done_before_the_other_one_writing_the_store_does_not_fail(
    tmp_path, monkeypatch, capsys, caplog
):
    """`wxens ingest --end` and `wxens ingest --start` of the two halves of one period,
    into a new store at once: the one that finished first, its times all written, said
    "error: the store is incomplete ... nothing to read yet" and exited 2 (the other then
    finalised the store). Here the other ingest is one that wrote the first 2 of 8 times
    and is taken to be writing the rest."""
    times = pd.date_range("2021-01-01", periods=8, freq="6h")
    make_netcdf(tmp_path / "all.nc", times)
    store = tmp_path / "s.zarr"
    monkeypatch.setattr(store_module, "MIN_CHUNK_BYTES", 1)  # one time a chunk
    monkeypatch.setattr(blocks_module, "BLOCK_BYTES", 2 * 3 * 4 * 4)  # two times a block
    real, calls = blocks_module.write_region, []

    def write_one_block(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise OSError("the other ingest, stopped here for the test")
        return real(*args, **kwargs)

    monkeypatch.setattr(blocks_module, "write_region", write_one_block)
    with pytest.raises(OSError, match="the other ingest"):
        ingest(tmp_path / "all.nc", store, progress=False)
    monkeypatch.setattr(blocks_module, "write_region", real)
    capsys.readouterr()
    end = times[3].strftime("%Y-%m-%dT%H")
    assert main(["ingest", str(tmp_path / "all.nc"), "--store", str(store), "--end", end]) == 0
    err, out = capsys.readouterr()[::-1]
    assert "error" not in err and "Traceback" not in err
    assert "4 time(s) are not written yet (another ingest is writing" in caplog.text
    assert f"{store}: this ingest's times are written" in out and "wxens info" in out
    assert main(["ingest", str(tmp_path / "all.nc"), "--store", str(store)]) == 0  # the rest
    assert open_store(store).dataset.sizes["time"] == 8
