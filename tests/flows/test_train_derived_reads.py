"""A derived ``wxens train`` reads its store once where it read it twice: the derivation and
the training each opened it, and the training read again the states the step timing had
just read into memory (the training and validation parts, a full read of the store each;
the parts now index one read)."""

from __future__ import annotations

from collections import Counter

import pytest
import zarr.core.array

from flows.cli import main as wxens
from pipeline.store import ingest


@pytest.fixture()
def state_reads(monkeypatch) -> Counter:
    """Reads of each array of a store (by name), counted as they go through to Zarr's."""
    counts: Counter = Counter()
    real = zarr.core.array.AsyncArray._get_selection

    async def get_selection(self, *args, **kwargs):
        counts[self.basename] += 1
        return await real(self, *args, **kwargs)

    monkeypatch.setattr(zarr.core.array.AsyncArray, "_get_selection", get_selection)
    return counts


def test_a_derived_training_opens_and_reads_its_store_once(tmp_path, openings, state_reads, capsys):
    """Openings: the derivation's and the training's were two (3 with the calibration's,
    which opens it again after the training); reads of the states: the timing's and the
    training's were four (5 with the calibration's, of the held-out period), the parts' one
each."""
    spec = "synthetic:n_lat=8,n_lon=8,n_times=60,step=6h"
    store = ingest(spec, tmp_path / "s.zarr", variables=["t2m"], progress=False)
    openings.clear()
    state_reads.clear()
    argv = ["train", "--store", str(store.path), "--out", str(tmp_path / "run")]
    assert wxens([*argv, "--budget", "1min", "--no-progress", "--threads", "1"]) == 0
    assert "checkpoint" in capsys.readouterr().out
    assert openings == {"xarray": 2, "zarr": 4}, openings  # the training's, the calibration's
    assert state_reads["t2m"] == 2, state_reads  # the timing's, kept; the calibration's


def test_nproc_opens_its_store_once_before_the_launch(tmp_path, openings, capfd):
    """`train --nproc`: the launching process opened the store to derive the config, then
    again to refuse a missing store before torchrun; the derivation's opening does both."""
    spec = "synthetic:n_lat=8,n_lon=8,n_times=60,step=6h"
    store = ingest(spec, tmp_path / "s.zarr", variables=["t2m"], progress=False)
    openings.clear()
    argv = ["train", "--store", str(store.path), "--out", str(tmp_path / "run"), "--nproc", "1"]
    assert wxens([*argv, "--set", "steps=2", "--no-progress", "--threads", "1"]) == 0
    assert "checkpoint" in capfd.readouterr().out
    assert openings == {"xarray": 1, "zarr": 2}, openings  # the derivation's
