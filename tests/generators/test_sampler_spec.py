"""Sampler specs (``euler:nfe=8``) go through the one typed key=value parser: values take
the sampler's field types, errors name the key and the known keys, and the spec written
for provenance keeps its form."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from generators.config import TrainConfig, apply_overrides, parse_sampler, sampler_spec
from generators.config_io import from_mapping
from generators.sampler_spec import EDMParameters, FlowParameters
from generators.samplers import EDMHeunSampler, EulerSampler, HeunSampler
from pipeline.errors import InputError
from pipeline.registry import Registry

ROOT = Path(__file__).resolve().parents[2]


def test_values_take_the_field_types():
    sampler = parse_sampler(" heun : nfe = 4 , noise_scale = 1.05 ")
    assert sampler == HeunSampler(nfe=4, noise_scale=1.05)
    assert (
        type(sampler.nfe) is int and type(parse_sampler("euler:noise_scale=1").noise_scale) is float
    )
    assert parse_sampler("euler") == EulerSampler()


def test_provenance_specs_keep_their_form():
    assert sampler_spec(EulerSampler(nfe=8, noise_scale=1.05)) == "euler:nfe=8,noise_scale=1.05"
    assert sampler_spec(EDMHeunSampler(num_steps=3)) == (
        "edm_heun:num_steps=3,sigma_min=0.02,sigma_max=80.0,rho=7.0,churn=2.5,"
        "churn_sigma_min=0.75,churn_sigma_max=80.0,noise_inflation=1.0,noise_scale=1.0"
    )
    for spec in ("euler:nfe=8,noise_scale=1.05", "edm_heun:num_steps=3,churn=0.0"):
        assert parse_sampler(sampler_spec(parse_sampler(spec))) == parse_sampler(spec)


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        (
            "euler:nfee=8",
            r"sampler 'euler:nfee=8': unknown key 'nfee'; valid keys: nfe, noise_scale",
        ),
        ("euler:nfe", r"'nfe' is not key=value; valid keys: nfe, noise_scale"),
        ("euler:nfe=2.5", r"nfe='2.5' is not an integer"),
        ("euler:noise_scale=wide", r"noise_scale='wide' is not a number"),
        ("euler:nfe=2,nfe=3", r"'nfe' is given twice"),
        ("rk4:nfe=3", r"unknown sampler 'rk4'; known: edm_euler, edm_heun, euler, heun"),
        ("euler:nfe=0", "nfe must be at least 1"),
        # an empty churn window was accepted and the churn asked for silently never applied
        (
            "edm_heun:churn_sigma_min=5,churn_sigma_max=1",
            r"need 0 <= churn_sigma_min <= churn_sigma_max, got 5.0, 1.0",
        ),
        ("edm_euler:churn_sigma_min=-1", r"need 0 <= churn_sigma_min"),
        # an OverflowError traceback from the noise schedule, found by the samplers' walkthrough
        ("edm_heun:rho=0.001", r"rho=0.001 .* noise levels overflow"),
    ],
)
def test_bad_specs_name_the_key(spec, words):
    with pytest.raises(InputError, match=words):
        parse_sampler(spec)


def test_overrides_split_like_specs():
    out = apply_overrides({"optim": {"lr": 1.0}}, [" optim.lr = 1.0e-4", "data.leads=[1, 6]"])
    assert out == {"optim": {"lr": 1e-4}, "data": {"leads": [1, 6]}}
    with pytest.raises(InputError, match=r"override: '=3' is not key.subkey=value"):
        apply_overrides({}, ["=3"])


def test_a_key_of_a_section_left_out_names_the_whole_section_to_give():
    """``fine_tune: null`` (a derived config's, left out) and ``--set fine_tune.steps=10``:
    "'fine_tune' is a value, not a section" named no fix."""
    data = {"fine_tune": None, "model": {"backbone": None}}
    whole = r"\(its other keys default\): 'fine_tune=\{steps: 10\}' in overrides= \(--set\)"
    with pytest.raises(InputError, match=whole):
        apply_overrides(data, ["fine_tune.steps=10"])
    with pytest.raises(InputError, match=r"'model.backbone=\{a: \{b: 1\}\}' in overrides="):
        apply_overrides(data, ["model.backbone.a.b=1"])
    with pytest.raises(InputError, match=r"'lr' is a value, not a section"):
        apply_overrides({"optim": {"lr": 1.0}}, ["optim.lr.x=1"])
    given = apply_overrides({"fine_tune": None}, ["fine_tune={steps: 10}"])
    assert given == {"fine_tune": {"steps": 10}}


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ("edm_heun:num_steps=5", "flow_matching cannot sample with the 'edm_heun'"),
        ("euler:nfe=0", "nfe must be at least 1"),
    ],
)
def test_a_calibration_sampler_is_checked_before_training(spec, words):
    # Unchecked, the whole training ran and then the calibration after it failed.
    data = {
        "model": {"kind": "flow_matching"},
        "calibration": {"period": {"start": "2019-03-22", "end": "2019-03-23"}, "sampler": spec},
    }
    with pytest.raises(InputError, match=f"calibration.sampler: .*{words}"):
        from_mapping(TrainConfig, data, where="cfg")


@pytest.mark.parametrize(
    ("kind", "spec", "words"),
    [
        (
            "flow_matching",
            "edm_heun",
            r"'edm_heun' sampler; use euler or heun \(e.g. heun:nfe=10\)",
        ),
        (
            "edm",
            "heun:nfe=3",
            r"'heun' sampler; use edm_euler or edm_heun \(e.g. edm_heun:num_steps=20\)",
        ),
    ],
)
def test_a_sampler_of_the_other_family_is_refused_naming_the_right_ones(kind, spec, words):
    # It named a class ("its FlowSampler samplers"), not a spec a user can type.
    import generators.models  # noqa: F401  (registers the generators)
    from generators.base import GENERATORS

    with pytest.raises(InputError, match=words):
        GENERATORS[kind].check_sampler(parse_sampler(spec))


def test_switching_the_model_kind_names_the_other_kinds_keys():
    # `wxens config --set model.kind=edm` on a derived (flow-matching) config was refused
    # with "unknown key(s) ['sample_nfe']", saying neither why nor what to do.
    data = {"model": {"kind": "edm", "sample_nfe": 10}}
    with pytest.raises(InputError, match=r"\['sample_nfe'\] .* flow_matching, not edm.*drop them"):
        from_mapping(TrainConfig, data, where="cfg")


def test_the_declared_samplers_are_implemented_by_subclasses_of_their_parameters():
    # The names and keys are declared once, torch-free, for the CLI's parser; the torch
    # classes take their place: every name implemented, with the declared fields.
    code = """
import sys, dataclasses
from generators.sampler_spec import SAMPLERS
declared = dict(SAMPLERS.items())
assert "torch" not in sys.modules, "torch was loaded"
from generators.samplers import Sampler
for name, cls in SAMPLERS.items():
    assert issubclass(cls, Sampler) and issubclass(cls, declared[name]), (name, cls)
    fields = [(f.name, f.type, f.default) for f in dataclasses.fields(cls)]
    assert fields == [(f.name, f.type, f.default) for f in dataclasses.fields(declared[name])]
print(",".join(sorted(declared)))
"""
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "edm_euler,edm_heun,euler,heun"


def test_only_a_subclass_of_a_declared_entry_implements_it():
    registry: Registry[type] = Registry("thing")
    registry.register("flow")(FlowParameters)
    with pytest.raises(TypeError, match="implements the thing 'flow', declared as .*Flow"):
        registry.implement("flow")(EDMParameters)
    with pytest.raises(TypeError, match="implements the thing 'edm', declared as None"):
        registry.implement("edm")(EDMParameters)
    assert registry.implement("flow")(EulerSampler) is EulerSampler
    assert registry["flow"] is EulerSampler
