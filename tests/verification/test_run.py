"""verify_store: the one composition of open -> verify -> write -> report that ``wxens
verify`` and the verify flow share."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from flows.cli import main
from pipeline.errors import InputError, StoreError
from pipeline.forecast_store import ForecastProvenance, open_forecast, write_forecast
from pipeline.store import open_store
from tests.conftest import on_a_terminal
from tests.verification.verification_cases import verify_command
from verification.config import VerifyConfig
from verification.run import open_forecast_any, verify_store
from verification.scorecard import verify

SETTINGS = VerifyConfig(physics_init_times=0, energy_score=False, progress=False)


class Entered:
    """A stand-in scheduler context that records whether it was entered."""

    def __init__(self):
        self.entered = 0

    def __enter__(self):
        self.entered += 1
        return self

    def __exit__(self, *exc):
        return False


def test_verify_store_writes_what_verify_computes_and_the_report(stores, tmp_path):
    forecast, analysis = stores
    inits = open_forecast(forecast).init_time.values[1:5]
    scheduler = Entered()
    done = verify_store(
        forecast,
        analysis,
        tmp_path / "scores.nc",
        config=SETTINGS,
        report=tmp_path / "report.html",
        init_times=inits,
        scheduler=scheduler,
    )
    assert scheduler.entered == 1
    assert done.scores == tmp_path / "scores.nc" and done.report == tmp_path / "report.html"
    assert f"forecast {forecast} against analysis {analysis}" in done.report.read_text()
    direct = verify(
        open_forecast(forecast).sel(init_time=inits), open_store(analysis).dataset, SETTINGS
    )
    written = xr.open_datatree(done.scores)
    xr.testing.assert_allclose(written["scorecard"].to_dataset(), direct["scorecard"].to_dataset())
    assert written.attrs["n_init_times"] == 4
    stamps = [str(pd.Timestamp(t)) for t in inits]
    assert written.attrs["init_times"].split("; ") == stamps  # which, not only how many
    first, last = (pd.Timestamp(t).strftime("%Y-%m-%dT%H:%M") for t in (inits[0], inits[-1]))
    assert f"4 init times ({first} to {last})" in done.report.read_text()  # as info shows them
    assert written.attrs["wxens_generator"] == "oracle"  # the store's provenance is kept


def test_verify_store_with_itself_as_reference_has_zero_skill(stores, tmp_path):
    forecast, analysis = stores
    done = verify_store(forecast, analysis, tmp_path / "s.nc", config=SETTINGS, reference=forecast)
    card = done.tree["scorecard"].to_dataset()
    assert float(abs(card.fair_crps_skill_score).max()) < 1e-6
    assert done.report is None and not list(tmp_path.glob("*.html"))


def test_a_missing_input_fails_before_the_scheduler_and_writes_nothing(stores, tmp_path):
    forecast, analysis = stores
    scores, scheduler = tmp_path / "s.nc", Entered()
    with pytest.raises(StoreError, match="missing.zarr: no such store"):
        verify_store(forecast, tmp_path / "missing.zarr", scores, scheduler=scheduler)
    with pytest.raises(StoreError, match="no forecast store at .*nowhere.zarr"):
        verify_store(tmp_path / "nowhere.zarr", analysis, scores, scheduler=scheduler)
    with pytest.raises(InputError, match=r"no variable\(s\) \['q'\]; it has \['t2m'\]"):
        verify_store(forecast, analysis, scores, variables=["t2m", "q"], scheduler=scheduler)
    held = open_forecast(forecast).init_time.values
    off = pd.Timestamp(held[0]) + pd.Timedelta("3h")  # a KeyError from xarray before
    shown = off.strftime("%Y-%m-%dT%H:%M")
    with pytest.raises(InputError, match=rf"has no initial time\(s\) {shown}; it holds 6"):
        verify_store(forecast, analysis, scores, init_times=[off], scheduler=scheduler)
    with pytest.raises(InputError, match="are not times"):
        verify_store(forecast, analysis, scores, init_times=["soon"], scheduler=scheduler)
    assert scheduler.entered == 0 and not scores.exists()
    one = str(pd.Timestamp(held[1]))  # one time as a string (was a TypeError)
    done = verify_store(forecast, analysis, scores, config=SETTINGS, init_times=one)
    assert done.tree.attrs["n_init_times"] == 1


def test_the_cli_verifies_only_the_leads_given(stores, tmp_path, capsys):
    """verify scored every lead of the forecast, with no way to ask for the one a
    forecaster reads (a 24 h scorecard of a 10-day store)."""
    forecast, analysis = stores
    scores = tmp_path / "s.nc"
    args = ["verify", str(forecast), "--truth", str(analysis), "--out", str(scores)]
    quiet = ["--physics-init-times", "0", "--no-energy-score", "--no-progress"]
    assert main([*args, *quiet, "--lead", "12h"]) == 0
    card = xr.open_datatree(scores)["scorecard"].to_dataset()
    assert card.lead_time.values.tolist() == [np.timedelta64(12, "h")]
    direct = verify(
        open_forecast(forecast).sel(lead_time=["12h"]), open_store(analysis).dataset, SETTINGS
    )
    xr.testing.assert_allclose(card, direct["scorecard"].to_dataset())
    scores.unlink()
    assert main([*args, *quiet, "--lead", "6h,9h"]) == 2
    refused = "has no lead(s) 9 h; it holds 6, 12 h: give leads from those, leads_hours= (--lead)"
    assert refused in capsys.readouterr().err
    assert main([*args, *quiet, "--lead", "soon"]) == 2
    assert "--lead 'soon': give durations" in capsys.readouterr().err
    assert not scores.exists()


def test_a_cf_netcdf_export_verifies_as_the_forecast_store_does(stores, tmp_path):
    """A forecaster exports a forecast store to NetCDF (``wxens export --out F.nc``) and
    verifies the file: its scorecard is the store's, to the last digit."""
    forecast, analysis = stores
    exported = tmp_path / "forecast.nc"
    assert main(["export", str(forecast), "--out", str(exported), "--no-progress"]) == 0
    cards = {}
    for name, source in (("store", forecast), ("nc", exported)):
        scores = tmp_path / f"{name}_scores.nc"
        assert main(verify_command(source, analysis, scores)) == 0
        cards[name] = xr.open_datatree(scores)["scorecard"].to_dataset().load()
    assert {"fair_crps", "spread_skill_ratio"} <= set(cards["nc"].data_vars)
    xr.testing.assert_equal(cards["nc"], cards["store"])


def test_open_forecast_any_reads_a_forecast_store_and_other_layouts(stores, tmp_path):
    forecast, _ = stores
    xr.testing.assert_identical(open_forecast_any(forecast), open_forecast(forecast))
    nc = tmp_path / "forecast.nc"
    open_forecast(forecast).drop_vars("complete", errors="ignore").to_netcdf(nc)
    assert set(open_forecast_any(str(nc)).data_vars) == {"t2m"}


def test_the_cli_compares_with_a_reference_of_fewer_runs_on_the_ones_it_holds(
    stores, tmp_path, capsys
):
    """Another producer's ensemble of every other run was refused with the advice to draw
    it again (wxens baseline), which one cannot do for another producer, and wxens verify
    had no way to verify the forecast on the runs the reference holds: --init does that."""
    from flows.cli import main

    forecast, analysis = stores
    held = open_forecast(forecast)
    reference = tmp_path / "other.nc"
    held.isel(init_time=slice(0, None, 2)).load().to_netcdf(reference)
    argv = ["verify", str(forecast), "--truth", str(analysis), "--reference", str(reference)]
    quiet = ["--physics-init-times", "0", "--no-energy-score", "--no-progress"]
    assert main([*argv, "--out", str(tmp_path / "a.nc"), *quiet]) == 2
    assert "init_times= (--init of `wxens verify`)" in capsys.readouterr().err
    times = [str(pd.Timestamp(t)) for t in held.init_time.values[::2]]
    assert main([*argv, "--out", str(tmp_path / "b.nc"), "--init", *times, *quiet]) == 0
    card = xr.open_datatree(tmp_path / "b.nc")["scorecard"].to_dataset()
    assert float(abs(card.fair_crps_skill_score).max()) < 1e-6  # itself on those runs
    assert xr.open_datatree(tmp_path / "b.nc").attrs["n_init_times"] == 3


def test_the_cli_prints_how_many_points_a_partial_reference_was_compared_on(
    stores, tmp_path, capsys
):
    """With a reference NaN at some runs, its CRPS and the skill cover fewer points than the
    forecast's CRPS beside them in the printed table: the table says how many."""
    from flows.cli import main

    forecast, analysis = stores
    held = open_forecast(forecast).load()
    held["t2m"][:2] = float("nan")  # two runs the other producer lacks
    held.to_netcdf(tmp_path / "other.nc")
    argv = ["verify", str(forecast), "--truth", str(analysis), "--out", str(tmp_path / "s.nc")]
    quiet = ["--physics-init-times", "0", "--no-energy-score", "--no-progress"]
    assert main([*argv, "--reference", str(tmp_path / "other.nc"), *quiet]) == 0
    out = capsys.readouterr().out
    assert "with reference" in out and "verified" in out
    assert main([*argv, "--reference", str(forecast), *quiet]) == 0
    assert "with reference" not in capsys.readouterr().out  # every point compared


def test_the_cli_writes_the_scores_of_a_forecast_with_a_dict_attribute(stores, tmp_path):
    """A forecast whose attributes held a dict (an analysis store's ``wxens_ingest`` copied
    into it) was scored in full, then writing the scores file failed with 'TypeError:
    illegal data type for attribute': the attribute is written as its JSON text."""
    import json

    forecast, analysis = stores
    state = open_store(analysis).dataset.attrs["wxens_ingest"]
    assert isinstance(state, dict)
    held = open_forecast(forecast).load()
    held.attrs["wxens_ingest"] = state
    held.attrs["wxens_labels"] = ["member", 3, None]  # a list of mixed types
    copied = tmp_path / "copied.zarr"
    write_forecast(copied, held, ForecastProvenance.from_attrs(held.attrs))
    scores = tmp_path / "s.nc"
    argv = ["verify", str(copied), "--truth", str(analysis), "--reference", str(copied)]
    quiet = ["--physics-init-times", "0", "--no-energy-score", "--no-progress"]
    assert main([*argv, "--out", str(scores), *quiet]) == 0
    written = xr.open_datatree(scores).attrs
    assert json.loads(written["wxens_ingest"]) == state
    assert json.loads(written["reference_wxens_ingest"]) == state
    assert json.loads(written["wxens_labels"]) == ["member", 3, None]
    assert written["wxens_generator"] == "oracle" and written["n_init_times"] == 6
    assert not list(tmp_path.glob(".s.nc*"))  # no temporary file left beside it


def test_verify_on_a_terminal_shows_a_bar_with_its_eta_not_elapsed_time_only(stores, tmp_path):
    """``wxens verify`` showed dask's bar, "[####    ] | 45% Completed | 12.3s": the time
    elapsed, never how long the scores still take. It is tqdm's now, tasks done of all,
    their rate and the time left, on stderr (stdout holds the scores table)."""
    forecast, analysis = stores
    argv = ["verify", str(forecast), "--truth", str(analysis), "--out", str(tmp_path / "s.nc")]
    code, out, shown = on_a_terminal([*argv, "--physics-init-times", "0", "--no-energy-score"])
    assert code == 0, shown
    assert "Completed" not in shown
    assert re.search(r"scores: 100%.*\| (\d+)/\1 \[\d\d:\d\d<\d\d:\d\d, [\d.]+ ?task/s\]", shown)
    assert "fair" in out.lower() and "task/s" not in out and "\r" not in out


def test_a_lead_the_forecast_lacks_is_refused_naming_the_python_argument(stores, tmp_path):
    """verify_store told a Python caller, who gave leads_hours=, to give --lead."""
    forecast, analysis = stores
    with pytest.raises(InputError, match=r"has no lead\(s\) 9 h; .*leads_hours=") as err:
        verify_store(forecast, analysis, tmp_path / "s.nc", config=SETTINGS, leads_hours=[9])
    assert "--lead" in str(err.value)  # the CLI's spelling still named, for wxens verify
