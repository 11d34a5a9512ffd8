"""The whole chain as flows (ingest, train, forecast, verify) on the synthetic source: its
outputs, a rerun that skips finished work, and the same numbers on and off a dask cluster."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import dask
import numpy as np
import pandas as pd
import pytest
import xarray as xr

pytestmark = pytest.mark.slow


def test_ensemble_run_writes_every_output(chain):
    from generators.checkpoint import load_checkpoint
    from pipeline.forecast_store import open_forecast
    from pipeline.store import open_store

    inits = pd.DatetimeIndex(chain.parameters["init_times"])
    assert pd.DatetimeIndex(chain.summary["forecast_init_times"]).equals(inits)
    assert pd.DatetimeIndex(chain.summary["verified_init_times"]).equals(inits)

    truth = open_store(chain.store)
    assert truth.dataset.sizes["time"] == 40
    checkpoint = load_checkpoint(chain.checkpoint)
    assert checkpoint.step == 12
    assert checkpoint.leads_hours == (6.0, 12.0)

    forecast = open_forecast(chain.forecast)
    assert pd.DatetimeIndex(forecast["init_time"].values).equals(inits)
    assert forecast.sizes["member"] == chain.parameters["members"]
    assert (forecast["lead_time"].values / np.timedelta64(1, "h")).tolist() == [6.0, 12.0]

    card = xr.open_datatree(chain.scores)["scorecard"].to_dataset()
    assert card["variable"].values.tolist() == ["t2m"]
    assert np.isfinite(card["fair_crps"]).all()
    assert (card["fair_crps"] > 0).all()
    html = chain.report.read_text()
    assert html.count("<img") >= 4 and "data:image/png;base64," in html


def test_rerun_skips_every_finished_step(chain, file_times, monkeypatch):
    from flows.pipelines import ensemble_run

    outputs = (chain.store, chain.checkpoint, chain.forecast, chain.scores, chain.report)
    before = file_times(*outputs)
    monkeypatch.chdir(chain.workdir)
    summary = ensemble_run(**chain.parameters)
    assert summary == chain.summary
    assert file_times(*outputs) == before  # nothing rewritten: every task skipped


def test_verification_on_the_cluster_equals_a_local_run(chain):
    """The chain verified on a 2-worker LocalCluster; the same call in this process, on
    dask's synchronous scheduler, must give the same numbers."""
    from pipeline.forecast_store import open_forecast
    from pipeline.store import open_store
    from verification.config import VerifyConfig
    from verification.scorecard import verify

    with dask.config.set(scheduler="synchronous"):
        local = verify(
            open_forecast(chain.forecast),
            open_store(chain.store).dataset,
            VerifyConfig(progress=False),
        )
    on_cluster = xr.open_datatree(chain.scores)
    for group in ("scorecard", "rank_histogram", "reliability", "spectra"):
        xr.testing.assert_allclose(
            on_cluster[group].to_dataset(), local[group].to_dataset().load(), rtol=1e-6
        )
    np.testing.assert_array_equal(  # integer counts: exactly equal
        on_cluster["rank_histogram"]["rank_histogram"].values,
        local["rank_histogram"]["rank_histogram"].values,
    )


def test_forecasts_split_over_the_cluster_equal_the_chains(chain, tmp_path, monkeypatch):
    """The chain's forecast (its initial times in one batch) drawn again by the forecast
    flow over the 2-worker cluster, one initial time a batch: the same members and
    provenance."""
    from flows.pipelines import forecast
    from pipeline.forecast_store import open_forecast, provenance

    p = chain.parameters
    out = tmp_path / "on_cluster.zarr"
    monkeypatch.chdir(tmp_path)
    done = forecast(
        p["checkpoint"],
        p["store"],
        p["init_times"],
        str(out),
        members=p["members"],
        batch_members=p["members"],
        dask_scheduler=p["dask_scheduler"],
    )
    assert done == chain.summary["forecast_init_times"]
    split, whole = open_forecast(out).load(), open_forecast(chain.forecast).load()
    # the same noise; the network's float rounding may differ with the batch size
    xr.testing.assert_allclose(split, whole, rtol=1e-6, atol=0)
    assert provenance(out) == provenance(chain.forecast)


@pytest.mark.parametrize("via", ["flow", "cli"])
def test_a_forecast_on_the_cluster_takes_paths_relative_to_this_directory(
    chain, tmp_path, monkeypatch, via
):
    """The workers started elsewhere: given as they were, relative paths named folders of
    the workers' directory and the forecast failed, 'no checkpoint at model'."""
    from flows.cli import main
    from flows.pipelines import forecast
    from pipeline.forecast_store import open_forecast

    p = chain.parameters
    for name in ("checkpoint", "store"):
        (tmp_path / Path(p[name]).name).symlink_to(p[name])
    monkeypatch.chdir(tmp_path)
    checkpoint, store = Path(p["checkpoint"]).name, Path(p["store"]).name
    init = p["init_times"][0]
    if via == "flow":
        forecast(
            checkpoint, store, [init], "rel.zarr", members=2, dask_scheduler=p["dask_scheduler"]
        )
    else:
        argv = ["forecast", "--checkpoint", checkpoint, "--store", store, "--init", init]
        argv += ["--lead", "6h", "--members", "2", "--out", "rel.zarr", "--no-progress"]
        assert main([*argv, "--dask-scheduler", p["dask_scheduler"]]) == 0
    assert open_forecast(tmp_path / "rel.zarr").sizes["init_time"] == 1


def test_ingestion_on_the_cluster_equals_a_local_run(chain, tmp_path):
    from pipeline.store import ingest, open_store

    with dask.config.set(scheduler="synchronous"):
        local = ingest(
            chain.parameters["sources"],
            tmp_path / "local.zarr",
            variables=chain.parameters["variables"],
            progress=False,
        )
    on_cluster = open_store(chain.store)
    xr.testing.assert_equal(on_cluster.dataset.load(), local.dataset.load())
    xr.testing.assert_allclose(on_cluster.statistics, local.statistics, rtol=1e-6)


def test_wxens_run_prints_where_the_outputs_are_and_the_steps(chain, monkeypatch, capsys):
    from flows.cli import main

    p = chain.parameters
    monkeypatch.chdir(chain.workdir)
    code = main(
        ["run", "--store", p["store"], "--source", *p["sources"], "--variables", "t2m"]
        + ["--checkpoint", p["checkpoint"], "--train-config", p["train_config"]]
        + ["--init", "2000-01-08T00/2000-01-08T18/6h", "--members", str(p["members"])]
        + ["--out", p["forecast_store"], "--scores", p["scores"]]
        + ["--report", p["report"], "--dask-scheduler", p["dask_scheduler"]]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert f"forecast store   {p['forecast_store']} (this run's 4 initial times complete, " in out
    assert f"report           {p['report']}" in out
    steps = out.split("steps", 1)[1]
    assert all(name in steps for name in ("ingest", "train", "forecast", "verify"))


def test_wxens_run_with_a_missing_store_exits_2_with_the_fix(tmp_path, monkeypatch, capsys):
    from flows.cli import main

    monkeypatch.chdir(tmp_path)
    code = main(
        ["run", "--store", "nowhere.zarr", "--checkpoint", "nowhere.pt"]
        + ["--out", "f.zarr", "--scores", "s.nc"]
    )
    assert code == 2
    assert "nowhere.zarr: no such store; create it with `wxens ingest" in capsys.readouterr().err
    assert not (tmp_path / "f.zarr").exists()
    code = main(
        ["run", "--store", "nowhere.zarr", "--checkpoint", "nowhere.pt"]
        + ["--out", "f.zarr", "--scores", "s.nc", "--spread-weight", "0.7"]
    )
    assert code == 2
    assert "give --bias-correct STORE too" in capsys.readouterr().err
    for flags, message in (
        (["--baseline", "persistence"], "--baseline needs --baseline-train START/END"),
        (["--baseline-store", "b.zarr"], "go with --baseline NAME"),
        (["--probability", "t2m<0degC"], "to --products-out P.nc: give it too"),
        (["--mean", "--products-out", "p_{cycle}.nc"], "--products-out 'p_{cycle}.nc': unknown"),
    ):
        base = ["run", "--store", "nowhere.zarr", "--checkpoint", "nowhere.pt"]
        assert main([*base, "--out", "f.zarr", "--scores", "s.nc", *flags]) == 2
        assert message in capsys.readouterr().err


def test_a_bias_corrected_run_corrects_from_verified_errors_and_verifies_that(
    chain, tmp_path, file_times, monkeypatch, request, caplog
):
    """The chain with a bias correction and spread scaling (weight 1) tuned for its
    checkpoint (no weight given), on two days of initial times (one verified predecessor
    for each of the second day's): its corrected store holds the raw mean minus w times the
    previous day's ensemble-mean error, plus the raw deviations scaled by that day's
    spread-skill factor, verified in place of the raw one. Without a tuned choice the raw
    store is delivered."""
    from flows.pipelines import ensemble_run
    from generators.correction.spec import CorrectionSpec
    from generators.correction.tuned import save_tuned
    from pipeline.forecast_store import open_forecast, provenance
    from pipeline.store import open_store

    second_day = chain.parameters["init_times"]  # 2000-01-08, four times of day
    inits = [t.replace("01-08", "01-07") for t in second_day] + second_day
    paths = {name: str(tmp_path / name) for name in ("raw.zarr", "corrected.zarr", "bc.nc")}
    parameters = {
        **chain.parameters,
        "init_times": inits,
        "forecast_store": paths["raw.zarr"],
        "corrected_store": paths["corrected.zarr"],
        "scores": paths["bc.nc"],
        "report": None,
    }
    monkeypatch.chdir(chain.workdir)
    tuned = save_tuned(chain.checkpoint, CorrectionSpec(0.5, 1.0), {})
    request.addfinalizer(lambda: tuned.unlink(missing_ok=True))  # the checkpoint is shared
    summary = ensemble_run(**parameters)
    assert summary["corrected_store"] == paths["corrected.zarr"]
    assert pd.DatetimeIndex(summary["verified_init_times"]).equals(pd.DatetimeIndex(inits))
    assert provenance(paths["corrected.zarr"]).bias_correction["weight"] == 0.5
    assert provenance(paths["corrected.zarr"]).bias_correction["spread"]["weight"] == 1.0
    assert provenance(paths["raw.zarr"]).bias_correction == {}
    scored = xr.open_datatree(paths["bc.nc"]).attrs  # the corrected store was verified
    assert json.loads(scored["wxens_bias_correction"])["weight"] == 0.5

    raw, corrected = (
        open_forecast(paths["raw.zarr"]).t2m,
        open_forecast(paths["corrected.zarr"]).t2m,
    )
    truth = open_store(chain.store).dataset.t2m
    day = pd.Timedelta("1D")
    weights = np.cos(np.deg2rad(raw["latitude"]))
    members = raw.sizes["member"]
    for t in pd.DatetimeIndex(second_day):
        for lead in raw["lead_time"].values:
            previous = raw.sel(init_time=t - day, lead_time=lead)
            error = previous.mean("member") - truth.sel(time=t - day + lead)
            ratio = (error**2).weighted(weights).sum() / previous.var("member", ddof=1).weighted(
                weights
            ).sum()
            k = np.sqrt(members / (members + 1) * ratio)
            x = raw.sel(init_time=t, lead_time=lead)
            expected = x.mean("member") - 0.5 * error + k * (x - x.mean("member"))
            got = corrected.sel(init_time=t, lead_time=lead)
            np.testing.assert_allclose(got, expected.transpose(*got.dims), atol=1e-4)
    first_day = corrected.sel(init_time=slice("2000-01-07", "2000-01-07T23"))
    xr.testing.assert_equal(first_day, raw.sel(init_time=first_day["init_time"]))

    before = file_times(tmp_path / "corrected.zarr")
    assert ensemble_run(**parameters) == summary
    assert file_times(tmp_path / "corrected.zarr") == before  # skipped: nothing new
    tuned.unlink()  # no tuned choice and no weight given: the raw store is delivered
    run_log = logging.getLogger("prefect.flow_runs")  # get_run_logger's, which stops there
    run_log.addHandler(caplog.handler)
    request.addfinalizer(lambda: run_log.removeHandler(caplog.handler))
    assert ensemble_run(**parameters)["corrected_store"] is None
    # the hint names what a schedule file sets (it said "--bias-weight W", a flag a served
    # run has not); `wxens run` names its flag (the test below)
    hint = "give the parameter bias_correction: W"
    assert f"has no tuned correction ({tuned}): run `wxens tune" in caplog.text, caplog.text
    assert f"{hint}: {paths['raw.zarr']} is delivered uncorrected" in caplog.text
    scored = xr.open_datatree(paths["bc.nc"]).attrs  # the raw store was verified
    assert json.loads(scored.get("wxens_bias_correction", "{}")) == {}


def test_wxens_run_without_a_tuned_correction_names_its_flags(
    chain, prefect_server, tmp_path
):
    """``wxens run --bias-correct`` of an untuned checkpoint told its user to "give the
    parameter bias_correction: W", a schedule file's word; the command's hint names its
    flag. The forecast store is a copy of the chain's, holding every initial time: the
    forecast is skipped and the run goes straight to the correction's hint."""
    import shutil
    import subprocess
    import sys

    from generators.correction.tuned import tuned_path

    assert not tuned_path(chain.checkpoint).exists()  # untuned (another test's is removed)
    forecast = tmp_path / "forecast.zarr"
    shutil.copytree(chain.forecast, forecast)
    p = chain.parameters
    argv = [sys.executable, "-m", "flows.cli", "run", "--store", p["store"]]
    argv += ["--checkpoint", p["checkpoint"], "--init", *p["init_times"]]
    argv += ["--members", str(p["members"]), "--out", str(forecast), "--scores", "s.nc"]
    argv += ["--bias-correct", "c.zarr", "--dask-scheduler", p["dask_scheduler"]]
    done = subprocess.run(
        argv, cwd=tmp_path, env=prefect_server.env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    hint = f"first, or give --bias-weight W: {forecast} is delivered uncorrected"
    assert hint in done.stderr, done.stderr
    assert "the parameter" not in done.stderr
    assert not (tmp_path / "c.zarr").exists() and (tmp_path / "s.nc").is_file()
    # the summary named the forecast, the scores and the report, and of c.zarr nothing
    assert "bias-corrected   c.zarr not written (no correction: the warning above" in (
        done.stdout
    ), done.stdout


def test_a_bias_correction_without_its_store_is_refused_before_any_work(chain, monkeypatch):
    from flows.pipelines import ensemble_run
    from pipeline.errors import InputError

    monkeypatch.chdir(chain.workdir)
    with pytest.raises(InputError, match="need corrected_store"):
        ensemble_run(**{**chain.parameters, "bias_correction": 0.2})
    with pytest.raises(InputError, match="weight must be in"):
        ensemble_run(**{**chain.parameters, "bias_correction": 2.0, "corrected_store": "x.zarr"})
    with pytest.raises(InputError, match="spread weight must be in"):
        ensemble_run(
            **chain.parameters, bias_correction=0.2, spread_weight=-0.1, corrected_store="x.zarr"
        )
    with pytest.raises(InputError, match="rank-recalibration weight must be in"):
        ensemble_run(
            **chain.parameters, bias_correction=0.2, rank_weight=1.5, corrected_store="x.zarr"
        )
    for weights in ({"spread_weight": 0.7}, {"rank_weight": 0.05}):
        with pytest.raises(InputError, match=r"give a bias weight in \(0, 1\] with them"):
            ensemble_run(**{**chain.parameters, **weights})


def test_the_bias_correct_flow_remaps_by_its_rank_weight(chain, tmp_path, monkeypatch):
    """The ``bias_correct`` flow with a rank weight writes what the library's correction
    gives and records the weight."""
    from flows.pipelines import bias_correct
    from generators.correction.bias import DecayingAverageBias
    from generators.correction.bias import bias_correct as correct
    from pipeline.forecast_store import open_forecast, provenance
    from pipeline.store import open_store

    monkeypatch.chdir(chain.workdir)
    out = str(tmp_path / "remapped.zarr")
    assert bias_correct(str(chain.forecast), str(chain.store), out, 0.5, None, 0.3) == out
    assert provenance(out).bias_correction["ranks"]["weight"] == 0.3
    correction = DecayingAverageBias.with_weights(0.5, None, 0.3)
    expected = correct(open_forecast(chain.forecast), open_store(chain.store).dataset, correction)
    assert expected.rank_table.t2m.notnull().any()  # some forecasts were remapped
    got = open_forecast(out).t2m
    np.testing.assert_allclose(got, expected.forecast.t2m.transpose(*got.dims), atol=1e-5)


def test_the_bias_correct_flow_without_weights_of_an_untuned_checkpoint_says_why(
    chain, tmp_path, monkeypatch
):
    """No weight and a checkpoint never tuned: the flow failed in its task with "the
    correction weights are 0 ... (--bias-weight)", a flag a served run has not. It says
    why, as ensemble_run does, in the flow's own parameters, and writes nothing."""
    from flows.pipelines import bias_correct
    from generators.correction.tuned import tuned_path
    from pipeline.errors import InputError

    monkeypatch.chdir(chain.workdir)
    assert not tuned_path(chain.checkpoint).exists()
    out = tmp_path / "none.zarr"
    args = (str(chain.forecast), str(chain.store), str(out))
    with pytest.raises(InputError) as refused:
        bias_correct(*args, checkpoint=str(chain.checkpoint))
    message = str(refused.value)
    assert f"{chain.checkpoint} has no tuned correction" in message, message
    assert "run `wxens tune --checkpoint" in message
    assert "give the parameter weight: W;" in message and "--bias-weight" not in message
    assert f"nothing written: {chain.forecast} is the forecast as it is" in message
    with pytest.raises(InputError, match="no correction weights: give the parameter checkpoint"):
        bias_correct(*args)
    assert not out.exists()


def test_the_bias_correct_flow_with_another_checkpoints_tuned_weights_names_its_parameters(
    chain, tmp_path, monkeypatch
):
    """The forecast store of one checkpoint corrected in the flow with another, tuned
    checkpoint was refused with "give --checkpoint the checkpoint that made the forecast, or
    the weights (--bias-weight W)": flags that a schedule file's run has not. The refusal
    names the flow's parameters, and writes nothing."""
    from flows.pipelines import bias_correct
    from generators.correction.spec import CorrectionSpec
    from generators.correction.tuned import checkpoint_digest, save_tuned
    from pipeline.errors import InputError

    monkeypatch.chdir(chain.workdir)
    other = tmp_path / "other"
    other.mkdir()
    (other / "last.pt").write_bytes(b"another model's weights")
    save_tuned(other, CorrectionSpec(0.2), {})
    out = tmp_path / "corrected.zarr"
    with pytest.raises(InputError) as refused:
        bias_correct(str(chain.forecast), str(chain.store), str(out), checkpoint=str(other))
    message = str(refused.value)
    made_by = checkpoint_digest(chain.checkpoint)
    assert f"was made by the checkpoint {made_by}, not by {other}" in message, message
    fix = "made the forecast as the parameter checkpoint, or the weights (the parameter weight: W)"
    assert fix in message, message
    assert "--checkpoint" not in message and "--bias-weight" not in message, message
    assert not out.exists()


def test_a_run_with_a_baseline_draws_it_for_the_same_forecasts_and_verifies_beside_it(
    chain, tmp_path, file_times, monkeypatch
):
    from flows.pipelines import ensemble_run
    from pipeline.forecast_store import open_forecast, provenance

    paths = {name: str(tmp_path / name) for name in ("persistence.zarr", "scores.nc")}
    parameters = {
        **chain.parameters,
        "baseline_name": "persistence",
        "baseline_train": "2000-01-01/2000-01-07",
        "baseline_store": paths["persistence.zarr"],
        "scores": paths["scores.nc"],
        "report": None,
    }
    monkeypatch.chdir(chain.workdir)
    summary = ensemble_run(**parameters)
    assert summary["baseline_store"] == paths["persistence.zarr"]
    forecast, drawn = open_forecast(chain.forecast), open_forecast(paths["persistence.zarr"])
    for dim in ("init_time", "lead_time"):
        np.testing.assert_array_equal(drawn[dim].values, forecast[dim].values)
    # 8 members in the forecast; a 12 h tendency from 18 UTC must end in the 7 training
    # days, so it starts on one of 6: 6 distinct members, not 8 with repeats (a handicap)
    assert forecast.sizes["member"] == 8 and drawn.sizes["member"] == 6
    assert provenance(paths["persistence.zarr"]).generator == "baseline:persistence"
    tree = xr.open_datatree(paths["scores.nc"])
    assert tree.attrs["reference_wxens_generator"] == "baseline:persistence"
    card = tree["scorecard"].to_dataset()
    np.testing.assert_allclose(
        card["fair_crps_skill_score"], 1 - card["fair_crps"] / card["reference_fair_crps"], 1e-6
    )
    before = file_times(tmp_path / "persistence.zarr", tmp_path / "scores.nc")
    assert ensemble_run(**parameters) == summary
    assert file_times(tmp_path / "persistence.zarr", tmp_path / "scores.nc") == before


def test_a_baseline_without_its_period_or_store_is_refused_before_any_work(chain, monkeypatch):
    from flows.pipelines import ensemble_run
    from pipeline.errors import InputError

    monkeypatch.chdir(chain.workdir)
    with pytest.raises(InputError, match="needs baseline_train"):
        ensemble_run(**chain.parameters, baseline_name="persistence", baseline_store="b.zarr")
    with pytest.raises(InputError, match="unknown baseline 'analogues'"):
        ensemble_run(**chain.parameters, baseline_name="analogues")
    with pytest.raises(InputError, match="give START/END"):
        ensemble_run(
            **chain.parameters,
            baseline_name="climatology",
            baseline_train="2000-01-07",
            baseline_store="b.zarr",
        )
    with pytest.raises(InputError, match="go with baseline_name"):
        ensemble_run(**chain.parameters, baseline_store="b.zarr")
    assert not (chain.workdir / "b.zarr").exists()


def test_the_bias_correct_flow_corrects_anew_after_a_tune_again(chain, tmp_path, monkeypatch):
    """The flow's task was cached on its parameters and the stores it reads, not on the
    weights `wxens tune` stored beside its checkpoint: after a tune again, a run with the
    same parameters was skipped and reported the store of the old weights as done. It now
    does the work again, which refuses the store of other weights, naming the change."""
    from flows.pipelines import bias_correct
    from generators.correction.spec import CorrectionSpec
    from generators.correction.tuned import save_tuned
    from pipeline.errors import StoreError
    from pipeline.forecast_store import provenance

    monkeypatch.chdir(chain.workdir)
    out = str(tmp_path / "tuned.zarr")
    args = (str(chain.forecast), str(chain.store), out)
    save_tuned(chain.checkpoint, CorrectionSpec(0.5), {})
    assert bias_correct(*args, checkpoint=str(chain.checkpoint)) == out
    assert bias_correct(*args, checkpoint=str(chain.checkpoint)) == out  # unchanged: cached
    assert provenance(out).bias_correction["weight"] == 0.5
    save_tuned(chain.checkpoint, CorrectionSpec(0.2), {})
    with pytest.raises(StoreError, match=r"weight \(0\.5 there, 0\.2 in this forecast\)"):
        bias_correct(*args, checkpoint=str(chain.checkpoint))
