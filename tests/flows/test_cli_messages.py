"""What the CLI says to a careful user: a negative value reaches the command's own check
rather than argparse's "expected one argument"; a path through a missing folder or a
dangling link is named for what it is."""

from __future__ import annotations

import argparse

import pytest

from flows.cli import build_parser, main
from generators.calibration import calibrate_checkpoint
from generators.config import CalibrationConfig
from generators.tune import tune_correction
from pipeline.errors import InputError


def wxens(argv: list[str], capsys) -> tuple[int, str]:
    """``wxens argv`` in this process (a process of its own spent seconds importing to be
    refused): its exit code, returned or raised (argparse's), and what it wrote on stderr."""
    with pytest.raises(SystemExit) as exit:
        raise SystemExit(main(argv))
    return exit.value.code, capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["compact", "s.zarr", "--keep", "-1d"], "--keep '-1d' is negative"),
        (["forecast", "--store", "s.zarr", "--checkpoint", "k", "--seed", "-1"], "at least 0"),
        (["calibrate", "--checkpoint", "k", "--store", "s", "--every", "-6h"], "--every"),
    ],
    ids=["compact-keep", "forecast-seed", "calibrate-every"],
)
def test_a_negative_value_reaches_the_commands_own_check(
    argv, message, tmp_path, monkeypatch, capsys
):
    """`--keep -1d` was taken for an option: "argument --keep: expected one argument"."""
    monkeypatch.chdir(tmp_path)
    code, err = wxens(argv, capsys)
    assert code == 2
    assert "expected one argument" not in err
    assert message in err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("argv", "dest", "value"),
    [
        (["train", "--store", "s", "--out", "r", "--lead", "-6h"], "lead", "-6h"),
        (["train", "--store", "s", "--out", "r", "--budget", "-3"], "budget", "-3"),
        (["train", "--store", "s", "--out", "r", "--budget", "-.5h"], "budget", "-.5h"),
    ],
)
def test_a_negative_duration_is_parsed_as_the_options_value(argv, dest, value):
    """The command refuses it then, naming it ("--lead must be a positive duration")."""
    assert getattr(build_parser().parse_args(argv), dest) == value


def test_an_unknown_option_is_still_refused_as_one(capsys):
    with pytest.raises(SystemExit) as exit:
        main(["compact", "s.zarr", "--kep", "1d"])
    assert exit.value.code == 2
    err = capsys.readouterr().err
    # the command's usage and name, as for its other errors (it was the bare "wxens: error")
    assert err.startswith("usage: wxens compact") and "--keep KEEP" in err
    assert "wxens compact: error: unrecognized arguments: --kep" in err


def test_an_abbreviated_option_is_refused_naming_the_whole_one(tmp_path, monkeypatch, capsys):
    """`--member 5` was taken for `--members 5`: an option added later could have changed
    what an abbreviation in someone's script meant."""
    argv = ["forecast", "--checkpoint", "k", "--store", "s.zarr", "--init", "2019-03-22T00"]
    monkeypatch.chdir(tmp_path)
    code, err = wxens([*argv, "--lead", "6h", "--out", "f.zarr", "--member", "5"], capsys)
    assert code == 2, err
    said = "wxens forecast: error: unrecognized arguments: --member 5 (did you mean --members?)"
    assert said in err, err
    assert list(tmp_path.iterdir()) == []


def every_command_parser() -> dict[str, argparse.ArgumentParser]:
    subs = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return dict(subs.choices)


@pytest.mark.parametrize("name", sorted(every_command_parser()))
def test_no_command_takes_an_abbreviation(name, capsys):
    """Each sub-parser, not only the top one: a long option cut by one letter is refused,
    naming the option (also where a required option missing is the first error)."""
    parser = every_command_parser()[name]
    options = {s for a in parser._actions for s in a.option_strings}
    shown = sorted(
        s
        for a in parser._actions
        if a.help != argparse.SUPPRESS  # a hidden old spelling is not suggested
        for s in a.option_strings
        if s.startswith("--") and s[:-1] not in options
    )
    option = max(shown, key=len)
    with pytest.raises(SystemExit) as exit:
        build_parser().parse_args([name, option[:-1], "x"])
    assert exit.value.code == 2
    assert f"did you mean {option}?" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [
        ["export", "s.zarr", "--out", "nosuch/../f.zarr"],
        ["ingest", "synthetic", "--store", "nosuch/../s.zarr"],
        ["train", "--store", "s.zarr", "--out", "nosuch/deeper/../../run"],
    ],
    ids=["export-out", "ingest-store", "train-out"],
)
def test_a_path_through_a_missing_folder_is_refused_creating_nothing(
    argv, tmp_path, monkeypatch, capsys
):
    """`--out nosuch/../f.zarr` made an empty folder `nosuch` and wrote f.zarr beside it;
    ls, cp and open() do not resolve such a path."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit:
        main(argv)
    assert exit.value.code == 2
    assert "the folder nosuch does not exist" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_a_path_through_existing_folders_parses(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a").mkdir()
    args = build_parser().parse_args(["export", "../s.zarr", "--out", "a/../f.zarr"])
    assert (args.store, args.out) == ("../s.zarr", "a/../f.zarr")


def test_every_dask_scheduler_option_shows_one_metavar():
    """verify's --help said --dask-scheduler DASK_SCHEDULER, the others ADDRESS."""
    import argparse

    subs = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    shown = {
        name: action.metavar
        for name, parser in subs.choices.items()
        for action in parser._actions
        if "--dask-scheduler" in action.option_strings
    }
    assert set(shown) >= {"forecast", "verify", "run", "demo"}
    assert set(shown.values()) == {"ADDRESS"}, shown


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--interval-block", "1W", "--interval-block 1W is a calendar frequency"),
        ("--interval-block", "daily", "--interval-block daily is not a pandas frequency"),
        ("--interval-block", "0h", "--interval-block 0h is not a positive length"),
        ("--interval-level", "1.5", "--interval-level 1.5: give a coverage in (0, 1)"),
    ],
)
def test_verify_names_a_bad_interval_option_as_typed(
    option, value, message, monthly_store, tmp_path, monkeypatch, capsys, caplog
):
    """`wxens verify --interval-block 1W` was refused as `interval_block='1W'`, the
    library's field, which the user never typed; the refusal names the option."""
    scores = tmp_path / "scores.nc"
    argv = ["verify", "f.zarr", "--truth", str(monthly_store.path), "--out", str(scores)]
    monkeypatch.chdir(tmp_path)
    code, err = wxens([*argv, option, value], capsys)
    assert code == 2, err
    assert message in err
    assert "interval_" not in err and "interval_" not in caplog.text
    assert not scores.exists()


def test_run_and_verify_help_say_which_out_is_the_scores_file(capsys):
    """`wxens run` writes its scores to --scores and its forecast store to --out, while
    `wxens verify --out` is the scores file: each --help said only its own half."""
    helps = {}
    for command in ("run", "verify"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        helps[command] = " ".join(capsys.readouterr().out.split())  # unwrapped
    assert "--scores SCORES scores file to write (NetCDF groups): what `wxens verify --out`" in (
        helps["run"]
    )
    assert "--out OUT forecast store to create or extend (required; the scores go to" in (
        helps["run"]
    )
    assert "--out OUT scores file to write (NetCDF groups; `wxens run --scores`)" in (
        helps["verify"]
    )


def test_calibrate_says_how_to_train_a_missing_fold(tiny_model, tmp_path, monkeypatch, capsys):
    """The README's calibrate line names folds no earlier command of it trains: the refusal
    names the missing fold and the `wxens train --set data.exclude` that makes one, rather
    than only "train one with `wxens train --out DIR`"."""
    store, model = tiny_model
    missing = tmp_path / "model_0106"
    argv = ["calibrate", "--checkpoint", str(model), "--store", str(store)]
    monkeypatch.chdir(tmp_path)
    code, err = wxens([*argv, "--fold", str(model), "--fold", str(missing)], capsys)
    assert code == 2, err
    assert f"--fold {missing}: no checkpoint there" in err
    assert "--set 'data.exclude=[{start: START, end: END}]'" in err
    assert f"--out {missing}" in err


@pytest.mark.parametrize("caller", ["calibrate_checkpoint", "tune_correction"])
def test_a_missing_fold_is_named_as_a_python_caller_gave_it(tiny_model, tmp_path, caller):
    """The refusal of a missing fold named ``--fold`` to a Python caller, who gave none."""
    store, model = tiny_model
    missing = tmp_path / "model_0106"
    with pytest.raises(InputError) as refused:
        if caller == "calibrate_checkpoint":
            calibrate_checkpoint(model, store, CalibrationConfig(), folds=[missing])
        else:
            tune_correction(model, store, fold_checkpoints=[missing])
    keyword = "folds" if caller == "calibrate_checkpoint" else "fold_checkpoints"
    assert str(refused.value).startswith(f"{keyword}={str(missing)!r}: no checkpoint there")
    assert "--fold" not in str(refused.value)


def test_train_help_says_it_trains_the_configured_generator(capsys):
    """It said "a flow-matching or EDM generator", as if an extension's could not train."""
    for argv in (["--help"], ["train", "--help"]):
        with pytest.raises(SystemExit):
            main(argv)
        said = " ".join(capsys.readouterr().out.split())  # unwrapped
        assert "flow-matching or EDM" not in said, said
        assert "the configured generator (built-in or an extension's)" in said, said
