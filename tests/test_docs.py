"""The user documentation: README.md and docs/*.md stay short, linked and self-contained.

- the README stays a page a user reads (under 200 lines) and keeps the two commands CI runs;
- every relative link points at a file or folder of the repository;
- nothing points outside the repository (a shared folder, design notes, issue numbers);
- every ``wxens <command>`` the README names is a real subcommand, and every subcommand is
  in the README's tour;
- no line is wider than 100 characters, but a table row.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from flows.commands import COMMANDS

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
PAGES = [README, *DOCS]

LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
"""A markdown link ``[text](target)``; the target up to the first space or ``)``."""
EXTERNAL = ("http://", "https://", "mailto:", "file://")
OUTSIDE = (
    re.compile(r"\.\./shared"),
    re.compile(r"\bshared/"),
    re.compile(r"shared folder", re.IGNORECASE),
    re.compile(r"DESIGN\.md"),
    re.compile(r"generators\.md"),
    re.compile(r"\bissues? #?\d+", re.IGNORECASE),
    re.compile(r"/work/"),
)
"""Mentions of files a user of the repository does not have."""
CODE_SPAN = re.compile(r"```.*?```|`[^`\n]+`", re.DOTALL)
COMMAND = re.compile(r"(?<![\w./-])wxens ([a-z][a-z-]*)")


def relative_links(page: Path) -> list[str]:
    targets = LINK.findall(page.read_text(encoding="utf-8"))
    return [t for t in targets if not t.startswith(EXTERNAL) and not t.startswith("#")]


def resolve(page: Path, target: str) -> Path:
    return (page.parent / target.split("#", 1)[0]).resolve()


def test_docs_pages_exist():
    names = {p.name for p in DOCS}
    assert {
        "ingest.md",
        "generate.md",
        "verification.md",
        "flows.md",
        "architecture.md",
    } <= names


def test_readme_is_short():
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) < 200, f"README.md has {len(lines)} lines; move reference text to docs/"


def test_readme_keeps_the_commands_ci_runs():
    text = README.read_text(encoding="utf-8")
    assert "bash scripts/install.sh" in text
    assert "python -m pytest" in text


WIDTH = 100
"""The widest line of a page, as of the code (``ruff``'s line-length)."""


def wide_lines(page: Path) -> list[str]:
    """``line N (width)`` of every line of ``page`` wider than :data:`WIDTH` characters:
    prose, code blocks (a shell command goes on with a ``\\`` continuation) and links alike.
    Only a table row (a line starting with ``|``) is exempt: markdown cannot wrap it."""
    return [
        f"line {number} ({len(line)})"
        for number, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1)
        if len(line) > WIDTH and not line.startswith("|")
    ]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_lines_are_at_most_100_characters(page):
    """No check measured the pages, and lines of 101 to 487 characters (in the README,
    docs/generate.md, docs/verification.md; before, docs/physics.md) went unseen."""
    wide = wide_lines(page)
    assert not wide, f"{page.relative_to(ROOT)}: wrap to {WIDTH} characters {wide}"


def test_the_width_check_exempts_only_table_rows(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(
        "\n".join(
            ["x" * WIDTH, "y " * 51, "| " + "a " * 60 + "|", "```bash", "wxens " + "-" * 96, "```"]
        ),
        encoding="utf-8",
    )
    assert wide_lines(page) == ["line 2 (102)", "line 5 (102)"]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_point_into_the_repository(page):
    broken = []
    for target in relative_links(page):
        path = resolve(page, target)
        if not path.is_relative_to(ROOT) or not path.exists():
            broken.append(target)
    assert not broken, f"{page.relative_to(ROOT)}: links to missing files {broken}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_reference_outside_the_repository(page):
    text = page.read_text(encoding="utf-8")
    # links to the repository's own pages are fine: drop them first
    for target in relative_links(page):
        if resolve(page, target).exists():
            text = text.replace(f"({target})", "()")
    text = re.sub(r"\[[^\]]*\]\(\)", "", text)
    found = [m.group(0) for pattern in OUTSIDE for m in pattern.finditer(text)]
    assert not found, f"{page.relative_to(ROOT)} refers outside the repository: {found}"


def commands_named(page: Path) -> set[str]:
    code = " ".join(CODE_SPAN.findall(page.read_text(encoding="utf-8")))
    return set(COMMAND.findall(code))


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_named_commands_exist(page):
    known = {command.NAME for command in COMMANDS}
    unknown = commands_named(page) - known
    assert not unknown, f"{page.relative_to(ROOT)} names unknown wxens commands {unknown}"


def test_readme_tours_every_command():
    missing = {command.NAME for command in COMMANDS} - commands_named(README)
    assert not missing, f"README.md does not show wxens {sorted(missing)}"


def test_the_checks_catch_what_they_should(tmp_path):
    """The patterns above flag an outside reference and an unknown command."""
    page = tmp_path / "page.md"
    page.write_text(
        "See DESIGN.md in the shared folder, issue #23, and [x](missing.md).\n"
        "```bash\nwxens frobnicate --out x\nwxens demo\n```\n",
        encoding="utf-8",
    )
    text = page.read_text(encoding="utf-8")
    assert [p.pattern for p in OUTSIDE if p.search(text)] == [
        r"shared folder",
        r"DESIGN\.md",
        r"\bissues? #?\d+",
    ]
    assert not resolve(page, relative_links(page)[0]).exists()
    assert commands_named(page) == {"frobnicate", "demo"}
    page.write_text("```bash\nfor d in 1 2; do wxens train\\\n  --out r$d; done\n```\n")
    assert command_lines(page) == ["wxens train --out r$d"]


FENCE = re.compile(r"```[a-z]*\n(.*?)```", re.DOTALL)


def command_lines(page: Path) -> list[str]:
    """Every ``wxens ...`` line of the page's code blocks, continuation lines joined and
    comments dropped; a launcher's ``... -m flows.cli COMMAND ...`` (torchrun) is read as
    ``wxens COMMAND ...``, a one-line shell loop ``for ...; do wxens ...; done`` as its body."""
    lines = []
    for block in FENCE.findall(page.read_text()):
        joined = re.sub(r"\\\n\s*", " ", block)
        for line in joined.splitlines():
            line = line.split(" #")[0].strip()
            line = re.sub(r"^for [^;]*; do (.*); done$", r"\1", line)
            if " -m flows.cli " in line:
                line = "wxens " + line.split(" -m flows.cli ", 1)[1]
            if line.startswith("wxens "):
                lines.append(line)
    return lines


def subcommand_options(name: str) -> set[str]:
    """The option strings ``wxens <name>`` shows in its --help (deprecated aliases hidden)."""
    import argparse

    from flows.cli import build_parser

    sub = next(
        a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)
    ).choices[name]
    return {s for a in sub._actions if a.help != argparse.SUPPRESS for s in a.option_strings}


@pytest.mark.parametrize(
    "line", [line for page in PAGES for line in command_lines(page)], ids=lambda line: line[:60]
)
def test_every_documented_command_line_parses(line, capsys):
    """A flag renamed in the CLI but not in the docs fails here: an example parses with the
    CLI's own parser (argparse exits 2 on an unknown flag) without a deprecated spelling; a
    synopsis (``[--flag VALUE]`` parts) names only options of its command."""
    import shlex

    from flows.cli import build_parser

    argv = shlex.split(line)[1:]
    if "[" in line:
        flags = set(re.findall(r"(?<![\w-])--[a-z][a-z-]*", line))
        assert flags <= subcommand_options(argv[0]), flags - subcommand_options(argv[0])
        return
    build_parser().parse_args(argv)
    assert "deprecated" not in capsys.readouterr().err, f"{line}: uses a deprecated spelling"


DOTTED = re.compile(r"`((?:pipeline|generators|verification|flows)(?:\.[A-Za-z_]\w*)+)`")
"""A code span naming a module or an object of the library, such as
``generators.correction.baseline_store.baseline_to_store``."""


def resolves(dotted: str) -> bool:
    """Whether ``dotted`` is an importable module, or an attribute path under one."""
    import importlib

    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            target = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for name in parts[cut:]:
            if not hasattr(target, name):
                return False
            target = getattr(target, name)
        return True
    return False


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_named_modules_and_functions_exist(page):
    """Every dotted library name a page gives in code (the "In Python" paths) imports."""
    files = ("json", "md", "py", "nc", "zarr", "yaml", "html", "png")  # verification.json
    named = {
        n for n in DOTTED.findall(page.read_text(encoding="utf-8")) if n.split(".")[-1] not in files
    }
    missing = sorted(n for n in named if not resolves(n))
    assert not missing, f"{page.relative_to(ROOT)} names what does not import: {missing}"


CONFIG_FIELD = re.compile(r"`([A-Z]\w*(?:Config|Spec))\.([a-z_]\w*)`")
"""A code span naming a config class's field, such as ``VerifyConfig.interval_draws``."""
LIBRARY = ("pipeline", "generators", "verification", "flows")


def library_classes() -> dict[str, set[str]]:
    """Each class the library defines, by name, with the names its body assigns or
    annotates (a dataclass's fields, its methods)."""
    import ast

    classes: dict[str, set[str]] = {}
    for path in (p for package in LIBRARY for p in (ROOT / package).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef):
                names = classes.setdefault(node.name, set())
                for item in node.body:
                    if isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
                        names.add(item.target.id)
                    elif isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef):
                        names.add(item.name)
    return classes


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_named_config_fields_exist(page):
    """Every ``XConfig.field`` or ``XSpec.field`` a page names is a field of a library class
    of that name (verification.md named ``VerificationConfig.interval_draws``, a class that
    does not exist: the field is ``VerifyConfig``'s)."""
    classes = library_classes()
    named = set(CONFIG_FIELD.findall(page.read_text(encoding="utf-8")))
    missing = sorted(f"{c}.{f}" for c, f in named if f not in classes.get(c, set()))
    assert not missing, f"{page.relative_to(ROOT)} names config fields that do not exist: {missing}"


def test_every_option_is_documented():
    """Every option a ``--help`` shows is named in the README or a docs page, so a user who
    reads the docs rather than the help finds it (an option added to the CLI but not to
    the docs fails here)."""
    import argparse

    from flows.cli import build_parser

    text = "\n".join(page.read_text(encoding="utf-8") for page in PAGES)
    commands = next(
        a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)
    ).choices
    missing = sorted(
        f"wxens {name} {option}"
        for name in commands
        for option in subcommand_options(name) - {"-h", "--help"}
        if option.startswith("--") and not re.search(rf"{re.escape(option)}(?![\w-])", text)
    )
    assert not missing, f"options no page of the docs names: {missing}"


OPTIONS_TABLE = re.compile(
    r"```bash\nwxens ([a-z][a-z-]*)[^`]*```\n\n\| option \| meaning \|\n\| --- \| --- \|\n"
    r"((?:\|.*\n)+)"
)
"""A command's options table: a ``wxens <command>`` example, then its ``| option |`` rows."""
OPTION = r"--[a-z][a-z-]*"


@pytest.mark.parametrize("page", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_options_tables_match_their_commands_help(page):
    """An options table lists every option its command's --help shows (the table of ``wxens
    forecast`` lacked ``--recompute`` and ``--no-progress``), and each row's first column
    only options of that command."""
    for command, rows in OPTIONS_TABLE.findall(page.read_text(encoding="utf-8")):
        cells = [row.split(" | ", 1) for row in rows.splitlines()]
        named = {o for cell in cells for o in re.findall(OPTION, " ".join(cell))}
        first = {o for cell in cells for o in re.findall(OPTION, cell[0])}
        options = {o for o in subcommand_options(command) if o.startswith("--")} - {"--help"}
        assert options <= named, f"wxens {command}'s table lacks {sorted(options - named)}"
        assert first <= options, f"wxens {command}'s table has no {sorted(first - options)}"
