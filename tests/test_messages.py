"""The library's error convention (docs/architecture.md, "Errors"): a message names the Python
keyword with the CLI's flag after it once, ``leads_hours= (--lead)``, so a notebook's caller,
who never typed the flag, and the CLI's reader both find what to change.

The scan reads the string literals of every ``raise X(...)`` and every ``warn``/``warning``
call of the library packages, of the module-level texts a raise names or that are named as
fixes (``RESUME_FIX``) and of what a ``..._refusal()`` function returns; a flag there must sit
in parentheses right after a keyword (``resume=False (--no-resume)``, ``steps= (--set
steps=N)``) or inside a backticked command (```wxens ingest ... --store X```), which reads
right to both callers. A flag with no keyword anywhere is allowed, with its reason, in
:data:`CLI_ONLY`.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LIBRARY = ("pipeline", "verification", "generators")
FLAG = re.compile(r"(?<![\w-])--[a-z][\w-]*")
COMMAND = re.compile(r"`(?:wxens|torchrun) [^`]*`")
"""A whole command to run, in backticks."""
AFTER_KEYWORD = re.compile(r"[\w.]+=[^\s()]* \([^()]*\)")
"""``keyword= (--flag)``, ``keyword=value (--flag value)``: the flag follows its keyword."""
WARNERS = {"warn", "warning"}
TEXT_NAMES = ("_FIX", "REFUSAL")
"""How a module-level text kept for a message ends its name (``RESUME_FIX``)."""
REFUSAL_FUNCTIONS = "_refusal"
"""How a function that builds a message's text ends its name (``_units_refusal``)."""
CLI_ONLY = {
    ("generators/distributed.py", "--nproc"): "launch() is only `wxens train --nproc`'s, "
    "which starts torchrun; a notebook trains in its own process and launches nothing",
}
"""Flags a library message may name bare, by file, each with why no keyword precedes it."""


def message_calls(tree: ast.AST) -> Iterator[ast.AST]:
    """Each ``raise`` and each ``warn``/``warning`` call: the nodes whose text a person reads."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Raise) and node.exc is not None:
            yield node.exc
        elif isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in WARNERS:
                yield node


def module_texts(tree: ast.Module, calls: list[ast.AST]) -> Iterator[ast.AST]:
    """The module-level string texts that ``calls`` name or whose names say they are a
    message's (:data:`TEXT_NAMES`), and the returns of :data:`REFUSAL_FUNCTIONS`."""
    named = {n.id for call in calls for n in ast.walk(call) if isinstance(n, ast.Name)}
    for node in tree.body:
        if isinstance(node, ast.Assign | ast.AnnAssign) and isinstance(node.value, ast.expr):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                name = getattr(target, "id", "")
                if name in named or name.endswith(TEXT_NAMES):
                    yield node.value
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and node.name.endswith(REFUSAL_FUNCTIONS):
            yield from (r.value for r in ast.walk(node) if isinstance(r, ast.Return) and r.value)


def texts(node: ast.AST) -> Iterator[tuple[ast.AST, str]]:
    """Each string literal under ``node`` as one text (an f-string's values as ``{}``)."""
    inner = set()
    for child in ast.walk(node):
        if isinstance(child, ast.JoinedStr):
            inner.update(id(v) for v in child.values)
            parts = [
                v.value if isinstance(v, ast.Constant) else "{}" for v in child.values
            ]
            yield child, "".join(parts)
    for child in ast.walk(node):
        if isinstance(child, ast.Constant) and isinstance(child.value, str):
            if id(child) not in inner:
                yield child, child.value


def bare_flags(text: str) -> list[str]:
    """The flags of ``text`` outside a backticked command and not after their keyword."""
    text = AFTER_KEYWORD.sub("", COMMAND.sub("", text))
    return FLAG.findall(text)


def violations(path: Path) -> list[tuple[str, int, str]]:
    """``(file, line, flag)`` of each bare flag in the texts of ``path``'s messages."""
    source = path.read_text()
    lines = source.splitlines()
    tree = ast.parse(source, filename=str(path))
    calls = list(message_calls(tree))
    found = []
    for call in calls + list(module_texts(tree, calls)):
        for node, text in texts(call):
            for flag in bare_flags(text):
                span = range(node.lineno, (node.end_lineno or node.lineno) + 1)
                line = next((n for n in span if flag in lines[n - 1]), node.lineno)
                found.append((path.relative_to(ROOT).as_posix(), line, flag))
    return found


def test_bare_flag_is_found_and_keyword_or_command_clears_it() -> None:
    assert bare_flags("pick from those with --variables") == ["--variables"]
    assert bare_flags("give another out_dir= (--out), or resume=False (--no-resume)") == []
    assert bare_flags("give steps= (--set steps=N)") == []
    assert bare_flags("create it with `wxens ingest SRC --store X`, or --overwrite") == [
        "--overwrite"
    ]


def test_texts_kept_apart_from_their_raise_are_read() -> None:
    tree = ast.parse(
        'RESUME_FIX = "pass --no-resume"\n'
        'HINT = "give --out"\n'
        'OTHER = "not a message --x"\n'
        "def _units_refusal(key):\n"
        '    return f"--units takes {key}"\n'
        "def check():\n"
        '    raise InputError(f"no; {HINT}")\n'
    )
    read = module_texts(tree, list(message_calls(tree)))
    assert sorted(bare_flags(t) for node in read for _, t in texts(node)) == [
        ["--no-resume"], ["--out"], ["--units"]
    ]


def test_library_messages_name_the_keyword_before_the_flag() -> None:
    every = [v for package in LIBRARY for p in sorted((ROOT / package).rglob("*.py"))
             for v in violations(p)]
    found = [f"{file}:{line}: {flag}" for file, line, flag in every if (file, flag) not in CLI_ONLY]
    assert not found, (
        "these messages name a CLI flag a notebook's caller never typed; write the keyword "
        "first, the flag after it once, `leads_hours= (--lead)`, or suggest a whole "
        "backticked `wxens ...` command (docs/architecture.md, Errors):\n" + "\n".join(found)
    )
    unused = set(CLI_ONLY) - {(file, flag) for file, _, flag in every}
    assert not unused, f"these CLI_ONLY allowances match no message any more; remove them: {unused}"
