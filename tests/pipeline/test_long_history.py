"""A store grown by many small appends (a scheduled ingest): what each append costs must
not grow with the number of appends before it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import zarr

import pipeline.analysis_store as analysis_store_module
from pipeline.store import ingest
from pipeline.transaction import read_attrs

SOURCE = "synthetic:n_lat=4,n_lon=4,n_times=48,step=6h"


def append_days(store, days: int) -> None:
    for day in range(days):
        start = pd.Timestamp("2000-01-01") + pd.Timedelta(days=day)
        ingest(SOURCE, store, time=slice(start, start + pd.Timedelta(hours=18)), progress=False)


def test_history_is_bounded_over_many_appends(tmp_path, monkeypatch):
    # each append adds lines (the input it came from, then the finalisation): kept whole, a
    # store ingested every hour carried megabytes of history in its root attributes, read
    # by every open; the creation and the latest lines are what is kept
    monkeypatch.setattr(analysis_store_module, "HISTORY_LINES", 6, raising=False)
    store = tmp_path / "s.zarr"
    append_days(store, 6)
    lines = read_attrs(store)["history"].splitlines()
    assert len(lines) <= 6
    assert "created by wxens ingest from synthetic" in lines[0]
    assert "earlier line(s) left out" in lines[1]
    assert lines[-1].endswith("finalised: 24 times")
    assert "extended by wxens ingest from synthetic" in lines[-2]
    # the count of lines left out adds up across appends, rather than restarting
    left_out = int(lines[1].split()[1])
    assert left_out + len(lines) - 1 == 2 + 2 * 5  # created, finalised, then 2 per append


def test_history_line_keeps_all_lines_while_few():
    history = analysis_store_module.with_history("a created\nb finalised", "c extended")
    assert history == "a created\nb finalised\nc extended"


def test_forecast_coordinates_do_not_gain_a_chunk_per_cycle(tmp_path):
    # a store written one cycle at a time (a scheduled forecast) kept init_time, complete
    # and valid_time in one chunk per initial time: every open read 3 objects per cycle
    # (0.06 s at 40 cycles, 0.43 s at 280 on an 8x8 grid) and the disk held them all
    from pipeline.forecast_store import ForecastProvenance, open_forecast, write_forecast
    from pipeline.transaction import reader
    from tests.pipeline.test_forecast_store import ensemble

    provenance = ForecastProvenance("flow_matching", "0123456789abcdef", "euler:nfe=10", 10, 0)
    path = tmp_path / "f.zarr"
    inits = pd.date_range("2019-03-22", periods=6, freq="6h")
    for i, t in enumerate(inits):
        write_forecast(path, ensemble([str(t)], float(i)), provenance)
    write_forecast(path, ensemble([str(inits[2])], 9.0), provenance)  # a rerun, in place
    group = zarr.open_group(reader(path), mode="r")
    for name in ("init_time", "complete", "valid_time"):
        assert group[name].nchunks_initialized == 1, name
    ds = open_forecast(path)
    assert list(ds.init_time.values) == list(inits)
    assert (ds.valid_time.values == (ds.init_time + ds.lead_time).values).all()
    first = ds.t2m.isel(member=0, lead_time=0, latitude=1, longitude=1).values
    np.testing.assert_array_equal(first, [0, 1, 9, 3, 4, 5])


def test_rewriting_unchanged_cycles_computes_in_batches_not_per_cycle(tmp_path):
    # bias-correct reruns write the whole corrected history, skipping the unchanged cycles:
    # each was loaded alone, one dask compute per cycle, each walking the whole lazy
    # forecast's graph (a rerun over 300 cycles: 5.5 s of its 7.4 s on an 8x8 grid)
    from dask.callbacks import Callback

    from pipeline.forecast_store import ForecastProvenance, open_forecast, write_forecast
    from tests.pipeline.test_forecast_store import ensemble

    provenance = ForecastProvenance("flow_matching", "0123456789abcdef", "euler:nfe=10", 10, 0)
    path = tmp_path / "f.zarr"
    inits = [str(t) for t in pd.date_range("2019-03-22", periods=8, freq="6h")]
    write_forecast(path, ensemble(inits, 1.0), provenance)
    again = ensemble(inits, 1.0)
    again["t2m"][2] += 5.0  # one cycle changed
    lazy = again.chunk({"init_time": 1})

    class Counting(Callback):
        computes = 0

        def _start(self, dsk):
            Counting.computes += 1

    with Counting():
        written = write_forecast(path, lazy, provenance, skip_unchanged=True)
    assert list(written) == [pd.Timestamp(inits[2])]
    assert Counting.computes <= 3
    ds = open_forecast(path)
    np.testing.assert_array_equal(
        ds.t2m.isel(member=0, lead_time=0, latitude=1, longitude=1), [1, 1, 6, 1, 1, 1, 1, 1]
    )


def test_info_counts_commits_up_to_a_bound(tmp_path, monkeypatch, capsys):
    # wxens info walked every commit of the store to count them (one file each): 0.03 s
    # at 7 commits, 0.24 s at 781 (260 daily appends), and no end until compacted
    import icechunk

    import flows.commands.info as info_module
    from flows.cli import main

    store = tmp_path / "s.zarr"
    append_days(store, 3)  # 3 commits an ingest, and the repository's first
    main(["info", str(store)])
    assert "10 commits; last: finalise" in capsys.readouterr().out
    walked = []
    real = icechunk.Repository.ancestry

    def counted(self, *args, **kwargs):
        for snapshot in real(self, *args, **kwargs):
            walked.append(snapshot)
            yield snapshot

    monkeypatch.setattr(icechunk.Repository, "ancestry", counted)
    monkeypatch.setattr(info_module, "COUNTED_COMMITS", 4, raising=False)
    main(["info", str(store)])
    out = capsys.readouterr().out
    assert "over 4 commits (`wxens compact` forgets the older ones); last: finalise" in out
    assert len(walked) <= 5
