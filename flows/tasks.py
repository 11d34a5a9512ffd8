"""The tasks of the wxens flows: each calls one library function with paths and small values.

No task passes an array: inputs and outputs are paths, names, times and small summaries,
so results persist in a few bytes and a cached rerun costs nothing. Options (retries on
transient I/O, caching, persisted results) come from :func:`flows.runtime.wxens_task`.
"""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path
from typing import Any

import pandas as pd

from flows.cluster import dask_client, worker_path
from flows.deployments import BIAS_CORRECT_PARAMETER_NAMES
from flows.runtime import wxens_task
from generators.correction.baseline_store import baseline_to_store, without_repeats
from generators.correction.baselines import BaselineConfig
from generators.correction.bias import bias_correct_store
from generators.correction.raw import write_uncorrected
from generators.correction.tuned import (
    chose_none,
    no_correction_reason,
    resolve_correction,
    tuned_path,
)
from pipeline.errors import InputError
from pipeline.schema import Period

RUN_REDRAW = (
    "remove the store, or draw them with wxens forecast --recompute into it, given the "
    "run's --checkpoint, --members, --lead, --sampler and --seed"
)
"""How the user of ``wxens run`` (which has no ``--recompute``) draws again the initial
times its forecast store already holds: a rerun skips them."""


@wxens_task(name="ingest-store", reads=("sources",), not_keyed=("dask_scheduler", "progress"))
def ingest_store(
    sources: list[str],
    store: str,
    variables: list[str] | None,
    start: str | None,
    end: str | None,
    overwrite: bool,
    allow_nan: bool,
    dask_scheduler: str | None,
    progress: bool,
    adjustments: tuple[list[str], list[str], list[str]] = ([], [], []),
) -> str:
    """:func:`pipeline.store.ingest` of ``sources`` into ``store`` on the dask cluster at
    ``dask_scheduler`` (a new local one if None), read with the ``adjustments`` (rename,
    units, select items, :meth:`pipeline.sources.Adjustments.parse`); returns the store
    path."""
    from pipeline import store as stores
    from pipeline.duplicate_times import store_holds
    from pipeline.sources import Adjustments, adjust_sources

    wanted = Adjustments.parse(*adjustments)
    # bad input: fail now; where the store's times may come twice, as ingest opens them
    held = stores.held_times(store, overwrite)  # read once: ingest is given them
    with store_holds(held):
        adjusted = adjust_sources(sources, wanted)  # opens them: an AdjustedSource keeps it
        stores.open_canonical(adjusted, variables, Period(start, end).time_slice())
    with dask_client(dask_scheduler):
        stores.ingest(
            adjusted,
            store,
            variables=variables,
            time=Period(start, end).time_slice(),
            overwrite=overwrite,
            allow_nan=allow_nan,
            progress=progress,
            held=held,
        )
    return str(Path(store))  # an unfinished store (another ingest's times) fails its reader


@wxens_task(name="train-generator", reads=("store", "config"), not_keyed=("progress",))
def train_generator(
    store: str, config: str, overrides: list[str], out_dir: str, progress: bool
) -> str:
    """:func:`generators.train.train` of the config file ``config`` (with ``--set``-style
    ``overrides``) on ``store`` into ``out_dir``, resuming from its last checkpoint;
    returns the checkpoint path."""
    from generators.config import load_train_config
    from generators.train import train

    result = train(store, load_train_config(config, overrides), out_dir, progress=progress)
    return str(result.checkpoint)


@wxens_task(name="calibrate-generator", reads=("store", "config"), not_keyed=("progress",))
def calibrate_generator(
    checkpoint: str, store: str, config: str, overrides: list[str], progress: bool
) -> str:
    """:func:`generators.calibration.calibrate_checkpoint` of ``checkpoint`` on ``store``
    with the ``calibration`` section of the config file ``config`` (with ``--set``-style
    ``overrides``), the fitted calibration stored in the checkpoint; returns its path."""
    from generators.calibration import calibrate_checkpoint
    from generators.config import load_train_config

    calibration = load_train_config(config, overrides).calibration
    if calibration is not None:
        calibrate_checkpoint(checkpoint, store, calibration, progress=progress)
    return checkpoint


@wxens_task(
    name="forecast-init-times",
    reads=("checkpoint",),
    not_keyed=("device", "compile", "progress", "dask_scheduler", "claims_run"),
)
def forecast_init_times(
    checkpoint: str,
    store: str,
    init_times: list[str],
    leads_hours: list[float],
    members: int,
    out: str,
    sampler: str | None,
    seed: int,
    calibrate: bool,
    device: str,
    progress: bool,
    batch_members: int = 512,
    compile: bool = True,
    dask_scheduler: str | None = None,
    claims_run: str | None = None,
    warn_trained_on: bool = True,
    warned: bool = False,
) -> list[str]:
    """Draw ``members`` members at ``leads_hours`` from ``checkpoint`` for ``init_times``
    into the forecast store ``out`` (:func:`generators.rollout_shard.forecast_sharded`, the
    same call as ``wxens forecast``), ``batch_members`` initial times x members at a time,
    the network compiled on CUDA unless ``compile`` is false, split over the workers of
    the dask cluster at ``dask_scheduler`` when given, claimed under the run id
    ``claims_run`` (the flow's, which claimed them) when given; returns the initial times
    written. ``warn_trained_on=False``: no warning about the training period (the flow
    warns once about all its initial times); ``warned``: none about the checkpoint either
    (a sampler it was not fine-tuned for, a far spread calibration), said by an earlier
    batch's task.

    Every input is checked before anything is written: a missing checkpoint or store, or
    a store on another grid than the checkpoint's, fails with nothing written.
    """
    from generators.rollout_shard import forecast_sharded

    if dask_scheduler:  # the workers open these themselves, in their own directory
        checkpoint, store, out = map(worker_path, (checkpoint, store, out))
    with dask_client(dask_scheduler) if dask_scheduler else nullcontext() as client:
        done = forecast_sharded(
            checkpoint,
            store,
            pd.DatetimeIndex(init_times),
            leads_hours,
            members,
            out,
            client=client,
            sampler=sampler,
            seed=seed,
            calibrate=calibrate,
            device=device,
            compile=compile,
            batch_members=batch_members,
            progress=progress,
            redraw=RUN_REDRAW,
            claims_run=claims_run,
            warn_trained_on=warn_trained_on,
            warned=warned,
        )
    return [t.isoformat() for t in done.init_times]


# the tuned weights are keyed too: a `wxens tune` again corrects unchanged forecasts anew
@wxens_task(
    name="bias-correct-forecast",
    reads=("forecast", "truth"),
    derived=(("checkpoint", tuned_path),),
)
def bias_correct_forecast(
    forecast: str,
    truth: str,
    out: str,
    weight: float | None = None,
    spread_weight: float | None = None,
    rank_weight: float | None = None,
    checkpoint: str | None = None,
) -> str:
    """:func:`generators.correction.bias.bias_correct_store` (``wxens bias-correct``) of the
    forecast store ``forecast`` against the analysis store ``truth`` into ``out``, with the
    :class:`~generators.correction.spec.CorrectionSpec` of the decaying-average weight
    ``weight`` and, unless None, the spread scaling's ``spread_weight`` and the rank
    recalibration's ``rank_weight``; with none of them, the weights ``wxens tune`` stored
    with ``checkpoint``, one set or each variable's
    (:func:`generators.correction.tuned.resolve_correction`); returns
    ``out``. Where tune chose no correction, ``out`` holds the forecast as it is
    (:func:`generators.correction.raw.write_uncorrected`). Without any (no weight, no tuned
    choice), refused with
    :func:`~generators.correction.tuned.no_correction_reason` in the flow's parameters: it
    said "the correction weights are 0 ... (--bias-weight)", a flag the flow has not."""
    weights = (weight, spread_weight, rank_weight)
    names = BIAS_CORRECT_PARAMETER_NAMES
    if (chosen := chose_none(checkpoint, forecast, *weights)) is not None:
        write_uncorrected(forecast, out, chosen, names)
        return out
    spec = resolve_correction(checkpoint, *weights, forecast=forecast, names=names)
    if not spec.applies:
        reason = no_correction_reason(
            checkpoint, *weights, store=truth, forecast=forecast, names=names
        )
        raise InputError(f"{reason}; nothing written: {forecast} is the forecast as it is")
    bias_correct_store(forecast, truth, out, spec)
    return out


@wxens_task(name="draw-baseline", reads=("store", "forecast"))
def draw_baseline(name: str, store: str, train: str, forecast: str, out: str, seed: int = 0) -> str:
    """:func:`generators.correction.baseline_store.baseline_to_store` (``wxens baseline``) of the
    baseline ``name`` drawn from the ``train`` period (``START/END``) of the analysis store
    ``store``, for the complete initial times, the leads and the member count of the
    forecast store ``forecast`` (fewer where the period holds fewer distinct times:
    :func:`~generators.correction.baseline_store.without_repeats`), into ``out`` (only the
    initial times ``out`` lacks); returns ``out``."""
    from pipeline.forecast_store import complete_init_times, open_forecast
    from pipeline.schema import INIT_TIME, LEAD_TIME, MEMBER
    from pipeline.store import open_store

    ensemble = open_forecast(forecast)
    period = Period.parse(train, "training period")
    config = BaselineConfig(period.start, period.end, members=ensemble.sizes[MEMBER], seed=seed)
    leads = list(pd.TimedeltaIndex(ensemble[LEAD_TIME].values) / pd.Timedelta(hours=1))
    # only the initial times not drawn before (complete_init_times: none if out is absent)
    inits = pd.DatetimeIndex(ensemble[INIT_TIME].values).difference(complete_init_times(out))
    if len(inits):
        analysis = open_store(store)  # once, for the member count and the draw
        config = without_repeats(name, analysis, config, leads)
        baseline_to_store(name, analysis, config, inits, leads, out, progress=False)
    return out


@wxens_task(
    name="verify-forecast",
    reads=("forecast", "truth", "reference"),
    not_keyed=("dask_scheduler", "progress"),
)
def verify_forecast(
    forecast: str,
    truth: str,
    init_times: list[str] | None,
    scores: str,
    report: str | None,
    dask_scheduler: str | None,
    progress: bool,
    reference: str | None = None,
    members: str = "all",
    init_from_filename: str | None = None,
) -> str:
    """:func:`verification.run.verify_store` (``wxens verify``) of the forecast store
    ``forecast`` (its ``init_times``, or every complete one) against the analysis store
    ``truth`` on the dask cluster at ``dask_scheduler`` (a new local one if None), beside
    the ``reference`` forecast store if given; the scores written atomically to ``scores``
    (NetCDF groups) and, if ``report`` is given, the HTML report there. Returns ``scores``.
    A missing store fails before any cluster starts."""
    from verification.config import VerifyConfig
    from verification.run import verify_store

    verify_store(
        forecast,
        truth,
        scores,
        config=VerifyConfig(progress=progress),
        reference=reference,
        report=report,
        init_times=init_times,
        members=members,
        init_from_filename=init_from_filename,
        scheduler=dask_client(dask_scheduler),
    )
    return scores


@wxens_task(name="write-forecast-products", reads=("forecast",))
def write_forecast_products(
    forecast: str,
    out: str,
    asked: dict[str, Any],
    init_times: list[str] | None = None,
    members: str = "all",
    init_from_filename: str | None = None,
) -> str:
    """:func:`verification.product_output.write_products` (``wxens products --overwrite``) of
    the forecast ``forecast`` at ``init_times`` (None: all) and of its ``members`` (``all``,
    or ``perturbed``: an ENS file's without its control), files of one forecast each with
    ``init_from_filename`` (their start dates from their names): the products of ``asked``
    (:class:`~verification.product_output.ProductRequest`'s fields) to ``out`` (Zarr, or
    CF NetCDF-4 for ``.nc``), replacing an earlier products output there (each cycle's run
    rewrites it with its own initial times'; anything else there is refused). Keyed on
    ``init_times`` too: the next cycle's run writes again, a rerun of one is skipped.
    Returns ``out``."""
    from verification.product_output import ProductRequest, write_products

    request = ProductRequest.of(asked)
    write_products(
        forecast,
        out,
        request,
        init_times=init_times,
        init_from_filename=init_from_filename,
        members=members,
        overwrite=True,
        progress=False,
    )
    return out
