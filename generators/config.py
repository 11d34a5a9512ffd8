"""Typed, frozen configuration of training and sampling, loaded from YAML or TOML.

A training config file mirrors :class:`TrainConfig`::

    model:
      kind: flow_matching          # a name of generators.GENERATORS: flow_matching, edm
      backbone: {widths: [32, 64], attention_heads: 0}
      sample_nfe: 10
    data:
      history: 24                  # the last 24 states (every hour of the last day)
      leads: [1, 3, 6, 12, 24]     # native steps; several leads = a direct, lead-conditioned model
      train: {start: 2019-03-01, end: 2019-03-17}
      validation: {start: 2019-03-18, end: 2019-03-21}
    optim: {lr: 3.0e-4, warmup_steps: 100}
    steps: 2000
    batch_size: 16
    fine_tune: {steps: 500, crps_weight: 1.0, regression_weight: 0.0, crps_members: 4}

Every key is checked (:func:`generators.config_io.from_mapping`): an unknown one, or a
value of the wrong type, is an :class:`~pipeline.errors.InputError` naming its dotted
path. ``--set optim.lr=1e-4`` overrides (:func:`generators.config_io.apply_overrides`)
are parsed as YAML scalars. The backbone's ``channels``, ``history``, ``static_channels``
and ``calendar_features`` come from the data and may not be set by hand.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from generators.config_data import DataConfig
from generators.config_io import apply_overrides, from_mapping, read_mapping, to_mapping
from generators.config_periods import check_periods
from generators.device_names import check_device_name
from generators.models import GENERATORS
from generators.sampler_spec import read_sampler_spec
from generators.samplers import Sampler, sampler_from_config
from pipeline.config_fields import settle_fields
from pipeline.errors import InputError
from pipeline.schema import Period
from pipeline.spec import format_spec

DATA_DERIVED_BACKBONE_FIELDS = ("channels", "history", "static_channels", "calendar_features")


@dataclass(frozen=True)
class ModelSpec:
    """A generator kind (a key of :data:`generators.GENERATORS`) and its own config."""

    kind: str
    config: Any

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], where: str = "model") -> ModelSpec:
        data = dict(data)
        kind = data.pop("kind", "flow_matching")
        generator = GENERATORS.named(kind, f"{where}.kind")
        derived = [k for k in DATA_DERIVED_BACKBONE_FIELDS if k in data.get("backbone", {})]
        if derived:
            raise InputError(
                f"{where}.backbone sets {derived}; these come from the data (channels, history "
                "offsets, static fields, calendar) — remove them from the config"
            )
        own = _field_names(generator)
        for other, other_class in GENERATORS.items():
            theirs = sorted(k for k in data if k not in own and k in _field_names(other_class))
            if other != kind and theirs:
                raise InputError(
                    f"{where}: {theirs} are keys of {other}, not {kind} (model.kind): drop "
                    f"them from overrides= (--set) or the config file, or set model.kind "
                    f"back to {other}"
                )
        return cls(kind, from_mapping(generator.config_class, data, where))

    def __post_init__(self) -> None:
        settle_fields(self)
        config_class = GENERATORS[self.kind].config_class
        if isinstance(self.config, Mapping):  # a notebook's {"backbone": {...}}, as a file's
            object.__setattr__(self, "config", from_mapping(config_class, self.config, "model"))
        elif not isinstance(self.config, config_class):
            raise InputError(
                f"ModelSpec({self.kind!r}, {self.config!r}): a {type(self.config).__name__} is "
                f"not the config of {self.kind}; give a {config_class.__name__}, or the kind "
                "whose config it is"
            )

    def to_mapping(self) -> dict[str, Any]:
        """The user-facing mapping: the data-derived backbone fields are left out."""
        mapping = {"kind": self.kind, **to_mapping(self.config)}
        backbone = mapping.get("backbone", {})
        for key in DATA_DERIVED_BACKBONE_FIELDS:
            backbone.pop(key, None)
        return mapping


@dataclass(frozen=True)
class OptimConfig:
    """AdamW with a linear warm-up then cosine decay to ``lr * min_lr_ratio``; gradient
    norm clipped to ``grad_clip`` (0: off)."""

    lr: float = 3e-4
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.999)
    warmup_steps: int = 100
    min_lr_ratio: float = 0.1
    grad_clip: float = 1.0

    def __post_init__(self) -> None:
        settle_fields(self)
        if self.lr <= 0 or self.warmup_steps < 0 or not 0 <= self.min_lr_ratio <= 1:
            raise InputError(
                f"optim: need lr > 0, warmup_steps >= 0 and 0 <= min_lr_ratio <= 1; got lr="
                f"{self.lr}, warmup_steps={self.warmup_steps}, min_lr_ratio={self.min_lr_ratio}"
            )


@dataclass(frozen=True)
class FineTuneConfig:
    """A second phase after ``steps``: the loss mix of :class:`generators.ObjectiveConfig`
    replaced (by default a pure fair-CRPS fine-tune of ``crps_members`` members drawn through
    a ``crps_nfe``-evaluation sampler), at learning rate ``lr``, optionally on another
    ``period`` (e.g. a held-out one). The EMA restarts its warm-up at the start of the
    phase (so it tracks the fine-tuned weights within a few steps), with ``ema_decay``
    (None: the main one)."""

    steps: int = 500
    lr: float = 1e-4
    ema_decay: float | None = None
    regression_weight: float = 0.0
    crps_weight: float = 1.0
    crps_members: int = 4
    crps_nfe: int = 2
    period: Period | None = None

    def __post_init__(self) -> None:
        settle_fields(self)

    @property
    def objective_text(self) -> str:
        """The fine-tune's loss in words (its values are not the main phase's loss), with its
        units: the targets are normalised (each lead's change over its std in the
        checkpoint's statistics, :mod:`generators.data.dataset`), so the CRPS is not in K."""
        crps = f"fair CRPS of {self.crps_members} members of the normalised fields, not in K"
        if self.regression_weight == 0 and self.crps_weight == 1:
            return crps
        return f"{self.crps_weight:g} x {crps} + {self.regression_weight:g} x regression"

    def objective_overrides(self) -> dict[str, Any]:
        return {
            "regression_weight": self.regression_weight,
            "crps_weight": self.crps_weight,
            "crps_members": self.crps_members,
            "crps_nfe": self.crps_nfe,
        }


@dataclass(frozen=True)
class CalibrationConfig:
    """Fit a spread correction after training (:mod:`generators.calibration`).

    period:      held-out period of the initial times (as long and varied as possible);
                 None = the held-out periods of cross-validation folds, given apart
                 (``wxens calibrate --fold``, :func:`generators.calibration.fit_calibration`).
    leads_hours: leads to calibrate; None = the trained leads.
    members:     ensemble size of the fit forecasts.
    init_every_hours: spacing of the fit initial times.
    sampler:     sampler spec (``"euler:nfe=10"``); None = the model's default.
    balance:     fit on forecasts with balanced upper air (``wxens forecast --balance``),
                 the forecasts the factors are then for.
    """

    period: Period | None = None
    leads_hours: tuple[float, ...] | None = None
    members: int = 16
    init_every_hours: float = 6.0
    sampler: str | None = None
    seed: int = 1
    balance: bool = False

    def __post_init__(self) -> None:
        settle_fields(self)
        if self.seed < 0:  # numpy's SeedSequence would refuse it after the training
            raise InputError(f"calibration.seed must be at least 0, got {self.seed}")


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run depends on; stored in its checkpoints.

    steps:           optimiser steps of the main phase (plus ``fine_tune.steps``).
    ema_decay:       EMA of the weights (:class:`generators.ema.EMA`); sampled and validated.
    validate_every:  steps between validation losses (on ``data.validation``).
    checkpoint_every: steps between checkpoints (and one at the end).
    device:          ``auto`` (CUDA when present), ``cpu``, ``cuda``, ``cuda:1``.
    bf16:            bfloat16 autocast on CUDA (ignored on CPU).
    compile_network: ``torch.compile`` the network being trained (its backbone, in place) on
                     CUDA (ignored on CPU); the first step of each phase and batch shape
                     waits for the compile.
    sampler:         the forecasts' default sampler spec (:func:`parse_sampler`), e.g.
                     ``euler:nfe=2,noise_scale=1.3``; None: the
                     fine-tune's short sampler, else the model's default
                     (:func:`generators.sampler_choice.default_sampler`).
    """

    model: ModelSpec
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    steps: int = 2000
    batch_size: int = 16
    ema_decay: float = 0.999
    validate_every: int = 250
    validation_batches: int = 8
    checkpoint_every: int = 250
    seed: int = 0
    device: str = "auto"
    bf16: bool = True
    compile_network: bool = True
    fine_tune: FineTuneConfig | None = None
    calibration: CalibrationConfig | None = None
    sampler: str | None = None

    def __post_init__(self) -> None:
        settle_fields(self)
        if self.calibration is not None and self.calibration.period is None:
            raise InputError(
                "calibration.period is required in a training config: the calibration runs "
                "right after training (to calibrate on cross-validation folds instead, train "
                "them and run `wxens calibrate --checkpoint K --store S --fold F1 --fold F2 ...`)"
            )
        if self.sampler is not None:  # a bad spec fails before training, not at forecast
            GENERATORS[self.model.kind].check_sampler(parse_sampler(self.sampler))
        if self.calibration is not None and self.calibration.sampler is not None:
            try:  # nor after training, at the calibration that follows it
                GENERATORS[self.model.kind].check_sampler(parse_sampler(self.calibration.sampler))
            except InputError as err:
                raise InputError(f"calibration.sampler: {err}") from None
        for name in (
            "steps",
            "batch_size",
            "validate_every",
            "validation_batches",
            "checkpoint_every",
        ):
            if getattr(self, name) < 1:
                raise InputError(f"{name} must be at least 1, got {getattr(self, name)}")
        check_device_name(self.device)  # the name only: the machine's device is training's
        if not 0 <= self.ema_decay < 1:
            raise InputError(f"ema_decay must be in [0, 1), got {self.ema_decay}")
        if abs(self.seed) >= 2**40:  # its step seeds (shard_seed) must fit torch's int64
            raise InputError(f"seed must be between -2**40 and 2**40, got {self.seed}")

    @property
    def total_steps(self) -> int:
        return self.steps + (self.fine_tune.steps if self.fine_tune else 0)


# -- files and overrides --------------------------------------------------------------------


def _field_names(generator: type) -> set[str]:
    return {f.name for f in dataclasses.fields(generator.config_class)}


def load_train_config(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> TrainConfig:
    """A :class:`TrainConfig` from a YAML/TOML file and ``key=value`` overrides."""
    raw = read_mapping(path)
    data = apply_overrides(raw, overrides)
    if "model" not in data:
        raise InputError(
            f"{path}: no 'model' section; give at least `model: {{kind: flow_matching}}`"
        )
    try:
        return _checked(from_mapping(TrainConfig, data, where=str(path)), path)
    except InputError as err:
        if overrides and "model" in raw:  # the file's own error first, else the overrides'
            _checked(from_mapping(TrainConfig, raw, where=str(path)), path)
            made = ", ".join(overrides)
            raise InputError(f"{err}, as overrides= (--set) {made} made it") from None
        raise


def _checked(config: TrainConfig, path: str | Path) -> TrainConfig:
    """``config``, read from ``path``, once its periods are periods of times and a fine-tune
    finds its loss mix in the generator's config (else a TypeError after the main phase)."""
    check_periods(config, str(path))
    missing = missing_loss_mix(config.model.kind) if config.fine_tune else []
    if missing:
        raise InputError(
            f"{path}: fine_tune: the {config.model.kind} generator's config has no loss mix "
            f"({', '.join(missing)}) for a fair-CRPS fine-tune; give `fine_tune: null`"
        )
    return config


def missing_loss_mix(kind: str) -> list[str]:
    """The loss-mix keys a fine-tune sets that the generator ``kind``'s config lacks."""
    return sorted(set(FineTuneConfig().objective_overrides()) - _field_names(GENERATORS[kind]))


def parse_sampler(spec: str) -> Sampler:
    """A sampler from ``"name"`` or ``"name:key=value,key=value"``, e.g. ``"euler:nfe=10"``,
    ``"edm_heun:num_steps=20,churn=2.5,noise_inflation=1.05"``; values are coerced to the
    sampler's field types (:mod:`pipeline.spec`)."""
    name, params = read_sampler_spec(spec)  # the text, read as the CLI's parser reads it
    return sampler_from_config(name, **params)


def sampler_spec(sampler: Sampler) -> str:
    """Inverse of :func:`parse_sampler` (for provenance): ``"euler:nfe=10,noise_scale=1.0"``."""
    params = format_spec(sampler)
    return f"{sampler.name}:{params}" if params else sampler.name
