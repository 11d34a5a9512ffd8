"""A config derived from odd stores and odd requests: a store that misses times is refused
before training, naming them, where they leave a period no whole window; a budget of no
time is told it must be positive; a budget the main steps already spend is refused before
the fine-tune is timed."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from generators.config_budget import budget_steps
from generators.config_derive import StepSeconds, derive_config
from generators.step_timing import timing_runs
from generators.train import Trainer
from pipeline.errors import InputError
from pipeline.store import ingest

SECONDS = StepSeconds(main=0.05, fine_tune=0.2, forward=0.001)


def gapped_store(tmp_path, missing):
    """100 six-hourly t2m fields on an 8 x 8 grid, less the slots ``missing``."""
    times = pd.date_range("2000-01-01", periods=100, freq="6h")
    times = times[[i for i in range(100) if i not in set(missing)]]
    rng = np.random.default_rng(0)
    values = (283 + rng.normal(0, 1, (len(times), 8, 8)).cumsum(0) * 0.2).astype("float32")
    coords = {"time": times, "latitude": np.linspace(40, 47, 8), "longitude": np.linspace(0, 7, 8)}
    source = tmp_path / "gapped.nc"
    fields = xr.DataArray(values, coords, ("time", "latitude", "longitude"), attrs={"units": "K"})
    xr.Dataset({"t2m": fields}).to_netcdf(source)
    return ingest(str(source), tmp_path / "gapped.zarr", progress=False)


def store_and_counted_steps(tmp_path, monkeypatch) -> tuple:
    """A small six-hourly t2m store, and the list of the steps ``Trainer.train_step`` is
    called with from now on (the real step, each call noted)."""
    store = ingest("synthetic:n_lat=8,n_lon=8,n_times=120,step=6h", tmp_path / "s.zarr",
                   variables=["t2m"], progress=False)  # fmt: skip
    steps: list[int] = []
    real_step = Trainer.train_step

    def counted(self, step):
        steps.append(step)
        return real_step(self, step)

    monkeypatch.setattr(Trainer, "train_step", counted)
    return store, steps


def test_gaps_that_leave_the_held_out_period_no_window_are_refused(tmp_path):
    """Every fifth time of the last days missing: 96 times are plenty by count, but no
    held-out time has 4 history states and the next one; the config was printed and
    written, then the training failed telling the user to widen a period it chose."""
    store = gapped_store(tmp_path, missing=[80, 85, 90, 95])
    with pytest.raises(InputError) as err:
        derive_config(store, step_seconds=SECONDS)
    said = str(err.value)
    assert "misses 4 time(s)" in said and "held-out period" in said, said
    assert "2000-01-21T00:00, 2000-01-22T06:00" in said and "ingest the missing times" in said


def test_a_gap_that_leaves_whole_windows_derives(tmp_path):
    store = gapped_store(tmp_path, missing=[50, 51, 92])
    config = derive_config(store, step_seconds=SECONDS).config
    assert config.data.leads == (1, 3, 4)


@pytest.mark.parametrize("budget", ["0", "-3", "0.0"])
def test_a_budget_of_no_time_without_a_unit_is_told_it_must_be_positive(budget):
    """``--budget 0`` was told to write ``0h``, which is then refused as not positive."""
    from generators.durations import parse_duration

    with pytest.raises(InputError, match="must be a positive duration such as 30min") as err:
        parse_duration(budget, "--budget")
    assert f"{budget}h" not in str(err.value)


def test_the_held_out_span_counts_the_times_it_misses(tmp_path):
    """16 held-out times around a missing one span 4 days 6 hours; the note said 4d (16
    steps), the count of times rather than the period's length."""
    store = gapped_store(tmp_path, missing=[92])
    notes = derive_config(store, step_seconds=SECONDS).notes
    assert "on the last 16% (4.25 days): 2000-01-21T18:00 to 2000-01-25T18:00" in notes[2], notes


def test_a_budget_the_main_steps_spend_is_refused_before_the_fine_tune_is_timed(
    tmp_path, monkeypatch
):
    """`wxens config --budget 3min` on a 64 x 32 global WeatherBench 2 store timed four
    fine-tune steps of 37.5 s each after the main steps and forecasts had already spent
    the budget, then refused: three minutes to learn that 3 minutes buy nothing. A budget
    that the main steps and the forecasts exceed is now refused before the fine-tune."""
    store, steps = store_and_counted_steps(tmp_path, monkeypatch)
    with pytest.raises(InputError) as refused:
        derive_config(store, budget="1s")
    said = str(refused.value)
    assert "not timed yet" in said and "give a budget of at least " in said, said
    assert steps == [0, 1, 2, 3], steps  # the main phase's timed steps, no fine-tune step


def test_the_budget_named_before_the_fine_tune_is_timed_covers_an_estimate_of_it(tmp_path):
    """On a 90 x 180 daily masked global store, `--budget 6min` was refused before the
    fine-tune was timed with "give a --budget of at least 8min"; 8min then timed the
    fine-tune (25 s a step, ten main steps) and was refused with "12min". The early
    refusal now estimates a fine-tune step as ``crps_members x crps_nfe`` main steps, and
    its timing, so it names no less than the refusal of those times would."""
    store = gapped_store(tmp_path, missing=[])
    config = derive_config(store, step_seconds=SECONDS).config
    main = 2.0
    fine = main * config.fine_tune.crps_members * config.fine_tune.crps_nfe
    measuring = timing_runs(fine) * fine
    one_day, budget = pd.Timedelta("6h"), pd.Timedelta("1s")

    def named(seconds, spent):
        with pytest.raises(InputError) as refused:
            budget_steps(config, lambda c: c, budget, spent, seconds, 40, one_day)
        return re.search(r"give a budget of (at least )?(\d+)min", str(refused.value))

    early = named(StepSeconds(main, 0.0, 0.0), 0.0)
    timed = named(StepSeconds(main, fine, 0.0), measuring)
    assert early.group(1) and int(early.group(2)) >= int(timed.group(2)), (early, timed)


def test_a_slow_step_is_timed_once_after_its_first_run(tmp_path, monkeypatch):
    """`wxens config` on a 90 x 180 daily global store spent 204 s, most of it timing four
    fine-tune steps of about 37 s; a kind's timings now stop once they add up to
    TIMING_SECONDS, after one at least (here none: every step is slow)."""
    import generators.step_timing as step_timing

    assert timing_runs(37.0) == 2 and timing_runs(4.0) == 4 and timing_runs(0.01) == 4
    store, steps = store_and_counted_steps(tmp_path, monkeypatch)
    config = derive_config(store, step_seconds=SECONDS).config
    monkeypatch.setattr(step_timing, "TIMING_SECONDS", 0.0)
    seconds = step_timing.measure_step_seconds(store, config)
    assert steps == [0, 1, config.steps, config.steps + 1], steps  # a first and a timed run
    assert seconds.main > 0 and seconds.fine_tune > 0
