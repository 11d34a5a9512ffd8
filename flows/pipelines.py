"""The Prefect flows of wxens: ``ingest``, ``train``, ``forecast``, ``bias_correct``,
``baseline``, ``verify`` and ``ensemble_run``.

Flows hold the orchestration (which init times, which step is already done, which
cluster); each step is one task of :mod:`flows.tasks`. Run them as plain functions (an
ad hoc run: Prefect starts a temporary local API when ``PREFECT_API_URL`` is unset), with
``wxens run``, or on a schedule with ``wxens serve``. Parameters are JSON values (paths
as strings, times as ISO strings) so the Prefect UI can show and edit them.
"""

from __future__ import annotations

import functools

import pandas as pd
from prefect import flow, get_run_logger

from flows import tasks
from flows.deployments import RUN_NAMES, prepare_flow_process
from flows.inputs import (
    analysis_store_complete,
    claimed_init_times,
    incomplete_init_times,
    latest_init_times,
    truth_arrived,
    verify_record,
    warn_skipped_cycles,
    warn_trained_on,
)
from flows.parameter_checks import check_flow_parameters
from flows.runtime import outputs_current, record_outputs, unless_done
from generators.correction.spec import CorrectionSpec
from generators.correction.tuned import no_correction_reason, resolve_correction
from pipeline.forecast_claims import Claims, in_turn
from pipeline.forecast_store import complete_init_times
from pipeline.forecast_times import record_cycle
from pipeline.transaction import is_store


@flow(name="ingest")
def ingest(
    sources: list[str],
    store: str,
    variables: list[str] | None = None,
    start: str | None = None,
    end: str | None = None,
    overwrite: bool = False,
    allow_nan: bool = False,
    dask_scheduler: str | None = None,
    progress: bool = False,
    rename: list[str] | None = None,
    units: list[str] | None = None,
    select: list[str] | None = None,
) -> str:
    """Ingest ``sources`` (paths, globs, URLs, ``synthetic:...``) into the analysis store
    ``store`` on a dask cluster (a new ``LocalCluster`` unless ``dask_scheduler`` names
    one); times ``start``..``end`` (ISO, inclusive) if given; ``rename`` (``OLD=NEW``),
    ``units`` (``VAR=UNITS``) and ``select`` (``DIM=VALUE``) as ``wxens ingest`` takes them.
    Returns the store path.

    Skipped when the sources and the store are unchanged since the last ingest.
    """
    return unless_done(tasks.ingest_store, analysis_store_complete(store))(
        sources,
        store,
        variables,
        start,
        end,
        overwrite,
        allow_nan,
        dask_scheduler=dask_scheduler,
        progress=progress,
        adjustments=(rename or [], units or [], select or []),
    )


@flow(name="train")
def train(
    store: str,
    config: str,
    out_dir: str,
    overrides: list[str] | None = None,
    progress: bool = False,
) -> str:
    """Train the generator of the config file ``config`` (``overrides``: ``key=value``
    strings as ``wxens train --set``) on the analysis store ``store`` into ``out_dir``,
    resuming from ``out_dir/last.pt``, then, when the config has a ``calibration``
    section, fit that spread calibration into the checkpoint (``wxens train`` does the
    same). Returns the checkpoint path.

    Skipped when the store, the config and the checkpoint are unchanged.
    """
    from generators.checkpoint import resolve_checkpoint_path
    from generators.config import load_train_config

    overrides = list(overrides or [])
    done = resolve_checkpoint_path(out_dir).is_file()
    checkpoint = unless_done(tasks.train_generator, done)(
        store, config, overrides, out_dir, progress=progress
    )
    if load_train_config(config, overrides).calibration is not None:
        unless_done(tasks.calibrate_generator, done)(
            checkpoint, store, config, overrides, progress=progress
        )
    return checkpoint


@flow(name="forecast")
def forecast(
    checkpoint: str,
    store: str,
    init_times: list[str],
    out: str,
    leads_hours: list[float] | None = None,
    members: int = 50,
    sampler: str | None = None,
    seed: int = 0,
    calibrate: bool = True,
    device: str = "auto",
    batch_members: int = 512,
    progress: bool = False,
    compile: bool = True,
    dask_scheduler: str | None = None,
) -> list[str]:
    """Ensemble forecasts of ``members`` members from ``checkpoint`` for ``init_times``
    (ISO times) at ``leads_hours`` (default: the leads the checkpoint was trained on),
    written into the forecast store ``out``; on CUDA the network is compiled unless
    ``compile`` is false (as ``wxens forecast --no-compile``).

    Initial times already complete in ``out`` are skipped; the others are drawn in
    batches of ``batch_members // members`` initial times, each batch one task that
    writes its initial times when drawn — so a run killed half-way and run again
    draws only what is missing, and writes each (init_time, lead) region once; the run
    claims a batch before its task (:mod:`pipeline.forecast_claims`), so two runs into
    ``out`` share the batches. With a ``dask_scheduler`` they are one task, split over
    the workers of that dask cluster (``wxens forecast --dask-scheduler``; the same members).
    Initial times in the checkpoint's training period are warned about once, after the
    first task (whose inputs passed its checks: a refused run logs only its refusal).
    Returns every initial time now complete in ``out`` among those asked.
    """
    check_flow_parameters("forecast", locals())
    from generators.checkpoint import load_checkpoint
    from generators.rollout_plan import check_ensemble_size

    check_ensemble_size(members, batch_members)
    asked = pd.DatetimeIndex(pd.to_datetime(init_times)).unique().sort_values()
    leads = list(leads_hours or load_checkpoint(checkpoint).leads_hours)
    pending = incomplete_init_times(out, asked, members, leads)
    per_task = max(1, batch_members // members if dask_scheduler is None else len(pending))
    claims = Claims(out)  # the flow run's: each task draws under it the batch claimed for it
    warned = False  # once, about every initial time, after the inputs passed a task's checks
    try:  # a batch another run has claimed comes after this run's others
        for _, left in in_turn(pending, per_task, functools.partial(claimed_init_times, claims)):
            if left:  # pending: run, whatever a cache from an older store says
                unless_done(tasks.forecast_init_times, False)(
                    checkpoint,
                    store,
                    left,
                    leads,
                    members,
                    out,
                    sampler,
                    seed,
                    calibrate,
                    device=device,
                    progress=progress,
                    batch_members=batch_members,
                    compile=compile,
                    dask_scheduler=dask_scheduler,
                    claims_run=claims.run,
                    warn_trained_on=False,
                )
                if not warned:
                    warn_trained_on(checkpoint, asked, leads, calibrate)
                    warned = True
    finally:  # the claims its tasks kept, removed however the flow run ends
        claims.release()
    if not warned:  # no batch drawn: what the store held was checked
        warn_trained_on(checkpoint, asked, leads, calibrate)
    return [t.isoformat() for t in asked.intersection(complete_init_times(out))]


@flow(name="bias_correct")
def bias_correct(
    forecast: str,
    truth: str,
    out: str,
    weight: float | None = None,
    spread_weight: float | None = None,
    rank_weight: float | None = None,
    checkpoint: str | None = None,
) -> str:
    """Correct the forecast store ``forecast`` by the decaying average (``weight``) of its
    errors verified in the analysis store ``truth`` into the store ``out``
    (``wxens bias-correct``), with a ``spread_weight`` scale its spread by the decaying
    average of its recent spread-skill ratio, and with a ``rank_weight`` remap its members
    by the decaying average of its recent rank histograms; without weights, with those
    ``wxens tune`` stored with ``checkpoint``. Skipped when the forecast and the truth are
    unchanged and ``out`` exists. Returns ``out``."""
    check_flow_parameters("bias_correct", locals())
    done = is_store(out)
    return unless_done(tasks.bias_correct_forecast, done)(
        forecast, truth, out, weight, spread_weight, rank_weight, checkpoint
    )


@flow(name="baseline")
def baseline(name: str, store: str, train: str, forecast: str, out: str, seed: int = 0) -> str:
    """Draw the reference ensemble ``name`` (``climatology``, ``persistence``) from the
    ``train`` period (``START/END``) of the analysis store ``store`` for the initial times,
    leads and member count of the forecast store ``forecast`` into the store ``out``
    (``wxens baseline``). Skipped when the store and the forecast are unchanged and ``out``
    exists. Returns ``out``."""
    check_flow_parameters("baseline", locals())
    done = is_store(out)
    return unless_done(tasks.draw_baseline, done)(name, store, train, forecast, out, seed)


@flow(name="verify")
def verify(
    forecast: str,
    truth: str,
    scores: str,
    report: str | None = None,
    init_times: list[str] | None = None,
    dask_scheduler: str | None = None,
    progress: bool = False,
    reference: str | None = None,
    members: str = "all",
    init_from_filename: str | None = None,
) -> str:
    """Verify the forecast ``forecast`` (its ``init_times``, default every complete one)
    against the analysis store ``truth`` on a dask cluster (a new ``LocalCluster`` unless
    ``dask_scheduler`` names one), beside the ``reference`` forecast store (a baseline) if
    given: scores to ``scores`` (NetCDF), the HTML report to ``report``. ``members`` and
    ``init_from_filename`` as ``wxens verify`` takes them (an ENS file's perturbed members;
    one file per start date). Returns the scores path.

    Skipped when the inputs are unchanged and both outputs are as these inputs last
    wrote them (not replaced since by a run of another forecast).
    """
    check_flow_parameters("verify", locals())
    written, fingerprint = verify_record(
        forecast, truth, scores, report, init_times, reference, members, init_from_filename
    )
    done = outputs_current(written, fingerprint)
    result = unless_done(tasks.verify_forecast, done)(
        forecast,
        truth,
        init_times,
        scores,
        report,
        dask_scheduler=dask_scheduler,
        progress=progress,
        reference=reference,
        members=members,
        init_from_filename=init_from_filename,
    )
    record_outputs(written, fingerprint)
    return result


@flow(name="ensemble_run")
def ensemble_run(
    store: str,
    checkpoint: str,
    forecast_store: str,
    scores: str,
    report: str | None = None,
    init_times: list[str] | None = None,
    latest: int = 1,
    cycle_hours: int = 6,
    init_cycle_hours: float | None = None,
    leads_hours: list[float] | None = None,
    members: int = 50,
    sampler: str | None = None,
    seed: int = 0,
    sources: list[str] | None = None,
    variables: list[str] | None = None,
    train_config: str | None = None,
    train_overrides: list[str] | None = None,
    bias_correction: float | None = None,
    spread_weight: float | None = None,
    rank_weight: float | None = None,
    corrected_store: str | None = None,
    baseline_name: str | None = None,
    baseline_train: str | None = None,
    baseline_store: str | None = None,
    dask_scheduler: str | None = None,
    device: str = "auto",
    progress: bool = False,
) -> dict[str, object]:
    """The whole chain, each step a subflow: ingest ``sources`` (their ``variables``, default
    all) into ``store`` (if given); train ``train_config`` (with ``train_overrides``,
    ``key=value``) into the directory ``checkpoint`` (if given); forecast ``init_times`` —
    by default the ``latest`` initial times of the store on the ``cycle_hours`` cycle, which
    the store then records, as it does ``init_cycle_hours``, the cycle ``init_times`` are
    drawn on where they are a range's — into ``forecast_store`` (split over the workers of
    the dask cluster at ``dask_scheduler`` when one is named); with a ``corrected_store``, correct
    the whole forecast store by its verified errors into it (``wxens bias-correct``; the raw
    store stays what the correction learns from) with the weights ``wxens tune`` stored with
    the checkpoint, or those given: the ``bias_correction`` weight, with a ``spread_weight``
    its spread scaled too and with a ``rank_weight`` its members remapped by the recent rank
    histograms (none given and none tuned, or tuned to 0: the raw forecast is delivered and
    ``corrected_store`` is not written); with a ``baseline_name`` (``climatology``,
    ``persistence``), draw that reference ensemble from the ``baseline_train`` period
    (``START/END``) for the same initial times and leads into ``baseline_store`` (``wxens
    baseline``); then verify every initial time of the forecast (the corrected one, if any)
    whose truth has arrived in ``store`` (``scores``, ``report``), beside the baseline if
    there is one.

    Returns what it did: the initial times forecast and verified and the output paths.
    """
    weights = (bias_correction, spread_weight, rank_weight)
    check_flow_parameters("ensemble_run", locals())  # before any work
    if sources:
        ingest(sources, store, variables, dask_scheduler=dask_scheduler, progress=progress)
    if train_config:
        checkpoint = train(store, train_config, checkpoint, train_overrides, progress=progress)
    inits = init_times or latest_init_times(store, checkpoint, latest, cycle_hours)
    if not init_times:  # the cycles this run leaves out for good: warned of once
        warn_skipped_cycles(store, checkpoint, forecast_store, inits, latest, cycle_hours)
    forecast_done = forecast(
        checkpoint,
        store,
        inits,
        forecast_store,
        leads_hours=leads_hours,
        members=members,
        sampler=sampler,
        seed=seed,
        device=device,
        progress=progress,
        dask_scheduler=dask_scheduler,
    )
    cycle = init_cycle_hours if init_times else cycle_hours
    if cycle is not None:  # the cycle drawn on, so `wxens info` names the cycles left out
        record_cycle(forecast_store, pd.Timedelta(hours=cycle))
    delivered = forecast_store
    spec = (
        resolve_correction(checkpoint, *weights, forecast=forecast_store, names=RUN_NAMES.get())
        if corrected_store
        else CorrectionSpec()
    )
    if spec.applies:
        delivered = bias_correct(
            forecast_store,
            store,
            corrected_store,
            spec.bias_weight,
            spec.spread_weight,
            spec.rank_weight,
        )
    elif corrected_store:
        reason = no_correction_reason(
            checkpoint, *weights, store=store, forecast=forecast_store, names=RUN_NAMES.get()
        )
        get_run_logger().warning(
            "%s: %s is delivered uncorrected and %s is not written",
            reason,
            forecast_store,
            corrected_store,
        )
    if baseline_name is not None:
        baseline(baseline_name, store, baseline_train, delivered, baseline_store, seed)
    arrived = truth_arrived(delivered, store)
    if arrived:
        verify(
            delivered,
            store,
            scores,
            report,
            arrived,
            dask_scheduler=dask_scheduler,
            progress=progress,
            reference=baseline_store if baseline_name is not None else None,
        )
    else:
        get_run_logger().info(
            "no forecast of %s has its truth in %s yet: nothing to verify", delivered, store
        )
    return {
        "store": store,
        "checkpoint": checkpoint,
        "forecast_store": forecast_store,
        "forecast_init_times": forecast_done,
        "corrected_store": corrected_store if spec.applies else None,
        "uncorrected_store": None if spec.applies else corrected_store,
        "baseline_store": baseline_store if baseline_name is not None else None,
        "verified_init_times": arrived,
        "scores": scores if arrived else None,
        "report": report if arrived else None,
    }


prepare_flow_process()  # imported by each served run's subprocess, before its flow runs
FLOWS = {f.name: f for f in (ingest, train, forecast, bias_correct, baseline, verify, ensemble_run)}
"""Every wxens flow by its Prefect name: what a schedule file's ``flow:`` may name."""
