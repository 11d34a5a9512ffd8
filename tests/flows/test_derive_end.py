"""``wxens config --store S --end DATE`` and ``wxens train --store S --end DATE``: a config
derived from the store's times up to DATE, every period of it (training, validation,
calibration, the held-out days ``wxens tune`` chooses on) ending by then, so that the later
days stay out of sample to verify forecasts on; and the refusals of an --end that cannot
derive, of one beside a given --config and of one other than a resumed run's."""

from __future__ import annotations

import pandas as pd
import pytest
import yaml

from flows.cli import main as wxens
from generators.checkpoint import load_checkpoint
from generators.config import load_train_config
from generators.config_derive import derive_config
from generators.config_notes import read_notes
from pipeline.store import ingest

LAST_KEPT = pd.Timestamp("2000-01-12T18:00")  # the store's last time up to --end 2000-01-12


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """60 six-hourly times of t2m on an 8 x 8 grid, 2000-01-01T00 to 2000-01-15T18."""
    spec = "synthetic:n_lat=8,n_lon=8,n_times=60,step=6h"
    path = tmp_path_factory.mktemp("end") / "s.zarr"
    return str(ingest(spec, path, variables=["t2m"], progress=False).path)


def period_ends(config: dict) -> dict[str, pd.Timestamp]:
    """The end of each period of a config as written (YAML read to a mapping)."""
    data = config["data"]
    return {
        "data.train": pd.Timestamp(data["train"]["end"]),
        "data.validation": pd.Timestamp(data["validation"]["end"]),
        "calibration.period": pd.Timestamp(config["calibration"]["period"]["end"]),
    }


def test_a_config_derived_with_end_ends_every_period_by_then(store, capsys):
    """``--set data.train.end`` alone left the held-out days (validation, calibration,
    tuning) at the store's end, inside the days kept to verify on; --end ends them all at
    the store's last time up to DATE and says the later days are left out. Without --end
    the config is the one derived from all the store's times, as before."""
    assert wxens(["config", "--store", store, "--end", "2000-01-12", "--set", "steps=2"]) == 0
    printed = capsys.readouterr().out
    ends = period_ends(yaml.safe_load(printed))
    assert all(end <= LAST_KEPT for end in ends.values()), ends
    assert ends["data.validation"] == ends["calibration.period"] == LAST_KEPT
    assert (
        "12 times after 2000-01-12T18:00 left out (--end 2000-01-12): neither trained, "
        "calibrated nor tuned on; forecast them to verify"
    ) in read_notes(printed), printed

    assert wxens(["config", "--store", store, "--set", "steps=2"]) == 0
    whole = capsys.readouterr().out
    assert period_ends(yaml.safe_load(whole))["data.validation"] == pd.Timestamp("2000-01-15T18")
    assert "left out" not in whole
    assert yaml.safe_load(whole) == yaml.safe_load(derive_config(store, steps=2).to_yaml())


@pytest.mark.parametrize(
    ("end", "message"),
    [
        ("notaday", "--end 'notaday' is not a time of the store: give a UTC date"),
        ("1999-12-31", "--end 1999-12-31 is before the first time of"),
        ("2000-01-03", "give an --end of 2000-01-05T00:00 or later"),
    ],
)
def test_an_end_that_derives_nothing_is_refused_naming_it(store, end, message, capsys):
    """An --end no time, before the store's first time, or leaving too few times for the
    derived lead: each refused (exit 2) naming --end and the one that derives."""
    assert wxens(["config", "--store", store, "--end", end, "--set", "steps=2"]) == 2
    err = capsys.readouterr().err
    assert message in err, err


def test_end_with_a_given_config_is_refused(store, tmp_path, capsys):
    """A given --config has its own periods: --end beside it is refused, not ignored."""
    assert wxens(["config", "--store", store, "--set", "steps=2"]) == 0
    config = tmp_path / "c.yaml"
    config.write_text(capsys.readouterr().out)
    argv = ["train", "--store", store, "--config", str(config), "--out", str(tmp_path / "r")]
    assert wxens([*argv, "--end", "2000-01-12"]) == 2
    err = capsys.readouterr().err
    assert f"--end 2000-01-12 derives a config's periods, and --config {config}" in err, err
    assert not (tmp_path / "r").exists()


def test_a_run_derived_with_end_resumes_with_it_and_refuses_another(store, tmp_path, capsys):
    """``wxens train --end DATE``: the config.yaml beside the checkpoint (the one trained)
    ends its periods by DATE; the same command resumes; another --end, which asks for other
    periods than the run trained, is refused naming the --end that resumes and the fix."""
    run = tmp_path / "run"
    argv = ["train", "--store", store, "--out", str(run), "--no-progress", "--threads", "1"]
    argv += ["--set", "steps=2", "--end", "2000-01-12"]
    assert wxens(argv) == 0
    written = load_train_config(run / "config.yaml")
    assert load_checkpoint(run / "last.pt").train_config == written
    ends = period_ends(yaml.safe_load((run / "config.yaml").read_text()))
    assert max(ends.values()) == LAST_KEPT, ends
    capsys.readouterr()

    assert wxens([*argv[:-2], "--end", "2000-01-12T18:00", "--set", "fine_tune.steps=2"]) == 0
    assert "using" in capsys.readouterr().out
    assert load_checkpoint(run / "last.pt").step == 4  # resumed, not started over
    written = load_train_config(run / "config.yaml")  # with its --set fine_tune.steps

    assert wxens([*argv[:-2], "--end", "2000-01-13"]) == 2
    err = capsys.readouterr().err
    assert "--end 2000-01-13 keeps the times up to 2000-01-13T18:00" in err, err
    assert f"{run / 'config.yaml'} was derived from those up to 2000-01-12T18:00" in err
    assert "give --end 2000-01-12T18:00 (or drop --end) to resume it" in err
    assert "in another --out or with --no-resume" in err
    assert load_train_config(run / "config.yaml") == written
