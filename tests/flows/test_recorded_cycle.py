"""A forecast store records the cycle it is drawn on (a scheduled run's ``cycle_hours``, a
``wxens forecast --init`` range's step), so ``wxens info`` names the cycles every run left
out: read off the initial times alone, a 6-hourly deployment's ``latest: 1`` on a feed that
brings a day at a time held one 18 UTC forecast a day, and info said "every 1 day, 0
missing"."""

from __future__ import annotations

from flows.cli import main
from flows.commands.forecast import parse_inits
from pipeline.forecast_times import CYCLE_ATTR
from pipeline.transaction import read_attrs

FORECAST = ["forecast", "--members", "2", "--lead", "12h", "--no-progress", "--no-compile"]


def info(path, capsys) -> str:
    capsys.readouterr()
    assert main(["info", str(path)]) == 0
    return capsys.readouterr().out


def test_a_scheduled_run_records_its_cycle_and_info_names_the_cycles_it_left_out(
    prefect_server, tiny_model, tmp_path, monkeypatch, capsys
):
    """A forecast by hand of one initial time records no cycle and reads as before; the
    scheduled run's latest cycle, a day later, leaves out the three between (a daily feed)
    and records its 6 h: info names those three with the range that draws them."""
    from flows.pipelines import ensemble_run

    store, model = tiny_model
    out = tmp_path / "f.zarr"
    argv = ["--checkpoint", str(model), "--store", str(store), "--out", str(out)]
    assert main([*FORECAST, *argv, "--init", "2000-01-09T18"]) == 0
    assert CYCLE_ATTR not in read_attrs(out)
    shown = info(out, capsys)
    assert "1 complete of 1 written: 2000-01-09T18:00 .. 2000-01-09T18:00\n" in shown
    monkeypatch.chdir(tmp_path)  # Prefect's results land there
    summary = ensemble_run(
        store=str(store),
        checkpoint=str(model),
        forecast_store=str(out),
        scores=str(tmp_path / "s.nc"),
        latest=1,
        cycle_hours=6,
        members=2,
    )
    assert summary["forecast_init_times"] == ["2000-01-10T18:00:00"]
    assert read_attrs(out)[CYCLE_ATTR] == 6
    shown = info(out, capsys)
    assert "2000-01-09T18:00 .. 2000-01-10T18:00 (every 6 h, recorded; 3 missing)" in shown
    line = next(x for x in shown.splitlines() if x.startswith("missing "))
    assert line.startswith("missing    2000-01-10T00:00, 2000-01-10T06:00, 2000-01-10T12:00;")
    drawn = parse_inits([line.split("--init ")[1]])
    assert [t.isoformat() for t in drawn] == [f"2000-01-10T{h}:00:00" for h in ("00", "06", "12")]


def test_a_forecast_of_an_init_range_records_its_step(tiny_model, tmp_path, capsys):
    """``--init A/B/6h`` records 6 h; two of its times drawn alone read as drawn at 12 h,
    as they would without the record, and info says the recorded 6 h with one missing."""
    store, model = tiny_model
    out = tmp_path / "f.zarr"
    argv = ["--checkpoint", str(model), "--store", str(store), "--out", str(out)]
    assert main([*FORECAST, *argv, "--init", "2000-01-09T00/2000-01-09T12/6h"]) == 0
    assert read_attrs(out)[CYCLE_ATTR] == 6
    assert "(every 6 h, recorded; 0 missing)" in info(out, capsys)


def test_a_run_of_an_init_range_records_its_step(
    prefect_server, tiny_model, tmp_path, capsys, monkeypatch
):
    """``wxens run --init A/B/6h`` records 6 h as ``wxens forecast`` does (the flow got the
    range's times alone and recorded none), so info reads the store's cycle as recorded; the
    same command again verifies nothing anew (the record is made before verify reads)."""
    monkeypatch.chdir(tmp_path)  # Prefect's results land there, not in the repository
    store, model = tiny_model
    out = tmp_path / "f.zarr"
    argv = ["run", "--checkpoint", str(model), "--store", str(store), "--out", str(out)]
    argv += ["--scores", str(tmp_path / "s.nc"), "--members", "2", "--lead", "12h"]
    assert main([*argv, "--init", "2000-01-09T00/2000-01-09T12/6h"]) == 0
    assert read_attrs(out)[CYCLE_ATTR] == 6
    assert "(every 6 h, recorded; 0 missing)" in info(out, capsys)
    scored = (tmp_path / "s.nc").stat().st_mtime_ns
    assert main([*argv, "--init", "2000-01-09T00/2000-01-09T12/6h"]) == 0
    assert (tmp_path / "s.nc").stat().st_mtime_ns == scored
