"""Every benchmark script imports against today's library and answers ``--help`` with a
whole first sentence. Benchmarks are not run in CI: this is what catches a library rename."""

from __future__ import annotations

import importlib
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = sorted(p.stem for p in (ROOT / "benchmarks").glob("*.py"))
COMMANDS = [s for s in SCRIPTS if "def main(" in (ROOT / "benchmarks" / f"{s}.py").read_text()]


FLAG = re.compile(r"(?<![\w-])--[a-z][a-z-]*")


def help_text(name: str, monkeypatch, capsys) -> str:
    """``python -m benchmarks.NAME --help``'s output, in this process."""
    module = importlib.import_module(f"benchmarks.{name}")
    monkeypatch.setattr(sys, "argv", [f"{name}.py", "--help"])
    with pytest.raises(SystemExit) as exit_:
        module.main()
    assert exit_.value.code == 0
    return capsys.readouterr().out


def test_there_are_scripts_and_commands():
    assert len(COMMANDS) >= 20 and set(COMMANDS) < set(SCRIPTS)


@pytest.mark.parametrize("name", SCRIPTS)
def test_every_script_imports(name):
    module = importlib.import_module(f"benchmarks.{name}")
    assert module.__doc__, f"benchmarks/{name}.py says what it measures"


@pytest.mark.parametrize("name", COMMANDS)
def test_every_command_answers_help_with_a_whole_sentence(name, monkeypatch, capsys):
    out = help_text(name, monkeypatch, capsys)
    assert out.startswith("usage:"), out[:200]
    description = out.split("\n\n")[1]  # the paragraph after the usage lines
    assert not description.startswith(("options:", "positional")), f"{name}: no description"
    assert description.rstrip().endswith("."), f"{name}'s description is cut: {description!r}"
