"""The correction layer and verification run without torch: importing any of their modules,
and the ``wxens bias-correct`` and ``wxens baseline`` commands end to end, leave it
unloaded. Each check runs in a fresh interpreter (this one has torch loaded already)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from test_bias import analysis, warm_forecast  # noqa: F401

from pipeline.forecast_store import ForecastProvenance, write_forecast

REPO = Path(__file__).resolve().parents[3]


def run_fresh(code: str) -> str:
    """Run ``code`` in a fresh interpreter from the repository root; its stdout."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
    }
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_every_module_of_the_correction_layer_and_verification_imports_without_torch():
    out = run_fresh(
        """
        import importlib, pkgutil, sys
        import generators.correction, verification
        names = []
        for package in (generators.correction, verification):
            for module in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
                importlib.import_module(module.name)
                names.append(module.name)
        loaded = sorted(m for m in sys.modules if m == "torch" or m.startswith("torch."))
        assert not loaded, loaded[:5]
        print(" ".join(names))
        """
    )
    imported = out.split()
    for name in ("bias", "ranks", "spread", "spec", "baselines", "decaying_average"):
        assert f"generators.correction.{name}" in imported
    assert "verification.scores" in imported and "verification.kernels" in imported


def test_the_bias_correct_and_baseline_commands_run_without_torch(analysis, tmp_path):  # noqa: F811
    raw = tmp_path / "raw.zarr"
    provenance = ForecastProvenance("flow_matching", "0123456789abcdef", "euler:nfe=2", 2, 0)
    write_forecast(raw, warm_forecast(analysis, 1.5), provenance)
    store, out, clim = analysis.path, tmp_path / "corrected.zarr", tmp_path / "clim.zarr"
    correct = ["bias-correct", str(raw), "--truth", str(store), "--out", str(out)]
    correct += ["--spread-weight", "0.7", "--rank-weight", "0.5"]
    baseline = ["baseline", "climatology", "--store", str(store), "--train"]
    baseline += ["2000-01-01/2000-01-05", "--init", "2000-01-06T00", "--lead", "6h"]
    baseline += ["--members", "4", "--out", str(clim), "--no-progress"]
    run_fresh(
        f"""
        import sys
        from flows.cli import main
        assert main({correct!r}) == 0
        assert main({baseline!r}) == 0
        loaded = sorted(m for m in sys.modules if m == "torch" or m.startswith("torch."))
        assert not loaded, loaded[:5]
        """
    )
    assert out.is_dir() and clim.is_dir()
