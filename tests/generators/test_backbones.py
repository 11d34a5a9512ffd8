"""A backbone is a registered part (``model.backbone.kind``): one registered here trains,
saves, reloads and forecasts like the U-Net; a checkpoint without the key (written before
it existed) reads as the U-Net; one whose backbone's extension is missing is refused
naming that extension."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar

import pytest
import torch
import yaml
from torch import nn

from flows.cli import main as cli
from flows.commands.derive import with_overrides
from generators.backbone import BackboneConfig
from generators.base import BACKBONES, BaseBackboneConfig
from generators.checkpoint import load_checkpoint
from generators.config import load_train_config
from generators.config_derive import DerivedConfig, StepSeconds, derive_config
from generators.flow_matching import FlowMatching, FlowMatchingConfig
from generators.step_memory import check_network
from pipeline.errors import InputError, StoreError
from pipeline.forecast_store import open_forecast
from pipeline.store import ingest
from tests.generators.test_extension_generator import train_small
from tests.generators.tiny import two_step_run
from tests.verification.test_extensions import install


@dataclass(frozen=True)
class ConvStackConfig(BaseBackboneConfig):
    width: int = 8
    crop: bool = False  # a bug: the field returned loses its last longitude


@BACKBONES.register("conv_stack")
class ConvStack(nn.Module):
    """Three 3x3 convolutions over the state, the history and the static fields."""

    config_class: ClassVar[type] = ConvStackConfig

    def __init__(self, config: ConvStackConfig):
        super().__init__()
        self.config = config
        c, w = config, config.width
        inputs = c.channels * (2 + c.history) + c.static_channels  # + the noise label
        self.net = nn.Sequential(
            nn.Conv2d(inputs, w, 3, padding=1), nn.SiLU(), nn.Conv2d(w, w, 3, padding=1),
            nn.SiLU(), nn.Conv2d(w, c.channels, 3, padding=1),
        )  # fmt: skip

    @property
    def dtype(self) -> torch.dtype:
        return self.net[0].weight.dtype

    def encode(self, condition):
        n, k, c, h, w = condition.history.shape
        return (torch.cat([condition.history.reshape(n, k * c, h, w), condition.static], 1),)

    def forward(self, x, noise_label, cond_map):
        noise = noise_label.reshape(-1, 1, 1, 1).expand_as(x)
        out = self.net(torch.cat([x, noise, cond_map], 1).to(self.dtype))
        return out[..., :-1] if self.config.crop else out


def test_a_registered_backbone_trains_reloads_and_forecasts(tmp_path):
    """The U-Net was built whatever the config said: a network of one's own meant
    replacing the built U-Net in a subclass of the generator."""
    store = two_step_run(tmp_path, sets=["model.backbone={kind: conv_stack, width: 4}"])
    checkpoint = load_checkpoint(tmp_path / "run")
    assert checkpoint.model_config.backbone == ConvStackConfig(
        channels=1, history=2, static_channels=4, calendar_features=4, width=4
    )
    model = checkpoint.build_model()
    assert isinstance(model.backbone, ConvStack)
    assert all(name.startswith("backbone.net.") for name in checkpoint.ema_state)
    argv = ["forecast", "--checkpoint", str(tmp_path / "run"), "--store", str(store.path)]
    argv += ["--init", "2000-01-03T00", "--members", "2", "--lead", "6h", "--no-progress"]
    assert cli([*argv, "--out", str(tmp_path / "f.zarr")]) == 0
    assert open_forecast(tmp_path / "f.zarr").t2m.notnull().all()


def test_a_backbone_returning_another_shape_is_refused_naming_it():
    """The check before training named the generator and its extension alone: a backbone's
    bug was said to be the generator's, "of wxens"."""
    model = FlowMatching(FlowMatchingConfig(backbone=ConvStackConfig(width=4, crop=True)))
    with pytest.raises(InputError) as refused:
        check_network("flow_matching", model, (8, 8))
    said = str(refused.value)
    assert "the generator 'flow_matching' of wxens, backbone 'conv_stack' of wxens," in said
    assert "returned a field of shape (1, 1, 8, 7) for one of (1, 1, 8, 8)" in said, said
    assert "model.backbone.kind" in said, said


def test_a_checkpoint_written_before_backbone_kinds_reads_as_the_unet(tmp_path):
    two_step_run(tmp_path)
    path = tmp_path / "run" / "last.pt"
    payload = torch.load(path, weights_only=True)
    assert payload["model_config"]["backbone"].pop("kind") == "unet"
    torch.save(payload, path)  # as written before the key existed
    model_config = load_checkpoint(path).model_config
    assert type(model_config.backbone) is BackboneConfig
    assert model_config.backbone.widths == (8, 16)


def test_an_unknown_backbone_kind_is_refused_naming_the_known_ones():
    # every one registered in this process (a docs example run before may have added one)
    known = ", ".join(BACKBONES.names())
    assert "conv_stack" in known and "unet" in known
    with pytest.raises(InputError, match=re.escape(f"unknown backbone 'unet2'; known: {known}")):
        BaseBackboneConfig.from_mapping({"kind": "unet2"}, "model.backbone")


@pytest.fixture
def derived(tmp_path):
    """``wxens config --store S --set steps=20 --set ...`` of a tiny store (nothing timed)."""
    spec = "synthetic:n_lat=16,n_lon=16,n_times=40,step=6h,seed=2"
    store = ingest(spec, tmp_path / "syn.zarr", variables=["t2m"], progress=False)
    return lambda *sets: cli(
        ["config", "--store", str(store.path), "--set", "steps=20"]
        + [a for s in sets for a in ("--set", s)]
    )


def test_a_derived_config_takes_the_backbone_kind_set_with_its_defaults(derived, capsys):
    """The derived U-Net's sizing keys (widths, ...) were refused as unknown to the other
    backbone's config: the whole mapping had to be replaced."""
    assert derived("model.backbone.kind=conv_stack", "model.backbone.width=4") == 0
    printed = capsys.readouterr().out
    config = yaml.safe_load(printed)
    assert config["model"]["backbone"] == {"kind": "conv_stack", "width": 4, "crop": False}
    said = " ".join(line.lstrip("# ") for line in printed.splitlines() if line.startswith("#"))
    assert "backbone conv_stack (--set): its own defaults, not sized to the grid" in said, said


def test_a_derived_configs_step_is_sized_on_the_backbone_set(derived, capsys):
    """The batch was fitted to the memory of a step of the derived U-Net whatever backbone
    was set: this one's network, which returns another shape, passed unseen."""
    assert derived("model.backbone.kind=conv_stack", "model.backbone.crop=true") == 2
    said = capsys.readouterr().err
    assert "backbone 'conv_stack' of wxens, returned a field of shape (1, 1, 16, 15)" in said


def test_a_budget_is_sized_for_the_backbone_set(tmp_path):
    """With a --budget, the steps are timed and sized for a backbone without widths."""
    spec = "synthetic:n_lat=16,n_lon=16,n_times=40,step=6h,seed=2"
    store = ingest(spec, tmp_path / "syn.zarr", variables=["t2m"], progress=False)
    sets = ["model.backbone.kind=conv_stack"]
    seconds = StepSeconds(main=0.5, fine_tune=2.0, forward=0.001)

    def trained(config):  # as the command applies its --set before timing
        return with_overrides(DerivedConfig(config, ()), sets).config

    made = derive_config(store, budget="30min", step_seconds=seconds, trained=trained)
    assert made.config.steps >= 20 and "backbone conv_stack" in made.notes[-1], made.notes


EXTENSION = """
from dataclasses import dataclass
from generators.backbone import BackboneConfig, UNet
from generators.base import BACKBONES


@dataclass(frozen=True)
class WideConfig(BackboneConfig):
    pass


@BACKBONES.register("wide_unet")
class WideUNet(UNet):
    config_class = WideConfig
"""


def test_a_checkpoint_of_a_missing_extensions_backbone_names_it(tmp_path):
    """The record of the generator's extension did not cover its backbone: the refusal was
    "written by another version of wxens (one with other config keys)"."""
    install(tmp_path, "wxens-wide", "wide", "wxens_wide", EXTENSION)
    spec = "synthetic:n_lat=16,n_lon=16,n_times=40,step=6h,seed=2"
    store = ingest(spec, tmp_path / "syn.zarr", variables=["z"], progress=False)
    done = train_small(tmp_path, store, "backbone: {kind: wide_unet, ")
    assert done.returncode == 0, done.stderr
    with pytest.raises(StoreError) as refused:
        load_checkpoint(tmp_path / "run" / "last.pt")  # here, the extension is not installed
    message = str(refused.value)
    label = "the extension 'wide' (wxens-wide 0.1, wxens_wide)"
    assert f"the backbone 'wide_unet' of {label}" in message, message
    assert "pip install wxens-wide==0.1" in message, message
    assert "another version of wxens" not in message, message


@pytest.mark.parametrize(
    ("model", "key", "said"),
    [
        ("{kind: flow_matchin}", "model.kind", "unknown generator 'flow_matchin'"),
        ("{backbone: {kind: unet2}}", "model.backbone.kind", "unknown backbone 'unet2'"),
    ],
)
def test_a_mistyped_kind_in_a_config_file_names_the_file_and_key(tmp_path, model, key, said):
    """The known names were listed, but neither the file nor the key that gave the name."""
    path = tmp_path / "cfg.yaml"
    path.write_text(f"model: {model}\n")
    with pytest.raises(InputError) as refused:
        load_train_config(path)
    assert f"{path}.{key}: {said}; known: " in str(refused.value), refused.value
