"""Forecast stores: create, append, overwrite-region, completion flags, provenance checks."""

from __future__ import annotations

import warnings
from dataclasses import replace
from datetime import timedelta

import numpy as np
import pandas as pd
import pytest
import xarray as xr
import zarr

from flows.cli import main
from pipeline import forecast_store
from pipeline.errors import InputError, StoreError
from pipeline.forecast_store import (
    ForecastProvenance,
    check_extends,
    open_forecast,
    provenance,
    write_forecast,
)
from pipeline.store_export import EXPORT_ATTR, export
from pipeline.transaction import commits, compact, open_dataset, reader

PROVENANCE = ForecastProvenance(
    "flow_matching", "0123456789abcdef", "euler:nfe=10", 10, 0, {"factors": [[1.2]]}
)


def ensemble(inits: list[str], value: float, members: int = 3, leads=(1, 6)) -> xr.Dataset:
    inits = pd.DatetimeIndex(inits)
    shape = (len(inits), members, len(leads))
    t2m = np.full((*shape, 4, 5), value, dtype="float64")
    z = np.full((*shape, 2, 4, 5), -value, dtype="float32")
    t2m[:, :, :, 0, 0] += np.arange(members)[None, :, None]  # members differ
    return xr.Dataset(
        {
            "t2m": (("init_time", "member", "lead_time", "latitude", "longitude"), t2m),
            "z": (("init_time", "member", "lead_time", "level", "latitude", "longitude"), z),
        },
        coords={
            "init_time": inits,
            "member": np.arange(members),
            "lead_time": pd.to_timedelta(list(leads), unit="h"),
            "level": [500, 850],
            "latitude": np.linspace(50, 58, 4),
            "longitude": np.linspace(-10, 2, 5),
        },
    )


def test_append_and_rerun_overwrite_only_their_own_region(tmp_path):
    path = tmp_path / "f.zarr"
    write_forecast(path, ensemble(["2019-03-22T00", "2019-03-22T06"], 1.0), PROVENANCE)
    write_forecast(path, ensemble(["2019-03-22T12"], 2.0), PROVENANCE)
    write_forecast(path, ensemble(["2019-03-22T06", "2019-03-23T00"], 3.0), PROVENANCE)
    ds = open_forecast(path)
    assert list(ds.init_time.values) == list(
        pd.DatetimeIndex(["2019-03-22T00", "2019-03-22T06", "2019-03-22T12", "2019-03-23T00"])
    )
    np.testing.assert_array_equal(
        ds.t2m.isel(member=0, lead_time=1, latitude=1, longitude=1).values, [1, 3, 2, 3]
    )
    np.testing.assert_array_equal(
        ds.z.isel(member=2, lead_time=0, level=1, latitude=0, longitude=0).values, [-1, -3, -2, -3]
    )
    np.testing.assert_array_equal(
        ds.t2m.isel(init_time=0, lead_time=0, latitude=0, longitude=0).values, [1, 2, 3]
    )
    assert ds.t2m.dtype == np.float32
    valid = pd.DatetimeIndex(ds.valid_time.sel(init_time="2019-03-22T12").values)
    assert valid.equals(pd.DatetimeIndex(["2019-03-22T13", "2019-03-22T18"]))
    assert provenance(path) == PROVENANCE
    assert ds.attrs["kind"] == "forecast" and ds.attrs["wxens_nfe"] == 10


def test_one_chunk_holds_every_member_of_one_init_and_lead(tmp_path):
    path = tmp_path / "f.zarr"
    write_forecast(path, ensemble(["2019-03-22T00", "2019-03-22T06"], 1.0, members=4), PROVENANCE)
    group = zarr.open_group(reader(path), mode="r")
    assert group["t2m"].chunks == (1, 4, 1, 4, 5)
    assert group["z"].chunks == (1, 4, 1, 2, 4, 5)


def test_an_interrupted_write_leaves_the_last_commit(tmp_path, monkeypatch):
    path = tmp_path / "f.zarr"
    write_forecast(path, ensemble(["2019-03-22T00", "2019-03-22T06"], 1.0), PROVENANCE)
    before = open_forecast(path).load()
    original = xr.Dataset.to_zarr

    def crash_on_data(self, *args, **kwargs):
        if "t2m" in self.data_vars:
            raise KeyboardInterrupt("killed while writing")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(xr.Dataset, "to_zarr", crash_on_data)
    for inits in (["2019-03-22T06"], ["2019-03-22T12"]):  # a rerun, then an append
        with pytest.raises(KeyboardInterrupt):
            write_forecast(path, ensemble(inits, 5.0), PROVENANCE)
    monkeypatch.setattr(xr.Dataset, "to_zarr", original)

    xr.testing.assert_identical(open_forecast(path, complete_only=False).load(), before)

    write_forecast(path, ensemble(["2019-03-22T06"], 5.0), PROVENANCE)  # the rerun lands
    assert open_forecast(path).t2m.isel(
        member=1, lead_time=0, latitude=2, longitude=2
    ).values.tolist() == [1.0, 5.0]


def test_a_plain_store_of_an_older_version_hides_unfinished_inits(tmp_path, caplog, capsys):
    """Plain Zarr forecast stores written before transactions carry False ``complete``
    flags for initial times whose write was interrupted: they are left out, and said so."""
    path = tmp_path / "f.zarr"
    write_forecast(path, ensemble(["2019-03-22T00", "2019-03-22T06"], 1.0), PROVENANCE)
    plain = export(path, tmp_path / "plain.zarr", progress=False)
    zarr.open_group(str(plain), mode="r+")[forecast_store.COMPLETE][1] = False

    with caplog.at_level("WARNING"):
        ds = open_forecast(plain)
    assert list(ds.init_time.values) == [np.datetime64("2019-03-22T00", "ns")]
    assert "2019-03-22T06" in caplog.text
    assert open_forecast(plain, complete_only=False).sizes["init_time"] == 2
    assert main(["info", str(plain)]) == 0
    described = capsys.readouterr().out
    assert "inits      1 complete of 2 written" in described
    assert "incomplete 2019-03-22T06:00 (not completely written; rerun" in described
    with pytest.raises(StoreError, match="plain Zarr store"):
        write_forecast(plain, ensemble(["2019-03-22T06"], 5.0), PROVENANCE)


def test_a_store_never_mixes_models_or_layouts(tmp_path):
    path = tmp_path / "f.zarr"
    write_forecast(path, ensemble(["2019-03-22T00"], 1.0), PROVENANCE)
    other = ForecastProvenance("edm", "fedcba9876543210", "edm_heun:num_steps=10", 19, 0, {})
    with pytest.raises(StoreError, match="fedcba9876543210"):
        write_forecast(path, ensemble(["2019-03-23T00"], 1.0), other)
    with pytest.raises(StoreError, match="member"):
        write_forecast(path, ensemble(["2019-03-23T00"], 1.0, members=5), PROVENANCE)
    with pytest.raises(StoreError, match=r"lead_time = \[.*\] h, this forecast \[1, 12\] h"):
        write_forecast(path, ensemble(["2019-03-23T00"], 1.0, leads=(1, 12)), PROVENANCE)
    # another seed and calibration: the message names what differs, not both whole records
    reseeded = replace(PROVENANCE, seed=PROVENANCE.seed + 1, calibration={"factors": [[2.0]]})
    with pytest.raises(StoreError) as err:
        write_forecast(path, ensemble(["2019-03-23T00"], 1.0), reseeded)
    assert f"seed {PROVENANCE.seed} there, {PROVENANCE.seed + 1} in this forecast" in str(err.value)
    assert "calibration differs in factors" in str(err.value) and len(str(err.value)) < 400
    # an uncalibrated forecast (--no-calibration) into a calibrated store: said so, rather
    # than every key of the calibration listed as differing
    calibrated = tmp_path / "calibrated.zarr"
    write_forecast(calibrated, ensemble(["2019-03-22T00"], 1.0), reseeded)
    with pytest.raises(StoreError, match="calibration there, none in this forecast"):
        write_forecast(
            calibrated, ensemble(["2019-03-23T00"], 1.0), replace(reseeded, calibration={})
        )
    with pytest.raises(StoreError, match="variables"):
        write_forecast(path, ensemble(["2019-03-23T00"], 1.0).drop_vars("z"), PROVENANCE)
    assert open_forecast(path).sizes["init_time"] == 1


def test_a_refused_correction_names_the_weights_that_differ_with_their_values(tmp_path):
    """Other correction weights (a retuned checkpoint) are named with both values, a
    nested stage's by its path; the entries that agree are left out."""
    path = tmp_path / "f.zarr"
    chain = {"method": "decaying_average", "weight": 0.2, "spread": {"weight": 0.7}}
    write_forecast(
        path, ensemble(["2019-03-22T00"], 1.0), replace(PROVENANCE, bias_correction=chain)
    )
    retuned = {**chain, "weight": 0.0, "spread": {"weight": 0.5}}
    with pytest.raises(StoreError) as err:
        write_forecast(
            path, ensemble(["2019-03-23T00"], 1.0), replace(PROVENANCE, bias_correction=retuned)
        )
    assert (
        "bias_correction differs in spread.weight (0.7 there, 0.5 in this forecast), "
        "weight (0.2 there, 0.0 in this forecast)"
    ) in str(err.value)
    assert "method" not in str(err.value)


def test_check_extends_refuses_before_drawing_what_the_store_would_not_take(tmp_path):
    path = tmp_path / "f.zarr"
    check_extends(path, PROVENANCE, 3, [1.0, 6.0])  # no store yet: anything goes
    write_forecast(path, ensemble(["2019-03-22T00"], 1.0), PROVENANCE)
    check_extends(path, PROVENANCE, 3, [1.0, 6.0])
    check_extends(path, None, 3, [1.0, 6.0])
    with pytest.raises(StoreError, match="holds 3 members, this forecast 5; write it to another"):
        check_extends(path, None, 5, [1.0, 6.0])
    with pytest.raises(StoreError, match=r"lead_time = \[1, 6\] h, this forecast \[1, 12\] h"):
        check_extends(path, PROVENANCE, 3, [1.0, 12.0])
    with pytest.raises(StoreError, match="seed 0 there, 1 in this forecast"):
        check_extends(path, replace(PROVENANCE, seed=1), 3, [1.0, 6.0])


def test_bad_layouts_and_paths_are_refused(tmp_path):
    transposed = ensemble(["2019-03-22T00"], 1.0).transpose("member", ...)
    with pytest.raises(InputError, match="dims"):
        write_forecast(tmp_path / "f.zarr", transposed, PROVENANCE)
    with pytest.raises(StoreError, match="no forecast store"):
        open_forecast(tmp_path / "missing.zarr")
    (tmp_path / "notzarr").mkdir()
    (tmp_path / "notzarr" / "file.txt").write_text("x")
    with pytest.raises(StoreError, match="not a Zarr store"):
        write_forecast(tmp_path / "notzarr", ensemble(["2019-03-22T00"], 1.0), PROVENANCE)


def test_completion_flag_is_a_coordinate_not_a_variable(tmp_path):
    path = tmp_path / "f.zarr"
    write_forecast(path, ensemble(["2019-03-22T00"], 1.0), PROVENANCE)
    raw = open_dataset(path)
    assert forecast_store.COMPLETE in raw.coords and set(raw.data_vars) == {"t2m", "z"}


def test_export_gives_a_plain_zarr_copy_any_xarray_reads(tmp_path, capsys):
    path = tmp_path / "f.zarr"
    write_forecast(path, ensemble(["2019-03-22T00", "2019-03-22T06"], 1.0), PROVENANCE)
    out = tmp_path / "plain.zarr"
    assert main(["export", str(path), "--out", str(out), "--no-progress"]) == 0
    assert f"{out}: plain Zarr v3 copy of {path}" in capsys.readouterr().out
    with warnings.catch_warnings():  # xarray's defaults, as WeatherBench 2's tools open it:
        warnings.simplefilter("error")  # no warning that consolidated metadata is missing
        plain = xr.open_zarr(out)
    copy = plain.load()  # the source's data and attributes, and the mark of a copy of it
    assert copy.attrs.pop(EXPORT_ATTR) == {"store": str(path.resolve())}
    added = [copy.attrs.pop(name) for name in ("title", "history", "source")]  # CF's 2.6.2
    assert "wxens export" in added[1] and "flow_matching generator" in added[2]
    xr.testing.assert_identical(copy, open_dataset(path).load())
    assert plain.t2m.encoding["chunks"] == open_dataset(path).t2m.encoding["chunks"]
    assert main(["export", str(path), "--out", str(out)]) == 2  # never over an existing path
    assert "exists; export to a new path" in capsys.readouterr().err
    assert main(["export", str(tmp_path / "none.zarr"), "--out", str(tmp_path / "x.zarr")]) == 2
    assert "no Zarr store there" in capsys.readouterr().err
    assert not (tmp_path / "x.zarr").exists()


def test_compact_forgets_old_commits_and_their_files_and_keeps_the_data(tmp_path, capsys):
    path = tmp_path / "f.zarr"
    for day in range(22, 27):  # a scheduled run: one commit a batch
        write_forecast(path, ensemble([f"2019-03-{day}T00"], float(day)), PROVENANCE)
    write_forecast(path, ensemble(["2019-03-22T00"], 0.5), PROVENANCE)  # a rerun replaces one
    before = open_forecast(path).load()
    size = sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    assert len(commits(path)) == 7  # and the repository's first, empty one

    done = compact(path, timedelta(0), grace=timedelta(0))
    left = len(commits(path))  # the last and the repository's first
    assert (done.commits_expired, done.commits_left) == (7 - left, left) and left <= 2
    assert done.objects_deleted > 0 and done.bytes_deleted > 0
    xr.testing.assert_identical(open_forecast(path).load(), before)
    assert sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) < size

    assert main(["compact", str(path), "--keep", "1h"]) == 0
    assert f"0 commits older than 1h forgotten, {left} left;" in capsys.readouterr().out
    assert main(["compact", str(path), "--keep", "soon"]) == 2
    assert "--keep 'soon' is not a duration" in capsys.readouterr().err
    before = len(commits(path))  # a bare number was 7 ns of history: it forgot everything
    assert main(["compact", str(path), "--keep", "7"]) == 2
    assert "'7' has no unit; write e.g. 7h, 7d or 7min" in capsys.readouterr().err
    assert len(commits(path)) == before
    plain = export(path, tmp_path / "plain.zarr", progress=False)
    assert main(["compact", str(plain)]) == 2  # a plain store has no history


def test_export_of_a_store_written_out_of_order_is_sorted_by_initial_time(tmp_path):
    """A store grows in the order its initial times were written (a backfill, or two
    forecasts at once); wxens sorts it on reading, a plain copy must be sorted itself:
    xarray's ``sel(init_time=slice(...))`` on the export raised a KeyError (a
    non-monotonic index), and a WeatherBench 2 tool paired the wrong times."""
    path = tmp_path / "f.zarr"
    write_forecast(path, ensemble(["2019-03-23T00"], 2.0), PROVENANCE)
    write_forecast(path, ensemble(["2019-03-22T00", "2019-03-22T12"], 1.0), PROVENANCE)
    out = export(path, tmp_path / "plain.zarr", progress=False)
    plain = xr.open_zarr(out)
    assert plain.indexes["init_time"].is_monotonic_increasing
    assert plain.sel(init_time=slice("2019-03-22T06", "2019-03-23")).sizes["init_time"] == 2
    xr.testing.assert_identical(
        plain.t2m.drop_vars("complete").load(), open_forecast(path).t2m.load()
    )
    assert plain.t2m.encoding["chunks"] == open_dataset(path).t2m.encoding["chunks"]


def test_info_shows_the_leads_of_a_long_forecast_as_a_range(tmp_path, capsys):
    """A 10-day forecast at every 6 h (and one every hour, 240 leads) listed each lead in
    one line of ``wxens info``; a run of evenly spaced leads reads as a range."""
    from pipeline.timeaxis import hours_text

    path = tmp_path / "f.zarr"
    write_forecast(path, ensemble(["2019-03-22T00"], 1.0, leads=range(6, 241, 6)), PROVENANCE)
    capsys.readouterr()
    assert main(["info", str(path)]) == 0
    assert "leads 6 to 240 every 6 h" in capsys.readouterr().out
    assert hours_text([1, 3, 6, 12, 24]) == "1, 3, 6, 12, 24"
    assert hours_text([*range(1, 25), *range(30, 241, 6)]) == "1 to 24 every 1, 30 to 240 every 6"
    assert hours_text([1, 2, 3, 6]) == "1, 2, 3, 6"


def test_info_names_the_cycles_missing_between_the_first_and_last_forecast(tmp_path):
    """A store served from a daily feed lacked the cycles 05T00-12 (a run drew only the
    latest) and ``wxens info`` said ``33 complete of 33 written: FIRST .. LAST``, as if
    whole; it says the cadence, how many cycles are missing, which, and how to draw them."""
    import subprocess
    import sys

    from flows.commands.forecast import parse_inits

    cycles = pd.date_range("2019-03-01", "2019-03-09T18", freq="6h")
    gap = pd.date_range("2019-03-05T00", "2019-03-05T12", freq="6h")
    path = tmp_path / "f.zarr"
    write_forecast(path, ensemble(list(cycles.difference(gap)), 1.0), PROVENANCE)
    out = subprocess.run(
        [sys.executable, "-m", "flows.cli", "info", str(path)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert (
        "33 complete of 33 written: 2019-03-01T00:00 .. 2019-03-09T18:00 (every 6 h, "
        "3 missing)" in out
    )
    line = next(x for x in out.splitlines() if x.startswith("missing "))
    assert line.startswith("missing    2019-03-05T00:00, 2019-03-05T06:00, 2019-03-05T12:00;")
    assert parse_inits([line.split("--init ")[1]]).equals(gap)  # the hint draws those


def test_info_counts_many_missing_cycles_and_says_nothing_missing_of_hand_picked_days(
    tmp_path, capsys
):
    """Many missing cycles are counted with the first and the last; initial times picked
    by hand (a case study's days) have no one cadence, so no gap of theirs is "missing"."""
    cycles = pd.date_range("2019-03-01", "2019-03-09T18", freq="6h")
    regular, picked = tmp_path / "regular.zarr", tmp_path / "picked.zarr"
    write_forecast(regular, ensemble(list(cycles.delete(range(8, 20))), 1.0), PROVENANCE)
    days = ["2019-03-01T00", "2019-03-03T00", "2019-03-04T12", "2019-03-10T00"]
    write_forecast(picked, ensemble(days, 1.0), PROVENANCE)
    capsys.readouterr()
    assert main(["info", str(regular)]) == 0
    out = capsys.readouterr().out
    assert "(every 6 h, 12 missing)" in out
    assert (
        "missing    2019-03-03T00:00, 2019-03-03T06:00, 2019-03-03T12:00 ... "
        "2019-03-05T18:00 (12 in all)" in out
    )
    assert main(["info", str(picked)]) == 0
    out = capsys.readouterr().out
    assert "2019-03-10T00:00 (no one cadence)" in out
    assert not [line for line in out.splitlines() if line.startswith("missing")]


def test_compact_help_says_what_stays(capsys):
    """'0h keeps the last commit only' left two (Icechunk keeps the repository's empty
    first commit), and a compact right after a failed write deleted nothing (files younger
    than ten minutes stay for readers) without the help saying either."""
    with pytest.raises(SystemExit):
        main(["compact", "--help"])
    said = " ".join(capsys.readouterr().out.split())
    assert "beside the repository's empty first one" in said
    assert "files younger than 10 minutes stay" in said


def test_check_extends_refuses_a_plain_store_of_an_older_version_before_drawing(tmp_path):
    """A plain Zarr forecast store (an older wxens's, or an export) is refused by the check
    made before any member is drawn, not by the write after the drawing."""
    path = tmp_path / "f.zarr"
    write_forecast(path, ensemble(["2019-03-22T00"], 1.0), PROVENANCE)
    plain = export(path, tmp_path / "plain.zarr", progress=False)
    with pytest.raises(StoreError, match="plain Zarr store.*choose another store path"):
        check_extends(plain, PROVENANCE, 3, [1.0, 6.0])


def test_store_records_the_software_that_created_it_and_info_shows_it(tmp_path, capsys):
    """A re-run needs the versions beside the seed and digest: members differ in their
    last bits between torch builds."""
    import importlib.metadata

    path = tmp_path / "f.zarr"
    write_forecast(path, ensemble(["2019-03-22T00"], 1.0), PROVENANCE)
    software = open_forecast(path).attrs["wxens_software"]
    for package in ("wxens", "numpy", "xarray"):
        assert f"{package} {importlib.metadata.version(package)}" in software
    assert main(["info", str(path)]) == 0
    assert f"software   {software}" in capsys.readouterr().out


def test_check_extends_refuses_a_store_it_cannot_write_before_drawing(tmp_path, monkeypatch):
    # A forecast (or tune) into a read-only folder or store drew its first batch, then
    # failed on the lock file or the store: found now before any drawing, naming the path.
    import os
    import stat

    real_access = os.access

    def access(path, mode, **kw):  # root writes anyway: emulate a user's permissions
        if os.geteuid() == 0 and mode & os.W_OK:
            return bool(os.stat(path).st_mode & stat.S_IWUSR)
        return real_access(path, mode, **kw)

    monkeypatch.setattr(os, "access", access)
    folder = tmp_path / "out"
    folder.mkdir()
    path = folder / "f.zarr"
    write_forecast(path, ensemble(["2019-03-22T00"], 1.0), PROVENANCE)
    for read_only, named in [(folder / "new", folder / "new"), (path, path)]:
        read_only.mkdir(exist_ok=True)
        read_only.chmod(0o555)
        try:
            target = read_only / "f.zarr" if read_only != path else path
            with pytest.raises(PermissionError) as err:
                check_extends(target, PROVENANCE, 3, [1.0, 6.0])
            assert str(named) in str(err.value)
        finally:
            read_only.chmod(0o755)
    check_extends(path, PROVENANCE, 3, [1.0, 6.0])


def test_the_log_of_a_write_names_the_initial_times_it_wrote(tmp_path, caplog):
    """A scheduled run's log is where an operator looks for which cycle ran: "created
    forecast store f.zarr with 2 initial time(s)" and "overwrote 0 and appended 1 initial
    time(s)" named none."""
    path = tmp_path / "f.zarr"
    with caplog.at_level("INFO", logger="pipeline.forecast_store"):
        write_forecast(path, ensemble(["2019-03-22T00", "2019-03-22T06"], 1.0), PROVENANCE)
        write_forecast(path, ensemble(["2019-03-22T12"], 2.0), PROVENANCE)
    created, appended = [r.getMessage() for r in caplog.records][-2:]
    assert "2019-03-22T00:00..2019-03-22T06:00" in created
    assert "(initial time 2019-03-22T12:00): overwrote 0 and appended 1" in appended


def test_valid_times_of_appended_initial_times_stay_init_plus_lead(tmp_path):
    """A store created by one 18 UTC run at +6 h (valid 00 UTC) encoded valid_time in
    'days since': the next cycle's 06 UTC valid time could not be written in days, and
    xarray wrote hours under the 'days' units: valid 2019-03-23T06 read as 2019-03-29."""
    path = tmp_path / "f.zarr"
    write_forecast(path, ensemble(["2019-03-22T18"], 1.0, leads=(6,)), PROVENANCE)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nor the "can't be serialized faithfully" noise
        write_forecast(path, ensemble(["2019-03-23T00"], 2.0, leads=(6,)), PROVENANCE)
    ds = open_forecast(path)
    expected = (ds.init_time + ds.lead_time).transpose("init_time", "lead_time")
    np.testing.assert_array_equal(ds.valid_time.values, expected.values)


def test_a_store_of_an_older_wxens_with_valid_times_in_days_is_read_and_repaired(
    tmp_path, monkeypatch, caplog
):
    """Stores written before valid_time was encoded in seconds hold 'days since' units, and
    the valid times appended since in hours under them (06 UTC read as 6 days later): it
    reads as init + lead, and the next write rewrites it in seconds."""
    path = tmp_path / "f.zarr"
    encoding = forecast_store._encoding
    old = {"valid_time": {"chunks": (1, 1)}}  # no units: xarray picks days for one time
    monkeypatch.setattr(forecast_store, "_encoding", lambda ds: encoding(ds) | old)
    monkeypatch.setattr(forecast_store, "repair_valid_time", lambda *args: None)
    write_forecast(path, ensemble(["2019-03-22T18"], 1.0, leads=(6,)), PROVENANCE)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # xarray's "can't be serialized faithfully"
        write_forecast(path, ensemble(["2019-03-23T00"], 2.0, leads=(6,)), PROVENANCE)
    monkeypatch.undo()
    stored = open_dataset(path).valid_time.values
    assert pd.Timestamp(stored[1, 0]) != pd.Timestamp("2019-03-23T06")  # the damage
    ds = open_forecast(path)
    expected = (ds.init_time + ds.lead_time).transpose("init_time", "lead_time")
    np.testing.assert_array_equal(ds.valid_time.values, expected.values)
    with caplog.at_level("INFO", logger="pipeline.forecast_times"):
        write_forecast(path, ensemble(["2019-03-23T06"], 3.0, leads=(6,)), PROVENANCE)
    assert "valid_time rewritten in seconds since 1970-01-01" in caplog.text
    stored = open_dataset(path).valid_time
    np.testing.assert_array_equal(stored.values, open_forecast(path).valid_time.values)


def test_a_file_that_is_not_a_forecast_store_is_not_offered_to_be_overwritten(tmp_path):
    """`wxens bias-correct ens.grib` answered 'no forecast store at ens.grib; create it with
    `wxens forecast --out ens.grib`': an invitation to write over another producer's file."""
    grib = tmp_path / "ens.grib"
    grib.write_bytes(b"GRIB")
    with pytest.raises(StoreError) as err:
        forecast_store.open_forecast(grib)
    assert "ens.grib is not a wxens forecast store" in str(err.value)
    assert "`wxens verify`" in str(err.value) and "--out" not in str(err.value)


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_another_producers_zarr_ensemble_names_how_to_read_it(tmp_path, zarr_format):
    """A WeatherBench 2 ensemble Zarr given to the README's `open_forecast` said only 'is not
    a wxens forecast store (no 'kind: forecast' record)': it now names what reads it."""
    wb2 = xr.Dataset(
        {"2m_temperature": (("time", "sample", "prediction_timedelta"), np.zeros((2, 3, 1)))},
        coords={"time": pd.date_range("2020-01-01", periods=2, freq="12h")},
    )
    wb2.to_zarr(tmp_path / "wb2.zarr", zarr_format=zarr_format, consolidated=False)
    with pytest.raises(StoreError) as err:
        forecast_store.open_forecast(tmp_path / "wb2.zarr")
    said = str(err.value)
    assert "wb2.zarr is not a wxens forecast store" in said
    assert "`wxens verify`" in said and "pipeline.adapters.to_wxens_forecast" in said
