"""Forecast a store: a checkpoint's ensembles of an analysis store's initial times, written
to a forecast store batch by batch with their provenance (:func:`forecast_to_store`, what
``wxens forecast`` and the forecast flow run)."""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from generators.checkpoint import Checkpoint, load_checkpoint
from generators.config import parse_sampler, sampler_spec
from generators.correction.spread import SpreadCalibration, far_factors
from generators.data.forecast import ForecastData, to_dataset
from generators.device import resolve_device
from generators.fine_tuned import warn_if_not_fine_tuned_for
from generators.forecast_model import forecast_network
from generators.in_sample import warn_if_trained_on
from generators.models import GENERATORS
from generators.rollout import iter_forecast
from generators.rollout_plan import check_ensemble_size, plan_rollout
from generators.sampler_choice import choose_sampler
from generators.samplers import Sampler
from pipeline.forecast_claims import Claims
from pipeline.forecast_store import (
    ForecastProvenance,
    check_extends,
    complete_init_times,
    pending_init_times,
    source_attrs,
    write_forecast,
    written_by_run,
)
from pipeline.forecast_times import span
from pipeline.store import AnalysisStore, open_store

log = logging.getLogger(__name__)

FORECAST_REDRAW = "wxens forecast --recompute, or remove the store"
"""How the user of ``wxens forecast`` draws again the initial times a store holds (what
:func:`forecast_to_store` says when it skips them, unless its caller says otherwise)."""


@dataclass(frozen=True)
class ForecastRun:
    """What :func:`forecast_to_store` wrote."""

    out: str
    init_times: tuple[pd.Timestamp, ...]
    leads_hours: tuple[float, ...]
    members: int
    provenance: ForecastProvenance
    calibration: SpreadCalibration | None
    #: Initial times asked for that ``out`` held completely when the run began: skipped.
    skipped: int = 0
    #: Initial times another run wrote into ``out`` while this one ran: dropped before
    #: their batch was drawn, or (written in the last moment) drawn and not written.
    written_by_another_run: int = 0
    #: Initial times a dask worker of this run wrote before it died: the task, rerun on
    #: another worker, found them in the store (kept) and drew only the missing ones.
    written_before_a_worker_died: int = 0
    #: Initial times a dask worker of this run wrote before it was retired (scaled down):
    #: dask moved its task to another worker, which found them in the store (kept).
    written_before_a_worker_retired: int = 0


def forecast_to_store(
    checkpoint: str | Checkpoint,
    store: AnalysisStore | str | Path,
    inits: Sequence[pd.Timestamp] | pd.DatetimeIndex,
    leads_hours: Sequence[float],
    n_members: int,
    out: str,
    *,
    sampler: Sampler | str | None = None,
    seed: int = 0,
    calibrate: bool = True,
    device: str = "auto",
    compile: bool = True,
    batch_members: int = 512,
    progress: bool = True,
    recompute: bool = False,
    balance: bool = False,
    warn_trained_on: bool = True,
    warned: bool = False,
    redraw: str = FORECAST_REDRAW,
    claims_run: str | None = None,
    run_since: str | None = None,
    warn_of: Sequence[pd.Timestamp] | None = None,
) -> ForecastRun:
    """Forecast ``inits`` with a checkpoint (path or loaded) from the analysis ``store`` and
    write the members into the forecast store ``out``, one batch of initial times at a
    time (:func:`pipeline.forecast_store.write_forecast`: new initial times appended, reruns
    overwrite their own region).

    ``sampler``: a sampler, a spec such as ``"euler:nfe=10"``, or None for the checkpoint's
    default. ``calibrate``: apply the checkpoint's spread calibration when it has one; the
    calibration used (or ``{}``) goes into the store's provenance and is logged with its
    SSR before/after; a warning says when the forecasts fall in the checkpoint's training
    period. ``compile``: ``torch.compile`` the network on CUDA (the first batch
    pays the compilation). ``recompute``: draw again the initial times ``out`` already holds
    completely; by default they are skipped, and so is one another run writes meanwhile:
    the store is read again before each batch is drawn (:func:`unwritten`), and the batch
    is claimed, so that runs into ``out`` started together draw each batch once
    (:mod:`pipeline.forecast_claims`). A ``recompute`` run neither claims nor heeds claims:
    it draws every initial time asked. ``claims_run``: the run id to claim under, that of a
    caller which has claimed the batches itself (the forecast flow, whose tasks draw one
    batch each) and removes the claims when it ends; by default a new one, removed when
    this call ends. The run id goes into the metadata of each commit: with ``recompute``,
    a given ``claims_run`` skips the initial times its run committed after the store's
    commit ``run_since`` (its last when the run began; None: the run made the store), a
    dask task rerun after its worker died (:mod:`generators.rollout_dask`).
    ``balance``: make every step's upper air hypsometric and geostrophic
    (:func:`generators.rollout.balance_constraint`). ``warn_trained_on=False``: no warning
    about the training period, for a caller that forecasts it on purpose and says so.
    ``warned``: the caller said this forecast's warnings, about a sampler longer than the
    fine-tune's (:func:`~generators.fine_tuned.warn_if_not_fine_tuned_for`), a spread
    calibration far from 1 (:func:`warn_if_far`) and the training period, so they are not
    said here (the client of a dask forecast, whose workers' logs the user does not see,
    and which would say them once a batch).
    ``warn_of``: the initial times the warning about the training period names (None:
    ``inits``): rank 0 of a torchrun launch names every rank's, as one process does.
    ``redraw``: how the user of the command that calls this draws skipped initial times
    again (:func:`pipeline.forecast_store.pending_init_times`).
    Every input is checked before anything is written, and before the warning about the
    training period: a refused forecast logs only its refusal.
    """
    check_ensemble_size(n_members, batch_members)
    loaded = checkpoint if isinstance(checkpoint, Checkpoint) else load_checkpoint(checkpoint)
    given = parse_sampler(sampler) if isinstance(sampler, str) else sampler
    calibration = None
    if loaded.calibration is not None and calibrate:
        calibration = SpreadCalibration.from_dict(loaded.calibration)
    check_fitted_for(loaded, calibration, given, balance)  # before the store and network load
    store = store if isinstance(store, AnalysisStore) else open_store(store)
    data = ForecastData.from_store(loaded, store)  # a store it cannot forecast from: refused
    asked, inits = pd.DatetimeIndex(inits), pending_init_times(inits, out, recompute, redraw)
    if recompute and claims_run:  # drawn already by this run: kept, counted skipped
        inits = inits.difference(written_by_run(out, claims_run, run_since))
    plan = plan_rollout(leads_hours, loaded.leads_hours, data.history_hours)
    data.windows(inits, plan, warn=False)  # every init has its history: fail before writing
    model = forecast_network(loaded, resolve_device(device), compile)
    chosen = choose_sampler(loaded, model, given)
    provenance = ForecastProvenance(
        generator=loaded.kind,
        checkpoint_digest=loaded.digest,
        sampler=sampler_spec(chosen.sampler),
        nfe=chosen.sampler.nfe,
        seed=seed,
        calibration=calibration.to_dict() if calibration else {},
        balanced=balance,
    )
    # before the calibration is named; nothing to draw needs no lock (a read-only store)
    check_extends(out, provenance, n_members, leads_hours, writing=not inits.empty)
    if calibration is not None:
        log.info("applying the checkpoint's spread calibration, %s", calibration.summary())
        log.debug("%s", calibration.report())
    elif loaded.calibration is not None:
        log.info("the checkpoint holds a spread calibration; it is left unused as asked")
    if not warned:  # after every refusal, before the forecast begins
        warn_if_not_fine_tuned_for(loaded, model, chosen)
        warn_if_far(loaded, calibration)
    if warn_trained_on and not warned:  # after every refusal: a refused one says only that
        named = asked if warn_of is None else pd.DatetimeIndex(warn_of)
        warn_if_trained_on(loaded, named, leads_hours, calibrated=calibration is not None)
    written: list[pd.Timestamp] = []
    claims = Claims(str(out), run=claims_run) if claims_run else Claims(str(out))
    batches = iter_forecast(
        loaded,
        data,
        inits,
        leads_hours,
        n_members,
        sampler=chosen.sampler,
        seed=seed,
        device=device,
        compile=False,  # the model given is compiled already where compile asks it
        calibration=calibration,
        batch_members=batch_members,
        progress=progress,
        model=model,
        balance=balance,
        pending=None if recompute else functools.partial(to_draw, claims),
    )
    try:
        for batch, members in batches:
            forecast = to_dataset(data, batch, leads_hours, members)
            forecast.attrs.update(source_attrs(store.path))
            done = write_forecast(out, forecast, provenance, replace=recompute, run=claims.run)
            written.extend(done)
    finally:  # Ctrl-C and SIGTERM included (KeyboardInterrupt): a later run draws them first
        if claims_run is None:  # a caller's claims are its own to remove, when it ends
            claims.release()
    return ForecastRun(
        str(out),
        tuple(written),
        tuple(float(h) for h in leads_hours),
        n_members,
        provenance,
        calibration,
        skipped=len(asked) - len(inits),
        written_by_another_run=len(inits) - len(written),
    )


def check_fitted_for(
    checkpoint: Checkpoint,
    calibration: SpreadCalibration | None,
    sampler: Sampler | None,
    balance: bool,
) -> None:
    """Refuse a ``sampler`` given (None: the checkpoint's own) of another family than the
    model's, or one or a ``balance`` the ``calibration`` applied was not fitted for: from
    the checkpoint alone, before the store is read and the network built (seconds), and
    before the calibration is logged as applied."""
    if sampler is not None:
        GENERATORS[checkpoint.kind].check_sampler(sampler)
    if calibration is not None:
        if sampler is not None and calibration.sampler is not None:
            calibration.check_sampler(sampler_spec(sampler))
        calibration.check_balance(balance)


def warn_if_far(checkpoint: Checkpoint, calibration: SpreadCalibration | None) -> None:
    """Warn where the spread ``calibration`` applied (None: none) has factors far from 1
    (:func:`~generators.correction.spread.far_factors`): its fit warned, and `wxens info`
    shows it, but an operator who saw neither shipped members whose noise it inflates."""
    far = (
        ""
        if calibration is None
        else far_factors(calibration.leads_hours, calibration.factors, calibration.channels)
    )
    if far:
        log.warning(
            "%s: %s; or forecast without it, calibrate=False (--no-calibration)",
            checkpoint.path,
            far,
        )


def to_draw(claims: Claims, batch: pd.DatetimeIndex) -> pd.DatetimeIndex | None:
    """The initial times of ``batch`` this run draws now, claimed for it in the store
    (:func:`unwritten`, then :meth:`~pipeline.forecast_claims.Claims.take`); None while
    another run claims them, until the batch is asked again after this run's others."""
    left = unwritten(claims.out, batch)
    return left if left.empty or claims.take(left, batch) else None


def unwritten(out: str, batch: pd.DatetimeIndex) -> pd.DatetimeIndex:
    """The initial times of ``batch`` the forecast store ``out`` does not hold completely,
    read just before the batch is drawn: another run into ``out`` (a scheduled ``wxens
    run`` and a forecast by hand of the same cycle) wrote the others meanwhile, which would
    be drawn only to be discarded when written (logged)."""
    meanwhile = batch.intersection(complete_init_times(out))
    if meanwhile.size:
        log.info("%s: %s written by another run meanwhile; not drawn again", out, span(meanwhile))
    return batch.difference(meanwhile)
