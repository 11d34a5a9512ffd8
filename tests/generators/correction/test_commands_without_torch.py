"""The commands that need no model run without torch: ``wxens bias-correct`` and ``wxens
baseline`` end to end, and the ``wxens verify`` command's module, leave it unloaded. The check
runs in a fresh interpreter (this one has torch loaded already); that every module of the
torch-free packages imports without torch is tests/test_layers.py's."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from warm import warm_forecast

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


def test_the_bias_correct_baseline_and_verify_commands_run_without_torch(analysis, tmp_path):  # noqa: F811
    raw = tmp_path / "raw.zarr"
    provenance = ForecastProvenance("flow_matching", "0123456789abcdef", "euler:nfe=2", 2, 0)
    write_forecast(raw, warm_forecast(analysis, 1.5), provenance)
    store, out, clim = analysis.path, tmp_path / "corrected.zarr", tmp_path / "clim.zarr"
    correct = ["bias-correct", str(raw), "--truth", str(store), "--out", str(out)]
    correct += ["--bias-weight", "0.2", "--spread-weight", "0.7", "--rank-weight", "0.5"]
    baseline = ["baseline", "climatology", "--store", str(store), "--train"]
    baseline += ["2000-01-01/2000-01-05", "--init", "2000-01-06T00", "--lead", "6h"]
    baseline += ["--members", "4", "--out", str(clim), "--no-progress"]
    run_fresh(
        f"""
        import sys
        import flows.commands.verify, flows.cluster
        from flows.cli import main
        assert main({correct!r}) == 0
        assert main({baseline!r}) == 0
        loaded = sorted(m for m in sys.modules if m == "torch" or m.startswith("torch."))
        assert not loaded, loaded[:5]
        """
    )
    assert out.is_dir() and clim.is_dir()
