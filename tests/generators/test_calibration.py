"""Spread calibration fitted from the models' forecasts: the fit on a period and on
cross-validation folds, and the whole path checkpoint -> forecast store attrs (the numpy
half, :mod:`generators.correction.spread`, is tested in tests/generators/correction)."""

from __future__ import annotations

import contextlib
import io
import json
import logging.handlers
import re
import shlex
import shutil
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

# the exact AR(1) stub generator (pytest puts this directory on sys.path)
from test_rollout import RHO, ar1_checkpoint, stub_for

from flows.cli import main as wxens
from generators.calibration import (
    calibrate_checkpoint,
    calibration_init_times,
    check_fold,
    fit_calibration,
)
from generators.checkpoint import load_checkpoint
from generators.config import CalibrationConfig, load_train_config, parse_sampler
from generators.correction.spread import SpreadCalibration, spread_skill_ratio
from generators.data.forecast import ForecastData
from generators.in_sample import calibrated_period
from generators.rollout import forecast_members
from pipeline.errors import InputError
from pipeline.forecast_store import open_forecast
from pipeline.schema import Period
from pipeline.store import AnalysisStore, ingest


def expected_ssr(scale: float, m: int) -> float:
    """SSR of members mu + s e_m against truth mu + e (e ~ N(0, 1)): the spread is s and the
    ensemble mean's error has variance 1 + s^2 / m, so SSR = sqrt((m+1)/m) s / sqrt(1 + s^2/m)."""
    return np.sqrt((m + 1) / m) * scale / np.sqrt(1 + scale**2 / m)


def test_fit_initial_times_keep_their_truth_inside_the_period():
    times = pd.date_range("2019-03-01", "2019-03-31T23", freq="h")
    inits = calibration_init_times(times, "2019-03-18", "2019-03-21", 3.0, 24.0)
    assert inits[0] == pd.Timestamp("2019-03-18T00") and inits[-1] == pd.Timestamp("2019-03-20T21")
    with pytest.raises(InputError, match="longer period"):
        calibration_init_times(times, "2019-03-18T00", "2019-03-18T12", 3.0, 24.0)


def test_a_period_the_store_does_not_cover_names_what_it_covers():
    times = pd.date_range("2019-03-01", "2019-03-15T23", freq="h")
    with pytest.raises(
        InputError,
        match=r"the store holds none of it \(its times: 2019-03-01T00:00 to 2019-03-15T23:00\)",
    ):
        calibration_init_times(times, "2019-03-28", "2019-03-31", 6.0, 6.0)


def ar1_truth_store(n_times: int = 120) -> AnalysisStore:
    """6-hourly t2m = 280 + 2 z with z an AR(1) of coefficient RHO per step (N(0, 1) stationary)."""
    rng = np.random.default_rng(4)
    z = np.empty((n_times, 6, 8))
    z[0] = rng.standard_normal((6, 8))
    for t in range(1, n_times):
        z[t] = RHO * z[t - 1] + np.sqrt(1 - RHO**2) * rng.standard_normal((6, 8))
    ds = xr.Dataset(
        {"t2m": (("time", "latitude", "longitude"), (280 + 2 * z).astype("float32"))},
        coords={
            "time": pd.date_range("2019-03-01", periods=n_times, freq="6h"),
            "latitude": np.linspace(50, 56, 6),
            "longitude": np.linspace(-10, 4, 8),
        },
    )
    stats = xr.Dataset(
        {"t2m": ("statistic", [280.0, 2.0, 270.0, 290.0, 0.9])},
        coords={"statistic": ["mean", "std", "min", "max", "tendency_std"]},
    )
    return AnalysisStore(Path("ar1-truth.zarr"), ds, stats, pd.Timedelta(hours=6), ())


def ar1_trained_to_4th(store: AnalysisStore):
    """The AR(1) stub's checkpoint at leads 1 and 2, as if trained on the first four days."""
    checkpoint = ar1_checkpoint(store, leads=(1, 2))
    trained = checkpoint.train_config
    return checkpoint.replace(
        train_config=replace(trained, data=replace(trained.data, train=Period(end="2019-03-04")))
    )


def test_fitting_on_a_period_finds_the_under_dispersion_of_a_generator():
    store = ar1_truth_store()
    checkpoint = ar1_trained_to_4th(store)
    config = CalibrationConfig(
        period=Period("2019-03-05", "2019-03-29"),
        members=16,
        init_every_hours=6,
        sampler="euler:nfe=1",
    )
    calibration = fit_calibration(
        checkpoint, store, config, model=stub_for(checkpoint, scale=0.5), progress=False
    )
    assert calibration.leads_hours == (6.0, 12.0) and calibration.n_inits > 80
    expected = expected_ssr(0.5, 16)  # 0.511: the stub's noise is half the true one
    np.testing.assert_allclose(calibration.ssr_before[:, 0], expected, rtol=0.06)
    np.testing.assert_allclose(calibration.factors[:, 0], 1 / expected, rtol=0.06)
    np.testing.assert_allclose(calibration.ssr_after, 1.0, rtol=1e-6)
    batched = fit_calibration(  # 7 initial times a batch, their moments pooled
        checkpoint,
        store,
        config,
        model=stub_for(checkpoint, scale=0.5),
        progress=False,
        batch_members=16 * 7,
    )
    np.testing.assert_allclose(batched.factors, calibration.factors, rtol=1e-12)


def test_a_period_past_the_store_is_recorded_as_fitted_and_said(caplog):
    """``wxens calibrate --end`` after the store's last time fitted without a word and
    recorded the end as given: once later days were ingested, forecasts valid in them were
    warned as in-sample. The period recorded is the store's part of it, and a warning says
    which side was bounded; a start before the store's first time likewise."""
    store = ar1_truth_store(60)  # 2019-03-01 to 2019-03-15T18
    checkpoint = ar1_trained_to_4th(store)
    config = CalibrationConfig(
        period=Period("2019-03-10", "2019-03-25"), members=2, sampler="euler:nfe=1"
    )
    caplog.set_level("WARNING", logger="generators.calibration")
    model = stub_for(checkpoint, scale=0.5)
    fitted = fit_calibration(checkpoint, store, config, model=model, progress=False)
    assert fitted.fit_period == Period("2019-03-10", "2019-03-15T18:00")
    assert fitted.period == "2019-03-10 to 2019-03-15T18:00"
    assert (
        "fitted to 2019-03-15T18:00, the store's last time, and records that: "
        "calibration.period.end=2019-03-25 (wxens calibrate --end) reaches past it"
    ) in caplog.text
    caplog.clear()
    trained = checkpoint.train_config  # trained on the last days: fit on the first ones
    later = checkpoint.replace(
        train_config=replace(trained, data=replace(trained.data, train=Period("2019-03-12")))
    )
    config = replace(config, period=Period("2019-02-20", "2019-03-05"))
    fitted = fit_calibration(later, store, config, model=model, progress=False)
    assert fitted.fit_period == Period("2019-03-01T00:00", "2019-03-05")
    assert "fitted from 2019-03-01T00:00, the store's first time" in caplog.text
    before = "calibration.period.start=2019-02-20 (wxens calibrate --start) reaches before it"
    assert before in caplog.text
    caplog.clear()  # inside the store, as given: an end date still covers its day
    config = replace(config, period=Period("2019-03-06", "2019-03-09"))
    fitted = fit_calibration(later, store, config, model=model, progress=False)
    assert fitted.fit_period == Period("2019-03-06", "2019-03-09") and not caplog.text


def test_a_period_past_the_store_over_training_days_is_refused_naming_what_was_fitted():
    """A calibration period reaching before the store and into the training days was
    refused naming the period as given (2019-02-20 to 2019-03-05), days the store does
    not hold and the fit would not use: it names the store's part, the period fitted."""
    store = ar1_truth_store(60)  # 2019-03-01 to 2019-03-15T18
    checkpoint = ar1_trained_to_4th(store)
    config = CalibrationConfig(
        period=Period("2019-02-20", "2019-03-05"), members=2, sampler="euler:nfe=1"
    )
    model = stub_for(checkpoint, scale=0.5)
    with pytest.raises(InputError, match="lie in the training period") as err:
        fit_calibration(checkpoint, store, config, model=model, progress=False)
    said = str(err.value)
    assert "the calibration period 2019-03-01T00:00 to 2019-03-05 (" in said, said
    assert "2019-02-20" not in said, said


def train(store: AnalysisStore, config: Path, out: Path, *overrides: str) -> int:
    """``wxens train`` of ``config`` into ``out``, with ``--set`` overrides."""
    args = ["train", "--store", str(store.path), "--config", str(config), "--out", str(out)]
    return wxens(args + ["--no-progress", *(a for o in overrides for a in ("--set", o))])


def tiny_run(tmp_path: Path, calibration_end: str) -> AnalysisStore:
    """A 6-hourly t2m store and ``tmp_path/c.yaml``: a 2-step model trained to 15 January,
    calibrated on 16 January to ``calibration_end``."""
    store = ingest(
        "synthetic:n_lat=16,n_lon=16,n_times=80,step=6h,seed=2",
        tmp_path / "s.zarr",
        variables=["t2m"],
        progress=False,
    )
    (tmp_path / "c.yaml").write_text(
        "model: {kind: flow_matching, "
        "backbone: {widths: [8, 16], attention_heads: 0, embedding_dim: 16}}\n"
        "data: {channels: [t2m], history: 2, leads: [1], train: {end: 2000-01-15}}\n"
        "steps: 2\nbatch_size: 4\ndevice: cpu\n"
        f"calibration: {{period: {{start: 2000-01-16, end: {calibration_end}}}, members: 4, "
        "sampler: 'euler:nfe=2'}\n"
    )
    return store


def test_a_failed_calibration_after_training_says_what_was_saved_and_how_to_calibrate(
    tmp_path, capsys
):
    """A held-out period past the store's end: ``wxens train`` said only that, not that the
    training had finished and ``last.pt`` was saved uncalibrated, nor how to calibrate it.
    Once the store covers the period, the command it gives and a rerun of the training
    (which trains nothing more) fit the same calibration."""
    store = tiny_run(tmp_path, "2000-01-25")
    late = "calibration.period.start=2000-01-22"  # the store ends on 20 January
    assert train(store, tmp_path / "c.yaml", tmp_path / "run", late) == 2
    said = capsys.readouterr().err
    last = tmp_path / "run" / "last.pt"
    assert f"training finished and was saved: {last} (step 2)" in said
    assert "is not calibrated" in said
    assert "the store holds none of it" in said  # the cause, as calibrate says it
    assert load_checkpoint(last).calibration is None
    command = re.search(r"`(wxens calibrate [^`]*)`", said).group(1)
    ingest(  # the cause fixed: the store now covers the period
        "synthetic:n_lat=16,n_lon=16,n_times=120,step=6h,seed=2",
        store.path,
        variables=["t2m"],
        progress=False,
    )
    assert train(store, tmp_path / "c.yaml", tmp_path / "run", late) == 0
    assert "had finished (step 2 of 2): nothing trained" in capsys.readouterr().out
    rerun = load_checkpoint(last)
    assert rerun.step == 2 and rerun.calibration is not None
    assert wxens([*shlex.split(command)[1:], "--no-progress", "--out", str(tmp_path / "c.pt")]) == 0
    fitted = load_checkpoint(tmp_path / "c.pt").calibration
    assert fitted["n_inits"] == rerun.calibration["n_inits"] > 0
    np.testing.assert_array_equal(fitted["factors"], rerun.calibration["factors"])


@dataclass(frozen=True)
class Trained:
    """A ``tiny_run`` store and config calibrated to 19 January, the model ``wxens train``
    trained and calibrated from them in ``run``, and what that training printed and logged."""

    store: AnalysisStore
    config: Path
    run: Path
    printed: str
    logged: str


@pytest.fixture(scope="module")
def trained_to_19th(tmp_path_factory) -> Trained:
    """One training of the tiny run, shared by the tests that each trained the same one
    (a test that writes beside the checkpoint copies ``run`` first)."""
    root = tmp_path_factory.mktemp("calibrated")
    store = tiny_run(root, "2000-01-19")
    records = logging.handlers.BufferingHandler(capacity=10_000)
    logger = logging.getLogger("generators.calibration")
    level = logger.level
    logger.setLevel("INFO")
    logger.addHandler(records)
    try:
        with contextlib.redirect_stdout(io.StringIO()) as printed:
            assert train(store, root / "c.yaml", root / "run") == 0
    finally:
        logger.removeHandler(records)
        logger.setLevel(level)
    logged = "\n".join(record.getMessage() for record in records.buffer)
    return Trained(store, root / "c.yaml", root / "run", printed.getvalue(), logged)


def copied_run(trained: Trained, tmp_path: Path) -> Path:
    """A copy of the shared trained run in ``tmp_path``, for a test that writes beside it."""
    return Path(shutil.copytree(trained.run, tmp_path / "run"))


def test_a_calibration_is_stored_applied_and_recorded(trained_to_19th, tmp_path, capsys):
    store, run = trained_to_19th.store, copied_run(trained_to_19th, tmp_path)
    assert "Spread calibration fitted on 2000-01-16 to 2000-01-19" in trained_to_19th.printed
    checkpoint = load_checkpoint(run)
    stored = SpreadCalibration.from_dict(checkpoint.calibration)
    # a rerun of the finished training keeps the checkpoint (and what was tuned for it)
    assert train(store, trained_to_19th.config, run) == 0
    assert "keeps its spread calibration" in capsys.readouterr().out
    assert load_checkpoint(run).digest == checkpoint.digest
    assert stored.leads_hours == (6.0,) and stored.n_inits == 15  # 16th 00 h to 19th 12 h
    assert stored.sampler == "euler:nfe=2,noise_scale=1.0"  # the fit's, not the model's default
    capsys.readouterr()
    assert wxens(["info", str(run)]) == 0  # which sampler the factors hold for
    described = capsys.readouterr().out
    assert "sampler    euler:nfe=2,noise_scale=1.0 (NFE 2), the forecasts' default; the " in (
        described
    )
    assert f"fine-tune), seed {checkpoint.train_config.seed}\n" in described  # to rerun it
    assert f", fit seed {stored.seed}\n" in described

    common = [
        "forecast",
        "--checkpoint",
        str(run),
        "--store",
        str(store.path),
        "--init",
        "2000-01-17",
        "--members",
        "4",
        "--lead",
        "6h",
        "--no-progress",
    ]
    # the factors hold for the fit's sampler only: another is refused, nothing written
    capsys.readouterr()
    other = common + ["--out", str(tmp_path / "other.zarr"), "--sampler", "euler:nfe=4"]
    assert wxens(other) == 2
    error = capsys.readouterr().err
    assert "fitted on forecasts of euler:nfe=2,noise_scale=1.0" in error
    assert "euler:nfe=4" in error and "--no-calibration" in error
    assert not (tmp_path / "other.zarr").exists()
    assert wxens([*other, "--no-calibration"]) == 0
    # and for forecasts drawn as the fit's were: not balanced, so --balance is refused
    capsys.readouterr()
    balanced = common + ["--out", str(tmp_path / "balanced.zarr"), "--balance"]
    assert wxens(balanced) == 2
    error = capsys.readouterr().err
    assert "fitted on forecasts without balanced upper air" in error, error
    assert "wxens calibrate --balance" in error
    assert not (tmp_path / "balanced.zarr").exists()
    # by default a calibrated checkpoint forecasts with its calibration's sampler
    assert wxens(common + ["--out", str(tmp_path / "cal.zarr")]) == 0
    assert wxens(common + ["--out", str(tmp_path / "raw.zarr"), "--no-calibration"]) == 0
    cal, raw = open_forecast(tmp_path / "cal.zarr"), open_forecast(tmp_path / "raw.zarr")
    assert cal.attrs["wxens_sampler"] == stored.sampler
    assert json.loads(cal.attrs["wxens_calibration"])["factors"] == stored.factors.tolist()
    assert json.loads(raw.attrs["wxens_calibration"]) == {}
    capsys.readouterr()
    assert wxens(["info", str(tmp_path / "cal.zarr")]) == 0  # the calibration is reported
    described = capsys.readouterr().out
    assert f"sampler {stored.sampler} (NFE 2)" in described
    assert f"fitted on {stored.period}: 6 h {stored.factors[0, 0]:.2f}" in described
    ratio = float(cal.t2m.std("member").mean() / raw.t2m.std("member").mean())
    assert ratio == pytest.approx(stored.factors[0, 0], rel=1e-4)
    xr.testing.assert_allclose(cal.t2m.mean("member"), raw.t2m.mean("member"), atol=1e-4)
    # a lead past the calibrated ones (12 h, rolled out) takes the last one's factor ...
    longer = [*common[:-3], "--lead", "12h", "--no-progress"]
    assert wxens([*longer, "--out", str(tmp_path / "cal12.zarr")]) == 0
    assert wxens([*longer, "--out", str(tmp_path / "raw12.zarr"), "--no-calibration"]) == 0
    cal, raw = open_forecast(tmp_path / "cal12.zarr"), open_forecast(tmp_path / "raw12.zarr")
    spread = cal.t2m.std("member") / raw.t2m.std("member")
    np.testing.assert_allclose(
        spread.mean(["init_time", "latitude", "longitude"]), stored.factors[0, 0], rtol=1e-4
    )
    # ... unless `wxens calibrate --lead 12h` fits every native step up to it
    capsys.readouterr()
    every_step = ["calibrate", "--checkpoint", str(run), "--store", str(store.path)]
    every_step += [
        "--start",
        "2000-01-16",
        "--end",
        "2000-01-18",
        "--members",
        "4",
        "--lead",
        "12h",
    ]
    assert wxens([*every_step, "--out", str(tmp_path / "steps.pt"), "--no-progress"]) == 0
    refitted = SpreadCalibration.from_dict(load_checkpoint(tmp_path / "steps.pt").calibration)
    assert refitted.leads_hours == (6.0, 12.0)

    before = checkpoint.digest
    calibrate_checkpoint(
        run,
        store,
        CalibrationConfig(
            period=Period("2000-01-16", "2000-01-18"), members=4, sampler="euler:nfe=2"
        ),
        progress=False,
    )
    assert load_checkpoint(run).digest != before
    # wxens calibrate --balance draws its fit forecasts balanced: t2m alone has no upper
    # air to balance, which is refused before anything is written
    capsys.readouterr()
    refit = ["calibrate", "--checkpoint", str(run), "--store", str(store.path)]
    refit += ["--start", "2000-01-16", "--end", "2000-01-18", "--members", "4", "--balance"]
    assert wxens([*refit, "--out", str(tmp_path / "balanced.pt"), "--no-progress"]) == 2
    assert "balance needs z and t on at least two common levels" in capsys.readouterr().err
    assert not (tmp_path / "balanced.pt").exists()


TINY_RECIPE = (
    "model: {kind: flow_matching, "
    "backbone: {widths: [8, 16], attention_heads: 0, embedding_dim: 16}}\n"
    "data: {channels: [t2m], history: 2, leads: [1], train: {end: 2000-01-15}}\n"
    "steps: 2\nbatch_size: 4\ndevice: cpu\nsampler: 'euler:nfe=2'\n"
)
FOLDS = (("2000-01-04", "2000-01-07"), ("2000-01-10", "2000-01-13"))


@pytest.fixture(scope="module")
def cross_validated(tmp_path_factory):
    """A synthetic store, a tiny model trained on all of its training period, and two
    folds of the same recipe each trained without one period (and another default sampler)."""
    root = tmp_path_factory.mktemp("cv")
    store = ingest(
        "synthetic:n_lat=8,n_lon=12,n_times=80,step=6h,seed=3",
        root / "s.zarr",
        variables=["t2m"],
        progress=False,
    )
    (root / "c.yaml").write_text(TINY_RECIPE)
    assert train(store, root / "c.yaml", root / "all") == 0
    for i, (start, end) in enumerate(FOLDS):
        held_out = f"data.exclude=[{{start: {start}, end: {end}}}]"
        own_sampler = "sampler=euler:nfe=4"  # the calibrated model's sampler is used
        assert train(store, root / "c.yaml", root / f"fold{i}", held_out, own_sampler) == 0
    return store, root


def test_a_calibration_on_a_handful_of_initial_times_is_warned_about(tmp_path, caplog):
    """A 12-time store gave one calibration initial time and factors of 3.9, in silence."""
    store = tiny_run(tmp_path, "2000-01-16T12")
    with caplog.at_level("WARNING", logger="generators.calibration"):
        assert train(store, tmp_path / "c.yaml", tmp_path / "run") == 0
    assert "the spread calibration was fitted on 2 initial time(s)" in caplog.text


def test_folds_calibrate_a_model_on_the_periods_they_held_out(cross_validated, capsys):
    store, root = cross_validated
    folds = [str(root / f"fold{i}") for i in range(len(FOLDS))]
    args = ["calibrate", "--checkpoint", str(root / "all"), "--store", str(store.path)]
    args += ["--members", "6", "--out", str(root / "calibrated.pt"), "--no-progress"]
    assert wxens(args + [a for f in folds for a in ("--fold", f)]) == 0
    assert "held-out periods of 2 cross-validation folds (2000-01-04 to 2000-01-07, " in (
        capsys.readouterr().out
    )
    assert load_checkpoint(root / "all").calibration is None  # --out leaves it as it was
    stored = SpreadCalibration.from_dict(load_checkpoint(root / "calibrated.pt").calibration)
    # the folds' days are the model's training days, warned about as such: not twice,
    # whatever the text says (the folds are fields)
    assert stored.fold_periods == tuple(Period(*p) for p in FOLDS)
    fitted = load_checkpoint(root / "calibrated.pt")
    assert calibrated_period(fitted) is None
    text = fitted.calibration | {"period": "2000-01-04 to ..."}
    assert calibrated_period(fitted.replace(calibration=text)) is None

    # independently: each fold forecasts its own held-out period, the SSR is of the pool
    members, truths = [], []
    for path, (start, end) in zip(folds, FOLDS, strict=True):
        fold = load_checkpoint(path)
        data = ForecastData.from_store(fold, store)
        inits = data.usable_inits(
            calibration_init_times(data.dataset.times, start, end, 6.0, 6.0), [6.0]
        )
        end_of_period = pd.Timestamp(end) + pd.Timedelta(days=1)
        assert inits.min() >= pd.Timestamp(start) and inits.max() < end_of_period
        members.append(
            forecast_members(
                fold,
                data,
                inits,
                [6.0],
                6,
                sampler=parse_sampler("euler:nfe=2"),
                seed=1,
                device="cpu",
                progress=False,
            )[:, :, 0]
        )
        truths.append(data.truth(inits, 6.0))
    latitude = store.dataset.latitude.values
    pooled = spread_skill_ratio(np.concatenate(members), np.concatenate(truths), latitude)
    assert stored.n_inits == sum(len(m) for m in members)
    np.testing.assert_allclose(stored.ssr_before[0], pooled, rtol=1e-5)
    np.testing.assert_allclose(stored.factors[0], 1 / pooled, rtol=1e-5)


def test_training_days_and_folds_of_another_recipe_or_without_a_held_out_period_are_refused(
    cross_validated,
):
    store, root = cross_validated
    config = CalibrationConfig(members=4)
    target = root / "all"
    with pytest.raises(InputError, match="exactly one period"):
        calibrate_checkpoint(target, store, config, folds=[target], progress=False)
    other = root / "other.yaml"
    other.write_text(TINY_RECIPE.replace("steps: 2", "steps: 3"))
    held_out = "data.exclude=[{start: 2000-01-04, end: 2000-01-07}]"
    assert train(store, other, root / "other", held_out) == 0
    with pytest.raises(InputError, match="differ in steps"):
        calibrate_checkpoint(target, store, config, folds=[root / "other"], progress=False)
    model = load_checkpoint(target)  # another grid: the fix named calibrate, also for tune
    narrower = model.replace(latitude=model.latitude[:-1])
    with pytest.raises(InputError, match="give folds trained from its config on its store"):
        check_fold(model, narrower)
    with pytest.raises(InputError, match="held-out period, .* or cross-validation folds, folds="):
        calibrate_checkpoint(target, store, config, progress=False)
    trained_days = replace(config, period=Period("2000-01-10", "2000-01-18"))
    # the trained initial times as wxens info shows them, not 2000-01-10 06:00:00
    seen = r"\(2000-01-\d\dT\d\d:\d\d to 2000-01-\d\dT\d\d:\d\d\) lie in the training period"
    with pytest.raises(InputError, match=rf"24 of the 35 initial times .* {seen}"):
        calibrate_checkpoint(target, store, trained_days, progress=False)
    assert load_checkpoint(target).calibration is None  # nothing written on refusal


def test_the_calibrate_command_wants_a_period_or_folds_and_training_wants_a_period(
    cross_validated, capsys
):
    store, root = cross_validated
    args = ["calibrate", "--checkpoint", str(root / "all"), "--store", str(store.path)]
    assert wxens(args) == 2
    assert wxens(args + ["--start", "2000-01-16", "--fold", str(root / "fold0")]) == 2
    assert "not both and not neither" in capsys.readouterr().err
    # a bound pandas cannot slice the store's times by ended in its TypeError, ValueError
    for end in ("2000-13-01", "2000-01-19T06:00Z"):
        assert wxens([*args, "--start", "2000-01-16", "--end", end]) == 2
        assert f"the calibration period bound '{end}' is not a time of the store" in (
            capsys.readouterr().err
        )
    (root / "no-period.yaml").write_text(TINY_RECIPE + "calibration: {members: 4}\n")
    with pytest.raises(InputError, match="calibration.period is required"):
        load_train_config(root / "no-period.yaml")


def test_a_negative_calibration_seed_is_refused_with_the_config():
    """calibration.seed=-1 trained the whole run, then ended in numpy's 'expected
    non-negative integer' traceback when the calibration drew its first forecast."""
    with pytest.raises(InputError, match=r"calibration\.seed must be at least 0, got -1"):
        CalibrationConfig(seed=-1)


def test_a_calibration_period_that_is_no_period_is_read_as_one_or_refused_naming_the_fix():
    """A notebook's period={"start": ..., "end": ...} was taken, then ended the fit in
    "'dict' object has no attribute 'start'" after the checkpoint was loaded: it is the
    Period it spells, as in a config file; a time alone is no period, refused at once."""
    period = {"start": "2019-03-18", "end": "2019-03-21"}
    assert CalibrationConfig(period=period).period == Period("2019-03-18", "2019-03-21")
    with pytest.raises(InputError, match=r"CalibrationConfig\.period .*give .*Period"):
        CalibrationConfig(period=pd.Timestamp("2019-03-18"))


def test_the_fit_seed_is_recorded_for_a_rerun(capsys):
    from flows.commands.info_provenance import calibration_text

    """The factors depend on the fit's seed (wxens calibrate --seed), which neither the
    checkpoint nor a forecast store's calibration recorded: a rerun could not match them."""
    store = ar1_truth_store()
    checkpoint = ar1_checkpoint(store, leads=(1,))
    trained = checkpoint.train_config
    checkpoint = checkpoint.replace(
        train_config=replace(trained, data=replace(trained.data, train=Period(end="2019-03-04")))
    )
    config = CalibrationConfig(
        period=Period("2019-03-05", "2019-03-08"), members=4, sampler="euler:nfe=1", seed=7
    )
    calibration = fit_calibration(
        checkpoint, store, config, model=stub_for(checkpoint, scale=0.5), progress=False
    )
    recorded = calibration.to_dict()
    assert recorded["seed"] == 7
    assert SpreadCalibration.from_dict(recorded).to_dict() == recorded
    assert calibration_text(recorded).endswith(", fit seed 7")  # what wxens info shows
    old = {k: v for k, v in recorded.items() if k != "seed"}  # written before it was recorded
    assert SpreadCalibration.from_dict(old).to_dict() == old  # its stores still extend



def test_training_logs_the_range_of_the_calibration_factors(trained_to_19th):
    """`wxens train` logged the factors as a nested list by lead (4 x 13 numbers for 13
    channels) without channel names; it gives their range, as the forecast does."""
    logged = trained_to_19th.logged
    assert "spread calibration fitted on 2000-01-16 to 2000-01-19 at 6 h, factors " in logged
    assert "(-v logs them all)" in logged and "[[" not in logged


def test_forecasts_of_the_calibration_period_are_said_to_be_in_sample(
    trained_to_19th, tmp_path, caplog
):
    """A derived config fits the spread calibration on its held-out days, where a researcher
    then forecast and verified: the spread-skill ratio was the fit's own, and nothing said
    so (only the training period was warned about)."""
    store, run = trained_to_19th.store, copied_run(trained_to_19th, tmp_path)
    forecast = ["forecast", "--checkpoint", str(run), "--store", str(store.path)]
    forecast += ["--members", "2", "--lead", "6h", "--no-progress"]
    in_sample = "forecast weather of the period 2000-01-16 to 2000-01-19 that the spread"
    inits = "2000-01-19T12/2000-01-19T18/6h"  # the second is valid on the 20th, after it
    caplog.set_level("WARNING", logger="generators.in_sample")
    assert wxens([*forecast, "--init", inits, "--out", str(tmp_path / "a.zarr")]) == 0
    said = caplog.text
    assert f"1 of 2 initial times (2000-01-19T12:00 to 2000-01-19T12:00) {in_sample}" in said
    assert "verify on other days" in said and "forecast weather of the training" not in said
    caplog.clear()  # uncalibrated, or valid after it: out of sample
    uncalibrated = [*forecast, "--init", inits, "--no-calibration"]
    assert wxens([*uncalibrated, "--out", str(tmp_path / "b.zarr")]) == 0
    after = [*forecast, "--init", "2000-01-19T18", "--out", str(tmp_path / "c.zarr")]
    assert wxens(after) == 0
    assert in_sample not in caplog.text


def test_the_calibration_period_is_recorded_as_times_and_old_text_still_warns(tmp_path, caplog):
    """The fit period was recorded only as the text Period.__str__ writes, parsed back to
    warn about in-sample forecasts: other text (a new format, a relabelled period) silenced
    the warning. Its bounds are fields now (an end at 06 h kept to the hour); a calibration
    written before them, text only, still warns by its text."""
    store = tiny_run(tmp_path, "2000-01-19T06")
    assert train(store, tmp_path / "c.yaml", tmp_path / "run") == 0
    checkpoint = load_checkpoint(tmp_path / "run")
    recorded = checkpoint.calibration
    assert (recorded["period_start"], recorded["period_end"]) == ("2000-01-16", "2000-01-19T06")
    assert recorded["period"] == "2000-01-16 to 2000-01-19T06"  # for display
    assert SpreadCalibration.from_dict(recorded).to_dict() == recorded
    relabelled = recorded | {"period": "the validation days"}
    old = {k: v for k, v in recorded.items() if k not in ("period_start", "period_end")}
    assert SpreadCalibration.from_dict(old).to_dict() == old  # its stores still extend
    forecast = ["forecast", "--store", str(store.path), "--members", "2", "--lead", "6h"]
    forecast += ["--init", "2000-01-19T00/2000-01-19T06/6h", "--no-progress"]  # 06 h, 12 h
    caplog.set_level("WARNING", logger="generators.in_sample")
    for name, calibration in [("relabelled", relabelled), ("old", old)]:
        checkpoint.replace(calibration=calibration).save(tmp_path / f"{name}.pt")
        assert calibrated_period(load_checkpoint(tmp_path / f"{name}.pt")) == Period(
            "2000-01-16", "2000-01-19T06"
        )
        caplog.clear()
        args = ["--checkpoint", str(tmp_path / f"{name}.pt"), "--out", str(tmp_path / name)]
        assert wxens([*forecast, *args]) == 0
        assert (
            "1 of 2 initial times (2000-01-19T00:00 to 2000-01-19T00:00) forecast weather of "
            "the period 2000-01-16 to 2000-01-19T06 that the spread calibration of "
            f"{tmp_path / name}.pt was fitted on"
        ) in caplog.text
