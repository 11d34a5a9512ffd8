"""Configs built in Python, as a notebook builds them, hold their declared types: a list, a
numpy scalar or a mapping of a nested config is converted when the type makes it
unambiguous (a list held as such was unhashable and compared unequal to the config loaded
from its checkpoint; a numpy scalar made the checkpoint unloadable), and a value of
another kind is refused when the config is made, naming the field, the value and the fix
(a string for an int was a TypeError deep inside a comparison)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from generators.backbone import BackboneConfig
from generators.checkpoint import load_checkpoint
from generators.config import ModelSpec, OptimConfig, TrainConfig
from generators.config_data import DataConfig
from generators.correction.baselines import BaselineConfig
from generators.correction.spec import CorrectionSpec
from generators.flow_matching import FlowMatchingConfig
from generators.train import train
from pipeline.errors import InputError
from pipeline.schema import Period
from pipeline.store import ingest
from verification.config import VerifyConfig

TINY = {"widths": (8, 16), "attention_heads": 0, "embedding_dim": 16, "norm_groups": 4}


def _config(**changes) -> TrainConfig:
    model = ModelSpec("flow_matching", FlowMatchingConfig(backbone=BackboneConfig(**TINY)))
    data = DataConfig(channels=("t2m",), history=2, leads=(1, 2), lead_weights=(1.0, 2.0))
    fields = {"model": model, "data": data, "steps": 2, "batch_size": 4, "device": "cpu"}
    return TrainConfig(**{**fields, "validate_every": 2, "bf16": False, **changes})


def test_a_notebooks_forms_are_the_declared_types_and_survive_a_checkpoint(tmp_path):
    """Lists, numpy scalars and mappings of nested configs, trained, saved and loaded: the
    loaded config equals the one built (a list compared unequal to the loaded tuple, a
    numpy scalar was refused by the loader), and the config hashes."""
    data = {"channels": ["t2m"], "history": np.int64(2), "leads": [1, 2], "lead_weights": [1, 2]}
    config = _config(
        model=ModelSpec("flow_matching", {"backbone": {**TINY, "widths": [8, 16]}}),
        data=data,
        optim={"lr": np.float32(1e-3), "betas": np.array([0.9, 0.99])},
        steps=np.int64(2),
        ema_decay=np.float64(0.9),
        bf16=np.bool_(False),
    )
    declared = _config(
        optim=OptimConfig(lr=float(np.float32(1e-3)), betas=(0.9, 0.99)), ema_decay=0.9
    )
    assert config == declared and hash(config) == hash(declared)
    assert type(config.steps) is int and type(config.optim.lr) is float
    assert type(config.bf16) is bool and config.data.exclude == ()
    store = ingest(
        "synthetic:n_lat=16,n_lon=16,n_times=60,step=6h",
        tmp_path / "s.zarr",
        variables=["t2m"],
        progress=False,
    )
    train(store, config, tmp_path / "run", progress=False)
    assert load_checkpoint(tmp_path / "run" / "last.pt").train_config == config


@pytest.mark.parametrize(
    ("make", "field", "value"),
    [
        (lambda: _config(steps="2"), "TrainConfig.steps", "'2'"),
        (lambda: _config(steps=2.5), "TrainConfig.steps", "2.5"),
        (lambda: OptimConfig(lr="fast"), "OptimConfig.lr", "'fast'"),
        (lambda: _config(sampler=pd.Timedelta("1h")), "TrainConfig.sampler", "Timedelta"),
        (lambda: DataConfig(leads="1"), "DataConfig.leads", "'1'"),
        (lambda: DataConfig(train="2019-03-01/2019-03-05"), "DataConfig.train", "2019-03-01"),
        (lambda: VerifyConfig(interval_block=pd.Timedelta("1D")), "interval_block", "Timedelta"),
        (lambda: VerifyConfig(physics_init_times="8"), "physics_init_times", "'8'"),
        (lambda: BaselineConfig("2019-03-01", "2019-03-10", members="5"), "members", "'5'"),
    ],
)
def test_a_value_of_another_kind_is_refused_when_the_config_is_made(make, field, value):
    with pytest.raises(InputError) as caught:
        make()
    message = str(caught.value)
    assert field in message and value in message and "give" in message


def test_a_mapping_of_unknown_keys_for_a_nested_config_names_them():
    with pytest.raises(InputError, match=r"\['learning_rate'\] in TrainConfig\.optim; known"):
        _config(optim={"learning_rate": 1e-3})


def test_a_model_config_of_another_kind_is_refused():
    with pytest.raises(InputError, match="FlowMatchingConfig.*edm.*EDMConfig"):
        ModelSpec("edm", FlowMatchingConfig())


def test_torch_free_configs_take_numpy_scalars_and_arrays():
    verify = VerifyConfig(
        seed=np.int64(3),
        event_quantiles=np.array([0.1, 0.9]),
        map_members=np.int64(2),
        interval_level=np.float32(0.5),
    )
    assert verify == VerifyConfig(
        seed=3, event_quantiles=(0.1, 0.9), map_members=2, interval_level=0.5
    )
    assert type(verify.seed) is int and type(verify.event_quantiles[0]) is float
    assert CorrectionSpec(bias_weight=np.float32(0.5)).bias_weight == 0.5
    start = pd.Timestamp("2019-03-01")
    baseline = BaselineConfig(start, "2019-03-10", members=np.int64(5))
    assert baseline == BaselineConfig("2019-03-01T00:00", "2019-03-10", members=5)  # as Period
    data = DataConfig(exclude=[{"start": "2019-03-05", "end": "2019-03-06"}], history=[-1, 0])
    assert data.exclude == (Period("2019-03-05", "2019-03-06"),) and data.history == (-1, 0)
