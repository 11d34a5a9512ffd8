"""Every benchmark script imports against today's library and answers ``--help`` with a
whole first sentence, and docs/benchmarks.md names only scripts and results that exist,
and every script. Benchmarks are not run in CI: this is what catches a library rename."""

from __future__ import annotations

import fnmatch
import importlib
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = sorted(p.stem for p in (ROOT / "benchmarks").glob("*.py"))
COMMANDS = [s for s in SCRIPTS if "def main(" in (ROOT / "benchmarks" / f"{s}.py").read_text()]
RESULTS = sorted(p.name for p in (ROOT / "benchmarks" / "results").iterdir())
DOC = (ROOT / "docs" / "benchmarks.md").read_text()


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


def test_the_docs_name_every_command():
    missing = [n for n in COMMANDS if f"benchmarks.{n}" not in DOC and f"{n}.py" not in DOC]
    assert not missing, f"docs/benchmarks.md says nothing of {missing}"


def test_the_docs_name_only_scripts_that_exist():
    named = set(re.findall(r"benchmarks[./](\w+)(?:\.py)?\b", DOC)) - {"results"}
    assert named and named <= set(SCRIPTS), sorted(named - set(SCRIPTS))


def test_the_docs_name_only_results_that_exist():
    named = set(re.findall(r"results/([\w\-.]+\.(?:md|json|png))\)", DOC))
    quoted = re.findall(r"`([\w\-*]+\.(?:md|json|png))`", DOC)  # not a --quick run's (ignored)
    named |= {n for n in quoted if "NAME" not in n and not n.endswith("-quick.json")}
    assert len(named) > 20
    missing = sorted(n for n in named if not fnmatch.filter(RESULTS, n))
    assert not missing, f"docs/benchmarks.md names results not in benchmarks/results: {missing}"


def test_the_rerun_lines_give_only_their_scripts_flags(monkeypatch, capsys):
    """Each bullet of the Rerunning section that names scripts gives only flags one of them
    takes (a ``wxens ...`` span's flags are the command's, checked by tests/test_docs.py)."""
    section = DOC.split("## Rerunning", 1)[1]
    checked = 0
    for bullet in re.split(r"\n\s*- ", section):
        names = set(re.findall(r"benchmarks[./](\w+)", bullet)) - {"results"}
        if not names:
            continue
        flags = set(FLAG.findall(re.sub(r"`wxens [^`]*`", "", bullet)))
        known = set().union(*(FLAG.findall(help_text(n, monkeypatch, capsys)) for n in names))
        assert flags <= known, f"{sorted(names)}: no such flag {sorted(flags - known)}"
        checked += len(flags)
    assert checked > 20
