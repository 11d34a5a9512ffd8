"""``wxens run``: the whole chain — ingest, train, forecast, verify — once, without a server.

Each step is a Prefect flow (:mod:`flows.steps`, chained by :mod:`flows.pipelines`), so a
rerun skips what is done and the runs appear in the Prefect UI when ``PREFECT_API_URL``
points at a server; without one Prefect starts a temporary local API for the duration of
the command.
"""

from __future__ import annotations

import argparse
import os
import sys

from flows.commands.options import (
    SEED,
    add_config_overrides,
    add_device,
    add_threads,
    at_least,
    check_device,
    check_out_writable,
    deprecated_alias,
    positive_hours,
    sampler_spec,
)
from flows.commands.products import add_product_options, request

NAME = "run"
HELP = "run ingest -> train -> forecast -> verify for given init times (no server needed)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    data = parser.add_argument_group("data and model")
    data.add_argument("--store", required=True, help="analysis store (truth and initial states)")
    data.add_argument(
        "--source",
        dest="sources",
        nargs="+",
        metavar="SOURCE",
        help="ingest these files/globs/URLs/'synthetic:...' into --store first",
    )
    data.add_argument(
        "--variables", nargs="+", help="with --source: canonical names to keep (default: all)"
    )
    data.add_argument(
        "--checkpoint",
        required=True,
        help="checkpoint file or training directory (the output directory with --train-config)",
    )
    data.add_argument(
        "--train-config", help="train this config (YAML/TOML) into --checkpoint first"
    )
    add_config_overrides(
        data,
        "override a training config value (repeatable), as `wxens train --set`",
        dest="train_overrides",
    )
    when = parser.add_argument_group("initial times")
    when.add_argument(
        "--init",
        nargs="+",
        metavar="TIME",
        help="initial times (2019-03-22T00) or ranges START/END/EVERY "
        "(2019-03-22T00/2019-03-30T18/6h); "
        "default: the --latest times of the store on the --cycle",
    )
    when.add_argument(
        "--latest", type=at_least(1), default=1, help="without --init: how many (default 1)"
    )
    when.add_argument(
        "--cycle",
        type=positive_hours(whole=True),
        default=6,
        metavar="HOURS",
        help="without --init: cycle, whole hours, e.g. 6h or 6 (default 6 h)",
    )
    ens = parser.add_argument_group("ensemble")
    ens.add_argument("--members", type=at_least(1), default=50, help="ensemble size (default 50)")
    ens.add_argument(
        "--lead",
        help="comma list of leads, e.g. 1h,3h,6h,12h,24h; one lead (24h) is that lead alone, "
        "not every step up to it as for wxens forecast (default: the checkpoint's trained leads)",
    )
    deprecated_alias(ens, "--leads", "--lead")
    ens.add_argument(
        "--sampler",
        type=sampler_spec,
        help="sampler spec, e.g. euler:nfe=10 (default: the checkpoint's)",
    )
    ens.add_argument("--seed", type=SEED, default=0, help="random seed (default 0)")
    add_device(ens)
    add_threads(ens)
    out = parser.add_argument_group("outputs")
    out.add_argument(
        "--out",
        help="forecast store to create or extend (required; the scores go to --scores)",
    )
    deprecated_alias(out, "--forecast-store", "--out")
    out.add_argument(
        "--scores",
        required=True,
        help="scores file to write (NetCDF groups): what `wxens verify --out` writes",
    )
    out.add_argument("--report", help="HTML report to write")
    out.add_argument(
        "--bias-correct",
        metavar="STORE",
        help="also correct the forecast store by its verified errors into this store "
        "(wxens bias-correct) with the weights `wxens tune` stored with the checkpoint, or "
        "those given, and verify that one (no weights: the forecast is verified as it is)",
    )
    out.add_argument(
        "--bias-weight",
        type=float,
        help="with --bias-correct: weight of the newest verified error, in (0, 1] "
        "(default: the checkpoint's tuned weights; weights given replace all of them)",
    )
    out.add_argument(
        "--spread-weight",
        type=float,
        help="with --bias-correct: also scale the spread by the decaying average (this "
        "weight, in (0, 1]) of the recent spread-skill ratio (default: the tuned one)",
    )
    out.add_argument(
        "--rank-weight",
        type=float,
        help="with --bias-correct: last, remap the members by the decaying average (this "
        "weight, in (0, 1]) of the recent rank histograms (default: the tuned one)",
    )
    out.add_argument(
        "--baseline",
        metavar="NAME",
        help="also draw this reference ensemble (climatology or persistence) for the same "
        "initial times and leads (wxens baseline) and verify beside it: the scorecard gains "
        "its CRPS, the skill score and the paired interval",
    )
    out.add_argument(
        "--baseline-train",
        metavar="START/END",
        help="with --baseline: the period it draws from, e.g. 2019-03-01/2019-03-21",
    )
    out.add_argument("--baseline-store", help="with --baseline: the store to write it to")
    made = parser.add_argument_group(
        "products", "with --products-out: the delivered forecast's products (wxens products)"
    )
    made.add_argument(
        "--products-out",
        metavar="P.nc|P.zarr",
        help="write the products chosen below of the initial times this run forecast, read "
        "from the delivered store (the corrected one, if any), here, replacing the last "
        "run's: a Zarr store, or CF NetCDF-4 if it ends .nc; with a field {init:FORMAT} of "
        "strftime codes, a file per initial time that later runs keep, e.g. "
        "products/uk_{init:%%Y%%m%%dT%%H}.nc",
    )
    add_product_options(made)
    parser.add_argument(
        "--dask-scheduler",
        metavar="ADDRESS",
        help="run ingestion, the forecasts and verification on this dask cluster (default: a "
        "local cluster for ingestion and verification, forecasts in this process)",
    )


def parse_leads(text: str | None) -> list[float] | None:
    """Hours from a comma list of durations (``1h,90min,1d``); None stays None."""
    import pandas as pd

    from pipeline.errors import InputError

    if text is None:
        return None
    try:
        hours = [pd.Timedelta(part.strip()) / pd.Timedelta(hours=1) for part in text.split(",")]
    except ValueError as err:
        raise InputError(f"--lead {text!r}: give durations such as 1h,3h,24h ({err})") from None
    if any(h <= 0 for h in hours):
        raise InputError(f"--lead {text!r}: every lead must be positive")
    return hours


def run(args: argparse.Namespace) -> int:
    from pipeline.errors import InputError

    if args.out is None:
        raise InputError("give the forecast store to create or extend: --out STORE")
    weights = (args.bias_weight, args.spread_weight, args.rank_weight)
    if any(w is not None for w in weights) and not args.bias_correct:
        raise InputError(
            "--bias-weight, --spread-weight and --rank-weight correct the forecast into "
            "another store: give --bias-correct STORE too"
        )
    if args.baseline is not None and not (args.baseline_train and args.baseline_store):
        raise InputError("--baseline needs --baseline-train START/END and --baseline-store STORE")
    if args.baseline is None and (args.baseline_train or args.baseline_store):
        raise InputError("--baseline-train and --baseline-store go with --baseline NAME")
    asked = request(args)
    if args.products_out is None and any(asked.values()):
        raise InputError(
            "--mean, --spread, --quantiles, --probability and --units choose the products "
            "written to --products-out P.nc: give it too"
        )
    from flows.commands.forecast import init_parameters
    from flows.inputs import check_distinct_outputs, check_output_file
    from flows.products_files import check_products_out

    check_products_out(args.products_out, "--products-out")  # before the flows' start
    inits = init_parameters(args.init) if args.init else {}
    check_output_file(args.scores, "--scores", "scores.nc")
    check_output_file(args.report, "--report", "report.html")
    check_distinct_outputs({"--scores": args.scores, "--report": args.report})
    stores = {"--store": args.store, "--out": args.out, "--bias-correct": args.bias_correct}
    check_distinct_outputs({**stores, "--baseline-store": args.baseline_store}, "store")
    check_device(args.device, args.dask_scheduler)  # before any flow starts
    if args.sources:
        check_out_writable(args.store, "--store", "wxens run --source ingests into it")
    # the new stores a run certainly writes: tuned weights may correct nothing (no store),
    # and a run whose inputs are unchanged leaves a store there is as it is
    if args.bias_weight and not os.path.exists(args.bias_correct):
        check_out_writable(args.bias_correct, "--bias-correct", "wxens run corrects into it")
    if args.baseline and not os.path.exists(args.baseline_store):
        check_out_writable(args.baseline_store, "--baseline-store", "wxens run draws into it")
    check_out_writable(args.out, "--out", "wxens run forecasts into it")
    from flows.settings import ad_hoc_heartbeats_off, apply_offline_defaults

    apply_offline_defaults(args.verbose)

    from flows.deployments import RUN_NAMES
    from flows.pipelines import ensemble_run
    from flows.runtime import subflow_seconds
    from flows.threads import set_threads
    from generators.correction.tuned import CorrectionNames

    set_threads(args.threads)  # the flows' training, forecasts and corrections run here
    flags = RUN_NAMES.set(CorrectionNames())  # its hints name --bias-weight W
    try:
        with ad_hoc_heartbeats_off():
            state = ensemble_run(
                store=args.store,
                checkpoint=args.checkpoint,
                forecast_store=args.out,
                scores=args.scores,
                report=args.report,
                **inits,
                latest=args.latest,
                cycle_hours=args.cycle,
                leads_hours=parse_leads(args.lead),
                members=args.members,
                sampler=args.sampler,
                seed=args.seed,
                sources=args.sources,
                variables=args.variables,
                train_config=args.train_config,
                train_overrides=args.train_overrides,
                bias_correction=args.bias_weight,
                spread_weight=args.spread_weight,
                rank_weight=args.rank_weight,
                corrected_store=args.bias_correct,
                baseline_name=args.baseline,
                baseline_train=args.baseline_train,
                baseline_store=args.baseline_store,
                products=asked if args.products_out else None,
                products_out=args.products_out,
                dask_scheduler=args.dask_scheduler,
                device=args.device,
                progress=sys.stderr.isatty(),
                return_state=True,
            )
    finally:
        RUN_NAMES.reset(flags)
    print(describe(state.result(), subflow_seconds(state)))
    return 0


def describe(summary: dict[str, object], steps: list[tuple[str, float]] = ()) -> str:
    """What an ensemble run did, where its outputs are, and how long each step took: the
    initial times this run asked for, now complete (drawn by it, or found there by a
    rerun), beside those its forecast store holds (a run on a schedule adds its cycle to
    all the earlier ones), which are what is verified; the products are of this run's."""
    import pandas as pd

    from flows.products_files import products_files
    from pipeline.errors import counted
    from pipeline.forecast_store import complete_init_times
    from pipeline.forecast_times import span

    forecast = summary["forecast_init_times"]
    verified = summary["verified_init_times"]
    store = str(summary["forecast_store"])
    held = len(complete_init_times(store))
    lines = [
        f"analysis store   {summary['store']}",
        f"checkpoint       {summary['checkpoint']}",
        f"forecast store   {store} (this run's "
        f"{counted(len(forecast), 'initial time')} complete, {held} in the store)",
    ]
    if summary.get("corrected_store"):
        lines.append(f"bias-corrected   {_corrected(summary['corrected_store'])}")
    elif summary.get("uncorrected_store"):
        lines.append(
            f"bias-corrected   {summary['uncorrected_store']} not written (no correction: the "
            "warning above says why); the forecast store was verified as it is"
        )
    if summary.get("baseline_store"):
        lines.append(f"baseline         {summary['baseline_store']}")
    if summary.get("products"):
        inits = pd.DatetimeIndex(pd.to_datetime(forecast))  # what the products step was given
        # with a template, the files this run's initial times gave
        files = list(products_files(str(summary["products"]), forecast, store))
        many = f"{counted(len(files), 'file')} {files[0]} .. {files[-1]}"
        where = files[0] if len(files) == 1 else many
        lines.append(f"products         {where} (this run's {span(inits)})")
    if verified:
        waiting = held - len(verified)  # complete, their truth not all in the analysis store
        later = ""
        if waiting:
            one = waiting == 1
            later = (
                f"; {waiting} {'awaits' if one else 'await'} the truth of "
                f"{'its' if one else 'their'} last lead: a later run verifies "
                f"{'it' if one else 'them'}"
            )
        lines.append(
            f"scores           {summary['scores']} ({counted(len(verified), 'initial time')} "
            f"of the store verified{later})"
        )
        if summary["report"]:
            lines.append(f"report           {summary['report']}")
    else:
        lines.append(
            "scores           none yet: no forecast has the truth of its last lead in the store "
            "(wxens verify scores the leads whose truth has arrived)"
        )
    if steps:
        lines.append("steps            " + ", ".join(f"{name} {s:.0f} s" for name, s in steps))
    return "\n".join(lines)


def _corrected(store: object) -> str:
    """The corrected store and the weights it records (tuned or given: a run says neither)."""
    from generators.correction.raw import weights_text
    from pipeline.forecast_store import provenance

    return f"{store} ({weights_text(provenance(str(store)).bias_correction)})"


def kept(args: argparse.Namespace) -> str:
    """What an interrupted run kept, step by step, read back from its stores
    (:func:`flows.commands.chain.chain_kept`): the same command skips the steps done and
    resumes the one stopped. Its initial times are those given, or the ``--latest`` of the
    store on the ``--cycle``, as the run chose them."""
    from functools import cache

    from flows.commands.chain import chain_kept, forecast_steps, ingest_step, train_step
    from flows.commands.forecast import parse_inits
    from flows.inputs import latest_init_times

    @cache
    def inits() -> list[str]:
        if args.init:
            return [t.isoformat() for t in parse_inits(args.init)]
        return latest_init_times(args.store, args.checkpoint, args.latest, args.cycle)

    steps = [ingest_step(args.store)] if args.sources else []
    if args.train_config:
        steps.append(train_step(args.train_config, args.train_overrides, args.checkpoint))
    weights = (args.bias_weight, args.spread_weight, args.rank_weight)
    steps += forecast_steps(
        args.store,
        args.checkpoint,
        inits,
        args.out,
        corrected=args.bias_correct,
        weights=weights,
        baseline_store=args.baseline_store,
        scores=args.scores,
        report=args.report,
    )
    return chain_kept(steps)
