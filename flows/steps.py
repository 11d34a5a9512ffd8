"""The step flows of wxens: ``ingest``, ``train``, ``forecast``, ``bias_correct``,
``baseline``, ``verify`` and ``products``; :mod:`flows.pipelines` chains them in ``ensemble_run``.

Flows hold the orchestration (which init times, which step is already done, which
cluster); each step is one task of :mod:`flows.tasks`. Run them as plain functions (an
ad hoc run: Prefect starts a temporary local API when ``PREFECT_API_URL`` is unset), with
``wxens run``, or on a schedule with ``wxens serve``. Parameters are JSON values (paths
as strings, times as ISO strings) so the Prefect UI can show and edit them.
"""

from __future__ import annotations

import functools
from typing import Any

import pandas as pd
from prefect import flow

from flows import tasks
from flows.deployments import prepare_flow_process
from flows.inputs import (
    analysis_store_complete,
    claimed_init_times,
    incomplete_init_times,
    products_current,
    verify_record,
    warn_trained_on,
)
from flows.parameter_checks import check_flow_parameters
from flows.products_files import products_files
from flows.runtime import outputs_current, record_outputs, unless_done
from pipeline.forecast_claims import Claims, in_turn
from pipeline.forecast_store import complete_init_times
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
                    warned=warned,  # the checkpoint's warnings: the first batch's task said them
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


@flow(name="products")
def products(
    forecast: str,
    out: str,
    products: dict[str, Any],
    init_times: list[str] | None = None,
    members: str = "all",
    init_from_filename: str | None = None,
) -> str:
    """The ensemble's products ``products`` asks for (``wxens products``' flags as a
    mapping: ``mean``, ``spread``, ``quantiles`` ``"10,50,90"``, ``probability``
    ``["t2m<0degC"]``, ``units`` ``["t2m=degC"]``) of the forecast store ``forecast`` at
    ``init_times`` (ISO times, as ``--init``; None: every one it holds), written to ``out``
    (Zarr, or CF NetCDF-4 for ``.nc``) in place of an earlier products output there, as
    ``--overwrite``: ``ensemble_run`` gives the initial times its run forecast, so the
    products are that cycle's. With a field ``{init:FORMAT}`` (``p/uk_{init:%Y%m%dT%H}.nc``),
    ``out`` names a file per initial time, each holding its own, which later cycles keep
    (:mod:`flows.products_files`). ``members`` and ``init_from_filename`` as ``wxens
    products`` takes them: ``perturbed`` leaves an ENS file's control out; a ``strptime``
    pattern reads ``forecast`` as files (a glob) of one forecast each, its start date from
    each file's name. Each file is skipped when the forecast, the products, its initial
    times, members and pattern are unchanged and it still holds those products of them (not
    replaced since by another run or a ``wxens products --overwrite``). Returns ``out``."""
    check_flow_parameters("products", locals())
    read = dict(members=members, init_from_filename=init_from_filename)
    for path, inits in products_files(out, init_times, forecast, init_from_filename).items():
        done = products_current(forecast, path, products, inits, **read)
        write = unless_done(tasks.write_forecast_products, done)
        write(forecast, path, products, inits, **read)
    return out


# each served run imports its flow's module: this one, or flows.pipelines, which imports it
prepare_flow_process()
