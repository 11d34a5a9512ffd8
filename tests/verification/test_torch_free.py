"""Every module of ``verification``, and the ``wxens verify`` command that calls it, import
without torch."""

from __future__ import annotations

import pkgutil
import subprocess
import sys
from pathlib import Path

import verification

ROOT = Path(__file__).resolve().parents[2]


def test_every_verification_module_loads_without_torch():
    modules = sorted(f"verification.{m.name}" for m in pkgutil.iter_modules(verification.__path__))
    assert {"verification.scores", "verification.ranks", "verification.run"} <= set(modules)
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "import verification\n"
        "verification.verify_store, verification.verify, verification.VerifyConfig\n"
        "import flows.commands.verify, flows.dask\n"
        "loaded = sorted(m for m in sys.modules if m == 'torch' or m.startswith('torch.'))\n"
        "assert not loaded, loaded[:5]\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
