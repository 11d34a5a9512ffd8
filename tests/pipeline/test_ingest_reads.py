"""How often an ingest reads the store it appends to: the times the store holds written
are read once, whatever the adjustments."""

from __future__ import annotations

import pytest

from tests.pipeline.test_ingest import resent_copies, resent_day, run_cli

#: The openings of the store in an ingest appending a day beside a resent one: xarray's
#: for the held times, the write's transaction, the comparison of the resent copies and
#: the result; zarr's (a group opened alone) for the checks, the state and the writes.
APPEND_OPENINGS = {"xarray": 4, "zarr": 17}


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
