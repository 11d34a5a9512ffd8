"""A small --budget shrinks the derived spread calibration (its initial times, then its
members, down to a floor) instead of refusing, where the full calibration's forecasts
leave fewer than MIN_STEPS training steps; a helper's walk on a global 6-hourly store met
'a --budget of N s buys 0 training steps' where a smaller calibration left room for them.
Step timings are given (``step_seconds``), nothing is timed."""

from __future__ import annotations

import math
import re
from dataclasses import replace

import pandas as pd
import pytest

from generators.config_budget import FLOOR_INITS, FLOOR_MEMBERS, MIN_STEPS, TRAINING_SHARE
from generators.config_derive import derive_config
from generators.config_overhead import overhead_seconds
from generators.durations import duration_text
from generators.step_timing import StepSeconds
from pipeline.errors import InputError
from pipeline.store import ingest

# a forward pass costly beside a step, as on a CPU: 0.1 s an initial time's member
SECONDS = StepSeconds(main=0.1, fine_tune=0.5, forward=0.01)
PER_STEP = 0.1 + 0.5 / 5  # a main step with its share of the fine-tune


@pytest.fixture(scope="module")
def hourly(tmp_path_factory):
    """240 held-out hours, 216 of them initial times of 24 h forecasts: the full
    calibration takes every 4th, 54 initial times x 16 members."""
    path = tmp_path_factory.mktemp("budget") / "hourly.zarr"
    spec = "synthetic:n_lat=8,n_lon=8,n_times=2400,step=1h"
    return ingest(spec, path, variables=["t2m"], progress=False)


def calibration_note(derived) -> str | None:
    return next((n for n in derived.notes if n.startswith("calibration:")), None)


def test_a_large_budget_keeps_the_full_calibration(hourly):
    derived = derive_config(hourly, lead="24h", budget="30min", step_seconds=SECONDS)
    calibration = derived.config.calibration
    assert (calibration.members, calibration.init_every_hours) == (16, 4.0)
    assert calibration_note(derived) is None
    # the whole config is the one derived for its steps with nothing timed (no shrink)
    fixed = derive_config(hourly, lead="24h", steps=derived.config.steps)
    assert derived.config == fixed.config


def test_a_small_budget_spaces_the_initial_times_out(hourly):
    """90 s: the full calibration's 129 s of forecasts buy no step; 20 initial times every
    11 h (of 216 possible) x 16 members leave 33."""
    full = derive_config(hourly, lead="24h", budget="30min", step_seconds=SECONDS).config
    derived = derive_config(hourly, lead="24h", budget="90s", step_seconds=SECONDS)
    config = derived.config
    assert config.steps >= MIN_STEPS
    assert (config.calibration.members, config.calibration.init_every_hours) == (16, 11.0)
    assert replace(config.calibration, init_every_hours=4.0) == full.calibration
    full_overhead = overhead_seconds(full, 54, SECONDS.forward)
    assert TRAINING_SHARE * 90 - full_overhead < MIN_STEPS * PER_STEP  # the full refuses
    note = calibration_note(derived)
    assert note.startswith(
        "calibration: shrunk from 54 initial times (every 4 h) x 16 members to 20 (every "
        "11 h) x 16: with the full one's 129 s of validation and calibration forecasts, the "
        "--budget bought 0 training steps, fewer than 20"
    ), note
    # only the value it changed to set back: its members were kept, a --set of them is a no-op
    assert "budget, --set calibration.init_every_hours=4 sizes it back" in note, note
    assert "calibration.members" not in note, note


def test_then_its_members_down_to_the_floor(hourly):
    """62 s: even FLOOR_INITS initial times of 16 members leave too few steps; 11 members
    of 8 initial times (every 30 h) leave 20."""
    derived = derive_config(hourly, lead="24h", budget="62s", step_seconds=SECONDS)
    calibration = derived.config.calibration
    assert derived.config.steps >= MIN_STEPS
    assert calibration.init_every_hours == 30.0 and math.ceil(216 / 30) == FLOOR_INITS
    assert FLOOR_MEMBERS < calibration.members == 11 < 16
    note = calibration_note(derived)
    assert "to 8 (every 30 h) x 11: with" in note
    assert "--set calibration.members=16 --set calibration.init_every_hours=4 sizes" in note


def test_below_the_floor_the_budget_is_refused_naming_the_floor_s_budget(hourly):
    """50 s buys no step even with the floor calibration (8 initial times x 8 members); the
    smallest budget named is the floor's (1 min), not the full calibration's (4 min)."""
    with pytest.raises(InputError) as refused:
        derive_config(hourly, lead="24h", budget="50s", step_seconds=SECONDS)
    message = str(refused.value)
    assert "forecasts of 8 initial times x 8 members (shrunk) take" in message, message
    config = derive_config(hourly, lead="24h", budget="30min", step_seconds=SECONDS).config
    floor = replace(config, calibration=replace(config.calibration, members=FLOOR_MEMBERS))
    overhead = overhead_seconds(floor, FLOOR_INITS, SECONDS.forward)
    assert f"take {overhead:.3g} s" in message, message
    needed = (MIN_STEPS * PER_STEP + overhead) / TRAINING_SHARE
    least = duration_text(pd.Timedelta(minutes=math.ceil(needed / 60)))
    assert least == "1min" and f"give a budget of {least}, or" in message, message
    steps = re.search(r"buys (\d+) training steps", message)
    assert steps and int(steps.group(1)) == max(0, int((45 - overhead) / PER_STEP)), message


def test_a_calibration_set_by_hand_is_kept_as_given(hourly):
    """The note's ``--set calibration.members=16 --set calibration.init_every_hours=4`` is
    not shrunk: the budget that shrinks the derived one refuses it, naming its initial times
    and members, as it does a --set of the members alone."""

    def full(config):
        return replace(config, calibration=replace(config.calibration, init_every_hours=4.0))

    with pytest.raises(InputError, match="of 54 initial times x 16 members take 129 s"):
        derive_config(hourly, lead="24h", budget="90s", step_seconds=SECONDS, trained=full)

    def twelve(config):
        return replace(config, calibration=replace(config.calibration, members=12))

    with pytest.raises(InputError, match="of 54 initial times x 12 members take"):
        derive_config(hourly, lead="24h", budget="62s", step_seconds=SECONDS, trained=twelve)
