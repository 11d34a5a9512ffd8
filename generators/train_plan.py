"""What a training run is made of, apart from its loop (:mod:`generators.train`): the
learning-rate schedule, the model config sized to the data, the objective of each phase
(main, then an optional fair-CRPS fine-tune), and the result a run reports."""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import xarray as xr

from generators.checkpoint import Checkpoint, load_checkpoint
from generators.config import TrainConfig
from generators.config_io import to_mapping
from generators.data import ResidualDataset
from generators.data.forecast import check_grid_and_step, check_statistics
from pipeline.errors import InputError, nested_differences
from pipeline.schema import split_channel
from pipeline.store import AnalysisStore

RESUME_FIX = (
    "Resume it on its own store; for this one pass another out_dir= (--out), or "
    "resume=False (--no-resume)"
)
RESUMED_KEYS = ("model", "data", "seed", "batch_size")
"""The config keys a resumed run keeps from its checkpoint (:func:`resumable`)."""
FREE_ON_RESUME = ("data.max_memory_bytes",)
"""Keys under :data:`RESUMED_KEYS` a resumed run may change: how the store is read, not
what (read whole or item by item, the same batches train the same weights)."""


class KeptByTheRun(InputError):
    """:func:`resumable`'s refusal of a config that changes what a resumed run keeps, with
    the ``checkpoint`` refused and its ``trained`` config: what a command needs to name where
    each value asked came from (:func:`flows.commands.kept.kept_refusal`)."""

    def __init__(self, message: str, checkpoint: Path | None = None, trained=None):
        super().__init__(message)
        self.checkpoint = checkpoint
        self.trained = trained


def learning_rate(config: TrainConfig, step: int) -> float:
    """Linear warm-up to ``optim.lr``, cosine decay to ``lr * min_lr_ratio`` at ``steps``;
    in the fine-tune phase the same cosine from ``fine_tune.lr`` over its own steps."""
    o = config.optim
    if step < config.steps:
        if step < o.warmup_steps:
            return o.lr * (step + 1) / o.warmup_steps
        progress = (step - o.warmup_steps) / max(1, config.steps - o.warmup_steps)
        peak = o.lr
    else:
        assert config.fine_tune is not None
        progress = (step - config.steps) / max(1, config.fine_tune.steps)
        peak = config.fine_tune.lr
    return peak * (o.min_lr_ratio + (1 - o.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))


def lead_draw_weights(
    data: ResidualDataset, lead_weights: Sequence[float] | None
) -> torch.Tensor | None:
    """(len(data),) the weight w_j / n_j of each item of lead j, n_j the items of that lead,
    so that :func:`draw_items` draws lead j with probability w_j / sum(w) and, given its
    lead, an item uniformly; None for ``lead_weights`` None (every item equally likely).
    Every lead has items (:class:`ResidualDataset` refuses a lead without)."""
    if lead_weights is None:
        return None
    lead_index = torch.from_numpy(data.pairs[:, 1])
    count = torch.bincount(lead_index, minlength=len(lead_weights)).double()
    return (torch.tensor(lead_weights, dtype=torch.float64) / count)[lead_index]


MULTINOMIAL_CATEGORIES = 2**24
"""The most categories :func:`torch.multinomial` draws from."""


def draw_items(
    n_items: int, size: int, weights: torch.Tensor | None, generator: torch.Generator
) -> np.ndarray:
    """(size,) indices of ``n_items`` items drawn with replacement by ``generator``:
    uniformly, or in proportion to ``weights`` (:func:`lead_draw_weights`). Past
    :data:`MULTINOMIAL_CATEGORIES` items (e.g. 45 years hourly at 72 leads) the weighted
    draw inverts the cumulative weights at uniform numbers instead: the same law, other
    items than :func:`torch.multinomial` would draw with the same seed."""
    if weights is None:
        return torch.randint(n_items, (size,), generator=generator).numpy()
    if len(weights) <= MULTINOMIAL_CATEGORIES:
        return torch.multinomial(weights, size, replacement=True, generator=generator).numpy()
    cumulative = torch.cumsum(weights.double(), 0)
    uniform = torch.rand(size, generator=generator, dtype=torch.float64) * cumulative[-1]
    index = torch.searchsorted(cumulative, uniform, right=True)
    return index.clamp_(max=len(weights) - 1).numpy()


def resumable(
    path: Path, config: TrainConfig, store: AnalysisStore, device: torch.device
) -> Checkpoint | None:
    """The checkpoint at ``path`` that a run of ``config`` on ``store`` resumes, or None if
    there is none; InputError if it is of another run (model, data, seed, batch size:
    :class:`KeptByTheRun`) or trained on another grid or step. Checked before the store is
    read, so the run can read it with the checkpoint's normalisation: the store's statistics
    change as times are appended, and the weights were trained on inputs normalised with
    the old ones."""
    if not path.exists():
        return None
    checkpoint = load_checkpoint(path, map_location=device)
    changed = kept_differences(to_mapping(checkpoint.train_config), to_mapping(config))
    if changed:
        key = changed[0][0].split(".")[0]
        listed = "; ".join(
            f"{name}: {there} there, {here} in this config"
            for name, there, here in changed
            if name.split(".")[0] == key
        )
        raise KeptByTheRun(
            f"{path.parent} holds a run with another {key!r} ({listed}); a resumed run keeps "
            "what it trained with: pass another out_dir= (--out), or resume=False (--no-resume) "
            "to start over there",
            path,
            checkpoint.train_config,
        )
    trained = checkpoint.train_config
    if trained.fine_tune is not None and checkpoint.step > trained.steps < config.steps:
        raise InputError(  # the fine-tuned weights would go back to the main objective
            f"{path.parent} was fine-tuned after its {trained.steps} main steps (it is at step "
            f"{checkpoint.step}): more main steps (steps={config.steps}) cannot follow a "
            "fine-tune; give more fine_tune.steps to go on, or another out_dir= (--out) or "
            "resume=False (--no-resume) "
            f"to train {config.steps} main steps from the start"
        )
    check_grid_and_step(checkpoint, store, RESUME_FIX)  # a conv net loads on any grid or step
    stats = store.statistics  # a channel it lacks is named when the store is read
    if all(_holds(stats, c) for c in checkpoint.channels):
        check_statistics(
            checkpoint,
            store,
            "pass another out_dir= (--out), or resume=False (--no-resume) to start over",
        )
    return checkpoint


def kept_differences(trained: dict, asked: dict) -> list[tuple[str, object, object]]:
    """``(dotted key, trained value, asked value)`` of each key a resumed run keeps
    (:data:`RESUMED_KEYS`, less :data:`FREE_ON_RESUME`) whose value differs between the
    config mappings ``trained`` and ``asked``."""
    return [
        difference
        for key in RESUMED_KEYS
        for difference in nested_differences({key: trained[key]}, {key: asked[key]})
        if difference[0] not in FREE_ON_RESUME
    ]


def _holds(statistics: xr.Dataset, channel: str) -> bool:
    """Whether a store's statistics have an entry for ``channel`` (its level too)."""
    var, level = split_channel(channel)
    if var not in statistics:
        return False
    return level is None or level in statistics[var].coords.get("level", [])


def model_config_for(config: TrainConfig, data: ResidualDataset) -> object:
    """The model config of ``config`` with the backbone sized to ``data`` (channels C,
    history K, static fields S, calendar features F)."""
    model = config.model.config
    backbone = dataclasses.replace(
        model.backbone,
        channels=len(data.channels),
        history=len(data.spec.history),
        static_channels=len(data.static_names),
        calendar_features=data[0]["calendar"].shape[1],
    )
    return dataclasses.replace(model, backbone=backbone)


def phase_objective(config: TrainConfig, model_config: object, step: int) -> object:
    """The model config whose loss mix applies at ``step`` (fine-tune weights after ``steps``)."""
    if config.fine_tune is None or step < config.steps:
        return model_config
    return dataclasses.replace(model_config, **config.fine_tune.objective_overrides())


@dataclass(frozen=True)
class TrainResult:
    """Where the run ended: checkpoint path, step, last mean training loss (over the last
    logging window) and validation loss (None without a validation period), ``phase``
    (``main`` or ``fine_tune``) whose objective both losses are, and the validation loss
    at the end of the main phase when this run reached it and a fine-tune followed (the
    two phases' losses are of different objectives, not comparable)."""

    checkpoint: Path
    step: int
    train_loss: float | None
    validation_loss: float | None
    seconds: float
    phase: str = "main"
    main_validation_loss: float | None = None

    def report(self, config: TrainConfig) -> list[str]:
        """Lines naming each loss with its objective (``config`` is the run's)."""
        what = f"the {config.model.kind} loss"
        lines = []
        if self.phase == "fine_tune" and config.fine_tune is not None:
            if self.main_validation_loss is not None:
                lines.append(
                    f"validation loss {self.main_validation_loss:.4f} at the end of the main "
                    f"phase (step {config.steps}, {what})"
                )
            what = (
                f"the fine-tune's objective, {config.fine_tune.objective_text}: not "
                "comparable with the main phase's"
            )
        for name, value in (
            ("last training", self.train_loss),
            ("validation", self.validation_loss),
        ):
            if value is not None:
                lines.append(f"{name} loss {value:.4f} ({what})")
        return lines


def keep_log_to(path: Path, step: int) -> None:
    """Drop from the training log ``path`` (``log.jsonl``) every record past ``step``, the
    step a run starts from: those a killed run logged after its last checkpoint (its
    resumption logs them again) or, starting over at 0, every record of the earlier run. A
    line cut off by a kill goes too."""
    if not path.exists():
        return
    lines = path.read_text().splitlines(keepends=True)
    kept = [line for line in lines if _logged_step(line) <= step]
    if kept == lines:
        return
    partial = path.with_name(f".{path.name}.tmp")
    partial.write_text("".join(kept))
    partial.replace(path)


def _logged_step(line: str) -> float:
    """The step of one log record; infinity for a line that is not one."""
    try:
        return int(json.loads(line)["step"])
    except (ValueError, KeyError, TypeError):
        return math.inf
