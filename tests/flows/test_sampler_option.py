"""A mistyped ``--sampler`` is refused by the parser, as a bad choice is: at once, exit 2,
one line naming the value, the samplers (or keys) accepted and an example. It was refused
only once torch, the generators and the checkpoint had loaded (seconds later)."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest

from flows.cli import build_parser
from flows.commands import COMMANDS

ROOT = Path(__file__).resolve().parents[2]


def takes_a_sampler(command) -> bool:
    parser = argparse.ArgumentParser()
    command.add_arguments(parser)
    return "--sampler" in {s for a in parser._actions for s in a.option_strings}


TAKE_A_SAMPLER = [c.NAME for c in COMMANDS if takes_a_sampler(c)]


def test_the_commands_that_draw_take_a_sampler():
    assert {"forecast", "run", "calibrate", "tune"} <= set(TAKE_A_SAMPLER)


def test_a_mistyped_sampler_is_refused_before_torch_loads(tmp_path):
    argv = ["forecast", "--sampler", "nonsense", "--checkpoint", str(tmp_path / "none.pt")]
    argv += ["--store", str(tmp_path / "s.zarr"), "--init", "2000-01-03T00", "--lead", "6h"]
    argv += ["--out", str(tmp_path / "f.zarr")]
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "flows.cli", *argv],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    imported = [line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines()]
    said = [line for line in done.stderr.splitlines() if not line.startswith("import time:")]
    assert done.returncode == 2, done.stderr[-2000:]
    assert said[-1] == (
        "wxens forecast: error: argument --sampler: unknown sampler 'nonsense'; known: "
        "edm_euler, edm_heun, euler, heun (a spec such as edm_euler:num_steps=20)"
    ), said
    assert "torch" not in imported and "generators.samplers" not in imported
    assert not (tmp_path / "f.zarr").exists()


@pytest.mark.parametrize("command", TAKE_A_SAMPLER)
@pytest.mark.parametrize(
    ("spec", "said"),
    [
        ("eulr:steps=4", "unknown sampler 'eulr'; known: edm_euler, edm_heun, euler, heun"),
        (
            "euler:steps=4",
            "sampler 'euler:steps=4': unknown key 'steps'; valid keys: nfe, noise_scale "
            "(a spec such as euler:nfe=10)",
        ),
        ("heun:nfe=2.5", "sampler 'heun:nfe=2.5': nfe='2.5' is not an integer"),
    ],
)
def test_each_command_refuses_a_bad_spec_in_its_parser(command, spec, said, capsys):
    with pytest.raises(SystemExit) as stopped:
        build_parser().parse_args([command, "--sampler", spec])
    assert stopped.value.code == 2
    assert f"wxens {command}: error: argument --sampler: {said}" in capsys.readouterr().err


@pytest.mark.parametrize("spec", ["euler:nfe=0", " heun : nfe = 4 ", "edm_heun:churn=0"])
def test_a_spec_that_reads_is_passed_on_as_given(spec):
    # nfe=0 reads (an integer): the sampler itself refuses it, where the forecast builds it
    argv = ["forecast", "--checkpoint", "k", "--store", "s", "--init", "2000-01-03T00"]
    args = build_parser().parse_args([*argv, "--lead", "6h", "--out", "o", "--sampler", spec])
    assert args.sampler == spec
