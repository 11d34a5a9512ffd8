"""``wxens demo`` end to end on the shipped sample (derived config, tune, correction),
shortened to seconds by overrides."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.slow

SHORTENED = ["--set", "steps=2", "--set", "fine_tune.steps=1", "--set", "validate_every=1"]
SHORTENED += ["--set", "data.history=2", "--set", "calibration.members=2"]
SHORTENED += ["--set", "calibration.init_every_hours=12", "--set", "batch_size=2"]
"""The demo's training shortened to seconds (its calibration too): the derived batch made
its one fine-tune step (a CRPS of members drawn through the sampler) 5 s alone."""


def test_demo_on_a_masked_sample_runs_the_chain_and_prints_where_things_are(
    prefect_server, dask_scheduler, uk_sample, tmp_path, monkeypatch, capsys
):
    """The shipped sample made land-only (NaN west of 3 W): refused without --allow-nan,
    with nothing written; with it the whole chain runs (derived config, tune, correction,
    scorecard), every member NaN exactly where the field is. One demo run for both (each
    was 22 s of the suite): nothing of the chain's checks below needs the sea."""
    import numpy as np

    from flows.cli import build_parser, main
    from flows.commands import demo
    from flows.commands.demo import DEMO_STEPS
    from generators.config import load_train_config
    from generators.correction.tuned import load_tuned, tuned_path
    from pipeline.forecast_store import open_forecast
    from pipeline.schema import Period
    from pipeline.store import ingest

    full = ingest(uk_sample, tmp_path / "uk.zarr", progress=False).dataset.load()
    sample = tmp_path / "land.nc"
    masked = full.copy()
    masked.attrs = {}
    masked["t2m"] = full.t2m.where(full.longitude >= -3.0).transpose(*full.t2m.dims)
    masked["t2m"].attrs = full.t2m.attrs
    masked.to_netcdf(sample)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(demo, "TUNE", {"members": 2, "folds": 1, "every_hours": 24.0})
    argv = ["demo", "--workdir", "demo", "--sample", str(sample), "--members", "4"]
    argv += ["--init", "2019-03-22T00", *SHORTENED, "--dask-scheduler", dask_scheduler]
    workdir = tmp_path / "demo"

    assert main(argv) == 2
    assert "--allow-nan" in capsys.readouterr().err
    assert not (workdir / "era5-uk.zarr").exists()
    argv.append("--allow-nan")
    code = main(argv)
    out = capsys.readouterr().out
    assert code == 0
    members = open_forecast(workdir / "forecast.zarr").t2m
    sea = np.isnan(masked.t2m.isel(time=0).values)
    assert sea.any() and not sea.all()
    np.testing.assert_array_equal(np.isnan(members.values), np.broadcast_to(sea, members.shape))
    names = ("era5-uk.zarr", "model/last.pt", "forecast.zarr", "persistence.zarr", "scores.nc")
    config = load_train_config(workdir / "config.yaml")  # derived from the store to 21 March
    assert config.data.history == 24 and config.data.leads == (1, 3, 6, 12, 24)
    # the last 4 days held out: validation, calibration and the tune's forecasts
    assert config.data.validation == Period("2019-03-18T00:00", "2019-03-21T23:00")
    assert config.steps == 2 != DEMO_STEPS  # derived for the steps --set gives
    assert load_tuned(workdir / "model") is not None
    tuned = json.loads(tuned_path(workdir / "model").read_text())
    assert (tuned["first_init_time"], tuned["init_times"]) == ("2019-03-18T00:00", 3)
    for name in (*names, "report.html"):
        assert (workdir / name).exists(), name
        assert str(workdir / name).split("/last.pt")[0] in out
    assert f"open the report: file://{workdir / 'report.html'}" in out
    rows = {line.split(" h ")[0]: line for line in out.splitlines() if line.startswith("t2m ")}
    for lead in (1, 3, 6, 12, 24):  # the scorecard table, one row per lead
        # CRPS, persistence's, skill, SSR, rank max/min (the floor verify reads it against)
        values = rows[f"t2m        {lead:>3}"].split()
        crps, reference, skill = float(values[3]), float(values[5]), float(values[7])
        # printed to 3 decimals (CRPS) and 2 (skill): their rounding bounds the difference
        rounding = 0.0005 * (1 + crps / reference) / reference + 0.005
        assert skill == pytest.approx(1 - crps / reference, abs=rounding + 1e-9)
        rank, floor = float(values[9]), values[10].strip("()")
        assert rank >= 1 and (floor == "n/a" or float(floor) >= 1)  # n/a: one initial time
        assert values[11] == ("n/a" if floor == "n/a" else values[11]) in ("yes", "no", "n/a")
    # what an interrupt would be told (`demo.kept`, read from the work directory): every
    # step done; and, the scores gone as an interrupt in the verification leaves them, the
    # steps before it done, the verification the one stopped in, nothing of it kept
    args = build_parser().parse_args(argv)
    assert demo.kept(args).endswith(f"verification ({workdir}/scores.nc)); nothing to resume")
    (workdir / "scores.nc").unlink()
    said = demo.kept(args)
    assert said.startswith(f"done, skipped by the rerun: ingest ({workdir}/era5-uk.zarr), ")
    assert said.endswith(
        f"baseline ({workdir}/persistence.zarr); stopped in verification ({workdir}/scores.nc):"
        f" nothing of the scoring kept ({workdir}/scores.nc and {workdir}/report.html written"
        " only whole, at the end); rerun the same command to verify"
    )


def test_demo_without_its_sample_says_what_to_do(tmp_path, capsys):
    from flows.cli import main

    assert main(["demo", "--workdir", str(tmp_path), "--sample", str(tmp_path / "no.grib")]) == 2
    assert "no.grib is missing" in capsys.readouterr().err


def test_a_bad_demo_init_stops_before_the_ingest(tmp_path, capsys):
    from flows.cli import main

    workdir = tmp_path / "demo"
    assert main(["demo", "--workdir", str(workdir), "--init", "2019-03-30/2019-03-22/6h"]) == 2
    assert "starts (2019-03-30) after it ends (2019-03-22)" in capsys.readouterr().err
    assert not workdir.exists()  # nothing ingested


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--train-end", "notaday"], "--train-end 'notaday' is not a time of the store"),
        (["--workdir", "{file}"], "is a file; give a folder"),
    ],
)
def test_bad_demo_arguments_stop_before_the_ingest(argv, message, tmp_path, capsys):
    from flows.cli import main

    (tmp_path / "afile").write_text("")
    workdir = ["--workdir", str(tmp_path / "demo")]
    assert main(["demo", *workdir, *[a.format(file=tmp_path / "afile") for a in argv]]) == 2
    assert message in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]  # nothing ingested


def test_a_demo_init_the_sample_does_not_hold_stops_before_the_training(
    prefect_server, dask_scheduler, tmp_path, capsys, monkeypatch
):
    """An initial time after the sample (April) was refused only by the forecast, after
    the config, the training and the tune (minutes of CPU); the ingested store says so
    before any of them."""
    from flows.cli import main

    monkeypatch.chdir(tmp_path)  # Prefect's results (.wxens) land here, not in the repository

    workdir = tmp_path / "demo"
    argv = ["demo", "--workdir", str(workdir), "--init", "2019-04-01T00", "2019-03-22T00"]
    assert main([*argv, "--dask-scheduler", dask_scheduler]) == 2
    err = capsys.readouterr().err
    assert "wxens demo: error: --init 2019-04-01T00:00:" in err, err
    assert "2019-04-01T00:00" in err and "2019-03-31T23:00" in err and "--init" in err, err
    assert not (workdir / "config.yaml").exists() and not (workdir / "model").exists()
