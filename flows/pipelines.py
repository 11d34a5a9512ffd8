"""The parent flow ``ensemble_run``, which chains the step flows of :mod:`flows.steps`
(ingest, train, forecast, bias_correct, baseline, verify, products) as subflows, and :data:`FLOWS`,
every wxens flow by name.

The step flows are imported here, so ``flows.pipelines.<flow>`` still names each one: the
entrypoint a deployment of it registered before they moved keeps it on the user's Prefect
server. Importing this module imports :mod:`flows.steps`, whose import prepares the process
for flow runs (:func:`flows.deployments.prepare_flow_process`); how to run the flows is said
there.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
from prefect import flow, get_run_logger

from flows import steps
from flows.deployments import RUN_NAMES
from flows.inputs import latest_init_times, truth_arrived, warn_skipped_cycles
from flows.parameter_checks import check_flow_parameters
from flows.steps import (
    baseline,
    bias_correct,
    forecast,
    ingest,
    products,
    train,
    verify,
)
from generators.correction.spec import CorrectionSpec
from generators.correction.tuned import no_correction_reason, resolve_correction
from pipeline.forecast_times import record_cycle


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
    products: dict[str, Any] | None = None,
    products_out: str | None = None,
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
    there is one; with ``products`` (``wxens products``' flags as a mapping: ``mean``,
    ``spread``, ``quantiles``, ``probability``, ``units``), write the products of the
    initial times this run forecast (the delivered store's, which keeps earlier cycles) to
    ``products_out``, replacing the last run's, or with a field ``{init:FORMAT}``
    (``p/uk_{init:%Y%m%dT%H}.nc``) to a file per initial time (the ``products`` flow).

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
    if spec.applies:  # the weights as given: the step resolves the checkpoint's alike
        delivered = bias_correct(
            forecast_store, store, corrected_store, *weights, checkpoint=checkpoint
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
    if products is not None:  # with products_out: checked above; the parameter hides the flow
        # this run's cycles only: the store's every one grew the file and the cost each cycle
        steps.products(delivered, products_out, products, forecast_done)
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
        "products": products_out if products is not None else None,
    }


FLOWS = {
    f.name: f
    for f in (
        ingest,
        train,
        forecast,
        bias_correct,
        baseline,
        verify,
        products,
        ensemble_run,
    )
}
"""Every wxens flow by its Prefect name: what a schedule file's ``flow:`` may name."""
