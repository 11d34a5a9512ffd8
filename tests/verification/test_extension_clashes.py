"""A name an extension registers that wxens (or an extension loaded before it) holds is
handled by the rule for a broken extension: a warning naming both owners, wxens' own entry
kept, and every command still runs, ``wxens info`` first, which names the culprit."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import xarray as xr

from tests.verification.test_extensions import install, installed_beside, wxens
from tests.verification.verification_cases import verify_command

EULER_MODULE = """
from generators.sampler_spec import SAMPLERS


@SAMPLERS.register("euler")
class Mine:
    name = "euler"
"""

# imports verification.base only: its fair_crps is registered before wxens' own
FAIR_CRPS_MODULE = """
import xarray as xr

from verification.base import register_score


@register_score("fair_crps", long_name="a constant", units="variable", best=0.0)
def constant(forecast, truth, *, member_dim="member", mean_over=None):
    return xr.full_like(truth, 123.0).mean(list(mean_over or []))
"""


def test_a_sampler_named_as_a_built_in_is_a_warning_and_every_command_runs(tmp_path):
    """An extension's sampler ``euler`` made every command exit 2, ``--help`` and ``info``
    (the one that lists extensions) included."""
    install(tmp_path, "wxens-clash", "clash", "wxens_clash", EULER_MODULE)
    assert wxens(tmp_path, "--help").returncode == 0
    info = wxens(tmp_path, "info")
    assert info.returncode == 0, info.stderr
    assert (
        "WARNING pipeline.extensions: sampler 'euler' is registered by generators.sampler_spec "
        "and by the extension 'clash' (wxens-clash 0.1, wxens_clash); the command goes on "
        "with generators.sampler_spec's. Rename the extension's, or uninstall it (pip "
        "uninstall wxens-clash)"
    ) in info.stderr, info.stderr
    assert (
        "extension  clash = wxens_clash (wxens-clash 0.1): sampler euler (not used: taken "
        "by generators.sampler_spec)"
    ) in info.stdout, info.stdout
    code = "from generators.samplers import SAMPLERS, EulerSampler\n"
    code += "print(SAMPLERS['euler'] is EulerSampler)"
    done = subprocess.run(
        [sys.executable, "-c", code],
        env=installed_beside(tmp_path),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.stdout.strip() == "True", done.stderr


def test_a_score_registered_before_the_built_in_gives_way_to_it(stores, tmp_path):
    """A score ``fair_crps`` of an extension importing only ``verification.base`` passed
    ``wxens info`` silently, credited to the extension, and failed only in verify."""
    install(tmp_path, "wxens-clash", "clash", "wxens_clash", FAIR_CRPS_MODULE)
    warning = (
        "WARNING pipeline.extensions: score 'fair_crps' is registered by verification.scores "
        "and by the extension 'clash' (wxens-clash 0.1, wxens_clash); the command goes on "
        "with verification.scores's."
    )
    info = wxens(tmp_path, "info")
    assert info.returncode == 0, info.stderr
    assert warning in info.stderr, info.stderr
    assert "score fair_crps (not used: taken by verification.scores)" in info.stdout

    done = wxens(tmp_path, *verify_command(*stores, tmp_path / "scores.nc"))
    assert done.returncode == 0, done.stderr
    assert warning in done.stderr, done.stderr
    card = xr.open_datatree(tmp_path / "scores.nc")["scorecard"].to_dataset()
    crps = card.fair_crps.values
    assert np.isfinite(crps).all() and (crps != 123.0).all()
    assert card.fair_crps.attrs["long_name"] == "fair CRPS"


# imports generators.base only: its names are registered before the built-ins' modules load
UNET_EDM_MODULE = """
from generators.base import BACKBONES, GENERATORS


@BACKBONES.register("unet")
class Mine:
    config_class = object


@GENERATORS.register("edm")
class MyEDM:
    config_class = object
"""


def test_a_generator_or_backbone_named_as_a_built_in_is_warned_where_none_loads(tmp_path):
    """Registered before the built-ins' (torch) modules loaded, an extension's ``unet`` and
    ``edm`` passed ``wxens info`` silently, credited to it; the clash was warned only by a
    command that imported the generators, and after it had begun."""
    install(tmp_path, "wxens-clash", "clash", "wxens_clash", UNET_EDM_MODULE)
    info = wxens(tmp_path, "info")
    assert info.returncode == 0, info.stderr
    for part, module in (("backbone 'unet'", "backbone"), ("generator 'edm'", "diffusion")):
        assert (
            f"WARNING pipeline.extensions: {part} is registered by generators.{module} and by "
            "the extension 'clash' (wxens-clash 0.1, wxens_clash); the command goes on with "
            f"generators.{module}'s."
        ) in info.stderr, info.stderr
    assert (
        "clash = wxens_clash (wxens-clash 0.1): backbone unet (not used: taken by "
        "generators.backbone), generator edm (not used: taken by generators.diffusion)"
    ) in info.stdout, info.stdout


def test_the_built_in_generators_and_backbones_are_declared_where_they_register():
    from generators.base import BACKBONES
    from generators.models import GENERATORS

    for registry in (GENERATORS, BACKBONES):
        assert registry.built_in  # the names an extension may not take, torch unloaded
        for name, module in registry.built_in.items():
            assert registry[name].__module__ == module, (name, module)
