"""The import graph of the generators: no cycle between its modules (the layering across
packages and the torch-free packages are tests/test_layers.py's).

The graph is read from the source (top-level imports; those under ``if TYPE_CHECKING:``
are annotations only and left out). Importing ``a.b.c`` runs ``a/__init__`` and
``a/b/__init__`` first, so a module that imports it depends on those packages too.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def top_level_imports(path: Path) -> set[str]:
    """Modules imported at module level (TYPE_CHECKING blocks excluded)."""
    found: set[str] = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def generators_graph() -> dict[str, set[str]]:
    files = {module_name(p): p for p in (ROOT / "generators").rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        targets = {t for t in top_level_imports(path) if t in files}
        for target in list(targets):
            targets |= {".".join(target.split(".")[:i]) for i in range(1, target.count(".") + 1)}
        ancestors = {".".join(name.split(".")[:i]) for i in range(1, name.count(".") + 1)}
        explicit = {t for t in top_level_imports(path) if t in files}
        # an ancestor package is already being imported; it is a dependency only when
        # imported by name (its __init__ then must not need this module)
        graph[name] = {t for t in targets if t != name and (t not in ancestors or t in explicit)}
    return graph


def cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as a path, or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_the_cycle_finder_finds_a_cycle():
    assert cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert cycle({"a": {"b"}, "b": set()}) is None


def test_the_generators_modules_import_one_another_without_a_cycle():
    graph = generators_graph()
    assert "generators.data.forecast" in graph["generators.rollout"]
    assert cycle(graph) is None, " -> ".join(cycle(graph))


def test_training_does_not_import_calibration_or_rollout():
    graph = generators_graph()
    assert not graph["generators.train"] & {"generators.calibration", "generators.rollout"}
