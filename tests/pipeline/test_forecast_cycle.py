"""The cycle a forecast store records (:func:`pipeline.forecast_times.record_cycle`): the
finest a run drew it on is kept, through later writes of its forecasts."""

from __future__ import annotations

import pandas as pd

from pipeline.forecast_store import ANALYSIS_ATTR, open_forecast, source_attrs, write_forecast
from pipeline.forecast_times import CYCLE_ATTR, cadence_text, record_cycle
from pipeline.transaction import commits, read_attrs
from tests.pipeline.test_forecast_store import PROVENANCE, ensemble

HOUR = pd.Timedelta(hours=1)


def test_the_finest_cycle_is_kept_and_a_later_forecast_keeps_it(tmp_path):
    path = tmp_path / "f.zarr"
    record_cycle(path, 6 * HOUR)  # no store yet: nothing recorded, nothing made
    assert not path.exists()
    write_forecast(path, ensemble(["2019-03-01T18"], 1.0), PROVENANCE)
    record_cycle(path, 12 * HOUR)
    record_cycle(path, 6 * HOUR)
    made = len(commits(path))
    record_cycle(path, 24 * HOUR)  # coarser: the 6 h kept, no commit
    record_cycle(path, 6 * HOUR)  # the same: no commit
    assert len(commits(path)) == made
    assert read_attrs(path)[CYCLE_ATTR] == 6
    write_forecast(path, ensemble(["2019-03-02T18"], 1.0), PROVENANCE)  # appended
    write_forecast(path, ensemble(["2019-03-02T18"], 2.0), PROVENANCE)  # overwritten
    assert read_attrs(path)[CYCLE_ATTR] == 6
    inits = pd.DatetimeIndex(open_forecast(path).init_time.values)
    said, lines = cadence_text(inits, 6 * HOUR)
    assert said == " (every 6 h, recorded; 3 missing)"
    assert lines == [
        "missing    2019-03-02T00:00, 2019-03-02T06:00, 2019-03-02T12:00; to draw them: "
        "--init 2019-03-02T00:00/2019-03-02T12:00/6h"
    ]
    assert cadence_text(inits) == (" (every 1 day, 0 missing)", [])  # without the record


def test_the_analysis_store_recorded_is_the_first_forecast_s(tmp_path):
    """``wxens info`` names the analysis store "of the first forecast" (ANALYSIS_ATTR); an
    append replaced every attribute with the later forecast's, naming its store instead."""
    path = tmp_path / "f.zarr"
    first, later = ensemble(["2019-03-01T18"], 1.0), ensemble(["2019-03-02T18"], 1.0)
    write_forecast(path, first.assign_attrs(source_attrs(tmp_path / "a.zarr")), PROVENANCE)
    write_forecast(path, later.assign_attrs(source_attrs(tmp_path / "b.zarr")), PROVENANCE)
    assert read_attrs(path)[ANALYSIS_ATTR] == str(tmp_path / "a.zarr")
