"""A store, checkpoint, config or source given as a symbolic link whose target is gone is
named as such, with its target: it was reported as "no such store" of a path ls lists."""

from __future__ import annotations

import os
from datetime import timedelta

import pytest

from generators.checkpoint import load_checkpoint
from generators.config_io import read_mapping
from pipeline.errors import InputError, StoreError
from pipeline.forecast_store import open_forecast
from pipeline.sources.files import expand_paths
from pipeline.store import open_store
from pipeline.transaction import compact, reader


@pytest.mark.parametrize(
    ("name", "read", "error"),
    [
        ("s.zarr", open_store, StoreError),
        ("f.zarr", open_forecast, StoreError),
        ("s.zarr", reader, StoreError),
        ("s.zarr", lambda p: compact(p, timedelta(0)), StoreError),
        ("last.pt", load_checkpoint, StoreError),
        ("c.yaml", read_mapping, InputError),
        ("a.grib", lambda p: expand_paths(str(p), (".grib",)), InputError),
    ],
    ids=["analysis", "forecast", "reader", "compact", "checkpoint", "config", "source"],
)
def test_a_dangling_link_is_named_with_its_target(name, read, error, tmp_path):
    link = tmp_path / name
    os.symlink(tmp_path / "moved" / name, link)
    with pytest.raises(
        error, match=f"{link} is a symbolic link to {tmp_path}/moved/{name}, which does not exist"
    ):
        read(link)
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]
