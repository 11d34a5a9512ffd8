"""A config derived for a budget with ``--set model.kind`` or ``model.backbone.kind`` of a
generator or backbone registered in-process that lacks what flow matching and the U-Net
have (``sample_nfe``, the fine-tune's loss-mix keys, ``widths``): its steps are sized, or
what cannot be is left out with a note."""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from typing import ClassVar

import pytest

from flows.cli import main
from flows.commands.derive import resumed_config, with_overrides
from generators.backbone import BackboneConfig
from generators.base import GENERATORS, BaseBackboneConfig
from generators.config import load_train_config
from generators.config_derive import DerivedConfig, StepSeconds, derive_config
from generators.config_overhead import overhead_seconds
from generators.flow_matching import FlowMatching
from generators.objective import ObjectiveConfig, masked_mean
from generators.samplers import EulerSampler
from pipeline.errors import InputError
from pipeline.store import ingest

SECONDS = StepSeconds(main=0.5, fine_tune=2.0, forward=0.001)


@dataclass(frozen=True)
class StepsFlowConfig(ObjectiveConfig):
    """Flow matching's, its forecast sampler's evaluations named otherwise."""

    backbone: BaseBackboneConfig = field(default_factory=BackboneConfig)
    euler_steps: int = 4


@GENERATORS.register("steps_flow")
class StepsFlow(FlowMatching):
    name: ClassVar[str] = "steps_flow"
    config_class: ClassVar[type] = StepsFlowConfig

    def default_sampler(self) -> EulerSampler:
        return EulerSampler(nfe=self.config.euler_steps)


@dataclass(frozen=True)
class PlainFlowConfig:
    """No loss mix: the regression alone, so no fair-CRPS fine-tune."""

    backbone: BaseBackboneConfig = field(default_factory=BackboneConfig)
    sample_nfe: int = 3


@GENERATORS.register("plain_flow")
class PlainFlow(FlowMatching):
    name: ClassVar[str] = "plain_flow"
    config_class: ClassVar[type] = PlainFlowConfig

    def loss(self, batch, *, generator=None):
        encoded = self.backbone.encode(batch.condition)
        error = self.regression_error(batch.target, encoded, generator)
        return masked_mean(error, batch.valid)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    path = tmp_path_factory.mktemp("derive_parts") / "syn.zarr"
    spec = "synthetic:n_lat=16,n_lon=16,n_times=40,step=6h,seed=2"
    return ingest(spec, path, variables=["t2m"], progress=False)


def derived(store, *sets: str) -> DerivedConfig:
    """``wxens config --store S --budget 30min --set ...``, the steps' times given."""

    def trained(config):  # as the command applies its --set before timing
        return with_overrides(DerivedConfig(config, ()), sets).config

    return with_overrides(
        derive_config(store, budget="30min", step_seconds=SECONDS, trained=trained), sets
    )


def test_a_budget_is_sized_for_a_generator_without_sample_nfe(store):
    """'StepsFlowConfig' object has no attribute 'sample_nfe': an AttributeError."""
    config = derived(store, "model.kind=steps_flow").config
    assert config.steps >= 20 and config.fine_tune is not None


def test_the_forecasts_overhead_counts_the_models_own_sampler(store):
    """Without a fine-tune the calibration forecasts run the model's default sampler: its
    evaluations were read from flow matching's sample_nfe, which this one lacks."""
    config = derived(store, "model.kind=steps_flow", "fine_tune=null").config
    one = overhead_seconds(config, 1, 1.0)
    two = overhead_seconds(config, 2, 1.0)
    calibration = config.calibration
    assert two - one == calibration.members * len(config.data.sample_spec.leads) * 4


def test_a_generator_without_a_loss_mix_is_derived_without_the_fine_tune(store):
    """The fair-CRPS fine-tune sets the loss-mix keys, which this generator's config lacks:
    a TypeError from dataclasses.replace, deep in the step's memory count."""
    made = derived(store, "model.kind=plain_flow")
    assert made.config.fine_tune is None and made.config.steps >= 20
    said = " ".join(made.notes)
    assert "fine-tune: left out: the plain_flow generator's config has no " in said, said
    assert "crps_members" in said, said


@pytest.mark.parametrize(
    "section, sets", [("fine_tune: {steps: 2}\n", []), ("", ["fine_tune.steps=2"])]
)
def test_a_fine_tune_of_a_generator_without_a_loss_mix_is_refused_as_the_config_is_read(
    tmp_path, section, sets
):
    """It trained the main phase, then the fine-tune's loss mix ended in a TypeError."""
    path = tmp_path / "plain.yaml"
    path.write_text(f"model: {{kind: plain_flow}}\n{section}")
    with pytest.raises(InputError) as refused:
        load_train_config(path, sets)
    said = str(refused.value)
    assert said.startswith(f"{path}: ") and "plain_flow" in said, said
    assert "crps_members, crps_nfe" in said and "fine_tune: null" in said, said
    assert load_train_config(path, [*sets, "fine_tune=null"]).fine_tune is None


def wxens(argv: list[str], capsys) -> tuple[int, str, str]:
    """``wxens argv`` in this process (where the generators above are registered): its exit
    code, stdout and stderr."""
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("command", ["config", "train"])
@pytest.mark.parametrize("asked", ["fine_tune.steps=10", "fine_tune={steps: 10}"])
def test_a_fine_tune_asked_by_set_of_a_generator_without_a_loss_mix_is_refused(
    store, tmp_path, capsys, command, asked
):
    """The fine-tune the user asked for by --set was dropped with a note (config) or refused
    as a value that is no section, naming neither the generator nor the fix (train)."""
    argv = [command, "--store", str(store.path), "--set", "model.kind=plain_flow"]
    argv += ["--set", "steps=40", "--set", asked]
    argv += ["--out", str(tmp_path / "run")] if command == "train" else []
    code, out, err = wxens(argv, capsys)
    assert code == 2 and not out, (code, out)
    assert f"drop --set {shlex.quote(asked)} " in err and "plain_flow generator" in err, err
    assert "crps_members, crps_nfe" in err and "model.kind" in err, err
    assert not (tmp_path / "run").exists()


def test_the_derived_fine_tune_of_a_generator_without_a_loss_mix_is_left_out_with_a_note(
    store, capsys
):
    """The fine-tune no --set asked for: the derivation's default, left out as before."""
    argv = ["config", "--store", str(store.path), "--set", "model.kind=plain_flow"]
    argv += ["--set", "steps=40"]
    code, out, err = wxens(argv, capsys)
    assert code == 0, err
    assert "fine-tune: left out: the plain_flow generator's config has no" in out, out
    assert "\nfine_tune: null\n" in out, out


def test_a_fine_tune_asked_by_set_of_a_resumed_run_without_a_loss_mix_is_refused(
    store, tmp_path, capsys
):
    """A resumed derived run (``OUT/config.yaml`` of the generator, its fine-tune left out)
    given the fine-tune by ``--set`` as a mapping: it trained the main phase, then ended in
    a TypeError building the fine-tune's objective."""
    argv = ["config", "--store", str(store.path), "--set", "model.kind=plain_flow"]
    code, out, _ = wxens([*argv, "--set", "steps=40"], capsys)
    assert code == 0
    (tmp_path / "config.yaml").write_text(out)
    with pytest.raises(InputError, match=r"drop --set 'fine_tune=\{steps: 10\}' \(the plain_flow"):
        resumed_config(tmp_path / "config.yaml", ["fine_tune={steps: 10}"], str(store.path))
