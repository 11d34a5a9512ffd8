"""How often an ingest reads the store it appends to: the times the store holds written
are read once, whatever the adjustments, and each input's valid times once per check."""

from __future__ import annotations

from collections import Counter

import pandas as pd
import pytest
import xarray as xr

import pipeline.duplicate_times as duplicate_times
from pipeline.duplicate_times import check_unique_times, store_holds
from pipeline.store import held_times
from tests.pipeline.test_ingest import resent_copies, resent_day, run_cli

#: The openings of the store in an ingest appending a day beside a resent one: xarray's
#: for the held times, the write's transaction, the comparison of the resent copies and
#: the result; zarr's (a group opened alone) for the checks, the state and the writes.
APPEND_OPENINGS = {"xarray": 4, "zarr": 15}


@pytest.mark.parametrize("adjust", [[], ["--units", "tas=degC"]], ids=["plain", "units"])
def test_an_appending_ingest_reads_the_stores_held_times_once(
    tmp_path, capsys, caplog, openings, adjust
):
    """The command read the held times for its adjustments (none to open without any),
    and ingest read them again: two openings of the store where one does. The resent
    day is still accepted and its corrected copy compared with the store."""
    incoming, store, times, day1 = resent_day(tmp_path, capsys)
    resent_copies(incoming, times, day1)
    openings.clear()
    argv = ["ingest", str(incoming / "*.nc"), "--store", str(store), *adjust]
    with caplog.at_level("WARNING", logger="pipeline.resent"):
        code, err = run_cli(capsys, *argv)
    assert code == 0, err
    assert caplog.text.count("differ from the store") == 1, caplog.text
    assert dict(openings) == APPEND_OPENINGS


def test_the_held_times_open_the_store_once(tmp_path, capsys, openings):
    """The held times opened the store's last commit three times: zarr's to see a root
    group, again for the ingest state, then xarray's for the times; one opening reads both."""
    _, store, times, _ = resent_day(tmp_path, capsys)
    openings.clear()
    held = held_times(store)
    assert (openings["xarray"], openings["zarr"]) == (1, 0)
    assert list(held) == list(times[:3])


def test_each_inputs_valid_times_are_read_once_in_a_check(monkeypatch):
    """``check_unique_times`` read each part's valid times for every variable and level,
    again to leave out the later copies, and again to name the inputs that held them."""
    calls = Counter()
    real = duplicate_times.valid_times

    def valid_times(ds):
        calls["valid_times"] += 1
        return real(ds)

    monkeypatch.setattr(duplicate_times, "valid_times", valid_times)
    times = pd.date_range("2021-01-01", periods=4, freq="6h")

    def part(at: pd.DatetimeIndex) -> xr.Dataset:
        fields = {name: (("time",), [0.0] * at.size) for name in ("t2m", "msl")}
        return xr.Dataset(fields, coords={"time": at})

    parts = [("a", part(times[:2])), ("a_v2", part(times[:2])), ("b", part(times[2:]))]
    with store_holds(times[:2]) as dropped:
        kept = check_unique_times(parts, "incoming/*.nc")
    assert [label for label, _ in kept] == ["a", "b"]
    assert [label for label, _ in dropped] == ["a_v2"]
    assert calls["valid_times"] == len(parts)
