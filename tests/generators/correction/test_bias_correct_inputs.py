"""``wxens bias-correct`` on the inputs a forecaster gets wrong: weights of 0, a truth
store that does not cover the forecast's grid or period."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pandas as pd
import pytest
import xarray as xr
from warm import warm_forecast

from flows.cli import main
from generators.correction.bias import DecayingAverageBias, bias_correct, chains_of
from generators.correction.decaying_average import without_verified_past
from generators.correction.raw import NONE_CHOSEN
from generators.correction.spec import CorrectionByVariable, CorrectionSpec
from generators.correction.tuned import (
    checkpoint_digest,
    load_tuned,
    no_correction_reason,
    read_tuned,
    save_tuned,
    tuned_path,
)
from pipeline.errors import InputError
from pipeline.forecast_store import ForecastProvenance, open_forecast, write_forecast
from pipeline.forecast_store import provenance as provenance_of
from pipeline.store import ingest

PROVENANCE = ForecastProvenance("flow_matching", "0123456789abcdef", "euler:nfe=2", 2, 0)


@pytest.fixture()
def raw(analysis, tmp_path):
    path = tmp_path / "raw.zarr"
    write_forecast(path, warm_forecast(analysis, 1.0), PROVENANCE)
    return path


@pytest.mark.parametrize("tuned", [None, 0.2])
def test_a_bias_weight_of_0_is_said_to_correct_nothing(analysis, raw, tmp_path, capsys, tuned):
    """--bias-weight 0 was answered 'no correction weights: give ... --bias-weight W', or
    with a tuned checkpoint, '`wxens tune` chose no correction' although it chose 0.2."""
    out = tmp_path / "out.zarr"
    args = ["bias-correct", str(raw), "--truth", str(analysis.path), "--out", str(out)]
    if tuned is not None:
        run = tmp_path / "run"
        run.mkdir()
        (run / "last.pt").write_bytes(b"the checkpoint the forecast came from")
        save_tuned(run, CorrectionSpec(tuned), {})
        args += ["--checkpoint", str(run)]
    assert main([*args, "--bias-weight", "0"]) == 2
    err = capsys.readouterr().err
    assert "the weights given correct nothing (bias weight 0" in err
    assert "chose no correction" not in err and "no correction weights" not in err
    assert not out.exists()


def test_the_reason_for_no_correction_names_what_was_given(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "last.pt").write_bytes(b"weights")
    assert "give --checkpoint K" in no_correction_reason(None)
    assert "has no tuned correction" in no_correction_reason(run, store="s.zarr")
    assert "--store s.zarr" in no_correction_reason(run, store="s.zarr")
    # the README's model holds out no days: tune without folds fits on its training days
    assert "(with --fold FOLD ... for a model that held out no days" in (
        no_correction_reason(run, store="s.zarr")
    )
    save_tuned(run, CorrectionSpec(0.0), {})
    assert "chose no correction" in no_correction_reason(run)
    assert "weights given correct nothing" in no_correction_reason(run, 0.0, 0.0)


def test_two_checkpoint_files_in_one_directory_keep_their_own_tuned_weights(tmp_path):
    """A model and its calibrated copy beside it shared one correction.json: tuning one
    threw away the other's choice (then ignored as "tuned for another checkpoint"). A
    directory's shared file that an older wxens wrote for the file is still read."""
    (tmp_path / "model.pt").write_bytes(b"weights")
    (tmp_path / "calibrated.pt").write_bytes(b"weights, calibrated")
    save_tuned(tmp_path / "model.pt", CorrectionSpec(0.2), {})
    save_tuned(tmp_path / "calibrated.pt", CorrectionSpec(0.5, 0.3), {})
    assert load_tuned(tmp_path / "model.pt") == CorrectionSpec(0.2, 0.0, 0.0)
    assert load_tuned(tmp_path / "calibrated.pt") == CorrectionSpec(0.5, 0.3, 0.0)
    assert tuned_path(tmp_path / "model.pt").name == "model.correction.json"
    (tmp_path / "model.correction.json").rename(tmp_path / "correction.json")  # older layout
    assert load_tuned(tmp_path / "model.pt") == CorrectionSpec(0.2, 0.0, 0.0)
    assert load_tuned(tmp_path / "calibrated.pt") == CorrectionSpec(0.5, 0.3, 0.0)


def test_tuned_weights_of_another_checkpoint_are_refused(analysis, raw, tmp_path, capsys):
    """--checkpoint names the checkpoint that made the forecast; the weights tuned for
    another one (here: the raw store's digest 0123456789abcdef is not this file's) were
    applied without a word."""
    run = tmp_path / "run"
    run.mkdir()
    (run / "last.pt").write_bytes(b"another model")
    save_tuned(run, CorrectionSpec(0.2), {})
    out = tmp_path / "out.zarr"
    args = ["bias-correct", str(raw), "--truth", str(analysis.path), "--out", str(out)]
    assert main([*args, "--checkpoint", str(run)]) == 2
    err = capsys.readouterr().err
    assert "was made by the checkpoint 0123456789abcdef, not by" in err
    assert not out.exists()
    assert main([*args, "--checkpoint", str(run), "--bias-weight", "0.2"]) == 0  # given: used


def test_a_truth_on_part_of_the_forecast_grid_is_refused(analysis, raw, tmp_path, capsys):
    """A truth store of a sub-domain (here 3 of the 4 latitudes) made a corrected store of
    that sub-domain only: the forecast's other points were dropped without a word."""
    part = analysis.dataset.isel(latitude=slice(0, 3)).load()
    part.attrs = {}
    part.to_netcdf(tmp_path / "part.nc")
    ingest(str(tmp_path / "part.nc"), tmp_path / "part_truth.zarr", progress=False)
    out = tmp_path / "out.zarr"
    args = ["bias-correct", str(raw), "--truth", str(tmp_path / "part_truth.zarr")]
    assert main([*args, "--out", str(out), "--bias-weight", "0.2"]) == 2
    err = capsys.readouterr().err
    assert "the truth holds only 3 of its 4 latitudes of the forecast" in err
    assert not out.exists()


def test_a_truth_of_another_period_is_said_to_correct_nothing(
    analysis, raw, tmp_path, capsys, caplog
):
    """A truth store of another period (none of the forecasts verified) wrote a store
    recorded as corrected, every forecast as drawn, exit 0 and the summary as usual; the
    summary now counts what was corrected and a warning says why none was."""
    early = analysis.dataset.isel(time=slice(0, 4)).load()  # ends before the first init
    early.attrs = {}
    early.to_netcdf(tmp_path / "early.nc")
    ingest(str(tmp_path / "early.nc"), tmp_path / "early.zarr", progress=False)
    args = ["bias-correct", str(raw), "--out", str(tmp_path / "out.zarr"), "--bias-weight", "1"]
    assert main([*args, "--truth", str(tmp_path / "early.zarr")]) == 0
    assert "16 initial times, 0 corrected and 16 as they are" in capsys.readouterr().out
    assert "none of the 16 initial time(s)" in caplog.text
    assert "2000-01-01T00:00 to 2000-01-01T18:00" in caplog.text  # what the truth holds
    caplog.clear()
    args[3] = str(tmp_path / "out2.zarr")
    assert main([*args, "--truth", str(analysis.path)]) == 0
    assert "16 initial times, 12 corrected and 4 as they are" in capsys.readouterr().out
    assert "none of the" not in caplog.text


def test_without_verified_past_matches_the_decaying_average():
    inits = pd.date_range("2000-01-01", periods=8, freq="6h")
    leads = pd.to_timedelta([6, 30], unit="h")
    everything = pd.date_range("1999-12-01", "2000-02-01", freq="6h")
    # 6 h: the same time of day a day earlier; 30 h: two days earlier
    assert list(without_verified_past(inits, leads, everything)) == list(inits[:4])
    assert list(without_verified_past(inits, leads, everything[:10])) == list(inits)


def test_a_choice_made_before_the_checkpoint_changed_is_named_once(
    analysis, tmp_path, capsys, caplog
):
    """After `wxens calibrate` (a new checkpoint file) the tuned choice is stale: the
    warning came twice and the error said '... has no tuned correction (.../correction.json)'
    of a file that is there."""
    run = tmp_path / "run"
    run.mkdir()
    (run / "last.pt").write_bytes(b"weights")
    save_tuned(run, CorrectionSpec(0.2), {})
    (run / "last.pt").write_bytes(b"weights, calibrated since")
    raw = tmp_path / "raw.zarr"
    digest = checkpoint_digest(run)
    write_forecast(
        raw, warm_forecast(analysis, 1.0), ForecastProvenance("fm", digest, "euler", 2, 0)
    )
    args = ["bias-correct", str(raw), "--truth", str(analysis.path), "--checkpoint", str(run)]
    assert main([*args, "--out", str(tmp_path / "out.zarr")]) == 2
    err = capsys.readouterr().err
    assert "correction.json was tuned for the checkpoint" in err
    assert "(trained or calibrated since): run `wxens tune --checkpoint" in err
    assert caplog.text.count("was tuned for another checkpoint") == 1


def test_an_already_corrected_store_is_refused_in_a_line(analysis, raw, tmp_path, capsys):
    """The refusal printed the correction's whole JSON record (method, by, reference ...)."""
    truth = ["--truth", str(analysis.path), "--bias-weight", "0.2"]
    assert main(["bias-correct", str(raw), "--out", str(tmp_path / "bc.zarr"), *truth]) == 0
    capsys.readouterr()
    assert (
        main(["bias-correct", str(tmp_path / "bc.zarr"), "--out", str(tmp_path / "x.zarr"), *truth])
        == 2
    )
    err = capsys.readouterr().err
    assert "bc.zarr is already bias-corrected (bias weight 0.2; `wxens info` tells" in err
    assert "Cui et al." not in err


def test_the_choice_still_corrects_the_stores_of_the_checkpoint_it_was_tuned_for(
    analysis, tmp_path, capsys
):
    """After `wxens calibrate` a store the checkpoint made before it changed was refused
    ('tuned for the checkpoint X ... run `wxens tune` again') although the weights were
    tuned for X, which made it; tuning again would then refuse the store as another
    checkpoint's: a dead end for the daily correction of the old model's forecasts."""
    run = tmp_path / "run"
    run.mkdir()
    (run / "last.pt").write_bytes(b"weights")
    save_tuned(run, CorrectionSpec(0.2), {})
    raw = tmp_path / "raw.zarr"
    provenance = ForecastProvenance("fm", checkpoint_digest(run), "euler", 2, 0)
    write_forecast(raw, warm_forecast(analysis, 1.0), provenance)
    (run / "last.pt").write_bytes(b"weights, calibrated since")
    out = tmp_path / "out.zarr"
    args = ["bias-correct", str(raw), "--truth", str(analysis.path), "--checkpoint", str(run)]
    assert main([*args, "--out", str(out)]) == 0, capsys.readouterr().err
    assert provenance_of(out).bias_correction["weight"] == 0.2


def test_a_baseline_store_with_a_checkpoint_is_told_to_give_the_weights(analysis, tmp_path, capsys):
    """A persistence store corrected with --checkpoint was said to be 'made by the checkpoint
    <its config digest>', with the fix 'give --checkpoint the checkpoint that made the
    forecast': no checkpoint made it."""
    run = tmp_path / "run"
    run.mkdir()
    (run / "last.pt").write_bytes(b"a model")
    save_tuned(run, CorrectionSpec(0.2), {})
    baseline = tmp_path / "persistence.zarr"
    provenance = ForecastProvenance("baseline:persistence", "572325ac5a7d44b8", "p", 0, 0)
    write_forecast(baseline, warm_forecast(analysis, 1.0), provenance)
    out = tmp_path / "out.zarr"
    args = ["bias-correct", str(baseline), "--truth", str(analysis.path), "--out", str(out)]
    assert main([*args, "--checkpoint", str(run)]) == 2
    err = capsys.readouterr().err
    assert "is a persistence baseline, made by no checkpoint" in err
    assert "give the weights (--bias-weight W)" in err and "made by the checkpoint" not in err
    assert not out.exists()


def test_a_corrected_store_of_other_weights_is_refused_before_the_work(
    analysis, raw, tmp_path, capsys, monkeypatch
):
    """A daily run whose weights changed (tuned again) corrected the whole history, then
    was refused by the corrected store of the old weights: the work, and its warnings,
    came before the refusal."""
    out = tmp_path / "bc.zarr"
    args = ["bias-correct", str(raw), "--truth", str(analysis.path), "--out", str(out)]
    assert main([*args, "--bias-weight", "0.2"]) == 0
    capsys.readouterr()
    import generators.correction.bias as bias

    def no_work(*args, **kwargs):
        raise AssertionError("the correction was computed before the refusal")

    monkeypatch.setattr(bias, "bias_correct", no_work)
    assert main([*args, "--bias-weight", "0.4"]) == 2
    assert "holds forecasts of another provenance" in capsys.readouterr().err


def test_the_first_forecasts_of_a_store_are_not_blamed_on_the_truth(
    analysis, tmp_path, capsys, caplog
):
    """The first day of a store (no earlier forecast of any time of day) warned 'none ...
    has an earlier forecast verified in TRUTH ...: to be corrected by a rerun once their
    predecessors' truths are in TRUTH', which no truth will ever do."""
    raw = tmp_path / "raw.zarr"
    first = warm_forecast(analysis, 1.0).isel(init_time=slice(0, 4))  # one day, 4 times of day
    assert len(set(pd.DatetimeIndex(first.init_time.values).hour)) == 4
    write_forecast(raw, first, PROVENANCE)
    args = ["bias-correct", str(raw), "--truth", str(analysis.path), "--bias-weight", "0.2"]
    caplog.set_level("INFO")
    assert main([*args, "--out", str(tmp_path / "bc.zarr")]) == 0
    assert "4 initial times, 0 corrected and 4 as they are" in capsys.readouterr().out
    assert "to be corrected by a rerun" not in caplog.text
    assert "a store's first forecasts" in caplog.text


def test_a_runs_summary_names_the_weights_its_corrected_store_records(
    analysis, raw, tmp_path, capsys
):
    """`wxens run --bias-correct` printed only the corrected store's path: whether the tuned
    weights were applied, and which, was nowhere in its output."""
    from flows.commands.run import describe

    out = tmp_path / "bc.zarr"
    args = ["bias-correct", str(raw), "--truth", str(analysis.path), "--out", str(out)]
    assert (
        main([*args, "--bias-weight", "0.2", "--spread-weight", "0.7", "--rank-weight", "0.1"]) == 0
    )
    summary = {"store": "s", "checkpoint": "k", "forecast_store": str(raw)}
    summary |= {"forecast_init_times": [], "verified_init_times": [], "corrected_store": str(out)}
    assert (
        f"bias-corrected   {out} (bias weight 0.2, spread weight 0.7, rank weight 0.1)"
        in describe(summary)
    )


def test_a_runs_summary_tells_its_own_initial_times_from_the_stores(raw):
    """A scheduled run adds one cycle to a store of many: its summary said "1 initial
    time(s) complete" beside "16 initial time(s) verified", as if the two counted alike."""
    from flows.commands.run import describe

    inits = open_forecast(raw).init_time.values
    summary = {"store": "s", "checkpoint": "k", "forecast_store": str(raw), "report": None}
    summary |= {"forecast_init_times": [str(inits[-1])], "scores": "scores.nc"}
    summary |= {"verified_init_times": [str(t) for t in inits]}
    text = describe(summary)
    assert f"forecast store   {raw} (this run's 1 initial time complete, 16 in the store)" in text
    assert "scores           scores.nc (16 initial times of the store verified)" in text


def test_no_correction_chosen_for_the_maker_is_said_after_a_retrain(
    analysis, raw, tmp_path, capsys
):
    """After a retrain into the same directory, `wxens tune`'s choice of none for the
    checkpoint that made the store still holds for it, but bias-correct said it "was tuned
    for the checkpoint ..., which run is no longer: run `wxens tune` again"."""
    run = tmp_path / "run"
    run.mkdir()
    (run / "last.pt").write_bytes(b"the model trained again")
    save_tuned(run, CorrectionSpec(0.0), {}, digest=PROVENANCE.checkpoint_digest)
    out = tmp_path / "out.zarr"
    args = ["bias-correct", str(raw), "--truth", str(analysis.path), "--out", str(out)]
    assert main([*args, "--checkpoint", str(run)]) == 0
    err = capsys.readouterr().err
    assert "is no longer" not in err and "run `wxens tune` again" not in err
    assert provenance_of(out).bias_correction["method"] == NONE_CHOSEN


@pytest.fixture
def tuned_none(tmp_path) -> Path:
    """A checkpoint directory for which `wxens tune` chose no correction, for the checkpoint
    that made ``raw``."""
    run = tmp_path / "run"
    run.mkdir()
    (run / "last.pt").write_bytes(b"the checkpoint the forecast came from")
    save_tuned(run, CorrectionSpec(0.0), {}, digest=PROVENANCE.checkpoint_digest)
    return run


def test_a_tuned_choice_of_no_correction_writes_the_forecast_as_it_is(
    analysis, raw, tuned_none, tmp_path, capsys, caplog
):
    """The README's chain (tune, bias-correct, verify the corrected store) stopped with exit 2
    at bias-correct where `wxens tune` chose no correction, and verify found no store."""
    run = tuned_none
    out, truth = tmp_path / "out.zarr", str(analysis.path)
    args = ["bias-correct", str(raw), "--truth", truth, "--out", str(out), "--checkpoint", str(run)]
    assert main(args) == 0
    said = capsys.readouterr().out + caplog.text
    assert "`wxens tune` chose no correction" in said and "give --bias-weight W" in said
    assert f"{out}: 16 initial times, as they are (bias weight 0, tune's choice)" in said
    written, forecast = open_forecast(out), open_forecast(raw)
    assert written.t2m.equals(forecast.t2m)
    recorded = provenance_of(out).bias_correction
    assert recorded == {"method": NONE_CHOSEN, "weight": 0.0, "chosen_in": str(tuned_path(run))}
    assert main(args) == 0  # a rerun, as new initial times arrive
    scores = tmp_path / "scores.nc"
    assert main(["verify", str(out), "--truth", truth, "--out", str(scores), "--no-progress"]) == 0
    assert scores.is_file()
    # weights given keep their meaning: 0 corrects nothing, refused
    assert main([*args[:-2], "--bias-weight", "0"]) == 2


def test_the_served_bias_correct_task_takes_tunes_choice_of_none_too(
    analysis, raw, tuned_none, tmp_path, caplog, request
):
    """The ``bias_correct`` flow's task (a schedule's chain) raised where `wxens tune` chose
    no correction, as the command did; it writes the forecast as it is, naming its
    parameter for correcting all the same."""
    from flows.tasks import bias_correct_forecast

    said = logging.getLogger("generators.correction.raw")  # Prefect's set-up of the root
    said.addHandler(caplog.handler)  # logger, on its first import, drops caplog's handler
    request.addfinalizer(lambda: said.removeHandler(caplog.handler))
    out = tmp_path / "served.zarr"
    done = bias_correct_forecast.fn(str(raw), str(analysis.path), str(out), checkpoint=tuned_none)
    assert done == str(out)
    assert open_forecast(out).t2m.equals(open_forecast(raw).t2m)
    assert provenance_of(out).bias_correction["method"] == NONE_CHOSEN
    assert "give the parameter weight: W to correct all the same" in caplog.text


def test_a_runs_summary_without_scores_says_the_leads_truth_may_have_arrived(raw):
    """A run whose forecasts had the truth of their first leads in the store (the 1 h truth
    of a 24 h forecast of this morning) said "no forecast has its truth in the store": it
    verifies only forecasts whose every lead has arrived."""
    from flows.commands.run import describe

    summary = {"store": "s", "checkpoint": "k", "forecast_store": str(raw), "report": None}
    summary |= {"forecast_init_times": [], "verified_init_times": [], "scores": "scores.nc"}
    text = describe(summary)
    assert "no forecast has its truth in the store" not in text
    assert "no forecast has the truth of its last lead in the store" in text


def test_a_correction_file_with_the_older_form_of_its_times_still_loads(tmp_path):
    """``wxens tune`` wrote its period as pandas prints a time (``2000-01-18 00:00:00``)
    before it wrote ISO (``2000-01-18T00:00``, as every other time): a user's existing
    file, with the digest of its checkpoint, still gives its weights."""
    import json

    run = tmp_path / "run"
    run.mkdir()
    (run / "last.pt").write_bytes(b"weights")
    older = {
        "bias_weight": 0.2,
        "spread_weight": 0.3,
        "rank_weight": 0.0,
        "checkpoint_digest": checkpoint_digest(run),
        "first_init_time": "2000-01-18 00:00:00",
        "last_init_time": "2000-01-21 18:00:00",
        "init_times": 16,
    }
    (run / "correction.json").write_text(json.dumps(older, indent=1, sort_keys=True))
    assert load_tuned(run) == CorrectionSpec(0.2, 0.3, 0.0)


def test_the_suggested_tune_command_runs_as_given_for_a_forecast_of_several(
    analysis, tmp_path, capsys
):
    """A derived config trains every channel of the store, and the command suggested for a
    checkpoint never tuned was refused as given: 'runs/g6 forecasts ['t500', ...]: name the
    variable whose scores choose the weights with --variable'. It then named --variable
    CHANNEL; now `wxens tune` chooses on every channel, and the command needs none."""
    forecast = warm_forecast(analysis, 1.0)
    forecast["sp"] = forecast.t2m * 0.0 + 1.0e5
    several = tmp_path / "several.zarr"
    write_forecast(several, forecast, PROVENANCE)
    run = tmp_path / "run"
    run.mkdir()
    (run / "last.pt").write_bytes(b"weights")
    args = ["bias-correct", str(several), "--truth", str(analysis.path), "--checkpoint", str(run)]
    assert main([*args, "--out", str(tmp_path / "out.zarr")]) == 2
    err = capsys.readouterr().err
    assert f"`wxens tune --checkpoint {run} --store {analysis.path}`" in err, err
    assert "--variable" not in err, err
    one = no_correction_reason(run, store="s.zarr", forecast=tmp_path / "none.zarr")
    assert "--store s.zarr`" in one and "--variable" not in one


@pytest.fixture()
def two_variables(tmp_path):
    """An analysis store of t2m and z at two levels."""
    spec = "synthetic:n_lat=4,n_lon=5,n_times=40,step=6h,seed=3"
    return ingest(spec, tmp_path / "two.zarr", variables=["t2m", "z"], progress=False)


def test_weights_by_variable_correct_each_variable_by_its_own(two_variables):
    """Each variable is corrected as its own chain corrects it alone; one of weight 0 keeps
    the generator's members bit for bit, and the store records each variable's."""
    forecast = warm_forecast(two_variables, 2.0, variables=("t2m", "z"))
    truth = two_variables.dataset
    spec = CorrectionByVariable((("t2m", CorrectionSpec(0.5, 0.3)), ("z", CorrectionSpec())))
    result = bias_correct(forecast, truth, chains_of(spec, ["t2m", "z"]))
    alone = bias_correct(forecast[["t2m"]], truth, DecayingAverageBias.with_weights(0.5, 0.3))
    xr.testing.assert_identical(result.forecast.t2m, alone.forecast.t2m)
    assert result.forecast.z.drop_vars("valid_time").equals(forecast.z)
    assert list(result.bias) == ["t2m"]
    record = json.loads(result.forecast.attrs["wxens_bias_correction"])["by_variable"]
    assert record["t2m"] == DecayingAverageBias.with_weights(0.5, 0.3).to_attrs()
    assert record["z"] == {"method": NONE_CHOSEN, "weight": 0.0}
    with pytest.raises(InputError, match="name the variables \\['t2m', 'z'\\], not 'q'"):
        chains_of(spec, ["t2m", "q"])
    with pytest.raises(InputError, match="the correction weights are 0"):
        chains_of(CorrectionByVariable((("t2m", CorrectionSpec()),)), ["t2m"])


def test_tuned_weights_by_variable_are_kept_and_applied_by_the_command(
    two_variables, tmp_path, capsys
):
    """`wxens tune` of a model of several variables stores each one's weights; bias-correct,
    the summary of a run and `wxens info` apply and name them; a rerun with other weights
    is refused as another correction."""
    run = tmp_path / "run"
    run.mkdir()
    (run / "last.pt").write_bytes(b"the checkpoint the forecast came from")
    spec = CorrectionByVariable((("t2m", CorrectionSpec(0.5, None, 0.2)), ("z", CorrectionSpec())))
    save_tuned(run, spec, {}, digest=PROVENANCE.checkpoint_digest)
    assert read_tuned(tuned_path(run)) == (spec, PROVENANCE.checkpoint_digest)
    raw, out = tmp_path / "raw.zarr", tmp_path / "out.zarr"
    write_forecast(raw, warm_forecast(two_variables, 2.0, variables=("t2m", "z")), PROVENANCE)
    args = ["bias-correct", str(raw), "--truth", str(two_variables.path), "--out", str(out)]
    assert main([*args, "--checkpoint", str(run)]) == 0
    said = capsys.readouterr().out
    assert "weights by variable: t2m bias weight 0.5, rank weight 0.2; z none" in said, said
    assert "t2m: mean |bias| removed" in said and "z: mean" not in said
    assert open_forecast(out).z.equals(open_forecast(raw).z)
    assert not open_forecast(out).t2m.equals(open_forecast(raw).t2m)
    from flows.commands.run import describe

    summary = {"store": "s", "checkpoint": "k", "forecast_store": str(raw)}
    summary |= {"forecast_init_times": [], "verified_init_times": [], "corrected_store": str(out)}
    expected = f"({'by variable: t2m bias weight 0.5, rank weight 0.2; z none'})"
    assert f"bias-corrected   {out} {expected}" in describe(summary)
    assert main(["info", str(out)]) == 0
    info = capsys.readouterr().out
    assert "by variable: t2m decaying average, weight 0.5" in info
    assert "z none (the members as they are)" in info
    assert main([*args, "--bias-weight", "0.5"]) == 2  # one set for all: another correction
    assert "by_variable" in capsys.readouterr().err
    tuned_path(run).write_text('{"by_variable": [1], "checkpoint_digest": "x"}')
    assert main([*args, "--checkpoint", str(run)]) == 2
    assert f"{tuned_path(run)} is not a tuned correction" in capsys.readouterr().err
