"""Extensions installed as packages (the entry points of ``wxens.extensions``) reach the
``wxens`` command: a score one registers is in ``wxens verify``'s scores file, a sampler
draws ``wxens forecast``'s members, a baseline ``wxens baseline``'s; one that fails to
import is a warning naming it, and the command still runs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from pipeline.forecast_store import open_forecast, provenance
from pipeline.store import open_store
from tests.generators.tiny import two_step_run
from tests.verification.verification_cases import verify_command

MAE_MODULE = '''
import numpy as np

from verification.aggregation import mean_over as weighted_mean
from verification.base import register_score
from verification.scores import ensemble_ufunc


def _abs_error_of_mean(members, truth):
    return np.abs(members.mean(axis=-1) - truth)


@register_score(
    "mean_abs_error", long_name="mean absolute error of the ensemble mean", units="variable",
    best=0.0,
)
def mean_abs_error(forecast, truth, *, member_dim="member", mean_over=None):
    error = ensemble_ufunc(
        _abs_error_of_mean, forecast, truth, member_dim=member_dim, output_dtypes=[float]
    )
    return weighted_mean(error, mean_over).rename("mean_abs_error")
'''

PARTS_MODULE = """
from dataclasses import dataclass
from typing import ClassVar

from generators.correction.baselines import BASELINES, ClimatologyEnsemble
from generators.samplers import SAMPLERS, EulerSampler


@SAMPLERS.register("euler_copy")
@dataclass(frozen=True)
class EulerCopy(EulerSampler):
    name: ClassVar[str] = "euler_copy"


@BASELINES.register("climatology_copy")
class ClimatologyCopy(ClimatologyEnsemble):
    name = "climatology_copy"
"""


def install(root: Path, distribution: str, entry_point: str, module: str, source: str) -> None:
    """What ``pip install`` leaves in site-packages: the module ``module`` and a
    ``dist-info`` declaring the entry point ``entry_point = module`` of wxens.extensions."""
    (root / f"{module}.py").write_text(textwrap.dedent(source))
    # named as pip names it (the name's "-" as "_"): importlib.metadata reads the name up to
    # the first "-", and "wxens-mae-0.1" would be a second "wxens", dropped as a duplicate
    info = root / f"{distribution.replace('-', '_')}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {distribution}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[wxens.extensions]\n{entry_point} = {module}\n")


def installed_beside(root: Path) -> dict[str, str]:
    """This environment with ``root`` first on the path, as an installed package's folder."""
    path = os.pathsep.join([str(root), *filter(None, [os.environ.get("PYTHONPATH")])])
    return {**os.environ, "PYTHONPATH": path}


def wxens(root: Path, *args: str) -> subprocess.CompletedProcess:
    """``python -m flows.cli ARGS`` with ``root`` on its path, as an installed package."""
    return subprocess.run(
        [sys.executable, "-m", "flows.cli", *args],
        env=installed_beside(root),
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_entry_points_of_a_dist_info_on_the_path_are_found(tmp_path, monkeypatch):
    from importlib.metadata import entry_points

    install(tmp_path, "wxens-mae", "mae", "wxens_mae", MAE_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    (point,) = entry_points(group="wxens.extensions")
    assert (point.name, point.value, point.dist.name, point.dist.version) == (
        "mae",
        "wxens_mae",
        "wxens-mae",
        "0.1",
    )


def test_a_score_of_an_installed_extension_is_in_the_scores_file(stores, tmp_path):
    install(tmp_path, "wxens-mae", "mae", "wxens_mae", MAE_MODULE)
    done = wxens(tmp_path, *verify_command(*stores, tmp_path / "scores.nc"))
    assert done.returncode == 0, done.stderr
    card = xr.open_datatree(tmp_path / "scores.nc")["scorecard"].to_dataset()
    assert "fair_crps" in card  # the built-ins are still there

    forecast = open_forecast(stores[0]).t2m.load()  # (init, member, lead, lat, lon)
    truth = open_store(stores[1]).dataset.t2m.load()
    weights = np.cos(np.deg2rad(forecast.latitude.values))[:, None]
    for lead in forecast.lead_time.values:
        errors = [
            np.abs(
                forecast.sel(init_time=init, lead_time=lead).values.mean(axis=0)
                - truth.sel(time=init + lead).values
            )
            for init in forecast.init_time.values
        ]
        expected = np.mean([(e * weights).sum() / (weights.sum() * e.shape[1]) for e in errors])
        got = float(card.mean_abs_error.sel(variable="t2m", lead_time=lead))
        assert got == pytest.approx(expected, rel=1e-5)

    info = wxens(tmp_path, "info")
    assert info.returncode == 0, info.stderr
    assert (
        "extension  mae = wxens_mae (wxens-mae 0.1): score mean_abs_error" in info.stdout
    ), info.stdout


def test_a_broken_extension_is_a_warning_naming_it_and_the_command_runs(stores, tmp_path):
    install(tmp_path, "wxens-broken", "broken", "wxens_broken", "import not_a_module_anywhere\n")
    done = wxens(tmp_path, *verify_command(*stores, tmp_path / "scores.nc"))
    assert done.returncode == 0, done.stderr
    assert (
        "WARNING pipeline.extensions: the extension 'broken' (wxens-broken 0.1, wxens_broken) "
        "failed to import (ModuleNotFoundError: No module named 'not_a_module_anywhere'); "
        "the command goes on without it. Fix the extension, or uninstall it "
        "(pip uninstall wxens-broken)"
    ) in done.stderr
    assert "Traceback" not in done.stderr
    assert (tmp_path / "scores.nc").is_file()

    info = wxens(tmp_path, "info")
    assert "extension  broken = wxens_broken (wxens-broken 0.1): failed: " in info.stdout


def test_a_score_of_the_wrong_signature_is_a_warning_naming_it_and_the_fix(stores, tmp_path):
    """A score function without ``mean_over`` was registered, then crashed ``wxens verify``
    in a TypeError traceback naming neither the extension nor what a score takes."""
    wrong = MAE_MODULE.replace('member_dim="member", mean_over=None', 'member_dim="member"')
    install(tmp_path, "wxens-sig", "sig", "wxens_sig", wrong)
    done = wxens(tmp_path, *verify_command(*stores, tmp_path / "scores.nc"))
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert (
        "the extension 'sig' (wxens-sig 0.1, wxens_sig) failed to import (InputError: score "
        "'mean_abs_error' (wxens_sig.mean_abs_error) takes (forecast, truth, *, "
        "member_dim='member'); a score takes (forecast, truth, *, member_dim, mean_over)"
    ) in done.stderr, done.stderr
    card = xr.open_datatree(tmp_path / "scores.nc")["scorecard"].to_dataset()
    assert "fair_crps" in card and "mean_abs_error" not in card


def test_a_name_an_extension_takes_from_wxens_is_a_warning_naming_both(stores, tmp_path):
    taken = MAE_MODULE.replace('"mean_abs_error", long_name', '"fair_crps", long_name')
    install(tmp_path, "wxens-clash", "clash", "wxens_clash", taken)
    done = wxens(tmp_path, *verify_command(*stores, tmp_path / "scores.nc"))
    assert done.returncode == 0, done.stderr
    assert (
        "score 'fair_crps' is registered by verification.scores and by the extension "
        "'clash' (wxens-clash 0.1, wxens_clash); the command goes on with "
        "verification.scores's. Rename the extension's"
    ) in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
    card = xr.open_datatree(tmp_path / "scores.nc")["scorecard"].to_dataset()
    assert card.fair_crps.attrs["long_name"] == "fair CRPS"


def test_a_sampler_of_an_installed_extension_draws_the_forecast(tmp_path):
    install(tmp_path, "wxens-parts", "parts", "wxens_parts", PARTS_MODULE)
    two_step_run(tmp_path)
    common = ["forecast", "--checkpoint", str(tmp_path / "run"), "--store"]
    common += [str(tmp_path / "syn.zarr"), "--init", "2000-01-03T00", "--members", "2"]
    common += ["--lead", "6h", "--no-progress", "--out"]
    done = wxens(tmp_path, *common, str(tmp_path / "f.zarr"), "--sampler", "euler_copy:nfe=2")
    assert done.returncode == 0, done.stderr
    assert provenance(tmp_path / "f.zarr").sampler == "euler_copy:nfe=2,noise_scale=1.0"
    assert open_forecast(tmp_path / "f.zarr").t2m.notnull().all()

    unknown = wxens(tmp_path, *common, str(tmp_path / "g.zarr"), "--sampler", "eular:nfe=2")
    assert unknown.returncode == 2
    assert (
        "unknown sampler 'eular'; known: edm_euler, edm_heun, euler, euler_copy, heun"
        in unknown.stderr
    ), unknown.stderr


def test_a_baseline_of_an_installed_extension_is_drawn_by_wxens_baseline(stores, tmp_path):
    install(tmp_path, "wxens-parts", "parts", "wxens_parts", PARTS_MODULE)
    out = tmp_path / "b.zarr"
    argv = ["baseline", "climatology_copy", "--store", str(stores[1]), "--train"]
    argv += ["2000-01-01/2000-01-02", "--init", "2000-01-03T00", "--members", "2", "--lead"]
    done = wxens(tmp_path, *argv, "6h", "--no-progress", "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert "climatology_copy baseline, 1 initial time x 2 members" in done.stdout
    assert provenance(out).generator == "baseline:climatology_copy"
    assert open_forecast(out).t2m.notnull().all()


@pytest.mark.parametrize(
    ("sig", "line", "code"),
    [(signal.SIGINT, "interrupted", 130), (signal.SIGTERM, "terminated (SIGTERM)", 143)],
)
def test_a_signal_while_an_extension_imports_stops_the_command_in_one_line(
    tmp_path, sig, line, code
):
    """Ctrl-C during a slow extension's import ended in the traceback of the extension's
    frame (SIGTERM: no line at all), where any other moment of the command says one line
    and exits 130 or 143."""
    slow = "import time\nprint('importing', flush=True)\ntime.sleep(60)\n"
    install(tmp_path, "wxens-slow", "slow", "wxens_slow", slow)
    process = subprocess.Popen(
        [sys.executable, "-m", "flows.cli", "info"],
        env=installed_beside(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout.readline() == "importing\n"
        process.send_signal(sig)
        out, err = process.communicate(timeout=30)
    finally:
        process.kill()
    assert process.returncode == code, err
    assert "Traceback" not in err, err
    assert err.splitlines()[-1] == f"wxens: {line}", err
