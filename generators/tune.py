"""The correction weights of a checkpoint chosen on its own data (``wxens tune``).

The checkpoint forecasts initial times of a period of its analysis store (by default its
held-out period, ``data.validation``, else its training period; every ``every_hours``) into
a forecast store beside it (:func:`generators.rollout_store.forecast_to_store`;
``tune-DIGEST-KEY.zarr``, KEY a hash of the analysis store's path and the leads, members,
sampler and seed, so a rerun only draws what is new; those of an earlier checkpoint file in
the directory are deleted). Those initial times are cut into ``folds`` consecutive blocks
(by default as many as keep :data:`MIN_FOLD` of them in each, at most four; folds in which
nothing could be corrected are refused); within each block every candidate chain corrects
the forecasts from the block's own verified past only (causal, as in operation: the first
forecasts of each block go uncorrected), and the blocks are scored together
(:func:`generators.correction.select_weights.select_weights`: each variable of the model
its own weights, chosen on its scores pooled over its levels, or one set chosen on the
channel ``variable`` alone). A stage keeps a weight only if it lowers the cross-validated
fair CRPS; the others are 0. The choice is written beside the checkpoint
(:mod:`generators.correction.tuned`), where ``wxens bias-correct`` and ``wxens run`` find it.

Forecasts of a period the model was trained on fit the truth more closely than forecasts
of new days, so they show less of the error a correction would remove: a weight chosen on
them errs towards no correction (on the UK sample's validation split, none or 0.05, where
the held-out days chose 0.4; ``docs/benchmarks.md``). So the held-out period is the
default, and a checkpoint without one is tuned on its training period with a warning, or,
given its cross-validation folds (``fold_checkpoints``, :mod:`generators.tune_folds`), on
their forecasts of the periods they held out, one block per fold, each in a tuning store
beside the fold.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

from generators.calibration import calibration_init_times
from generators.checkpoint import Checkpoint, check_run_writable, load_checkpoint
from generators.correction.decaying_average import corrects_any
from generators.correction.select_weights import WeightSelection, one_channel, select_weights
from generators.correction.spec import CANDIDATES, CorrectionSpec
from generators.correction.tuned import checkpoint_digest, save_tuned
from generators.data.forecast import ForecastData
from generators.in_sample import trained_periods, warn_if_trained_on
from generators.rollout_store import forecast_to_store
from generators.tune_folds import TuningSource, fold_sources, refuse_folds_with
from pipeline.errors import InputError, given, time_text
from pipeline.forecast_store import open_forecast
from pipeline.schema import INIT_TIME, Period, split_channel
from pipeline.store import open_store

log = logging.getLogger(__name__)


class Tuned(NamedTuple):
    """:func:`tune_correction`'s result: the chosen weights (bias weight 0: none), the
    selection with its table of scores, the file they were written to and the forecast
    stores they were chosen on (one per fold checkpoint given, else the checkpoint's)."""

    spec: CorrectionSpec
    selection: WeightSelection
    path: Path
    forecasts: tuple[Path, ...]


MIN_FOLD = pd.Timedelta(days=4)
"""The least span of initial times of a fold when ``folds`` is not given: a fold is corrected
from its own verified past only, by lead and time of day, so a fold of about a day leaves
its forecasts as they are (no earlier one of their time of day) and a few days correct
only their last ones."""
MAX_DEFAULT_FOLDS = 4
#: The options of ``wxens tune`` that give :func:`tune_correction`'s keyword arguments: its
#: messages name them so where the command passes these (``options=OPTIONS``).
OPTIONS = {
    "folds": "--folds",
    "every_hours": "--every",
    "period": "--start, --end",
    "fold_checkpoints": "--fold",
    "variable": "--variable",
    **{f"{stage}_weights": f"--{stage}-weights" for stage in CANDIDATES},
}


def tune_correction(
    checkpoint: str | Path,
    store: str | Path,
    *,
    leads_hours: Sequence[float] | None = None,
    members: int = 20,
    folds: int | None = None,
    every_hours: float | None = None,
    period: Period | None = None,
    variable: str | None = None,
    bias_weights: Sequence[float] = CANDIDATES["bias"],
    spread_weights: Sequence[float] = CANDIDATES["spread"],
    rank_weights: Sequence[float] = CANDIDATES["rank"],
    sampler: str | None = None,
    seed: int = 0,
    device: str = "auto",
    progress: bool = False,
    fold_checkpoints: Sequence[str | Path] = (),
    options: Mapping[str, str] | None = None,
) -> Tuned:
    """Choose and store the correction weights of ``checkpoint`` (module docstring).

    leads_hours: the leads scored (default: the checkpoint's trained leads); members: the
    ensemble size of the tuning forecasts; folds: the number of consecutive blocks (default
    :func:`default_folds`);
    every_hours: hours between initial times (default: the native step, at least 6 h);
    period: the initial times' period (default: the checkpoint's held-out period, else its
    training period; a side left open, e.g. ``Period("2019-03-10", None)``, is the default's);
    variable: the channel whose scores choose one set of weights for all (default: each
    variable of the checkpoint its own,
    :func:`~generators.correction.select_weights.select_weights`);
    fold_checkpoints: cross-validation folds of the checkpoint, each forecasting its held-out
    period as one block (:mod:`generators.tune_folds`), instead of ``folds`` and ``period``;
    options: how a command names these arguments in its messages (:data:`OPTIONS`, for
    ``wxens tune``), else they are named as the keyword arguments."""
    if folds is not None and folds < 1:
        raise InputError(f"{given('folds', options, folds)}: give at least 1")
    candidates = {"bias": bias_weights, "spread": spread_weights, "rank": rank_weights}
    for stage, weights in candidates.items():
        bad = [w for w in weights if not 0 < w <= 1]
        if bad:
            raise InputError(
                f"{given(f'{stage}_weights', options, weights)}: every candidate must be in "
                f"(0, 1], got {bad}"
                + (" (the uncorrected forecast is always scored)" if stage == "bias" else "")
            )
    refuse_folds_with(fold_checkpoints, folds, period, options)
    loaded = load_checkpoint(checkpoint)
    for run in (loaded.path, *fold_checkpoints):  # its forecasts and choice go beside them
        check_run_writable(run, "tune")
    channels = list(loaded.channels)
    if variable is None and len(channels) == 1:
        variable = channels[0]
    elif variable is not None and variable not in channels:
        raise InputError(
            f"{given('variable', options, variable)}: {checkpoint} forecasts only {channels}"
        )
    leads = list(leads_hours or loaded.leads_hours)
    step_hours = loaded.native_step / pd.Timedelta(hours=1)
    every = every_hours or max(step_hours, 6.0)
    # default_period warns when it falls back on the training period: the forecasts need not
    # warn again that their initial times lie in it
    said = not fold_checkpoints and (
        loaded.train_config.data.validation is None
        and (period is None or period.start is None or period.end is None)
    )
    if fold_checkpoints:
        sources = fold_sources(loaded, store, fold_checkpoints, leads, every, options)
    else:
        sources = [own_source(loaded, store, period, folds, leads, every, options)]
    blocks, stores = [], []
    for source in sources:
        out = draw(
            source,
            store,
            leads,
            members,
            sampler=sampler,
            seed=seed,
            device=device,
            progress=progress,
            warn_trained_on=not said,
        )
        forecast = open_forecast(out)
        forecast = forecast[list(dict.fromkeys(split_channel(c)[0] for c in channels))]
        forecast = one_channel(forecast, variable) if variable else forecast
        forecast = forecast.sel({INIT_TIME: source.inits})
        blocks += [forecast.sel({INIT_TIME: block}).load() for block in source.blocks]
        stores.append(out)
    truth = open_store(store).dataset
    selection = select_weights(
        blocks,
        one_channel(truth, variable) if variable else truth,
        bias_weights,
        spread_weights,
        rank_weights,
        variable=split_channel(variable)[0] if variable else None,
        seed=seed,
    )
    inits = pd.DatetimeIndex(sorted(t for source in sources for t in source.inits))
    spec = selection.spec or CorrectionSpec()
    details = {
        "variable": variable or channels,  # all: each variable's weights its own
        "leads_hours": leads,
        "members": members,
        "folds": len(blocks),
        "init_times": len(inits),
        "first_init_time": time_text(inits[0]),
        "last_init_time": time_text(inits[-1]),
        "every_hours": every,
        "scores": scores_record(selection.table),
    }
    if fold_checkpoints:
        details["fold_checkpoints"] = [str(s.checkpoint.path) for s in sources]
    path = save_tuned(loaded.path, spec, details, digest=loaded.digest)
    return Tuned(spec, selection, path, tuple(stores))


def scores_record(table: pd.DataFrame) -> dict:
    """The scores of the candidates as the tuned file holds them: by candidate, and by
    variable first where each variable chose its own weights."""
    if table.index.nlevels == 1:
        return table.to_dict(orient="index")
    return {name: table.loc[name].to_dict(orient="index") for name in table.index.unique(0)}


def own_source(
    loaded: Checkpoint,
    store: str | Path,
    period: Period | None,
    folds: int | None,
    leads: Sequence[float],
    every: float,
    options: Mapping[str, str] | None = None,
) -> TuningSource:
    """The checkpoint's own initial times of ``period`` (default :func:`default_period`; an
    open side is the default's), cut into ``folds`` consecutive blocks (default
    :func:`default_folds`); InputError where a block would hold fewer than 2 or none could
    correct anything (:func:`check_correctable`); ``options`` as :func:`tune_correction`'s."""
    if period is None:
        period = default_period(loaded, options)
    elif period.start is None or period.end is None:
        default = default_period(loaded, options)
        period = Period(period.start or default.start, period.end or default.end)
    data = ForecastData.from_store(loaded, store)
    inits = calibration_init_times(
        data.times, period.start, period.end, every, max(leads), what="tuning", options=options
    )
    inits = data.usable_inits(inits, leads)
    folds = default_folds(inits) if folds is None else folds
    if len(inits) < 2 * folds:
        raise InputError(
            f"{len(inits)} initial time(s) every {every:g} h in {period} for {folds} fold(s): "
            f"each fold needs at least 2; give fewer {given('folds', options)}, a smaller "
            f"{given('every_hours', options)} or a longer period"
        )
    blocks = [inits[i] for i in np.array_split(np.arange(len(inits)), folds)]
    check_correctable(blocks, leads, data.times, options)
    return TuningSource(loaded, inits, blocks)


def draw(
    source: TuningSource,
    store: str | Path,
    leads: Sequence[float],
    members: int,
    **forecast: object,
) -> Path:
    """Forecast ``source``'s initial times into its tuning store beside its checkpoint
    (``tune-DIGEST-KEY.zarr``, module docstring; those of earlier checkpoints there
    removed) and return that store's path. ``forecast``: more arguments of
    :func:`generators.rollout_store.forecast_to_store`, its ``sampler`` and ``seed`` in
    the key."""
    loaded, inits = source.checkpoint, source.inits
    # the held-out period tuned on is the spread calibration's too, by design: warn of the
    # training period only, not of in-sample spread-skill as a verified forecast would
    if forecast.pop("warn_trained_on", True):
        warn_if_trained_on(loaded, inits, leads, calibrated=False)
    key = [str(Path(store).resolve()), leads, members, forecast["sampler"], forecast["seed"]]
    key = json.dumps(key + ([list(source.key)] if source.key else []))
    key = hashlib.sha256(key.encode()).hexdigest()[:8]
    out = Path(loaded.path).parent / f"tune-{loaded.digest}-{key}.zarr"
    remove_earlier_forecasts(out.parent, loaded.digest)
    log.info(
        "tuning on %d initial times, %s to %s, into %s",
        len(inits),
        time_text(inits[0]),
        time_text(inits[-1]),
        out,
    )
    forecast_to_store(
        loaded,
        store,
        inits,
        leads,
        members,
        str(out),
        **forecast,
        warn_trained_on=False,
        redraw="remove the store, then run wxens tune again",
    )
    return out


def default_folds(inits: pd.DatetimeIndex) -> int:
    """Folds of at least :data:`MIN_FOLD` of initial times each, at most
    :data:`MAX_DEFAULT_FOLDS`, at least one."""
    return int(np.clip((inits[-1] - inits[0]) // MIN_FOLD, 1, MAX_DEFAULT_FOLDS))


def check_correctable(
    folds: Sequence[pd.DatetimeIndex],
    leads_hours: Sequence[float],
    truth_times: pd.DatetimeIndex,
    options: Mapping[str, str] | None = None,
) -> None:
    """InputError, before any forecast, when no initial time of any fold has an earlier one
    of the fold verified at its leads and time of day (fold by fold, as the candidates
    correct): every candidate would score as the uncorrected forecast, and "no correction
    lowers the fair CRPS" would be said of a choice never made."""
    leads = pd.to_timedelta(list(leads_hours), unit="h")
    if any(corrects_any(f, leads, truth_times) for f in folds):
        return
    days = min((f[-1] - f[0]) / pd.Timedelta(days=1) for f in folds)
    raise InputError(
        f"the {len(folds)} fold(s) of {days:.2g} days of initial times leave nothing to "
        "correct: no initial time has an earlier forecast of its lead and time of day in its "
        "fold verified by it, so every candidate would score as no correction; give fewer "
        f"{given('folds', options)} (1 for a few days of initial times) or a longer period "
        f"({given('period', options)})"
    )


def remove_earlier_forecasts(directory: Path, digest: str) -> None:
    """Delete the tuning forecasts in ``directory`` of checkpoints no longer there (the
    directory trained or calibrated since): no rerun draws on them again. Those of
    ``digest`` and of the other checkpoint files beside it (a calibrated copy) are kept."""
    stale = [
        old
        for old in sorted(directory.glob("tune-*-*.zarr"))
        if old.is_dir() and not old.name.startswith(f"tune-{digest}-")
    ]
    if not stale:
        return
    present = {checkpoint_digest(f) for f in directory.glob("*.pt") if f.is_file()}
    for old in stale:
        if old.name.split("-")[1] not in present:
            shutil.rmtree(old)
            log.info("removed %s: the tuning forecasts of an earlier checkpoint", old)


def default_period(loaded: Checkpoint, options: Mapping[str, str] | None = None) -> Period:
    """The checkpoint's held-out period (``data.validation``), else its training period
    (its open sides bounded by the span of times its training read, where recorded:
    :func:`generators.in_sample.trained_periods`) with a warning that a weight chosen
    there errs towards no correction (``options``: as :func:`tune_correction`'s)."""
    data = loaded.train_config.data
    if data.validation is not None:
        return data.validation
    train = trained_periods(loaded)[0]
    log.warning(
        "%s holds no held-out period (data.validation): tuning on forecasts of its training "
        "period %s, which show less bias than new days; give %s of days it did not train on",
        loaded.path,
        train,
        given("period", options),
    )
    return train
