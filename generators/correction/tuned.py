"""The correction weights chosen for a checkpoint, kept beside it.

``wxens tune`` (:func:`generators.tune.tune_correction`) chooses the weights of the
correction chain on forecasts of the checkpoint's held-out period (else its training
period) and writes them beside it, with the digest of the checkpoint file they were chosen
for: ``correction.json`` for a training directory's ``last.pt``, ``NAME.correction.json``
for another checkpoint file ``NAME.pt``, so two checkpoints in one directory (a model and
its calibrated copy) each keep their own choice. ``wxens bias-correct`` and
``wxens run`` read them when no weight is given (:func:`resolve_correction`), for a
forecast store that checkpoint made; a file chosen for another checkpoint file (the
directory trained or calibrated again) is ignored with a warning. Torch-free: a command
reads its choice.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from generators.correction.spec import Correction, CorrectionByVariable, CorrectionSpec
from pipeline.errors import InputError, shell_word
from pipeline.forecast_store import ForecastProvenance, open_forecast
from verification.output import atomic_output

TUNED_FILE = "correction.json"
"""The file beside a training directory's checkpoint holding its tuned weights (another
checkpoint file's name is prefixed with the file's stem)."""

log = logging.getLogger(__name__)


def checkpoint_file(checkpoint: str | Path) -> Path:
    """The checkpoint file: ``checkpoint`` itself, or ``checkpoint/last.pt`` for a training
    directory, as every command takes a checkpoint."""
    path = Path(checkpoint)
    return path / "last.pt" if path.is_dir() else path


def tuned_path(checkpoint: str | Path) -> Path:
    """Where the tuned weights of ``checkpoint`` (file or training directory) live: its own
    file (:data:`TUNED_FILE`), or the directory's shared one that a wxens before the own
    files wrote for this very checkpoint, while it has no own one."""
    file = checkpoint_file(checkpoint)
    shared = file.parent / TUNED_FILE
    own = shared if file.name == "last.pt" else file.parent / f"{file.stem}.{TUNED_FILE}"
    if own != shared and not own.is_file() and shared.is_file():
        if not _stale(checkpoint, read_tuned(shared)[1]):
            return shared
    return own


def checkpoint_digest(checkpoint: str | Path) -> str:
    """The first 16 hex digits of the sha256 of the checkpoint file (the digest every
    forecast store made with it records)."""
    h = hashlib.sha256()
    with open(checkpoint_file(checkpoint), "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:16]


def _weights(spec: CorrectionSpec) -> dict[str, float]:
    """The three weights of ``spec`` as the file holds them (0 for a stage off)."""
    return {
        "bias_weight": spec.bias_weight,
        "spread_weight": spec.spread_weight or 0.0,
        "rank_weight": spec.rank_weight or 0.0,
    }


def save_tuned(
    checkpoint: str | Path,
    spec: Correction,
    details: dict[str, Any],
    *,
    digest: str | None = None,
) -> Path:
    """Write ``spec`` (weight 0 for each stage off; by variable, ``by_variable`` holds each
    one's) and ``details`` (how it was chosen) beside ``checkpoint``, with the digest of the
    checkpoint they were chosen for: ``digest``, read when the tuning forecasts were drawn
    (the file may have been replaced since, by a calibration), else the file's now; returns
    the file."""
    path = tuned_path(checkpoint)
    weights = (
        _weights(spec)
        if isinstance(spec, CorrectionSpec)
        else {"by_variable": {name: _weights(one) for name, one in spec.specs}}
    )
    record = {**weights, "checkpoint_digest": digest or checkpoint_digest(checkpoint), **details}
    with atomic_output(path) as temporary:  # a name of its own: two tunes never share one
        temporary.write_text(json.dumps(record, indent=1, sort_keys=True, default=str) + "\n")
    return path


def load_tuned(checkpoint: str | Path) -> Correction | None:
    """The weights tuned for ``checkpoint``, or None when it has none (never tuned, or tuned
    for another checkpoint file since replaced, which is logged). InputError for a file that
    is not one :func:`save_tuned` wrote."""
    path = tuned_path(checkpoint)
    if not path.is_file():
        return None
    spec, digest = read_tuned(path)
    if _stale(checkpoint, digest):
        log.warning(
            "%s was tuned for another checkpoint (digest %s); ignored: run `wxens tune` again",
            path,
            digest,
        )
        return None
    return spec


def read_tuned(path: Path) -> tuple[Correction, str]:
    """The weights in ``path`` and the digest of the checkpoint they were tuned for."""

    def spec_of(weights: dict) -> CorrectionSpec:
        return CorrectionSpec(
            float(weights["bias_weight"]),
            float(weights["spread_weight"]),
            float(weights["rank_weight"]),
        )

    try:
        record = json.loads(path.read_text())
        by = record.get("by_variable")
        spec = (
            spec_of(record)
            if by is None
            else CorrectionByVariable(tuple((name, spec_of(w)) for name, w in by.items()))
        )
        return spec, record["checkpoint_digest"]
    except (ValueError, KeyError, TypeError, AttributeError) as err:
        raise InputError(
            f"{path} is not a tuned correction ({err}); delete it and run `wxens tune` again"
        ) from None


def _stale(checkpoint: str | Path, digest: str) -> bool:
    """Whether the checkpoint file is no longer the one of ``digest``."""
    return checkpoint_file(checkpoint).is_file() and digest != checkpoint_digest(checkpoint)


@dataclass(frozen=True)
class CorrectionNames:
    """How the user gives a checkpoint and a bias weight W where they run the correction:
    the command line's flags by default; a flow names its parameters (a served run has no
    flags: :data:`flows.deployments.RUN_PARAMETER_NAMES`)."""

    checkpoint: str = "--checkpoint K"
    bias_weight: str = "--bias-weight W"


def resolve_correction(
    checkpoint: str | Path | None,
    bias_weight: float | None = None,
    spread_weight: float | None = None,
    rank_weight: float | None = None,
    *,
    forecast: str | Path | None = None,
    names: CorrectionNames = CorrectionNames(),
) -> Correction:
    """The weights to correct with: those given if any is given (the others off), else the
    ones tuned for ``checkpoint`` (:func:`load_tuned`), else none (bias weight 0). With
    ``forecast``, the forecast store to correct, tuned weights are used only for the
    checkpoint that made it (:func:`check_made_by`), also after the checkpoint changed
    (:func:`_tuned_for_maker`); names: how the caller's user gives a checkpoint and a
    weight, which its refusals name (default: the CLI's flags)."""
    if bias_weight is not None or spread_weight is not None or rank_weight is not None:
        return CorrectionSpec(bias_weight or 0.0, spread_weight, rank_weight)
    if checkpoint is not None and forecast is not None:
        _made_by(forecast, names)  # a baseline's store: refused whatever the checkpoint's choice
        kept = _tuned_for_maker(checkpoint, forecast)
        if kept is not None:
            return kept
    tuned = None if checkpoint is None else load_tuned(checkpoint)
    if tuned is not None and forecast is not None:
        check_made_by(checkpoint, forecast, names)
    return tuned if tuned is not None else CorrectionSpec()


def _tuned_for_maker(checkpoint: str | Path, forecast: str | Path) -> Correction | None:
    """The weights beside ``checkpoint`` if they were tuned for the checkpoint that made
    ``forecast`` although the file has changed since (calibrated or trained again): they
    still belong to that store's forecasts, which the new checkpoint's tuning cannot
    correct (it made none of them). None otherwise (:func:`load_tuned` decides)."""
    path = tuned_path(checkpoint)
    if not path.is_file():
        return None
    spec, digest = read_tuned(path)
    if not _stale(checkpoint, digest) or digest != _made_by(forecast):
        return None
    log.info(
        "%s: tuned for the checkpoint %s that made %s (%s has changed since; its new "
        "forecasts need `wxens tune` again)",
        path,
        digest,
        forecast,
        checkpoint,
    )
    return spec


def _made_by(forecast: str | Path, names: CorrectionNames = CorrectionNames()) -> str:
    """The digest of the checkpoint that made the forecast store ``forecast``; InputError
    for a baseline's store, which no checkpoint made, naming the weights as ``names`` do."""
    maker = ForecastProvenance.from_attrs(open_forecast(forecast).attrs)
    if maker.generator.startswith("baseline:"):
        raise InputError(
            f"{forecast} is a {maker.generator.removeprefix('baseline:')} baseline, made by no "
            "checkpoint: the weights `wxens tune` chose for a checkpoint are for its own "
            f"forecasts; give the weights ({names.bias_weight}) to correct the baseline"
        )
    return maker.checkpoint_digest


def check_made_by(
    checkpoint: str | Path, forecast: str | Path, names: CorrectionNames = CorrectionNames()
) -> None:
    """InputError, naming both digests and the fix as ``names`` give it, unless the forecast
    store ``forecast`` was made by the checkpoint file ``checkpoint`` (a training directory:
    its ``last.pt``): the weights tuned for one model say nothing of another's errors."""
    made_by = _made_by(forecast, names)
    digest = checkpoint_digest(checkpoint)
    if made_by != digest:
        raise InputError(
            f"{forecast} was made by the checkpoint {made_by}, not by {checkpoint} ({digest}), "
            "whose tuned weights were chosen on its own forecasts: give the checkpoint that "
            f"made the forecast as {names.checkpoint}, or the weights ({names.bias_weight})"
        )


def _tune_command(checkpoint: str | Path, store: str | Path | None) -> str:
    """The `wxens tune` command for ``checkpoint``, quoted (a model of several channels is
    tuned on all of them: no ``--variable`` needed)."""
    store_word = shell_word(store) if store else "STORE"
    return f"`wxens tune --checkpoint {shell_word(checkpoint)} --store {store_word}`"


def no_correction_reason(
    checkpoint: str | Path | None,
    bias_weight: float | None = None,
    spread_weight: float | None = None,
    rank_weight: float | None = None,
    *,
    store: str | Path | None = None,
    forecast: str | Path | None = None,
    names: CorrectionNames = CorrectionNames(),
) -> str:
    """Why :func:`resolve_correction` of the same arguments corrects nothing, naming the
    fix: weights given that are off (a bias weight of 0), no checkpoint, a checkpoint never
    tuned (or tuned before it changed), or one for which `wxens tune` chose none. store:
    the analysis store to name in the `wxens tune` command it suggests; forecast: the
    store to correct, whose maker's choice holds after the checkpoint changed; names: how
    the caller's user gives a checkpoint and a weight (default: the CLI's flags)."""
    given = [w for w in (bias_weight, spread_weight, rank_weight) if w is not None]
    if given:
        return (
            f"the weights given correct nothing (bias weight {bias_weight or 0:g}: a bias "
            "weight of 0 is no correction, the spread and rank stages act on the "
            "bias-corrected forecast, and weights given replace all of the tuned ones): give "
            f"{names.bias_weight} in (0, 1], or no weight for the tuned ones"
        )
    if checkpoint is None:
        return (
            f"no correction weights: give {names.checkpoint} (the weights `wxens tune` chose "
            f"for the checkpoint that made the forecast) or {names.bias_weight}"
        )
    path = tuned_path(checkpoint)
    tune = _tune_command(checkpoint, store)
    if not path.is_file():
        return (  # a model holding out no days would be tuned on its training days
            f"{checkpoint} has no tuned correction ({path}): run {tune} (with --fold FOLD "
            "... for a model that held out no days: its cross-validation folds, "
            f"docs/generate.md) first, or give {names.bias_weight}"
        )
    _, digest = read_tuned(path)
    made = forecast is not None and _stale(checkpoint, digest)
    if made and digest == _made_by(forecast, names):
        return (
            f"`wxens tune` chose no correction for the checkpoint {digest} that made "
            f"{forecast} ({path}): none lowered its cross-validated fair CRPS; give "
            f"{names.bias_weight} to correct all the same"
        )
    if _stale(checkpoint, digest):
        return (
            f"{path} was tuned for the checkpoint {digest}, which {checkpoint} is no longer "
            f"(trained or calibrated since): run {tune} again, or give {names.bias_weight}"
        )
    return (
        f"`wxens tune` chose no correction for {checkpoint} ({tuned_path(checkpoint)}): none "
        f"lowered its cross-validated fair CRPS; give {names.bias_weight} to correct all the "
        "same"
    )


def chose_none(
    checkpoint: str | Path | None, forecast: str | Path, *weights: float | None
) -> Path | None:
    """The file of ``checkpoint``'s tuned choice if `wxens tune` chose no correction (every
    weight 0) for the checkpoint that made the forecast store ``forecast``, also after the
    checkpoint changed, and none of ``weights`` (those given by hand) is given; None
    otherwise (weights given, no checkpoint, never tuned, a choice of weights, or one made
    for another checkpoint)."""
    given = any(w is not None for w in weights)
    if given or checkpoint is None or not tuned_path(checkpoint).is_file():
        return None
    spec, digest = read_tuned(tuned_path(checkpoint))
    return None if spec.applies or digest != _made_by(forecast) else tuned_path(checkpoint)
