"""The layering of the design: imports point one way,

    pipeline <- verification <- generators.correction <- generators <- flows,

only ``generators`` outside ``correction`` imports torch, and no library module imports
another project module inside a function (the way a cycle is usually dodged).

Run as a script, it prints the package -> package import counts.
"""

from __future__ import annotations

import ast
import collections
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("pipeline", "verification", "generators", "flows")
LAYERS = ("pipeline", "verification", "generators.correction", "generators", "flows")
ALLOWED = {layer: set(LAYERS[: i + 1]) for i, layer in enumerate(LAYERS)}
LIBRARY = ("pipeline", "verification", "generators")


def layer_of(module: str) -> str | None:
    """The layer of a dotted module name, or None for a third-party module."""
    if module == "generators.correction" or module.startswith("generators.correction."):
        return "generators.correction"
    top = module.split(".")[0]
    return top if top in PACKAGES else None


def modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


def imports(path: Path) -> list[tuple[str, bool]]:
    """(imported module, inside a function) for each import statement of ``path``."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found: list[tuple[str, bool]] = []

    def visit(node: ast.AST, nested: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inner = nested or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
            if isinstance(child, ast.Import):
                found.extend((alias.name, inner) for alias in child.names)
            elif isinstance(child, ast.ImportFrom) and child.module and not child.level:
                found.append((child.module, inner))
            elif isinstance(child, ast.If) and _is_type_checking(child.test):
                continue  # annotations only, never executed
            visit(child, inner)

    visit(tree, False)
    return found


def _is_type_checking(test: ast.expr) -> bool:
    return isinstance(test, ast.Name) and test.id == "TYPE_CHECKING"


def import_graph() -> collections.Counter[tuple[str, str]]:
    """Counts of import statements from one layer to another (third-party left out)."""
    graph: collections.Counter[tuple[str, str]] = collections.Counter()
    for name, path in modules().items():
        for target, _ in imports(path):
            if (to := layer_of(target)) is not None:
                graph[(layer_of(name), to)] += 1
    return graph


def test_imports_point_one_way():
    wrong = [
        f"{path.relative_to(ROOT)} imports {target}"
        for name, path in modules().items()
        for target, _ in imports(path)
        if (to := layer_of(target)) is not None and to not in ALLOWED[layer_of(name)]
    ]
    assert not wrong, "imports against the layering:\n" + "\n".join(wrong)


def test_only_generators_outside_correction_import_torch():
    wrong = [
        f"{path.relative_to(ROOT)} imports {target}"
        for name, path in modules().items()
        for target, _ in imports(path)
        if target.split(".")[0] == "torch" and layer_of(name) not in ("generators", "flows")
    ]
    assert not wrong, "\n".join(wrong)


def test_no_library_module_imports_the_project_inside_a_function():
    wrong = [
        f"{path.relative_to(ROOT)} imports {target} inside a function"
        for name, path in modules().items()
        if layer_of(name) in ("pipeline", "verification", "generators.correction", "generators")
        for target, nested in imports(path)
        if nested and layer_of(target) is not None
    ]
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("package", ["pipeline", "verification", "generators.correction"])
def test_torch_free_packages_load_without_torch(package):
    """Every module of the package imported in a fresh interpreter leaves torch unloaded."""
    names = sorted(n for n in modules() if n == package or n.startswith(package + "."))
    code = "import sys\n" + "".join(f"import {n}\n" for n in names)
    code += "assert 'torch' not in sys.modules, 'torch was loaded'\n"
    run_in_fresh_interpreter(code)


def test_stores_and_training_load_without_grib_decoder():
    """cfgrib loads ecCodes' C library when imported: only opening a GRIB file may import
    it, not the store or training modules every command loads (a machine without ecCodes'
    libraries trains and forecasts from Zarr)."""
    code = "import sys\nimport pipeline.store, pipeline.sources, generators.train\n"
    code += "assert 'cfgrib' not in sys.modules, 'cfgrib was loaded'\n"
    run_in_fresh_interpreter(code)


def test_the_commands_without_a_flow_load_without_prefect():
    """Importing Prefect configures logging (its handlers and levels): the training and
    verify commands, which read ``flows.inputs``'s checks, lost every INFO line of theirs
    (the states read, the dask dashboard) when that module came to import ``flows.runtime``
    at its top. Only the flows, ``run``, ``demo`` and ``serve`` load it."""
    code = "import sys\nimport flows.inputs, flows.commands.train, flows.commands.verify\n"
    code += "assert 'prefect' not in sys.modules, 'prefect was loaded'\n"
    run_in_fresh_interpreter(code)


def test_the_flows_load_without_the_report():
    """Every served run and `wxens run` imports the flows: they loaded the report's
    matplotlib and verification.run (0.3 s more a process) once the products task and its
    parameter check imported ``verification.product_output`` at their tops; the tasks
    import such parts as they run."""
    code = "import sys\nimport flows.pipelines, flows.steps, flows.tasks\n"
    code += "assert 'matplotlib' not in sys.modules, 'matplotlib was loaded'\n"
    code += "assert 'verification.run' not in sys.modules, 'verification.run was loaded'\n"
    run_in_fresh_interpreter(code)


def run_in_fresh_interpreter(code: str) -> None:
    """Run ``code`` in a new Python process from the repository root; fail with its stderr."""
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-2000:]


if __name__ == "__main__":
    for (source, target), count in sorted(import_graph().items()):
        print(f"{source:>22} -> {target:<22} {count}")
