"""A run that trains first refuses a sampler its model kind cannot take before training,
not after it (the forecast step refused it only once the training had run)."""

from __future__ import annotations

import pytest

from flows.parameter_checks import check_flow_parameters
from pipeline.errors import InputError


def _config(tmp_path, kind="flow_matching"):
    path = tmp_path / "c.yaml"
    path.write_text(f"model: {{kind: {kind}}}\nsteps: 4\n")
    return str(path)


def test_a_sampler_of_the_other_family_is_refused_before_training(tmp_path):
    given = {"train_config": _config(tmp_path), "sampler": "edm_heun"}
    with pytest.raises(InputError, match="flow_matching cannot sample with the 'edm_heun'"):
        check_flow_parameters("ensemble_run", given)
    edm = {"train_config": _config(tmp_path), "train_overrides": ["model.kind=edm"]}
    with pytest.raises(InputError, match="edm cannot sample with the 'euler'"):
        check_flow_parameters("ensemble_run", edm | {"sampler": "euler:nfe=4"})
    check_flow_parameters("ensemble_run", edm | {"sampler": "edm_euler:num_steps=2"})
    # a config not there yet is the training's to report, as before
    check_flow_parameters("ensemble_run", {"train_config": "later.yaml", "sampler": "heun"})


@pytest.mark.parametrize("flow", ["forecast", "baseline", "ensemble_run"])
def test_a_negative_seed_is_refused_when_the_schedule_is_loaded(flow):
    """A schedule's ``seed: -1`` passed wxens serve's checks and failed each run as it
    fired, with numpy's 'expected non-negative integer' traceback."""
    with pytest.raises(InputError, match="seed must be a whole number of at least 0, got -1"):
        check_flow_parameters(flow, {"seed": -1})
    with pytest.raises(InputError, match="seed"):
        check_flow_parameters(flow, {"seed": 1.5})
