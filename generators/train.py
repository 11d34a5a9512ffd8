"""The training loop: AdamW, warm-up + cosine learning rate, EMA weights, validation on a
held-out period, atomic checkpoints, exact resume and an optional fair-CRPS fine-tune
phase. Training only trains: a spread calibration is fitted afterwards
(:mod:`generators.calibration`).

Determinism: step ``k`` draws its batch indices and all of its noise from a
``torch.Generator`` seeded with ``(seed, k)`` (and seeds the global generator the same way
for dropout), so a run stopped after any checkpoint and resumed gives the same weights as
an uninterrupted one on the same device. Under torchrun each process trains on its shard of
the batch, seeded with ``(seed, k, rank)`` (:mod:`generators.distributed`). Validation uses a
fixed generator and fixed items, so its losses are comparable across steps.

On CUDA the forward pass runs under bfloat16 autocast (``bf16``); on CPU in float32.
Progress: a tqdm bar with the running loss and the last validation loss, and one JSON line
per logged step in ``OUT/log.jsonl`` (and, without a progress bar, as a log line, which a
Prefect run shows).
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch

from generators.augmentation import scale_changes, shift_levels
from generators.base import Batch, Condition
from generators.batch_ahead import Draw, ItemsAhead, loader_workers, step_draw
from generators.checkpoint import Checkpoint, trained_span
from generators.config import TrainConfig
from generators.device import autocast
from generators.distributed import (
    SINGLE_PROCESS,
    World,
    check_identical,
    check_same_step,
    data_parallel,
    mean_over_ranks,
    process_group,
    rank_device,
    shard_seed,
    shard_size,
    world_from_env,
)
from generators.ema import EMA
from generators.models import GENERATORS
from generators.objective import ResidualGenerator
from generators.step_memory import check_training_fits
from generators.train_data import TrainingData, read_training_data
from generators.train_plan import (
    RESUME_FIX,
    TrainResult,
    keep_log_to,
    lead_draw_weights,
    learning_rate,
    model_config_for,
    phase_objective,
    resumable,
)
from pipeline.progress import tqdm
from pipeline.store import AnalysisStore, open_store

log = logging.getLogger(__name__)

CHECKPOINT_NAME = "last.pt"
LOG_NAME = "log.jsonl"
VALIDATION_SEED_OFFSET = 7_919


def to_batch(items: Mapping[str, torch.Tensor], device: torch.device | str = "cpu") -> Batch:
    """The dict of :class:`generators.data.ResidualDataset` as a :class:`Batch` on ``device``
    (without a mask when every target point is valid)."""
    condition = Condition(items["history"], items["static"], items["calendar"], items["lead"])
    valid = items.get("valid")
    if valid is not None and bool(valid.all()):
        valid = None
    return Batch(
        condition.to(device),
        items["target"].to(device),
        None if valid is None else valid.to(device),
    )


class Trainer:
    """One training run of ``config`` on ``store`` writing to ``out_dir`` (see module doc);
    ``data`` as :func:`train`'s."""

    def __init__(
        self,
        store: AnalysisStore | str | Path,
        config: TrainConfig,
        out_dir: str | Path,
        *,
        resume: bool = True,
        world: World = SINGLE_PROCESS,
        data: TrainingData | None = None,
    ):
        self.store = store if isinstance(store, AnalysisStore) else open_store(store)
        self.config = config
        self.out_dir = Path(out_dir)
        self.world = world
        self.shard_size = shard_size(config.batch_size, world)
        self.device = rank_device(config.device, world)
        d = config.data
        path = self.out_dir / CHECKPOINT_NAME
        previous = resumable(path, config, self.store, self.device) if resume else None
        if data is None or previous is not None or not data.serves(self.store, config):
            norm = None if previous is None else previous.normalization
            data = read_training_data(self.store, config, norm)
        self.train_data, self.validation_data = data.train, data.validation
        self.fine_tune_data = data.fine_tune
        self.span = trained_span((self.train_data, self.fine_tune_data), previous)
        # the items' draw weights of each phase, computed once (None: equal pairs)
        self.train_weights = lead_draw_weights(self.train_data, d.lead_weights)
        self.fine_tune_weights = lead_draw_weights(self.fine_tune_data, d.lead_weights)
        self.model_config = model_config_for(config, self.train_data)
        check_training_fits(config, self.model_config, self.train_data, self.device, world)
        workers = loader_workers(self.device, world)
        cuda = self.device.type == "cuda"
        self.items = ItemsAhead(workers, config.seed, pin_memory=cuda)
        torch.manual_seed(config.seed)
        self.model: ResidualGenerator = GENERATORS[config.model.kind](self.model_config).to(
            self.device
        )
        self.ema = EMA(self.model, config.ema_decay)  # eager: validated on other shapes
        if config.compile_network and cuda:
            self.model.backbone.compile()  # in place, so the state-dict keys stay
        o = config.optim
        self.optimizer = torch.optim.AdamW(
            self.model.parameters(), lr=o.lr, betas=o.betas, weight_decay=o.weight_decay
        )
        self.step = 0
        self.last_validation: float | None = None
        self.main_validation: float | None = None
        if previous is not None:
            self._resume(previous)
        check_same_step(self.step, world, self.out_dir)
        self.parallel = data_parallel(self.model, world, self.device)

    # -- state ------------------------------------------------------------------------------

    def _resume(self, checkpoint: Checkpoint) -> None:
        checkpoint.check_matches(self.train_data, RESUME_FIX)  # channels and static fields
        self.model.load_state_dict(checkpoint.model_state)
        self.ema.load_state_dict(checkpoint.ema_state)
        if checkpoint.optimizer_state is not None:
            self.optimizer.load_state_dict(checkpoint.optimizer_state)
        self.step = checkpoint.step
        log.info("resuming %s at step %d", self.out_dir, self.step)

    def checkpoint(self, calibration: dict | None = None) -> Checkpoint:
        """The current state as a :class:`Checkpoint` (not yet written)."""
        data = self.train_data
        return Checkpoint(
            step=self.step,
            kind=self.config.model.kind,
            model_config=phase_objective(self.config, self.model_config, self.step - 1),
            train_config=self.config,
            normalization=data.normalization,
            spec=data.spec,
            native_step=data.native_step,
            static_names=data.static_names,
            latitude=data.latitude,
            longitude=data.longitude,
            model_state=self.model.state_dict(),
            ema_state=self.ema.state_dict(),
            optimizer_state=self.optimizer.state_dict(),
            calibration=calibration,
            trained_span=self.span,
        )

    def save(self, calibration: dict | None = None, *, check: bool = True) -> Checkpoint | None:
        """Write ``OUT/last.pt`` on rank 0 (after checking, with ``check``, that every rank
        holds the same weights: a collective call); other ranks write nothing, get None."""
        if check:
            check_identical([self.model, self.ema.module], self.world)
        if not self.world.is_main:
            return None
        return self.checkpoint(calibration).save(self.out_dir / CHECKPOINT_NAME)

    # -- steps ------------------------------------------------------------------------------

    def shard(self, step: int, rank: int, size: int) -> tuple[Batch, torch.Generator]:
        """The ``size`` samples of rank ``rank`` at ``step`` (augmented, on the device) and
        the generator, seeded with ``(seed, step, rank)``, that then draws their noise.
        Also seeds the global generator (dropout) the same way and sets the phase."""
        config = self.config
        data, weights = (
            (self.train_data, self.train_weights)
            if step < config.steps
            else (self.fine_tune_data, self.fine_tune_weights)
        )
        self.model.config = phase_objective(config, self.model_config, step)
        index, generator = step_draw(len(data), size, weights, config.seed, step, rank)
        torch.manual_seed(shard_seed(config.seed, step, rank))
        stop = config.steps if step < config.steps else config.total_steps  # the phase's end
        items = self.items(data, weights, index, Draw(step, stop, rank, size))
        batch = to_batch(items, self.device)
        if config.data.amplitude_augmentation > 1:
            batch = scale_changes(batch, config.data.amplitude_augmentation, generator)
        if config.data.level_augmentation > 0:
            batch = shift_levels(batch, config.data.level_augmentation, generator)
        return batch, generator

    def train_step(self, step: int) -> float:
        """One optimiser step on this rank's shard (gradients averaged over the ranks);
        returns the loss of the global batch (the mean over ranks)."""
        batch, generator = self.shard(step, self.world.rank, self.shard_size)
        return self.update(step, batch, generator)

    def update(self, step: int, batch: Batch, generator: torch.Generator) -> float:
        """The optimiser step of :meth:`train_step` on ``batch`` (from :meth:`shard`)."""
        config = self.config
        for group in self.optimizer.param_groups:
            group["lr"] = learning_rate(config, step)
        self.model.train()
        with autocast(self.device, config.bf16):
            loss = self.parallel(batch, generator)
        if not torch.isfinite(mean := mean_over_ranks(loss.detach(), self.world)):
            raise FloatingPointError(
                f"training loss became {mean.item()} at step {step}; lower optim.lr or raise "
                "optim.warmup_steps"
            )
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if config.optim.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), config.optim.grad_clip)
        self.optimizer.step()
        if step < config.steps or config.fine_tune is None:
            self.ema.update(self.model, step)
        else:  # the fine-tune phase restarts the EMA warm-up (see FineTuneConfig)
            self.ema.decay = config.fine_tune.ema_decay or config.ema_decay
            self.ema.update(self.model, step - config.steps)
        return float(mean)

    @torch.no_grad()
    def validation_loss(self) -> float | None:
        """Mean loss of the EMA model over fixed validation items with fixed noise."""
        data = self.validation_data
        if data is None:
            return None
        config = self.config
        model = self.ema.module
        model.config = phase_objective(config, self.model_config, max(self.step - 1, 0))
        generator = torch.Generator().manual_seed(config.seed + VALIDATION_SEED_OFFSET)
        n = min(len(data), config.batch_size * config.validation_batches)
        items = np.linspace(0, len(data) - 1, n).round().astype(np.int64)
        losses = []
        for chunk in np.array_split(items, math.ceil(n / config.batch_size)):
            with autocast(self.device, config.bf16):
                losses.append(
                    float(model.loss(to_batch(data[chunk], self.device), generator=generator))
                    * len(chunk)
                )
        return sum(losses) / n

    def run(self, *, progress: bool = True) -> TrainResult:
        """Train from the current step to ``config.total_steps``; checkpoint, validate, log.

        Ctrl-C writes a checkpoint of the last finished step before stopping.
        """
        config = self.config
        total = config.total_steps
        start = time.perf_counter()
        main = self.world.is_main  # rank 0 alone validates, logs and writes
        progress = progress and main
        self.out_dir.mkdir(parents=True, exist_ok=True)
        if main:  # the log holds the steps of these weights only
            keep_log_to(self.out_dir / LOG_NAME, self.step)
        window: list[float] = []
        mean_loss: float | None = None
        bar = tqdm(
            total=total,
            initial=self.step,
            disable=not progress,
            desc="train",
            unit="step",
            dynamic_ncols=True,
        )
        try:
            with bar, open(self.out_dir / LOG_NAME if main else os.devnull, "a") as log_file:
                while self.step < total:
                    window.append(self.train_step(self.step))
                    self.step += 1
                    bar.update(1)
                    done = self.step == total
                    main_done = config.fine_tune is not None and self.step == config.steps
                    if main and (self.step % config.validate_every == 0 or done or main_done):
                        self.last_validation = self.validation_loss()
                    if main_done:
                        self.main_validation = self.last_validation
                        bar.set_description("fine-tune")
                        if main:  # minutes may pass before the fine-tune's first line
                            ft = config.fine_tune
                            log.info(
                                "main phase done at step %d (validation %s); fine-tune: %d "
                                "steps of the fair CRPS, %d members x %d sampler steps a sample",
                                self.step,
                                _fmt(self.last_validation),
                                ft.steps,
                                ft.crps_members,
                                ft.crps_nfe,
                            )
                    elif config.fine_tune is not None and self.step == config.steps + 1:
                        self.last_validation = None  # the main phase's: another objective
                    due = self.step % config.checkpoint_every == 0 or done
                    if due and self.save() is not None:  # rank 0's save: said once
                        path = self.out_dir / CHECKPOINT_NAME
                        log.info("checkpoint of step %d written to %s", self.step, path)
                    if self.step % min(config.validate_every, 50) == 0 or done or main_done:
                        mean_loss = sum(window) / len(window)
                        window.clear()
                        record = {
                            "step": self.step,
                            "loss": mean_loss,
                            "lr": learning_rate(config, self.step - 1),
                            "validation_loss": self.last_validation,
                            "phase": "main" if self.step <= config.steps else "fine_tune",
                            "seconds": round(time.perf_counter() - start, 2),
                        }
                        log_file.write(json.dumps(record) + "\n")
                        log_file.flush()
                        bar.set_postfix(loss=f"{mean_loss:.4f}", val=_fmt(self.last_validation))
                        if main and not progress:  # no bar (Prefect, a log file): one line
                            log.info(
                                "step %d/%d (%s): loss %.4f, validation %s",
                                self.step,
                                total,
                                record["phase"],
                                mean_loss,
                                _fmt(self.last_validation),
                            )
        except KeyboardInterrupt:  # no collective check: the other ranks may be gone
            if self.save(check=False) is not None:  # rank 0: the others write nothing
                log.warning("interrupted: step %d checkpointed in %s", self.step, self.out_dir)
            raise
        path = self.out_dir / CHECKPOINT_NAME
        if main and not path.exists():
            self.save(check=False)
        return TrainResult(
            path,
            self.step,
            mean_loss,
            self.last_validation,
            time.perf_counter() - start,
            phase="main" if self.step <= config.steps else "fine_tune",
            main_validation_loss=self.main_validation,
        )


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def train(
    store: AnalysisStore | str | Path,
    config: TrainConfig,
    out_dir: str | Path,
    *,
    resume: bool = True,
    progress: bool = True,
    world: World | None = None,
    data: TrainingData | None = None,
) -> TrainResult:
    """Train ``config`` on ``store`` (an AnalysisStore or its path) into ``out_dir``
    (``last.pt``, ``log.jsonl``), resuming from ``out_dir/last.pt`` when it exists.

    Training only trains: the spread calibration of ``config.calibration`` is fitted
    afterwards by the caller (:func:`generators.calibration.calibrate_checkpoint`, as
    ``wxens train`` and the train flow do). Under torchrun (``world`` from its environment
    by default) this process joins the run's process group and trains its shard. ``data``:
    the datasets read from ``store`` before (a derived run's step timing), taken where they
    are those ``config`` reads (:meth:`~generators.train_data.TrainingData.serves`)."""
    world = world_from_env() if world is None else world
    with process_group(world, rank_device(config.device, world)):
        trainer = Trainer(store, config, out_dir, resume=resume, world=world, data=data)
        return trainer.run(progress=progress)
