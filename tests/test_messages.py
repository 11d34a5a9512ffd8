"""The library's error convention (docs/architecture.md, "Errors"): a message names the Python
keyword with the CLI's flag after it once, ``leads_hours= (--lead)``, so a notebook's caller,
who never typed the flag, and the CLI's reader both find what to change.

The scan reads the string literals of every ``raise X(...)`` and every ``warn``/``warning``
call of the library packages; a flag there must sit in parentheses right after a keyword
(``resume=False (--no-resume)``, ``steps= (--set steps=N)``) or inside a backticked command
(```wxens ingest ... --store X```), which reads right to both callers.
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


def violations(path: Path) -> list[str]:
    source = path.read_text()
    lines = source.splitlines()
    found = []
    for call in message_calls(ast.parse(source, filename=str(path))):
        for node, text in texts(call):
            for flag in bare_flags(text):
                span = range(node.lineno, (node.end_lineno or node.lineno) + 1)
                line = next((n for n in span if flag in lines[n - 1]), node.lineno)
                found.append(f"{path.relative_to(ROOT)}:{line}: {flag}")
    return found


def test_bare_flag_is_found_and_keyword_or_command_clears_it() -> None:
    assert bare_flags("pick from those with --variables") == ["--variables"]
    assert bare_flags("give another out_dir= (--out), or resume=False (--no-resume)") == []
    assert bare_flags("give steps= (--set steps=N)") == []
    assert bare_flags("create it with `wxens ingest SRC --store X`, or --overwrite") == [
        "--overwrite"
    ]


def test_library_messages_name_the_keyword_before_the_flag() -> None:
    found = [v for package in LIBRARY for p in sorted((ROOT / package).rglob("*.py"))
             for v in violations(p)]
    assert not found, (
        "these messages name a CLI flag a notebook's caller never typed; write the keyword "
        "first, the flag after it once, `leads_hours= (--lead)`, or suggest a whole "
        "backticked `wxens ...` command (docs/architecture.md, Errors):\n" + "\n".join(found)
    )
