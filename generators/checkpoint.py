"""Checkpoints: everything needed to resume a training run or to forecast with its model.

A checkpoint file (``torch.save`` of plain containers and tensors, read back with
``weights_only=True``) holds the model and EMA weights, the optimiser state and step, the
training config, the resolved model config (backbone sized to the data), the normalisation
statistics, the channels, static fields, native step, history and leads it was trained
on, the grid, the span of times its training read (:attr:`Checkpoint.trained_span`), and
an optional spread calibration. It is written atomically: to a
temporary file in the same directory, flushed and fsynced, then ``os.replace``-d over the
target, so a crash leaves the previous checkpoint intact and never a truncated one; a
temporary file left by a write that was killed is removed at the next save of the same
checkpoint. The sha256 of the weights is stored in the file and checked at load
(:mod:`generators.checkpoint_read`), so a flipped bit in the weights is a
:class:`~pipeline.errors.StoreError` naming the file instead of a silently different forecast.

:meth:`Checkpoint.check_matches` refuses a store of another grid, other channels, static
fields or native step with an :class:`~pipeline.errors.InputError` naming both sides.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from generators.checkpoint_extension import extension_records, recorded_extensions
from generators.checkpoint_read import FORMAT_VERSION, WEIGHTS_DIGEST, read_payload, weights_sha256
from generators.checkpoint_values import check_loadable
from generators.config import TrainConfig
from generators.config_io import from_mapping, to_mapping
from generators.correction.tuned import checkpoint_digest as file_digest
from generators.correction.tuned import checkpoint_file as resolve_checkpoint_path
from generators.data import Normalization, ResidualDataset, SampleSpec
from generators.models import GENERATORS
from generators.objective import ResidualGenerator
from generators.step_memory import forward_bytes, forward_count
from pipeline.errors import (
    InputError,
    StoreError,
    refuse_dangling_link,
    shell_word,
    time_text,
)
from pipeline.schema import GRID_TOLERANCE_DEG, Period
from pipeline.temporaries import remove_left
from pipeline.timeaxis import describe_step
from pipeline.writable import check_can_write

"""The payload key of the weights' sha256 (absent from checkpoints written before it)."""

log = logging.getLogger(__name__)


FORECAST_FIX = (
    "Forecast from a store with the training grid, step and variables (regrid, or ingest "
    "those times and variables), or train a model on this store"
)


@dataclass(frozen=True, eq=False)
class Checkpoint:
    """A loaded (or about to be written) checkpoint. ``digest`` is the sha256 of the file
    (first 16 hex digits), recorded in every forecast store made with it. ``trained_span``:
    the first and last time its training samples read (ISO times; None in checkpoints
    written before it was recorded), which bounds an open training period: the times
    appended to the store after training are not what it trained on. ``forward_count``:
    :func:`~generators.step_memory.forward_count` on its grid, recorded when saved (None
    in checkpoints written before), so that a forecast need not count it again
    (:meth:`forward_bytes`)."""

    step: int
    kind: str
    model_config: Any
    train_config: TrainConfig
    normalization: Normalization
    spec: SampleSpec
    native_step: pd.Timedelta
    static_names: tuple[str, ...]
    latitude: np.ndarray
    longitude: np.ndarray
    model_state: dict[str, torch.Tensor]
    ema_state: dict[str, torch.Tensor]
    optimizer_state: dict[str, Any] | None = None
    calibration: dict[str, Any] | None = None
    trained_span: Period | None = None
    forward_count: int | None = None
    path: Path | None = None
    digest: str = ""
    extensions: dict[str, Any] = dataclasses.field(default_factory=dict)  # of its parts

    @property
    def channels(self) -> tuple[str, ...]:
        return self.normalization.channels

    @property
    def leads_hours(self) -> tuple[float, ...]:
        return self.normalization.leads_hours

    def build_model(
        self, *, ema: bool = True, device: torch.device | str = "cpu"
    ) -> ResidualGenerator:
        """The generator with the EMA (default) or raw weights, in eval mode on ``device``."""
        model = GENERATORS[self.kind](self.model_config)
        model.load_state_dict(self.ema_state if ema else self.model_state)
        return model.to(device).eval()

    @property
    def grid(self) -> tuple[int, int]:
        return len(self.latitude), len(self.longitude)

    def forward_bytes(self, grid: tuple[int, int]) -> int:
        """:func:`~generators.step_memory.forward_bytes` of its network on ``grid``, from the
        count it records for its own grid, else counted now (about a second)."""
        counted = self.forward_count if tuple(grid) == self.grid else None
        return forward_bytes(self.kind, self.model_config, tuple(grid), counted)

    def check_matches(self, data: ResidualDataset, fix: str = FORECAST_FIX) -> None:
        """InputError unless ``data`` has this checkpoint's grid, channels, statics and step
        (``fix``: what to do instead)."""
        same_grid = (
            self.latitude.shape == data.latitude.shape
            and self.longitude.shape == data.longitude.shape
        )
        same_grid = same_grid and bool(
            np.allclose(self.latitude, data.latitude, atol=GRID_TOLERANCE_DEG)
            and np.allclose(self.longitude, data.longitude, atol=GRID_TOLERANCE_DEG)
        )
        grid = [f"{len(x.latitude)} x {len(x.longitude)} {_extent(x)}" for x in (self, data)]
        sides = {
            "grid": (grid[0], grid[1], not same_grid),
            "channels": (list(self.channels), list(data.channels), False),
            "static fields": (list(self.static_names), list(data.static_names), False),
            "native step": (
                describe_step(self.native_step),
                describe_step(data.native_step),
                False,
            ),
        }
        differ = [
            f"{what} ({mine} in the checkpoint, {theirs} in the store)"
            for what, (mine, theirs, unlike) in sides.items()
            if unlike or (what != "grid" and mine != theirs)
        ]
        if differ:
            statics = "static fields" in "".join(differ)
            raise InputError(
                f"checkpoint {self.path} and {data.name} differ in: {'; '.join(differ)}. The "
                f"checkpoint was trained on {_describe(self, statics)}; {data.name} has "
                f"{_describe(data, statics)}. {fix}"
            )

    def replace(self, **changes: Any) -> Checkpoint:
        return dataclasses.replace(self, **changes)

    # -- files ----------------------------------------------------------------------------

    def save(self, path: str | Path) -> Checkpoint:
        """Write atomically to ``path``; returns the checkpoint with its path and digest."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        payload = {
            "format": FORMAT_VERSION,
            "step": self.step,
            "kind": self.kind,
            "model_config": to_mapping(self.model_config),
            "train_config": to_mapping(self.train_config),
            "normalization": self.normalization.to_dict(),
            "history": list(self.spec.history),
            "leads": list(self.spec.leads),
            "variability_scaling": self.spec.variability_scaling,
            "tendency_per_grid_point": self.spec.tendency_per_grid_point,
            "solar_forcing": self.spec.solar_forcing,
            "native_step_seconds": self.native_step.total_seconds(),
            "static_names": list(self.static_names),
            "latitude": self.latitude.astype(float).tolist(),
            "longitude": self.longitude.astype(float).tolist(),
            "model_state": self.model_state,
            "ema_state": self.ema_state,
            "optimizer_state": self.optimizer_state,
            "calibration": self.calibration,
            "trained_span": None if (span := self.trained_span) is None else [span.start, span.end],
            "forward_count": forward_count(self.kind, self.model_config, self.grid)
            if self.forward_count is None
            else self.forward_count,
            WEIGHTS_DIGEST: weights_sha256(self.model_state, self.ema_state),
            **extension_records(self.kind, self.model_config),
        }
        check_loadable(payload, path)  # what load_checkpoint would refuse: not written
        remove_stale_temporaries(path)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                torch.save(payload, f)
                f.flush()
                umask = os.umask(0)  # mkstemp's 0600 would keep a shared run from others
                os.umask(umask)
                os.fchmod(f.fileno(), 0o666 & ~umask)
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except (OSError, RuntimeError) as err:  # a full disk, a file-size limit
            Path(tmp).unlink(missing_ok=True)
            # torch's zip writer raises a RuntimeError ('unexpected pos') over the OSError
            cause = err if isinstance(err, OSError) else err.__context__
            if isinstance(cause, OSError) and cause.errno is not None:
                raise OSError(cause.errno, cause.strerror, str(path)) from cause
            if isinstance(cause, KeyboardInterrupt):  # Ctrl-C (or SIGTERM) mid-write
                raise cause from None
            raise
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return self.replace(path=path, digest=file_digest(path))


def trained_span(datasets: Sequence[ResidualDataset], previous: Checkpoint | None) -> Period:
    """The span of times a training run trains on (:attr:`Checkpoint.trained_span`): from
    the oldest history state to the latest target that an item of ``datasets`` (its phases'
    data) reads, and at least the span of ``previous``, the checkpoint it resumes, which
    trained on those. A run resumed on the same store keeps its span; one resumed on an
    open period after times were appended to the store draws from them too: its span grows."""
    spans = [d.items_span() for d in datasets]
    if previous is not None and (span := previous.trained_span) is not None:
        spans.append((pd.Timestamp(span.start), pd.Timestamp(span.end)))
    return Period(time_text(min(s[0] for s in spans)), time_text(max(s[1] for s in spans)))


def remove_stale_temporaries(path: Path) -> None:
    """Remove the temporary files (``.NAME.XXXXXXXX.tmp``) a killed save of ``path`` left
    beside it: a save holds the run directory's lock, so none is a live writer's."""
    for stale in remove_left(path, ".tmp"):
        log.info("removing %s, left by an interrupted checkpoint write", stale)


def load_checkpoint(path: str | Path, *, map_location: str | torch.device = "cpu") -> Checkpoint:
    """Read a checkpoint written by :meth:`Checkpoint.save` (or a training directory's
    ``last.pt``). StoreError if missing, unreadable, of another format, or if its weights
    do not match the sha256 stored with them."""
    path = resolve_checkpoint_path(path)
    refuse_dangling_link(path)
    if not path.is_file():
        raise StoreError(f"no checkpoint at {path}; train one with `wxens train --out DIR`")
    payload = read_payload(path, map_location)
    extensions = recorded_extensions(payload, path)  # refused where a part is unknown
    kind = payload["kind"]
    try:
        model_config = from_mapping(
            GENERATORS[kind].config_class, payload["model_config"], "model_config"
        )
        train_config = from_mapping(TrainConfig, payload["train_config"], "train_config")
    except InputError as err:
        raise StoreError(
            f"{path} holds a config this wxens cannot read ({err}); it was written by another "
            "version of wxens (one with other config keys): load it with that version, or "
            "retrain it with this one"
        ) from err
    return Checkpoint(
        step=int(payload["step"]),
        kind=kind,
        model_config=model_config,
        train_config=train_config,
        normalization=Normalization.from_dict(payload["normalization"]),
        spec=SampleSpec(
            history=tuple(payload["history"]),
            leads=tuple(payload["leads"]),
            # absent from checkpoints written before they existed
            variability_scaling=bool(payload.get("variability_scaling", False)),
            tendency_per_grid_point=bool(payload.get("tendency_per_grid_point", False)),
            solar_forcing=bool(payload.get("solar_forcing", False)),
        ),
        native_step=pd.Timedelta(seconds=payload["native_step_seconds"]),
        static_names=tuple(payload["static_names"]),
        latitude=np.asarray(payload["latitude"]),
        longitude=np.asarray(payload["longitude"]),
        model_state=payload["model_state"],
        ema_state=payload["ema_state"],
        optimizer_state=payload["optimizer_state"],
        calibration=payload["calibration"],
        trained_span=Period(*span) if (span := payload.get("trained_span")) else None,
        forward_count=payload.get("forward_count"),  # absent from older checkpoints
        path=path,
        digest=file_digest(path),
        extensions=extensions,
    )


def _extent(x: Any) -> str:
    """``(latitude 50 to 58, longitude -10 to 2)`` of anything with those coordinates."""
    lat, lon = x.latitude, x.longitude
    return f"(latitude {lat[0]:g} to {lat[-1]:g}, longitude {lon[0]:g} to {lon[-1]:g})"


def _describe(x: Any, statics: bool) -> str:
    """The grid, channels, static fields (with ``statics``) and step of a checkpoint or
    dataset, for a mismatch message."""
    static = f", static fields {list(x.static_names)}" if statics else ""
    return (
        f"a {len(x.latitude)} x {len(x.longitude)} grid {_extent(x)}, channels "
        f"{list(x.channels)}{static}, native step {describe_step(x.native_step)}"
    )


def check_run_writable(
    checkpoint: str | Path, command: str, *, lock: bool = False, more: str = ""
) -> None:
    """InputError naming the folder of ``checkpoint`` (file or training directory) where
    ``wxens command`` writes (tuning forecasts and weights, a calibrated checkpoint) if this
    user may not write it (a run an administrator shared read-only), and the fix: copy the
    run and ``command`` the copy, ``more`` (another way), or train your own. Called as the
    checkpoint loads: they read the store and drew forecasts before Permission denied.
    ``lock``: the command also takes the folder's lock beside it (a calibration's)."""
    path = Path(checkpoint)
    folder = path if path.is_dir() else path.parent
    copy = f"cp -r {shell_word(folder)} DIR"
    check_can_write(
        folder,
        f"wxens {command} writes in it: copy the run somewhere you can write ({copy}) and "
        f"{command} the copy{more}, or train your own",
        lock=lock,
    )
