"""A training config derived from a store: the rules on hourly, 6-hourly and daily,
regional and global synthetic stores, the budget arithmetic, the YAML round trip, and a
short end-to-end train from a derived config that loads and forecasts."""

from __future__ import annotations

import functools
import math
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from flows.cli import main as wxens
from flows.commands.train import derived_from, other_store_warning
from generators.checkpoint import load_checkpoint
from generators.config import load_train_config
from generators.config_budget import MIN_STEPS, TRAINING_SHARE
from generators.config_derive import (
    MAIN_STEPS_PER_FINE_TUNE_STEP,
    MAX_PASSES,
    StepSeconds,
    derive_config,
    derived_lead_weights,
    derived_leads,
    held_out_times,
    history_states,
)
from generators.config_io import to_mapping
from generators.config_notes import NOTE_WIDTH, read_notes
from generators.durations import duration_text
from generators.in_sample import warn_if_trained_on
from pipeline.errors import InputError
from pipeline.forecast_store import open_forecast
from pipeline.schema import Period
from pipeline.store import ingest

# for the rules that do not time; 1800 steps in 30 min, below the MAX_PASSES cap (5400 on
# the hourly store's 2160 training times at batch 16)
SECONDS = StepSeconds(main=0.5, fine_tune=2.0, forward=0.001)


def make(tmp_path_factory, name: str, spec: str, variables=("t2m",)):
    path = tmp_path_factory.mktemp("derive") / f"{name}.zarr"
    return ingest(spec, path, variables=list(variables), progress=False)


@pytest.fixture(scope="module")
def hourly(tmp_path_factory):
    return make(tmp_path_factory, "hourly", "synthetic:n_lat=8,n_lon=8,n_times=2400,step=1h")


@pytest.fixture(scope="module")
def six_hourly(tmp_path_factory):
    spec = "synthetic:n_lat=33,n_lon=49,n_times=120,step=6h,seed=2"
    return make(tmp_path_factory, "six_hourly", spec)


@pytest.fixture(scope="module")
def daily_global(tmp_path_factory):
    spec = "synthetic:n_lat=8,n_lon=24,lon_min=0,lon_max=345,n_times=400,step=24h,seed=3"
    return make(tmp_path_factory, "daily_global", spec)


def times_of(store) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(store.dataset.time.values)


def check_held_out(config, store) -> None:
    """Training then held-out periods tile the store's times, the held-out one the last
    ceil(10 %) or 4 days; calibration on the held-out period."""
    times = times_of(store)
    n_held = held_out_times(len(times), times[1] - times[0])
    data = config.data
    assert pd.Timestamp(data.train.start) == times[0]
    assert pd.Timestamp(data.train.end) == times[-n_held - 1]
    assert pd.Timestamp(data.validation.start) == times[-n_held]
    assert pd.Timestamp(data.validation.end) == times[-1]
    assert config.calibration.period == data.validation


def test_rules_by_hand():
    # 10 %, at least 4 days (the demo's 16 and 21 days: 25 %, 19 %), at most 30 % for that
    assert held_out_times(2400, pd.Timedelta("1h")) == 240
    assert held_out_times(384, pd.Timedelta("1h")) == 96
    assert held_out_times(504, pd.Timedelta("1h")) == 96
    assert held_out_times(100, pd.Timedelta("1h")) == 30
    assert held_out_times(3650, pd.Timedelta("1D")) == 365
    assert held_out_times(20, pd.Timedelta("1D")) == 4
    assert derived_leads(24) == (1, 3, 6, 12, 24)
    assert derived_leads(20) == (1, 3, 6, 12, 20)
    assert derived_leads(2) == (1, 2)
    assert derived_leads(1) == (1,)
    # samples drawn at lead L in proportion to L ** -0.75
    assert derived_lead_weights((1, 3, 6, 12, 24)) == (1.0, 0.439, 0.261, 0.155, 0.092)
    assert derived_lead_weights((1, 2)) == (1.0, 0.595)
    assert derived_lead_weights((1,)) is None
    assert history_states(pd.Timedelta("1h")) == 24
    assert history_states(pd.Timedelta("6h")) == 4
    assert history_states(pd.Timedelta("1D")) == 3


def test_hourly_regional(hourly):
    config = derive_config(hourly, lead="24h", step_seconds=SECONDS).config
    assert config.data.channels == ("t2m",)
    assert config.data.history == 24
    assert config.data.leads == (1, 3, 6, 12, 24)
    assert config.data.lead_weights == derived_lead_weights(config.data.leads)
    check_held_out(config, hourly)
    backbone = config.model.config.backbone
    # 2160 training times (>= 2000): first width 32; an 8 x 8 grid: two levels
    assert backbone.widths == (32, 64)
    assert not backbone.periodic_longitude


def test_a_held_out_period_of_days_reads_in_days(hourly):
    """The 1 degree global store's held-out period printed as "2634h"."""
    notes = derive_config(hourly, end=times_of(hourly)[2310], steps=20).notes
    assert any("on the last 10% (9.67 days): " in note for note in notes)  # 232 h


def test_six_hourly_regional_levels_from_the_grid(six_hourly):
    config = derive_config(six_hourly, lead="2d", step_seconds=SECONDS).config
    assert config.data.history == 4  # a day of 6-hourly states
    assert config.data.leads == (1, 3, 6, 8)
    check_held_out(config, six_hourly)
    # 33 x 49: 1 + floor(log2(33 / 8)) = 3 levels; 108 training times: width 16
    assert config.model.config.backbone.widths == (16, 32, 64)
    # default lead: the history window, a day
    assert derive_config(six_hourly, step_seconds=SECONDS).config.data.leads == (1, 3, 4)


def test_daily_global(daily_global):
    derived = derive_config(daily_global, lead="10d", step_seconds=SECONDS)
    config = derived.config
    assert config.data.history == 3
    assert config.data.leads == (1, 3, 6, 10)
    check_held_out(config, daily_global)
    assert config.model.config.backbone.periodic_longitude
    assert config.calibration.init_every_hours == 24.0
    # its longitudes wrap, but it is no global grid: a 10-80 N band was noted "a 32 x 64
    # global grid", as if the model saw the poles and the tropics
    band = "on a 8 x 24 latitude-band grid (30 to 70°, longitudes wrapped)"
    assert band in derived.notes[0], derived.notes[0]
    assert "global grid" not in derived.notes[0]


def test_widths_grow_with_the_channels(tmp_path_factory):
    spec = "synthetic:n_lat=8,n_lon=8,n_times=60,step=6h,levels=250/500/700/850/925"
    store = make(tmp_path_factory, "upper", spec, variables=("z", "t"))
    config = derive_config(store, step_seconds=SECONDS).config
    assert len(config.data.channels) == 10
    assert config.model.config.backbone.widths[0] == 32  # 2 x 10 channels, to a power of 2


def test_steps_fill_the_budget(hourly):
    main, fine = SECONDS.main, SECONDS.fine_tune
    config = derive_config(hourly, budget="30min", step_seconds=SECONDS).config
    assert config.fine_tune.steps == config.steps // MAIN_STEPS_PER_FINE_TUNE_STEP
    spent = config.steps * main + config.fine_tune.steps * fine
    # the steps take the training share of the budget less the (small) forecast overhead
    assert 0.8 * 1800 < spent <= TRAINING_SHARE * 1800
    assert config.validate_every == config.steps // 8
    longer = derive_config(hourly, budget="1h", step_seconds=SECONDS).config
    assert longer.steps == pytest.approx(2 * config.steps, rel=0.05)


@pytest.mark.parametrize("forward", [0.001, 0.05])
def test_the_overhead_counts_validation_and_calibration_evaluations(hourly, forward):
    """The documented rule by hand. Validation: 8 x 16 items, 9 losses of the main phase
    (one network evaluation an item) and 3 of the fine-tune (4 members x 2 evaluations).
    Calibration: 240 held-out hours, 216 with their 24 h truth, every 4 h: 54 initial
    times x 16 members x 5 leads x 2 evaluations."""
    evaluations = 9 * 128 + 3 * 128 * 8 + 54 * 16 * 5 * 2
    seconds = StepSeconds(main=0.5, fine_tune=2.0, forward=forward)
    config = derive_config(hourly, lead="24h", budget="30min", step_seconds=seconds).config
    assert config.calibration.init_every_hours == 4.0
    assert config.steps == int((0.9 * 1800 - evaluations * forward) / (0.5 + 2.0 / 5))


def test_the_budget_note_adds_up(hourly):
    """On a 13-channel 6-hourly store the note said 'steps for the 166 s of the budget left:
    ..., 0.679 s more for the first steps ..., 71 s of steps', leaving 78 s (the validation
    and calibration forecasts) unsaid. It now names them, and the parts add up."""
    seconds = StepSeconds(main=0.5, fine_tune=2.0, forward=0.05, first_steps=3.0)
    note = derive_config(hourly, lead="24h", budget="30min", step_seconds=seconds).notes[-1]
    left = re.search(r"for the (\d+) s of the budget left", note)
    steps = re.search(r"(\d+) s of steps", note)
    overhead = re.search(r"a tenth of slack and ([\d.]+) s of validation and calibration", note)
    assert left and steps and overhead, note
    parts = TRAINING_SHARE * int(left.group(1)) - 3.0 - float(overhead.group(1))
    assert int(steps.group(1)) == pytest.approx(parts, abs=1)


def test_the_budget_note_gives_the_steps_it_chose(hourly, tiny):
    """``wxens config --budget 90s`` noted '# steps for the 86 s ...' with times only: the
    number of steps was in the YAML's ``steps:`` alone. The note now begins with it, capped
    or not."""
    for store, budget in ((hourly, "30min"), (tiny, "5h")):
        derived = derive_config(store, budget=budget, step_seconds=SECONDS)
        note = next(n for n in derived.notes if "of the budget left" in n)
        assert note.startswith(f"steps: {derived.config.steps} main steps for the "), note


def test_the_first_steps_extra_time_comes_off_the_budget(hourly):
    """A compile (on CUDA) makes each phase's first step slower; measured, it is spent once."""
    plain = derive_config(hourly, budget="30min", step_seconds=SECONDS).config
    compiled = StepSeconds(SECONDS.main, SECONDS.fine_tune, SECONDS.forward, first_steps=180.0)
    fewer = derive_config(hourly, budget="30min", step_seconds=compiled).config
    per_step = SECONDS.main + SECONDS.fine_tune / MAIN_STEPS_PER_FINE_TUNE_STEP
    assert plain.steps - fewer.steps == pytest.approx(180.0 / per_step, abs=1)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return make(tmp_path_factory, "tiny", "synthetic:n_lat=4,n_lon=4,n_times=120,step=1h,seed=4")


def test_a_large_budget_buys_at_most_max_passes_over_the_training_times(tiny):
    """``--budget 5h`` on a 4 x 4 grid bought hundreds of thousands of steps, thousands of
    passes over a short training period, which only over-fit it. The budget's steps are now
    capped at MAX_PASSES passes (main steps x batch / training times), and the note says
    what the budget would buy and how much of it is left unused; a smaller budget and a
    fixed step count are as before."""
    seconds = StepSeconds(main=0.05, fine_tune=0.1, forward=0.0)  # no overhead: 0.07 s a step
    derived = derive_config(tiny, budget="5h", step_seconds=seconds)
    config = derived.config
    train = config.data.train
    n_train = int(((times_of(tiny) >= train.start) & (times_of(tiny) <= train.end)).sum())
    cap = MAX_PASSES * n_train // config.batch_size
    bought = int(TRAINING_SHARE * 5 * 3600 / 0.07)
    assert config.steps == cap < bought
    assert config.fine_tune.steps == cap // MAIN_STEPS_PER_FINE_TUNE_STEP
    assert config.validate_every == cap // 8
    note = derived.notes[-1]
    assert f"capped at {cap} of the {bought} main steps it buys" in note, note
    assert f"{MAX_PASSES} passes over the {n_train} training times" in note, note
    assert f"{(bought - cap) * 0.07 / (5 * 3600):.0%} of the budget" in note, note

    small = derive_config(tiny, budget="10s", step_seconds=seconds)
    assert small.config.steps == int(TRAINING_SHARE * 10 / 0.07) < cap  # the budget's own
    assert "capped" not in small.to_yaml()
    fixed = derive_config(tiny, steps=4 * cap).config
    assert fixed.steps == 4 * cap and fixed.fine_tune.steps == 4 * cap // 5


def test_bad_requests_are_refused(hourly, six_hourly):
    with pytest.raises(InputError, match=r"budget= \(--budget\)"):
        derive_config(hourly, budget="10s", step_seconds=StepSeconds(1.0, 5.0, 0.01))
    with pytest.raises(InputError, match="not a multiple of the native step 6h"):
        derive_config(six_hourly, lead="9h", step_seconds=SECONDS)
    too_long = r"ingest at least 201 times or give a lead= \(--lead\) of at most"
    with pytest.raises(InputError, match=too_long):
        derive_config(six_hourly, lead="5d", step_seconds=SECONDS)
    with pytest.raises(InputError, match=r"lead= \(--lead\) 'soon'"):
        derive_config(six_hourly, lead="soon", step_seconds=SECONDS)


@pytest.mark.parametrize(
    ("option", "fix"), [("--end", "give an --end"), ("--train-end", "give a --train-end")]
)
def test_a_too_early_end_is_named_with_its_own_option(hourly, option, fix):
    """The demo's --train-end and config's --end share the refusal: each names its own
    option, with its article ("give an --train-end" read wrong)."""
    with pytest.raises(InputError, match=f"{fix} of 2000-01-0"):
        derive_config(hourly, end=times_of(hourly)[30], end_option=option, steps=2)


def test_a_refused_budget_adds_up(hourly):
    """The refusal said 'the 51 s of the --budget left after measuring buy 12 training steps
    at 0.171 s a step': 2 s of the 51, because a main step's share of the fine-tune and the
    validation and calibration forecasts were not in it. It now names what the steps cost
    with the fine-tune and what was set aside, which add up to what the budget allows, and
    the smallest budget that buys MIN_STEPS (it said "give a larger --budget", or printed a
    negative number of seconds left for the steps)."""
    seconds = StepSeconds(main=0.2, fine_tune=3.0, forward=0.001, first_steps=5.0)
    with pytest.raises(InputError) as refused:
        # below even the floor calibration (30 s shrinks the calibration and buys steps)
        derive_config(hourly, lead="24h", budget="20s", step_seconds=seconds)
    message = str(refused.value)
    per_step = 0.2 + 3.0 / MAIN_STEPS_PER_FINE_TUNE_STEP
    assert f"{per_step:.3g} s a main step with its share of the fine-tune" in message
    overhead = re.search(r"calibration forecasts (?:of [^)]*\) )?take ([\d.]+) s", message)
    steps = re.search(r"buys (\d+) training steps", message)
    spent = re.search(r"measuring took (\d+) s", message)
    assert overhead and steps and spent, message
    fixed = 5.0 + float(overhead.group(1))
    left = TRAINING_SHARE * (20 - float(spent.group(1))) - fixed
    assert int(steps.group(1)) == max(0, int(left / per_step))
    needed = float(spent.group(1)) + (MIN_STEPS * per_step + fixed) / TRAINING_SHARE
    least = duration_text(pd.Timedelta(minutes=math.ceil(needed / 60)))
    assert f"give a budget of {least}, or steps=N (--set steps=N)" in message, message
    assert not re.search(r"-\d", message), message


def test_yaml_round_trip(daily_global, tmp_path):
    derived = derive_config(daily_global, lead="5d", step_seconds=SECONDS)
    loaded = load_train_config(derived.write(tmp_path / "derived.yaml"))
    assert to_mapping(loaded) == to_mapping(derived.config)


def test_train_from_a_derived_config_then_forecast(daily_global, tmp_path, capsys, caplog):
    """`wxens config` prints a loadable config; `wxens train` without --config derives one
    (per-step time measured), writes it beside the checkpoint, trains a few steps,
    calibrates on the held-out days; the checkpoint forecasts a held-out day without a
    warning, and a day of its training period with one."""
    store = str(daily_global.path)
    assert wxens(["config", "--store", store, "--lead", "3d", "--budget", "5min"]) == 0
    printed = tmp_path / "printed.yaml"
    printed.write_text(capsys.readouterr().out)
    assert load_train_config(printed).data.leads == (1, 3)
    assert any("measured on cpu" in note for note in read_notes(printed.read_text()))

    run = tmp_path / "run"
    args = ["train", "--store", store, "--out", str(run), "--lead", "3d"]
    short = ["--set", "steps=4", "--set", "fine_tune.steps=2", "--set", "device=cpu"]
    assert wxens([*args, "--budget", "5min", *short, "--no-progress"]) == 2
    assert "--set steps=4 fixes the derived config's step count" in capsys.readouterr().err
    assert wxens([*args, *short, "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "history: 3" in out and "steps: 4 main steps, fixed" in out
    written = load_train_config(run / "config.yaml")
    assert written.data.leads == (1, 3) and written.steps == 4  # derived for the steps given
    assert written.validate_every <= 4 and written.optim.warmup_steps <= 4
    checkpoint = load_checkpoint(run)
    assert checkpoint.step == 6 and checkpoint.calibration is not None
    assert checkpoint.train_config.model.config.backbone.periodic_longitude

    init = pd.Timestamp(written.data.validation.start) + pd.Timedelta("2D")
    forecast = tmp_path / "forecast.zarr"
    argv = ["forecast", "--checkpoint", str(run), "--store", store, "--init", str(init)]
    argv += ["--members", "4", "--lead", "120h", "--out", str(forecast), "--no-progress"]
    caplog.clear()
    assert wxens(argv) == 0
    members = open_forecast(forecast).t2m
    assert members.sizes["lead_time"] == 5 and members.sizes["member"] == 4
    assert np.isfinite(members.values).all()
    assert "training period" not in caplog.text
    inside = [*argv[:6], "2000-06-01", *argv[7:]]
    inside[inside.index(str(forecast))] = str(tmp_path / "inside.zarr")
    assert wxens(inside) == 0
    assert "1 of 1 initial time (2000-06-01T00:00 to 2000-06-01T00:00) forecast " in (caplog.text)
    # a valid time in the training period counts too
    trained = checkpoint.train_config
    later = replace(trained, data=replace(trained.data, train=Period("2000-06-05", "2000-06-30")))
    moved = checkpoint.replace(train_config=later)
    day = pd.DatetimeIndex(["2000-06-01"])
    assert warn_if_trained_on(moved, day, [24.0, 48.0]).empty
    assert list(warn_if_trained_on(moved, day, [24.0, 96.0])) == list(day)
    # a rerun resumes with the config written before (no new derivation)
    assert wxens([*args, "--budget", "5min", *short, "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "derived for this run before" in out
    assert "--lead 3d and --budget 5min: not used, this run resumes" in out
    assert "warning" not in out
    # resumed with another store: the run directory names the store it was derived from
    other = tmp_path / "other.zarr"
    ingest("synthetic:n_lat=4,n_lon=8,n_times=40,step=1D", other, progress=False)
    wxens(["train", "--store", str(other), "--out", str(run), *short, "--no-progress"])
    out = capsys.readouterr().out
    assert f"was derived from {Path(store).resolve()}, not --store {other}" in out


@pytest.mark.parametrize(
    ("refused", "message"),
    [
        # `--set stepz=20` was refused after the derived config was written; a rerun then
        # took that config.yaml as one derived for it before
        (["--set", "stepz=20"], "stepz"),
        # `--nproc 3` was refused (batch 16 does not split) after the derived config was
        # written; a rerun with another --lead then trained that config instead, saying
        # its --lead was not used. A derived batch now splits; a batch set does not (2
        # processes, not more than CI's cores, which are checked first)
        (["--nproc", "2", "--set", "batch_size=15"], "does not split over 2 processes"),
    ],
)
def test_a_refused_run_leaves_no_derived_config(daily_global, tmp_path, capsys, refused, message):
    run = tmp_path / "run"
    argv = ["train", "--store", str(daily_global.path), "--out", str(run), "--budget", "5min"]
    assert wxens([*argv, *refused, "--no-progress"]) == 2
    assert message in capsys.readouterr().err
    assert not (run / "config.yaml").exists()


def test_lead_and_budget_belong_to_a_derived_config(daily_global, tmp_path, capsys):
    config = str(Path(__file__).parents[2] / "configs" / "synthetic_flow_matching.yaml")
    argv = ["train", "--store", str(daily_global.path), "--config", config, "--out"]
    assert wxens([*argv, str(tmp_path / "run"), "--budget", "5min"]) == 2
    assert "--lead and --budget size a derived config" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_config_for_fixed_steps_times_nothing_and_takes_overrides(hourly, capsys, monkeypatch):
    """``wxens config`` had no --set: on a large grid it timed real steps of the derived
    model for minutes, at the training's memory, only to print a config (the memory
    walkthrough: 5 min 37 s and 12.2 GiB on a 71 x 360 store)."""
    import generators.config_derive

    def timed(*args):
        raise AssertionError("a step was timed")

    monkeypatch.setattr(generators.config_derive, "measure_step_seconds", timed)
    argv = ["config", "--store", str(hourly.path), "--set", "steps=40", "--set", "optim.lr=5e-4"]
    assert wxens(argv) == 0
    printed = capsys.readouterr().out
    assert "# steps: 40 main steps, fixed" in printed
    config = yaml.safe_load(printed)
    assert config["steps"] == 40 and config["optim"]["lr"] == 5e-4
    assert config["optim"]["warmup_steps"] == 4  # the schedule follows the steps given
    assert wxens([*argv, "--budget", "5min"]) == 2
    assert "give one of them" in capsys.readouterr().err


def test_a_device_that_is_no_name_is_refused_before_a_config_is_printed(hourly, tmp_path, capsys):
    """``--set device=tpu`` was taken by ``wxens config``, which printed the whole config
    (and by ``wxens train``, which printed it too), and only the training refused it; a
    device this machine lacks (``cuda:1`` on a CPU) is still a config for another one."""
    argv = ["--store", str(hourly.path), "--set", "steps=40", "--set"]
    run = tmp_path / "run"
    train = ["train", *argv, "device=tpu", "--out", str(run), "--no-progress", "--threads", "1"]
    for refused in (["config", *argv, "device=tpu"], train):
        assert wxens(refused) == 2
        printed = capsys.readouterr()
        assert "device: 'tpu' is not a device name; use auto, cpu, cuda or cuda:N" in printed.err
        assert printed.out == ""
    assert not run.exists()
    assert wxens(["config", *argv, "device=cuda:1"]) == 0
    assert yaml.safe_load(capsys.readouterr().out)["device"] == "cuda:1"


def test_set_leads_of_a_derived_config_is_told_the_fixes_that_work(hourly, capsys):
    """``--set data.leads=[1,3]`` was refused for the derived lead weights of five leads,
    suggesting equal weights, not the derivation's for those leads nor ``--lead 3h``;
    each fix named now is taken."""
    argv = ["config", "--store", str(hourly.path), "--set", "steps=40"]
    fixes = {
        "[1,3]": ["--lead 3h in place of --set data.leads", "data.lead_weights=[1.0, 0.439]"],
        "[1,6]": ["give their weights too: --set 'data.lead_weights=[1.0, 0.261]'"],
        "[3]": ["give its weight too: --set data.lead_weights=null"],
    }
    for leads, told in fixes.items():
        assert wxens([*argv, "--set", f"data.leads={leads}"]) == 2
        printed = capsys.readouterr()
        assert printed.out == "" and all(fix in printed.err for fix in told), printed.err
        assert ("--lead" in printed.err) == (leads == "[1,3]")
    assert wxens([*argv, "--lead", "3h"]) == 0
    assert yaml.safe_load(capsys.readouterr().out)["data"]["leads"] == [1, 3]
    for leads, weights in (("[1,6]", "[1.0, 0.261]"), ("[3]", "null")):
        given = ["--set", f"data.leads={leads}", "--set", f"data.lead_weights={weights}"]
        assert wxens([*argv, *given]) == 0, capsys.readouterr().err
        assert yaml.safe_load(capsys.readouterr().out)["data"]["leads"] == yaml.safe_load(leads)


def test_the_notes_of_a_derived_config_name_what_set_replaced(hourly, capsys):
    """``--set data.train.end=...`` wrote that end in the YAML under a note still saying
    ``# train ... to`` the derived end: the notes now name the value set and the derived
    one it replaces."""
    derived = derive_config(hourly.path, steps=40).config.data.train.end
    argv = ["config", "--store", str(hourly.path), "--set", "steps=40"]
    assert wxens([*argv, "--set", "data.train.end=2000-02-20T12:00"]) == 0
    printed = capsys.readouterr().out
    assert yaml.safe_load(printed)["data"]["train"]["end"] == "2000-02-20T12:00"
    notes = read_notes(printed)  # each note whole, however wrapped
    assert f"to {derived};" in notes[2]  # the derived training period's note, kept
    assert notes[-2:] == (
        "--set steps=40 --set data.train.end=2000-02-20T12:00:",
        f"  data.train.end 2000-02-20T12:00 (replaces the derived {derived})",
    )
    # a --set that changes nothing the derivation chose adds no note
    assert wxens(argv) == 0
    assert "replaces" not in capsys.readouterr().out


def test_a_set_of_a_whole_section_gives_note_lines_of_a_readable_width(hourly, capsys):
    """``--set 'calibration={...}'`` gave one note line of 440 characters (the section as
    given, then every value it replaced): the note now takes a line per replaced value,
    each wrapped to 100 characters, and the YAML still loads as set."""
    section = (
        "calibration={period: {start: 2000-02-20, end: 2000-02-29T18}, members: 32, "
        "init_every_hours: 12, seed: 3, leads_hours: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]}"
    )
    argv = ["config", "--store", str(hourly.path), "--set", "steps=40", "--set", section]
    assert wxens(argv) == 0
    printed = capsys.readouterr().out
    calibration = yaml.safe_load(printed)["calibration"]
    assert calibration["members"] == 32 and calibration["leads_hours"] == list(range(1, 12))
    notes = [line for line in printed.splitlines() if line.startswith("#")]
    the_set = notes[next(i for i, line in enumerate(notes) if line.startswith("# --set")) :]
    assert max(len(line) for line in the_set) <= 100, the_set
    assert "#   calibration.members 32 (replaces the derived 16)" in the_set
    assert "#   calibration.period.start 2000-02-20 (replaces the derived" in "\n".join(the_set)


def test_the_notes_of_a_store_at_a_long_path_are_wrapped_and_read_back(tmp_path, capsys):
    """The notes other than --set's (the store it was derived from, the training period,
    the batch) were printed one line each, of 100 to 300 characters for a store deep in a
    project tree; wrapped now, the store's path still reads back from its note."""
    deep = tmp_path / ("forecasting project " * 3).strip() / ("x" * 120) / "analyses"
    spec = "synthetic:n_lat=8,n_lon=8,n_times=240,step=6h"
    store = ingest(spec, deep / "t2m_six_hourly_reanalysis.zarr", progress=False)
    argv = ["config", "--store", str(store.path), "--set", "steps=40", "--set", "optim.lr=1e-3"]
    assert wxens(argv) == 0
    printed = capsys.readouterr().out
    lines = [line for line in printed.splitlines() if line.startswith("#")]
    assert max(map(len, lines)) <= NOTE_WIDTH + len("# "), lines
    assert derived_from(printed) == Path(store.path).resolve()
    derived = derive_config(store.path, steps=40)
    # the host's free memory, in the batch's note, may move between the two derivations
    free = functools.partial(re.sub, r"of the [\d.]+ GiB available", "of the GiB available")
    assert list(map(free, read_notes(printed)[: len(derived.notes)])) == list(
        map(free, derived.notes)
    )
    assert yaml.safe_load(printed)["optim"]["lr"] == 1e-3


def test_a_budget_without_a_unit_is_refused(hourly):
    """``--budget 3`` read as 3 seconds bought no step after a minute of measuring."""
    with pytest.raises(InputError, match="'3' has no unit; write e.g. 3h, 3d or 3min"):
        derive_config(hourly, budget="3")


def test_fixed_steps_on_the_times_up_to_an_end(hourly, monkeypatch):
    """``steps`` fixes the step count (nothing timed); ``end`` keeps later times unseen:
    the held-out 10 % is that of the times up to it."""
    import generators.config_derive as config_derive

    def untimed(*args):
        raise AssertionError("a fixed step count times nothing")

    monkeypatch.setattr(config_derive, "measure_step_seconds", untimed)
    times = times_of(hourly)
    derived = derive_config(hourly, lead="24h", end=times[1199], steps=300)
    config = derived.config
    assert config.steps == 300 and config.fine_tune.steps == 60
    assert config.validate_every == 300 // 8 and config.optim.warmup_steps == 30
    assert pd.Timestamp(config.data.train.end) == times[1199 - 120]
    assert pd.Timestamp(config.data.validation.start) == times[1200 - 120]
    assert pd.Timestamp(config.data.validation.end) == times[1199]
    assert "300 main steps, fixed" in derived.to_yaml()
    with pytest.raises(InputError, match="not both"):
        derive_config(hourly, budget="30min", steps=300)
    with pytest.raises(InputError, match="at least 1, got 0"):
        derive_config(hourly, steps=0)


@pytest.mark.parametrize(
    ("n_times", "lead", "fix"),
    [
        (16, "1d", "ingest at least 17 times or give a lead= (--lead) of at most 18h"),
        (6, "6h", "ingest at least 7 times"),
    ],
)
def test_a_store_too_short_is_told_the_least_that_trains(tmp_path_factory, n_times, lead, fix):
    """The error of a store too short for a lead names the fewest times that derive (not a
    tenfold overestimate) and, only where one exists, a lead the store does hold."""
    spec = f"synthetic:n_lat=8,n_lon=8,n_times={n_times},step=6h"
    short = make(tmp_path_factory, f"short{n_times}", spec)
    with pytest.raises(InputError) as err:
        derive_config(short, lead=lead, step_seconds=SECONDS)
    assert str(err.value).endswith(fix), err.value
    longer = make(
        tmp_path_factory, f"short{n_times + 1}", spec.replace(f"={n_times},", f"={n_times + 1},")
    )
    derived = derive_config(longer, lead=lead, step_seconds=SECONDS).config
    assert derived.data.leads[-1] == {"1d": 4, "6h": 1}[lead]


def test_a_run_resumed_on_its_moved_store_is_not_told_to_start_over(tmp_path):
    """The store a config was derived from moved (its old path is gone): the warning told the
    user to give it its own --out or start over, for the very store the run trained on."""
    config_yaml = tmp_path / "run" / "config.yaml"
    here = tmp_path / "moved.zarr"
    here.mkdir()
    gone = tmp_path / "stores" / "uk.zarr"
    said = other_store_warning(config_yaml, gone, str(here))
    assert said.startswith("note: ") and "no longer there" in said
    assert f"if that store moved to {here}, this run resumes on it" in said
    other = tmp_path / "other.zarr"
    other.mkdir()
    assert other_store_warning(config_yaml, other, str(here)).startswith("warning: ")
    assert other_store_warning(config_yaml, here.resolve(), str(here)) is None


def test_a_store_of_monthly_means_is_refused_for_training_naming_it(
    tmp_path, capsys, monthly_store
):
    """Monthly means (times one calendar month apart, 28 to 31 days) ingest and verify, but a
    model steps a fixed duration: the derived config was written and training then stopped
    with 'no initial time ... has its history; widen the period', which no period fixes."""

    from generators.data import ResidualDataset, SampleSpec
    from pipeline.store import open_store

    store = monthly_store
    assert wxens(["config", "--store", str(tmp_path / "m.zarr"), "--set", "steps=10"]) == 2
    err = capsys.readouterr().err
    assert "m.zarr: its times are 1 calendar month apart" in err and "daily" in err
    with pytest.raises(InputError, match="1 calendar month apart"):  # a written config
        ResidualDataset.from_store(open_store(store.path), SampleSpec(history=(-1, 0), leads=(1,)))


def test_the_budget_times_the_model_the_set_makes(tiny, capsys):
    """``wxens config --budget 3min --set model.kind=edm`` timed the flow-matching model the
    derivation makes, then applied the ``--set``: its note named no model, and a ``--set``
    that changes a step's cost went untimed (``fine_tune=null`` still counted a fine-tune
    step in each main step's share). The ``--set`` now applies before the timing."""
    argv = ["config", "--store", str(tiny.path), "--budget", "3min", "--threads", "1"]
    argv += ["--set", "model.kind=edm", "--set", "fine_tune=null"]
    assert wxens(argv) == 0, capsys.readouterr().err
    printed = capsys.readouterr().out
    note = next(n for n in read_notes(printed) if "of the budget left" in n)
    assert "of the edm model, backbone unet, measured on cpu" in note, note
    assert " 0 s a fine-tune step" in note, note  # none is trained
    config = yaml.safe_load(printed)
    assert config["model"]["kind"] == "edm" and config["fine_tune"] is None


def test_the_pass_cap_counts_the_batch_the_set_gives(tiny, capsys):
    """``wxens config --budget 3min --set batch_size=4`` timed steps of batch 4 but capped
    them at 40 passes of the derived batch 16 (210 steps on 84 training times: 10 passes at
    batch 4), and its note said "at batch 16". The cap and its note now follow the batch
    that trains."""
    argv = ["config", "--store", str(tiny.path), "--budget", "10min", "--threads", "1"]
    assert wxens([*argv, "--set", "batch_size=4"]) == 0, capsys.readouterr().err
    printed = capsys.readouterr().out
    config = yaml.safe_load(printed)
    train = config["data"]["train"]
    times = times_of(tiny)
    n_train = int(((times >= train["start"]) & (times <= train["end"])).sum())
    assert config["batch_size"] == 4
    assert config["steps"] == MAX_PASSES * n_train // 4
    note = next(n for n in read_notes(printed) if "of the budget left" in n)
    assert f"{MAX_PASSES} passes over the {n_train} training times at batch 4," in note, note
