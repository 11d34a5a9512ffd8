"""``wxens tune`` on stores whose answer is known, with a model trained for 2 steps (its
forecasts are about persistence): where the truth has a strong cycle of the time of day,
the recent errors of a lead and time of day predict the next one and a bias correction is
chosen; where the weather flips from one day to the next, the recent errors predict the
opposite of the next one and no correction is chosen. ``wxens bias-correct`` then corrects
with the stored choice."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from flows.cli import main as wxens
from generators.checkpoint import load_checkpoint
from generators.correction.tuned import checkpoint_digest, load_tuned, tuned_path
from generators.tune import (
    default_folds,
    default_period,
    remove_earlier_forecasts,
    tune_correction,
)
from pipeline.errors import InputError
from pipeline.forecast_store import ForecastProvenance, open_forecast
from pipeline.schema import Period
from pipeline.store import ingest

TIMES = pd.date_range("2019-03-01", periods=32, freq="6h")
HELD_OUT = (
    ", train: {start: 2019-03-01, end: 2019-03-04T18}, "
    "validation: {start: 2019-03-05, end: 2019-03-08T18}"
)
"""``data`` keys of a model trained on the first 4 of the store's 8 days, the last 4 held out."""
FAST = ["--members", "8", "--folds", "2", "--sampler", "euler:nfe=2", "--device", "cpu"]
ONE_EACH = {"bias_weights": (0.4,), "spread_weights": (0.7,), "rank_weights": (0.1,)}
"""One candidate weight per stage, for tests whose claim is not which weight is chosen: each
candidate is scored on every fold, most of a tune's work on these tiny stores."""
ONE_EACH_OPTIONS = ["--bias-weights", "0.4", "--spread-weights", "0.7", "--rank-weights", "0.1"]
ONE_FOLD = {"members": 4, "folds": 1, "sampler": "euler:nfe=2", "device": "cpu", **ONE_EACH}


def store_with(offset: np.ndarray, path) -> str:
    """6-hourly t2m on an 8 x 8 grid: 280 K + ``offset`` by time + N(0, 0.5²) noise."""
    noise = 0.5 * np.random.default_rng(0).standard_normal((len(TIMES), 8, 8))
    values = (280 + offset[:, None, None] + noise).astype("float32")
    ds = xr.Dataset(
        {"t2m": (("time", "latitude", "longitude"), values, {"units": "K"})},
        coords={"time": TIMES, "latitude": np.linspace(50, 57, 8), "longitude": np.arange(8.0)},
    )
    ds.to_netcdf(path.with_suffix(".nc"))
    ingest(str(path.with_suffix(".nc")), path, variables=["t2m"], progress=False)
    return str(path)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("tune")
    hours = TIMES.hour.to_numpy()
    cycle = store_with(4 * np.cos(2 * np.pi * hours / 24), root / "cycle.zarr")
    days = (TIMES - TIMES[0]).days.to_numpy()
    flip = store_with(4 * (-1.0) ** days, root / "flip.zarr")
    return root, train_tiny(cycle, root / "run"), cycle, flip


def train_tiny(store: str, run: Path, periods: str = "") -> Path:
    """``run``: a model of ``store`` trained for 2 steps (``periods``: more ``data`` keys)."""
    config = run.with_suffix(".yaml")
    config.write_text(
        "model: {kind: flow_matching, backbone: {widths: [8, 16], attention_heads: 0, "
        f"embedding_dim: 16}}}}\ndata: {{channels: [t2m], history: 2, leads: [1]{periods}}}\n"
        "steps: 2\nbatch_size: 4\ndevice: cpu\n"
    )
    train = ["train", "--store", store, "--config", str(config), "--out", str(run)]
    assert wxens([*train, "--no-progress"]) == 0
    return run


def test_a_bias_by_time_of_day_is_corrected_and_bias_correct_uses_the_choice(
    trained, capsys, caplog
):
    root, run, cycle, _ = trained
    tune = ["tune", "--checkpoint", str(run), "--store", cycle, *FAST, "--no-progress"]
    with caplog.at_level("INFO", logger="generators.tune"):
        assert wxens([*tune, "--spread-weights", "0.7", "--rank-weights", "0.1"]) == 0
    # its initial times as wxens info shows them and --start takes them, not 2019-03-01 06:00:00
    assert "tuning on 30 initial times, 2019-03-01T06:00 to 2019-03-08T12:00," in caplog.text
    assert "00:00:00" not in caplog.text
    printed = capsys.readouterr().out
    assert "chosen: bias weight 0." in printed and f"stored in {tuned_path(run)}" in printed
    spec = load_tuned(run)
    assert spec is not None and spec.bias_weight > 0
    record = json.loads(tuned_path(run).read_text())
    scores = record["scores"]
    assert scores[spec.label()]["mean_fair_crps"] < scores["0"]["mean_fair_crps"]
    assert record["init_times"] == 30 and record["folds"] == 2
    # bias-correct without weights corrects with the stored choice
    (forecast,) = run.glob("tune-*.zarr")
    out = root / "corrected.zarr"
    correct = ["bias-correct", str(forecast), "--truth", cycle, "--out", str(out)]
    assert wxens([*correct, "--checkpoint", str(run)]) == 0
    recorded = ForecastProvenance.from_attrs(open_forecast(out).attrs).bias_correction
    assert recorded["weight"] == spec.bias_weight


def test_errors_that_flip_from_day_to_day_are_left_uncorrected(trained, caplog):
    _, run, _, flip = trained
    with caplog.at_level("WARNING", logger="generators.tune"):
        tuned = tune_correction(
            run,
            flip,
            members=8,
            folds=2,
            sampler="euler:nfe=2",
            device="cpu",
            bias_weights=(0.1, 0.4),
        )
    # no held-out period in its config: its training period, with a warning saying so,
    # once: not again from its forecasts, with a forecast's advice to verify elsewhere
    assert "holds no held-out period (data.validation)" in caplog.text
    assert "verify on times it never trained on" not in caplog.text
    assert not tuned.spec.applies and load_tuned(run) == tuned.spec
    table = tuned.selection.table
    assert table.mean_fair_crps.idxmin() == "0" and list(table.index) == ["0", "0.1", "0.4"]


def test_too_few_initial_times_for_the_folds_are_refused(trained):
    _, run, cycle, _ = trained
    with pytest.raises(InputError, match="30 initial time.*for 16 fold.*give fewer folds"):
        tune_correction(run, cycle, folds=16, device="cpu")


@pytest.mark.parametrize(("days", "folds"), [(3.75, 1), (7.9, 1), (8, 2), (15, 3), (300, 4)])
def test_the_default_folds_keep_four_days_each(days, folds):
    inits = pd.date_range("2019-03-01", periods=2, freq=pd.Timedelta(days=days))
    assert default_folds(inits) == folds


def test_folds_that_can_correct_nothing_are_refused_before_any_forecast(trained):
    """The default 4 folds on a derived config's 4 held-out days were blocks of a day: no
    forecast had an earlier one of its time of day verified in its block, every candidate
    scored as no correction, and tune said no correction lowered the fair CRPS."""
    _, run, cycle, _ = trained
    before = set(run.glob("tune-*.zarr"))
    with pytest.raises(InputError, match="the 8 fold.* leave nothing to correct.*fewer folds"):
        tune_correction(run, cycle, folds=8, members=4, sampler="euler:nfe=2", device="cpu")
    assert set(run.glob("tune-*.zarr")) == before  # nothing forecast


def test_a_checkpoint_with_a_held_out_period_is_tuned_on_it(trained, caplog):
    """Default period: ``data.validation``, here the last 4 of the 8 days; initial times
    every 6 h whose 6 h truth is held out too (5 March 00 UTC to 8 March 12 UTC)."""
    root, _, cycle, _ = trained
    run = train_tiny(cycle, root / "held", HELD_OUT)
    with caplog.at_level("WARNING", logger="generators.tune"):
        tune_correction(run, cycle, **ONE_FOLD)
    record = json.loads(tuned_path(run).read_text())
    assert record["first_init_time"] == "2019-03-05T00:00"
    assert record["last_init_time"] == "2019-03-08T12:00" and record["init_times"] == 15
    assert "held-out period" not in caplog.text


def test_the_tuning_forecasts_of_an_earlier_checkpoint_are_removed(trained):
    """``tune-DIGEST-KEY.zarr`` stores of checkpoints trained over piled up (7 MB each in
    the correction walkthrough): no rerun reads them again."""
    root, _, cycle, _ = trained
    run = train_tiny(cycle, root / "again")
    earlier = run / "tune-0123456789abcdef-01234567.zarr"
    earlier.mkdir()
    tune_correction(run, cycle, **ONE_FOLD)
    assert not earlier.exists()
    (current,) = run.glob("tune-*.zarr")
    assert current.name.startswith(f"tune-{checkpoint_digest(run)}-")


def test_the_tuning_forecasts_of_another_checkpoint_beside_it_are_kept(tmp_path):
    """A model and its calibrated copy in one directory keep a tuned choice each
    (docs/generate.md), and so their tuning forecasts: tuning one must not delete the
    other's, which its rerun would draw again from the start."""
    (tmp_path / "model.pt").write_bytes(b"model")
    (tmp_path / "calibrated.pt").write_bytes(b"calibrated")
    model, calibrated = (checkpoint_digest(tmp_path / f) for f in ("model.pt", "calibrated.pt"))
    kept = tmp_path / f"tune-{calibrated}-01234567.zarr"
    gone = tmp_path / "tune-0123456789abcdef-01234567.zarr"  # no checkpoint here has it
    kept.mkdir()
    gone.mkdir()
    remove_earlier_forecasts(tmp_path, model)
    assert kept.exists() and not gone.exists()


def test_an_open_training_period_is_tuned_on_the_span_its_training_read(trained, caplog):
    """With no data.train, the warning named the training period "... to ..." and the
    initial times ran to the store's end, over days appended after training: the recorded
    span (here its first 6 of the 8 days) bounds it, as it bounds the forecasts' warning."""
    root, run, cycle, _ = trained
    span = Period("2019-03-01T00:00", "2019-03-06T18:00")
    spanned = load_checkpoint(run).replace(trained_span=span).save(root / "spanned" / "last.pt")
    assert spanned.train_config.data.train == Period()
    with caplog.at_level("WARNING", logger="generators.tune"):
        tune_correction(spanned.path, cycle, **ONE_FOLD)
    assert "training period 2019-03-01T00:00 to 2019-03-06T18:00, which" in caplog.text
    record = json.loads(tuned_path(spanned.path).read_text())
    assert record["first_init_time"] == "2019-03-01T06:00"
    assert record["last_init_time"] == "2019-03-06T12:00" and record["init_times"] == 22
    caplog.clear()
    older = spanned.replace(trained_span=None)  # written before the span was recorded
    with caplog.at_level("WARNING", logger="generators.tune"):
        assert default_period(older) == Period()
    assert "training period ... to ..., which" in caplog.text


def test_a_start_alone_keeps_the_default_period_end(trained):
    """``--start`` without ``--end`` runs to the held-out period's end (as the help says), not
    to the store's end: 6 March 00 UTC to 8 March 12 UTC, the last time whose 6 h truth is
    held out."""
    root, _, cycle, _ = trained
    periods = (
        ", train: {start: 2019-03-01, end: 2019-03-04T18}, "
        "validation: {start: 2019-03-05, end: 2019-03-08T12}"
    )
    run = train_tiny(cycle, root / "held_start", periods)
    tune = ["tune", "--checkpoint", str(run), "--store", cycle, "--start", "2019-03-06"]
    assert wxens([*tune, *FAST, "--folds", "1", *ONE_EACH_OPTIONS]) == 0  # the last --folds counts
    record = json.loads(tuned_path(run).read_text())
    assert record["first_init_time"] == "2019-03-06T00:00"
    assert record["last_init_time"] == "2019-03-08T06:00"


def test_an_upper_air_channel_is_tuned_at_its_level(tmp_path, capsys):
    """``--variable z500`` names a channel: tuning scores ``z`` at 500 hPa (it ended in a
    KeyError on ``'z500'`` after all the tuning forecasts); without it, each variable chooses
    its own weights (t2m, and z on its two levels together), stored by variable."""
    store = tmp_path / "s.zarr"
    ingest("synthetic:n_lat=8,n_lon=8,n_times=32,step=6h,start=2019-03-01", store, progress=False)
    config = tmp_path / "run.yaml"
    config.write_text(
        "model: {kind: flow_matching, backbone: {widths: [8, 16], attention_heads: 0, "
        "embedding_dim: 16}}\ndata: {channels: [t2m, z500, z850], history: 2, leads: [1]}\n"
        "steps: 2\nbatch_size: 4\ndevice: cpu\n"
    )
    run = tmp_path / "run"
    train = ["train", "--store", str(store), "--config", str(config), "--out", str(run)]
    assert wxens([*train, "--no-progress"]) == 0
    tune = ["tune", "--checkpoint", str(run), "--store", str(store), *FAST, *ONE_EACH_OPTIONS]
    assert wxens([*tune, "--no-progress"]) == 0
    out = capsys.readouterr().out
    record = json.loads(tuned_path(run).read_text())
    assert record["variable"] == ["t2m", "z500", "z850"] and "bias_weight" not in record
    assert list(record["by_variable"]) == list(record["scores"]) == ["t2m", "z"]
    for name, weights in record["by_variable"].items():
        scores = pd.DataFrame.from_dict(record["scores"][name], orient="index")
        best = scores[scores.stage == "bias"].mean_fair_crps.idxmin()
        assert weights["bias_weight"] == (0.0 if best == "0" else float(best))
    spec = load_tuned(run)
    assert [v for v, _ in spec.specs] == ["t2m", "z"]
    assert f"chosen: {spec.describe()}" in out and "chosen: weights by variable: t2m " in out
    assert re.search(r"^variable candidate *\nt2m +0 +bias ", out, re.M), out
    assert spec.applies and wxens(["info", str(run)]) == 0  # it failed on weights by variable
    assert f"correction {tuned_path(run)}: {spec.describe()}\n" in capsys.readouterr().out
    tuned = tune_correction(
        run,
        store,
        members=8,
        folds=2,
        sampler="euler:nfe=2",
        device="cpu",
        progress=False,
        variable="z500",
        **ONE_EACH,
    )
    record = json.loads(tuned_path(run).read_text())
    assert record["variable"] == "z500" and len(tuned.selection.table) > 1
    assert np.isfinite(tuned.selection.table.select_dtypes("number").to_numpy()).all()


def test_a_period_the_store_does_not_hold_is_named_with_the_stores_times():
    """wxens tune on a store of another period said 'the calibration period ... holds no
    initial time ...; give a longer period', neither the tuning nor the store's times."""
    from generators.calibration import calibration_init_times

    with pytest.raises(InputError) as refused:
        calibration_init_times(TIMES, "2020-10-19", "2020-12-31", 6, 24, what="tuning")
    message = str(refused.value)
    assert message.startswith("the tuning period 2020-10-19 to 2020-12-31 holds no initial")
    assert "the store holds none of it (its times: 2019-03-01T00:00 to 2019-03-08T18:00)" in message
    with pytest.raises(InputError, match="give a longer period$"):  # held, but too short
        calibration_init_times(TIMES, "2019-03-01", "2019-03-01T18", 6, 24)
    with pytest.raises(InputError, match="it ends before it starts"):  # --start after the end
        calibration_init_times(TIMES, "2019-03-05", "2019-03-04T18", 6, 24)


@pytest.mark.parametrize(
    ("stage", "weights"), [("bias", (0.0, 0.5)), ("spread", (0.3, 1.5)), ("rank", (-0.1,))]
)
def test_candidate_weights_out_of_range_are_refused_before_any_forecast(
    tmp_path, stage, weights, capsys
):
    """--bias-weights 0,0.5 failed after the tuning forecasts with 'the spread and rank
    weights act on the bias-corrected forecast: give a bias weight ... (--bias-weight)',
    a flag the command does not have; --rank-weights 2 named --rank-weight. The Python API
    names its keyword argument, the command its option."""
    keyword = f"{stage}_weights"
    with pytest.raises(InputError, match=rf"^{keyword}=\(.*\): every candidate must be in"):
        tune_correction(tmp_path / "no-run", tmp_path / "no-store", **{keyword: weights})
    given = ",".join(f"{w:g}" for w in weights)
    tune = ["tune", "--checkpoint", str(tmp_path / "no-run"), "--store", str(tmp_path)]
    assert wxens([*tune, f"--{stage}-weights", given]) == 2
    assert f"--{stage}-weights {given}: every candidate must be in" in capsys.readouterr().err


def test_the_python_api_names_its_keyword_arguments_the_command_its_options(trained, capsys):
    _, run, cycle, _ = trained
    with pytest.raises(InputError, match=r"^folds=0: give at least 1$"):
        tune_correction(run, cycle, folds=0)
    with pytest.raises(InputError, match=r"give fewer folds=, a smaller every_hours= or a longer "):
        tune_correction(run, cycle, folds=16, device="cpu")
    with pytest.raises(InputError, match=r"variable='q': .* forecasts only \['t2m'\]"):
        tune_correction(run, cycle, variable="q", device="cpu")
    tune = ["tune", "--checkpoint", str(run), "--store", cycle, "--device", "cpu"]
    assert wxens([*tune, "--folds", "16"]) == 2
    assert "give fewer --folds, a smaller --every or a longer period" in capsys.readouterr().err
    assert wxens([*tune, "--variable", "q"]) == 2
    assert "--variable q: " in capsys.readouterr().err


def test_weights_are_recorded_for_the_checkpoint_they_were_tuned_on(trained, monkeypatch):
    """The digest was read when the weights were saved: a checkpoint replaced meanwhile (a
    `wxens calibrate` finished during the tune, other spread factors) got weights chosen
    on the old one's forecasts, recorded as its own, and bias-correct applied them."""
    import generators.tune as tune_module
    from generators.checkpoint import load_checkpoint

    root, _, cycle, _ = trained
    run = train_tiny(cycle, root / "replaced")
    tuned_on = checkpoint_digest(run)
    choose = tune_module.select_weights

    def replaced_meanwhile(*args, **kwargs):
        loaded = load_checkpoint(run)
        loaded.replace(calibration={"factors": [[2.0]]}).save(loaded.path)
        return choose(*args, **kwargs)

    monkeypatch.setattr(tune_module, "select_weights", replaced_meanwhile)
    tune_correction(run, cycle, **ONE_FOLD)
    assert json.loads(tuned_path(run).read_text())["checkpoint_digest"] == tuned_on
    assert checkpoint_digest(run) != tuned_on and load_tuned(run) is None


def test_a_rerun_says_how_tune_draws_its_forecasts_again(trained, caplog):
    """A rerun skips the tuning forecasts its store holds, and told a tune user to draw
    them again with "wxens forecast --recompute": tune has no --recompute, and its store
    is its own (named by the checkpoint and settings), not one to forecast into by hand."""
    from tests.flows.test_cli_options import redraw_options

    root, run, cycle, _ = trained
    tune_correction(run, cycle, **ONE_FOLD, seed=3)
    caplog.clear()
    with caplog.at_level("INFO"):
        tune_correction(run, cycle, **ONE_FOLD, seed=3)
    assert "they are skipped" in caplog.text
    assert set(redraw_options(caplog.text, "tune")) <= {"tune"}


HALVES = (("2019-03-01", "2019-03-04T18"), ("2019-03-05", "2019-03-08T18"))


def held_out(start: str, end: str, other: str = "") -> str:
    """``train_tiny``'s ``periods`` of a cross-validation fold holding out ``start``-``end``
    (``other``: more data keys, another recipe)."""
    return f"{other}, exclude: [{{start: {start}, end: {end}}}]"


def test_folds_choose_on_their_forecasts_of_the_periods_they_held_out(trained, caplog, capsys):
    """A checkpoint trained on every day (the README's runs/uk_fm) had no way to tune on its
    cross-validation folds: tune forecast its training days, with a warning, and its choice
    erred towards no correction. With --fold each fold forecasts the period it held out, one
    block each, into a tuning store beside it; the stored choice is scored on those."""
    from generators.correction.select_weights import select_weights
    from generators.correction.spec import CorrectionSpec
    from generators.tune import one_channel
    from pipeline.store import open_store

    root, run, cycle, _ = trained
    folds = [train_tiny(cycle, root / f"half{i}", held_out(*p)) for i, p in enumerate(HALVES)]
    own = set(run.glob("tune-*.zarr"))
    tune = ["tune", "--checkpoint", str(run), "--store", cycle, "--members", "4"]
    tune += ["--sampler", "euler:nfe=2", "--device", "cpu", "--no-progress", *ONE_EACH_OPTIONS]
    with caplog.at_level("WARNING"):
        assert wxens([*tune, "--fold", str(folds[0]), "--fold", str(folds[1])]) == 0
    assert "held-out period (data.validation)" not in caplog.text  # not its training days
    assert "the model has seen it" not in caplog.text
    assert set(run.glob("tune-*.zarr")) == own  # the checkpoint itself forecast nothing
    blocks = []
    for fold, (start, end) in zip(folds, HALVES, strict=True):
        (forecasts,) = fold.glob(f"tune-{checkpoint_digest(fold)}-*.zarr")
        block = one_channel(open_forecast(forecasts), "t2m").load()
        inits = pd.DatetimeIndex(block.init_time.values)
        assert inits[0] >= pd.Timestamp(start) and inits[-1] + pd.Timedelta(hours=6) <= (
            pd.Timestamp(end)
        )
        blocks.append(block)
    record = json.loads(tuned_path(run).read_text())
    assert record["fold_checkpoints"] == [str(load_checkpoint(f).path) for f in folds]
    assert record["folds"] == 2
    assert record["init_times"] == sum(block.sizes["init_time"] for block in blocks)
    assert record["first_init_time"] == "2019-03-01T06:00"
    assert record["last_init_time"] == "2019-03-08T12:00"
    printed = capsys.readouterr().out
    assert all(str(next(f.glob("tune-*.zarr"))) in printed for f in folds)
    truth = one_channel(open_store(cycle).dataset, "t2m")
    again = select_weights(blocks, truth, *ONE_EACH.values(), variable="t2m")
    crps = {label: row["mean_fair_crps"] for label, row in record["scores"].items()}
    assert crps == pytest.approx(again.table.mean_fair_crps.to_dict())
    assert load_tuned(run) == (again.spec or CorrectionSpec())


def test_folds_of_another_recipe_too_short_or_with_folds_or_a_period_are_refused(
    trained, capsys
):
    root, run, cycle, _ = trained
    tune = ["tune", "--checkpoint", str(run), "--store", cycle, "--members", "4", "--device", "cpu"]
    other = train_tiny(cycle, root / "other", held_out(*HALVES[1], ", train: {start: 2019-03-02}"))
    assert wxens([*tune, "--fold", str(other)]) == 2
    err = capsys.readouterr().err
    assert f"fold {load_checkpoint(other).path} was not trained with the recipe of" in err
    assert "differ in data.train" in err
    short = train_tiny(cycle, root / "short", held_out("2019-03-05", "2019-03-05T18"))
    assert wxens([*tune, "--fold", str(short)]) == 2
    err = capsys.readouterr().err
    assert f"fold {load_checkpoint(short).path}: the 3 initial times of its held-out" in err
    assert "leave nothing to correct" in err
    assert not [*other.glob("tune-*.zarr"), *short.glob("tune-*.zarr")]  # nothing forecast
    for given in (["--folds", "2"], ["--start", "2019-03-05"]):
        assert wxens([*tune, "--fold", str(short), *given]) == 2
        assert f"--fold with {given[0]}" in capsys.readouterr().err


def test_tuning_on_the_calibration_period_does_not_warn_that_it_is_in_sample(trained, caplog):
    """A derived config fits its spread calibration and is tuned on one held-out period, by
    design; wxens tune warned that the forecasts' scores there were in-sample and to 'verify
    on other days, or forecast them uncalibrated (--no-calibration)', a flag tune has not."""
    root, _, cycle, _ = trained
    run = train_tiny(cycle, root / "calibrated", HELD_OUT)
    fit = ["calibrate", "--checkpoint", str(run), "--store", cycle, "--members", "4"]
    fit += ["--sampler", "euler:nfe=2"]
    assert wxens([*fit, "--start", "2019-03-05", "--end", "2019-03-08T18", "--no-progress"]) == 0
    assert load_checkpoint(run).calibration is not None
    logger = logging.getLogger("generators.in_sample")
    logger.addHandler(caplog.handler)
    try:
        with caplog.at_level("WARNING", logger="generators.in_sample"):
            tune_correction(run, cycle, **ONE_FOLD)
            assert tuned_path(run).is_file()
            assert "spread calibration" not in caplog.text, caplog.text
            earlier = Period("2019-03-04", "2019-03-08T18")  # its training days still warn
            tune_correction(run, cycle, **ONE_FOLD, period=earlier)
    finally:
        logger.removeHandler(caplog.handler)
    assert "forecast weather of the training period" in caplog.text, caplog.text
    assert "spread calibration" not in caplog.text, caplog.text
