"""tune_correction's refusals reached through other modules (the folds, the period's initial
times) name what its caller gave: a Python caller its keyword arguments, ``wxens tune`` its
flags; ``wxens calibrate``, which shares the period's initial times, keeps its flags."""

from __future__ import annotations

import pandas as pd
import pytest

from flows.cli import main as wxens
from generators.calibration import CALIBRATE_OPTIONS, calibration_init_times
from generators.tune import OPTIONS, tune_correction
from pipeline.errors import InputError
from pipeline.schema import Period

TIMES = pd.date_range("2019-03-01", periods=32, freq="6h")


@pytest.mark.parametrize(
    ("given", "said"),
    [({"folds": 2}, "folds="), ({"period": Period("2019-03-05", "2019-03-06")}, "period=")],
)
def test_folds_with_a_number_or_a_period_name_the_keyword_arguments(tmp_path, given, said):
    with pytest.raises(InputError) as refused:
        tune_correction(tmp_path / "run", tmp_path / "store", fold_checkpoints=["f"], **given)
    assert str(refused.value).startswith(f"fold_checkpoints= with {said}: each fold's")
    assert "--" not in str(refused.value)


def test_folds_with_a_number_name_the_flags_to_wxens_tune(tmp_path, capsys):
    tune = ["tune", "--checkpoint", str(tmp_path / "run"), "--store", str(tmp_path)]
    assert wxens([*tune, "--fold", "f", "--folds", "2"]) == 2
    err = capsys.readouterr().err
    assert "--fold with --folds: " in err and "fold_checkpoints" not in err


@pytest.mark.parametrize(
    ("options", "said"),
    [(None, "(period=)"), (OPTIONS, "(--start, --end)"), (CALIBRATE_OPTIONS, "(--start, --end)")],
)
def test_a_period_ending_before_it_starts_names_how_the_caller_gave_it(options, said):
    with pytest.raises(InputError) as refused:
        calibration_init_times(TIMES, "2019-03-05", "2019-03-04T18", 6, 24, options=options)
    assert str(refused.value).endswith(
        f"it ends before it starts: give an end after its start {said}"
    )
