"""One flag vocabulary: every command spells --lead, --out and --bias-weight the same way, and
the old spellings still parse, for one release, saying what replaces them."""

from __future__ import annotations

import argparse
import re

import pytest

from flows.commands import COMMANDS


def parser_of(name: str) -> argparse.ArgumentParser:
    command = next(c for c in COMMANDS if c.NAME == name)
    parser = argparse.ArgumentParser(prog=f"wxens {name}")
    command.add_arguments(parser)
    return parser


def option_strings(name: str) -> set[str]:
    return {
        s for a in parser_of(name)._actions if a.help != argparse.SUPPRESS for s in a.option_strings
    }


def redraw_options(log_text: str, command: str) -> dict[str, set[str]]:
    """The options the "to draw them again: ..." hint in ``log_text`` names, by the command
    each belongs to: the last ``wxens NAME`` the hint names before it, else ``command``."""
    hint = re.search(r"to draw them again: (.*)\)", log_text)
    assert hint, f"no hint on how to draw the skipped initial times again in {log_text!r}"
    named: dict[str, set[str]] = {}
    owner = command
    for name, option in re.findall(r"wxens ([a-z-]+)|(--[a-z-]+)", hint.group(1)):
        owner = name or owner
        named.setdefault(owner, set()).update([option] if option else [])
    for owner, options in named.items():
        assert options <= option_strings(owner), f"wxens {owner} has no {options}: {hint[0]}"
    return named


RUN = ["--store", "s.zarr", "--checkpoint", "k", "--scores", "s.nc"]
CORRECT = ["f.zarr", "--truth", "s.zarr", "--out", "c.zarr"]


@pytest.mark.parametrize(
    ("name", "base", "old", "new", "dest", "value"),
    [
        ("run", RUN, "--leads", "--lead", "lead", "1h,6h"),
        ("run", RUN, "--forecast-store", "--out", "out", "f.zarr"),
        ("bias-correct", CORRECT, "--weight", "--bias-weight", "bias_weight", "0.5"),
    ],
)
def test_an_old_spelling_parses_as_the_new_one_and_says_so(
    name, base, old, new, dest, value, capsys
):
    parser = parser_of(name)
    new_args = parser.parse_args([*base, new, value])
    assert capsys.readouterr().err == ""
    old_args = parser.parse_args([*base, old, value])
    assert vars(old_args) == vars(new_args)
    err = capsys.readouterr().err
    assert f"{old} is deprecated" in err and f"use {new}" in err
    assert old not in option_strings(name)  # hidden from --help


def test_commands_share_the_vocabulary():
    for name in ("forecast", "run"):
        assert {"--lead", "--out", "--members", "--seed", "--sampler"} <= option_strings(name)
    for name in ("bias-correct", "run"):
        assert {"--bias-weight", "--spread-weight", "--rank-weight"} <= option_strings(name)
    for name in ("bias-correct", "baseline", "verify", "calibrate", "train"):
        assert "--out" in option_strings(name)


@pytest.mark.parametrize(
    "command",
    [
        ["forecast", "--init", "2019-03-22T00", "--lead", "6h", "--out", "f.zarr"],
        # calibrate forecasts as much as forecast does, and had no --threads either
        ["calibrate", "--start", "2019-03-22", "--end", "2019-03-25"],
    ],
)
def test_forecasting_commands_take_threads_as_train_does(monkeypatch, tmp_path, command):
    """On two shared cores a small forecast took 32.5 s with torch's default threads and
    3.7 s with one; train and config had --threads, forecast had no way to say it."""
    import torch

    import generators.checkpoint
    from flows.cli import main

    threads = torch.get_num_threads()
    seen = []

    def load(path):
        seen.append(torch.get_num_threads())
        raise KeyboardInterrupt  # stop before any work

    monkeypatch.setattr(generators.checkpoint, "load_checkpoint", load)
    monkeypatch.chdir(tmp_path)
    try:
        main([*command, "--checkpoint", "k", "--store", "s.zarr", "--threads", "1"])
    finally:
        torch.set_num_threads(threads)
    assert seen == [1]
    assert {"--threads", "--batch-members"} <= option_strings(command[0])


def test_tune_takes_threads_as_forecast_does(monkeypatch):
    """wxens tune draws forecasts of the held-out days (40 s on the UK sample with 4
    members) and had no --threads: on shared cores it could not be kept to a share."""
    import torch

    import generators.tune
    from flows.cli import main

    threads = torch.get_num_threads()
    seen = []

    def tune_correction(*args, **kwargs):
        seen.append(torch.get_num_threads())
        raise KeyboardInterrupt  # stop before any work

    monkeypatch.setattr(generators.tune, "tune_correction", tune_correction)
    try:
        main(["tune", "--checkpoint", "k", "--store", "s.zarr", "--threads", "1"])
    finally:
        torch.set_num_threads(threads)
    assert seen == [1]


@pytest.mark.parametrize(
    "command, flow",
    [
        (
            ["run", "--store", "s.zarr", "--checkpoint", "k", "--out", "f", "--scores", "s.nc"],
            "ensemble_run",
        ),
        (["demo", "--workdir", "demo"], "ingest"),
    ],
)
def test_run_and_demo_take_threads_as_forecast_does(monkeypatch, tmp_path, command, flow):
    """run and demo train, tune and forecast in their own process, and had no --threads:
    a demo on two shared cores could not be kept to a share."""
    import torch

    import flows.pipelines
    from flows.cli import main

    threads = torch.get_num_threads()
    seen = []

    def first_flow(*args, **kwargs):
        seen.append(torch.get_num_threads())
        raise KeyboardInterrupt  # stop before any work

    monkeypatch.setattr(flows.pipelines, flow, first_flow)
    monkeypatch.chdir(tmp_path)
    try:
        main([*command, "--threads", "1"])
    finally:
        torch.set_num_threads(threads)
    assert seen == [1]


def test_version_prints_the_package_version_and_exits_0(capsys):
    """``wxens --version`` said "the following arguments are required: COMMAND" (exit 2).
    It says the revision too, on one line (tests/pipeline/test_software.py)."""
    from flows.cli import main
    from pipeline.software import wxens_version

    with pytest.raises(SystemExit) as exit:
        main(["--version"])
    assert exit.value.code == 0
    assert capsys.readouterr().out == f"wxens {wxens_version()}\n"


def test_every_help_says_what_its_option_does():
    """wxens demo --dask-scheduler's whole help was "default: a local cluster": it said
    neither what runs there nor that ADDRESS is a scheduler's."""
    from flows.cli import build_parser

    commands = next(
        a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)
    ).choices
    bare = [
        f"wxens {name} {'/'.join(action.option_strings) or action.dest}: {action.help!r}"
        for name, parser in commands.items()
        for action in parser._actions
        if action.help != argparse.SUPPRESS
        and (not action.help or action.help.lower().startswith(("default", "(")))
    ]
    assert not bare, bare


@pytest.mark.parametrize("name", ["bias-correct", "run"])
def test_every_weight_help_says_the_tuned_one_is_its_default(name):
    """bias-correct --checkpoint K applies K's tuned spread and rank weights when none is
    given, but the help of --spread-weight and --rank-weight said "default: spread
    unchanged" and "members not remapped"."""
    helps = {
        option: action.help
        for action in parser_of(name)._actions
        for option in action.option_strings
    }
    for option in ("--bias-weight", "--spread-weight", "--rank-weight"):
        assert "tuned" in helps[option].split("default")[-1], (option, helps[option])


@pytest.mark.parametrize(
    ("name", "base", "option", "text", "hours"),
    [
        ("tune", ["--checkpoint", "k", "--store", "s"], "--every", "6h", 6.0),
        ("tune", ["--checkpoint", "k", "--store", "s"], "--every", "12", 12.0),
        ("calibrate", ["--checkpoint", "k", "--store", "s"], "--every", "1d", 24.0),
        ("run", RUN, "--cycle", "6h", 6),
        ("run", RUN, "--cycle", "12", 12),
    ],
)
def test_spacings_in_hours_take_durations_as_forecast_every_does(name, base, option, text, hours):
    """forecast --every took 6h; tune and calibrate --every and run --cycle refused it
    ("invalid float value: '6h'"), and tune --every 0 ran with the default spacing."""
    args = parser_of(name).parse_args([*base, option, text])
    assert getattr(args, option.lstrip("-")) == hours


@pytest.mark.parametrize(
    ("name", "base", "option", "text"),
    [
        ("tune", ["--checkpoint", "k", "--store", "s"], "--every", "0"),
        ("calibrate", ["--checkpoint", "k", "--store", "s"], "--every", "-6h"),
        ("calibrate", ["--checkpoint", "k", "--store", "s"], "--every", "nan"),
        ("run", RUN, "--cycle", "90min"),
    ],
)
def test_a_spacing_that_is_not_a_positive_span_is_refused(name, base, option, text, capsys):
    with pytest.raises(SystemExit) as exit:
        parser_of(name).parse_args([*base, f"{option}={text}"])
    assert exit.value.code == 2
    assert f"argument {option}" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["baseline", "calibrate", "forecast", "run", "tune", "verify"])
def test_a_negative_seed_is_refused_by_the_parser(name, capsys):
    """numpy seeds only with non-negative integers: --seed -1 ended forecast, baseline
    and verify (with --error-surrogate-replicas) in a ValueError traceback, exit 1, after
    the store was opened."""
    action = next(a for a in parser_of(name)._actions if "--seed" in a.option_strings)
    with pytest.raises(argparse.ArgumentTypeError, match="at least 0"):
        action.type("-1")
    assert action.type("0") == 0 and action.type("7") == 7


@pytest.mark.parametrize("name", ["forecast", "baseline", "calibrate", "tune", "verify", "run"])
def test_a_seed_past_int64_is_refused_by_the_parser(name):
    """--seed 2**63 made a forecast store whose seed attribute no netCDF file can hold:
    wxens verify computed every score, then ended in netCDF4's 'illegal data type'."""
    action = next(a for a in parser_of(name)._actions if "--seed" in a.option_strings)
    with pytest.raises(argparse.ArgumentTypeError, match=f"at most {2**63 - 1}, got {2**63}"):
        action.type(str(2**63))
    assert action.type(str(2**63 - 1)) == 2**63 - 1


@pytest.mark.parametrize(
    "argv",
    [
        ["train", "--store", "s.zarr", "--out", ""],
        ["ingest", "synthetic", "--store", ""],
        ["export", "s.zarr", "--out", " "],
        ["verify", "f.zarr", "--truth", "", "--out", "s.nc"],
        ["info", ""],
    ],
    ids=["train-out", "ingest-store", "export-out", "verify-truth", "info"],
)
def test_an_empty_path_is_refused_by_the_parser(argv, tmp_path, monkeypatch, capsys):
    # An empty path was taken as ".": `wxens train --out ""` trained into the working
    # directory (last.pt, log.jsonl among the user's files), and `ingest --store ""`
    # called the working directory "a folder of 17 entries".
    from flows.cli import main

    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    assert "an empty path" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_a_path_from_the_home_folder_is_expanded(tmp_path, monkeypatch, capsys):
    # `--out=~/f.zarr` (no shell expands a ~ after "=") or a quoted "~/f.zarr" wrote into a
    # folder named "~" in the working directory.
    from flows.cli import main

    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    assert main(["info", "--", "~/nowhere.zarr"]) == 2
    err = capsys.readouterr().err
    assert f"{tmp_path}/home/nowhere.zarr: no such store, training run, checkpoint" in err
    assert "wxens ingest" not in err  # a forecast store's path is not made by an ingest
    assert main(["export", "~/nowhere.zarr", "--out=~/plain.zarr"]) == 2
    assert f"{tmp_path}/home/nowhere.zarr" in capsys.readouterr().err
    assert not (tmp_path / "~").exists()


def test_tune_end_help_says_the_initial_times_end_a_lead_before_it():
    """`wxens tune --end 2019-03-18` tuned on initial times up to 17 March 18 h (their 24 h
    truth inside the period), but its help called --end "last day of the initial times"."""
    helps = {a.dest: a.help for a in parser_of("tune")._actions}
    assert "last day of the initial times" not in helps["end"]
    assert "longest lead before" in helps["end"] and "truth" in helps["end"]


def test_members_choices_are_the_librarys():
    """``--members`` lists its choices itself (the parser loads no xarray): they must be
    :data:`pipeline.members.MEMBER_CHOICES`, or a choice the library takes is refused."""
    from flows.commands.options import add_members
    from pipeline.members import MEMBER_CHOICES

    parser = argparse.ArgumentParser()
    add_members(parser)
    (action,) = [a for a in parser._actions if a.dest == "members"]
    assert tuple(action.choices) == MEMBER_CHOICES
