"""``wxens train`` without ``--config``: ``OUT/config.yaml`` is the config the checkpoint
trained (``--set`` included), and one whose training is refused before any checkpoint is
not left for a rerun to take as derived for it before."""

from __future__ import annotations

import logging
import re

import yaml

from flows.cli import main as wxens
from generators.checkpoint import load_checkpoint
from generators.config import load_train_config
from pipeline.store import ingest


def small_store(tmp_path):
    """60 six-hourly times of t2m on an 8 x 8 grid: a derived config's smallest case."""
    spec = "synthetic:n_lat=8,n_lon=8,n_times=60,step=6h"
    return ingest(spec, tmp_path / "s.zarr", variables=["t2m"], progress=False)


def test_a_training_refused_on_the_store_leaves_no_derived_config(tmp_path, capsys):
    """``--set data.channels=[t2m,q]`` passed the config's checks and was refused by the
    training (no channel q); the rerun with ``--lead 12h`` then said its lead was 'not
    used, this run resumes with the config derived before', for a run that trained
    nothing, and trained the 1-day config."""
    store = small_store(tmp_path)
    run = tmp_path / "run"
    argv = ["train", "--store", str(store.path), "--out", str(run), "--no-progress"]
    argv += ["--threads", "1"]
    refused = ["--set", "steps=2", "--set", "data.channels=[t2m,q]"]
    assert wxens([*argv, *refused]) == 2
    assert "no channel(s) ['q']" in capsys.readouterr().err
    assert not (run / "config.yaml").exists()
    assert wxens([*argv, "--lead", "12h", "--set", "steps=2"]) == 0
    out = capsys.readouterr().out
    assert "not used" not in out and "leads [1, 2] native steps, up to 12h" in out
    assert "leads: [1, 2]" in (run / "config.yaml").read_text()


def test_the_derived_config_written_is_the_one_trained(tmp_path, capsys):
    """``--set optim.lr=0.002`` trained at 0.002 while the config.yaml beside the checkpoint
    (and the YAML printed) said 0.001, the derived value."""
    store = small_store(tmp_path)
    run = tmp_path / "run"
    argv = ["train", "--store", str(store.path), "--out", str(run), "--no-progress"]
    assert wxens([*argv, "--threads", "1", "--set", "steps=2", "--set", "optim.lr=0.002"]) == 0
    written = yaml.safe_load((run / "config.yaml").read_text())
    assert written["optim"]["lr"] == 0.002
    trained = load_checkpoint(run / "last.pt").train_config
    assert load_train_config(run / "config.yaml") == trained


def test_a_refused_training_leaves_no_lock_file_beside_its_out(tmp_path, capsys):
    """A refused ``wxens train --out r`` (a missing --config, a missing store) left an empty
    ``.r.lock`` beside an ``r`` it never made; one beside a run that exists stays."""
    missing = ["train", "--store", str(tmp_path / "none.zarr"), "--threads", "1"]
    assert (
        wxens([*missing, "--config", str(tmp_path / "no.yaml"), "--out", str(tmp_path / "r")]) == 2
    )
    assert wxens([*missing, "--lead", "12h", "--out", str(tmp_path / "r2")]) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == []
    capsys.readouterr()


def test_a_refused_run_into_a_new_folder_leaves_no_folder(tmp_path, capsys):
    """``--out sub/r`` with ``sub`` missing: a training refused for its store (before ``r``
    was made) or for its channels (after ``r/config.yaml`` was derived, then removed), and a
    calibration refused for its store, left an empty ``sub`` (or ``sub/r``) behind."""
    store = small_store(tmp_path / "in")
    train = ["train", "--store", str(store.path), "--no-progress", "--threads", "1"]
    assert wxens([*train, "--set", "steps=2", "--out", str(tmp_path / "in" / "run")]) == 0
    refused = [
        ["train", "--store", str(tmp_path / "none.zarr"), "--lead", "12h", "--threads", "1"],
        [*train, "--set", "steps=2", "--set", "data.channels=[t2m,q]"],
        ["calibrate", "--checkpoint", str(tmp_path / "in" / "run" / "last.pt")]
        + ["--store", str(tmp_path / "none.zarr"), "--start", "2000-01-10", "--end", "2000-01-12"],
    ]
    for argv, out in zip(refused, ("sub/r", "sub/r", "sub/k/last.pt"), strict=True):
        assert wxens([*argv, "--out", str(tmp_path / out)]) == 2, argv
        assert sorted(p.name for p in tmp_path.iterdir()) == ["in"], argv
    capsys.readouterr()


def test_a_resumed_derived_run_given_other_leads_is_told_the_fixes_that_work(tmp_path, capsys):
    """The same ``wxens train`` run again with ``--set data.leads=[1,3]`` was told the
    general "data.lead_weights [...] must hold one positive weight per lead", and with those
    weights given, that the run "holds a run with another 'data'" (a dump of both): a
    resumed run keeps the leads it trained, which it now says first, naming ``--lead``.
    Before the run's first checkpoint, the leads are refused as a new derivation's are."""
    store = small_store(tmp_path)
    run = tmp_path / "run"
    argv = ["train", "--store", str(store.path), "--out", str(run), "--no-progress"]
    argv += ["--threads", "1", "--set", "steps=2"]
    assert wxens(argv) == 0
    trained = yaml.safe_load((run / "config.yaml").read_text())["data"]["leads"]
    assert trained != [1, 3]
    capsys.readouterr()
    weights = ["--set", "data.lead_weights=[1.0, 0.439]"]
    for given in (["--set", "data.leads=[1,3]"], ["--set", "data.leads=[1,3]", *weights]):
        assert wxens([*argv, *given]) == 2
        err = capsys.readouterr().err
        assert f"holds a run that trained the leads {trained}" in err, err
        assert "drop --set data.leads=[1, 3] to resume it" in err
        assert "with --no-resume: --lead 18h in place of --set data.leads" in err
    assert wxens([*argv, "--no-resume", "--lead", "18h"]) == 0  # the fix named is taken
    assert yaml.safe_load((run / "config.yaml").read_text())["data"]["leads"] == [1, 3]
    (run / "last.pt").unlink()  # as a run stopped before its first checkpoint leaves it
    capsys.readouterr()
    assert wxens([*argv, "--set", "data.leads=[1]"]) == 2
    err = capsys.readouterr().err
    assert f"left the data.lead_weights [1.0, 0.439] of {run / 'config.yaml'}" in err, err
    assert "give its weight too: --set data.lead_weights=null" in err


def test_a_resumed_derived_run_given_other_data_is_told_which_set_to_drop(tmp_path, capsys):
    """The same ``wxens train`` run again with ``--set steps=2 --set data.history=2 --set
    seed=7`` was told the run "holds a run with another 'data' (data.history: 4 there, 2 in
    this config)", only the first section, and to pass another --out or --no-resume, not
    which of its --set to drop to resume: it names each key with the --set that changed it,
    and the --set to drop (steps stays, more steps resume)."""
    store = small_store(tmp_path)
    run = tmp_path / "run"
    argv = ["train", "--store", str(store.path), "--out", str(run), "--no-progress"]
    argv += ["--threads", "1", "--set", "steps=2"]
    assert wxens(argv) == 0
    capsys.readouterr()
    assert wxens([*argv, "--set", "data.history=2", "--set", "seed=7"]) == 2
    err = capsys.readouterr().err
    assert "trained data.history 4 (--set data.history=2 gives 2); seed 0 (--set seed=7" in err
    assert "drop --set data.history=2 --set seed=7 to resume it, or train with them" in err
    assert "from the start, in another --out or with --no-resume" in err
    assert wxens([*argv, "--set", "fine_tune.steps=2"]) == 0  # the fix named is taken
    assert load_checkpoint(run / "last.pt").step == 4


def test_a_derived_run_resumed_with_its_config_edited_is_told_what_to_put_back(tmp_path, capsys):
    """``data.history`` edited from 4 to 2 in a derived run's ``config.yaml``, resumed: it
    was told the run "holds a run with another 'data'", not that the file gives the 2 and
    that 4 put back there resumes it."""
    store = small_store(tmp_path)
    run = tmp_path / "run"
    argv = ["train", "--store", str(store.path), "--out", str(run), "--no-progress"]
    assert wxens([*argv, "--threads", "1", "--set", "steps=2"]) == 0
    path = run / "config.yaml"
    written = path.read_text()
    assert "\n  history: 4\n" in written
    path.write_text(written.replace("\n  history: 4\n", "\n  history: 2\n"))
    capsys.readouterr()
    assert wxens([*argv, "--threads", "1"]) == 2
    err = capsys.readouterr().err
    assert f"trained data.history 4 ({path} gives 2) ({run / 'last.pt'})" in err, err
    assert f"set data.history: 4 in {path} to resume it, or train with it" in err


def test_a_derived_training_says_once_that_it_reads_the_states(tmp_path, caplog, capsys):
    """A derived run read the store to time its steps for ``--budget``, then again to
    train: "(training part): reading 0.0 MiB of states into memory" came twice. The
    training now takes the states the timing read: one read, said once."""
    store = small_store(tmp_path)
    logger = logging.getLogger("generators.data.dataset")  # not the root: Prefect drops it
    logger.addHandler(caplog.handler)
    caplog.set_level(logging.INFO, logger=logger.name)
    try:
        argv = ["train", "--store", str(store.path), "--out", str(tmp_path / "run")]
        assert wxens([*argv, "--budget", "1min", "--no-progress", "--threads", "1"]) == 0
    finally:
        logger.removeHandler(caplog.handler)
    capsys.readouterr()
    records = {id(r): r for r in caplog.records}.values()  # the root may pass them on too
    lines = [r.getMessage() for r in records if "of states into memory" in r.getMessage()]
    training = [line for line in lines if "(training part)" in line]
    assert [
        line.endswith("(training part): reading 0.0 MiB of states into memory") for line in training
    ] == [True], lines


def test_a_derived_config_switched_to_edm_by_set_trains_edm(tmp_path, capsys):
    """``wxens train --set model.kind=edm`` without ``--config`` (the README's "EDM
    generator") was refused, after timing the derived model, for the derived flow matching's
    ``sample_nfe``, a key the user never wrote; ``wxens config`` the same, its message
    saying to write the config out with ``wxens config``. A ``sample_nfe`` the user sets
    beside it is still refused."""
    store = small_store(tmp_path)
    edm = ["--store", str(store.path), "--set", "steps=2", "--set", "model.kind=edm"]
    assert wxens(["config", *edm]) == 0, capsys.readouterr().err
    printed = capsys.readouterr().out
    model = yaml.safe_load(printed)["model"]
    assert model["kind"] == "edm" and model["sample_steps"] == 20
    assert "sample_nfe" not in model
    assert "model.sample_nfe left out (replaces the derived 10)" in printed
    run = tmp_path / "run"
    train = ["train", *edm, "--out", str(run), "--threads", "1", "--no-progress"]
    assert wxens(train) == 0, capsys.readouterr().err
    assert load_checkpoint(run / "last.pt").train_config.model.kind == "edm"
    capsys.readouterr()
    assert wxens(["config", *edm, "--set", "model.sample_nfe=4"]) == 2
    assert "['sample_nfe'] are keys of flow_matching, not edm" in capsys.readouterr().err


def test_the_fine_tunes_loss_is_said_to_be_of_the_normalised_fields(tmp_path, capsys):
    """``wxens train`` ended with "last training loss 0.3189 (the fine-tune's objective,
    fair CRPS of 4 members: ...)", which read as kelvin: the CRPS is of the normalised
    fields (each lead's change over its std in the training statistics)."""
    store = small_store(tmp_path)
    argv = ["train", "--store", str(store.path), "--out", str(tmp_path / "run")]
    argv += ["--set", "steps=2", "--set", "fine_tune.steps=1", "--threads", "1", "--no-progress"]
    assert wxens(argv) == 0, capsys.readouterr().err
    assert re.search(
        r"last training loss \d+\.\d{4} \(the fine-tune's objective, fair CRPS of 4 members of "
        r"the normalised fields, not in K: ",
        capsys.readouterr().out,
    )
