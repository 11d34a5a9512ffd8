"""``wxens verify FORECAST --truth STORE --out scores.nc [--report report.html]``.

FORECAST is a wxens forecast store, or any file/store in a layout the adapters know
(cfgrib/ECMWF GRIB, WeatherBench 2 Zarr, NetCDF); it is aligned with the analysis store
on valid time and scored in one pass over the data by
:func:`verification.run.verify_store`, which writes the scores and the report; this
command adds the dask cluster and prints the scorecard's main columns.
"""

from __future__ import annotations

import argparse

from flows.commands.options import (
    SEED,
    add_forecast,
    add_init_from_filename,
    add_members,
    add_no_progress,
    add_threads,
    at_least,
)

NAME = "verify"
#: More printed rows (a channel and lead apiece) than this end with how to print a few.
LONG_TABLE = 60
HELP = "score an ensemble forecast against an analysis store: scores (NetCDF) and an HTML report"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_forecast(parser)
    parser.add_argument("--truth", required=True, help="analysis store to verify against")
    parser.add_argument(
        "--out", required=True, help="scores file to write (NetCDF groups; `wxens run --scores`)"
    )
    parser.add_argument("--report", help="HTML report to write (self-contained)")
    parser.add_argument(
        "--reference",
        metavar="ENSEMBLE",
        help="another ensemble (a wxens baseline, an operational model) covering the "
        "forecast's initial times and leads: adds its fair CRPS, the skill score "
        "1 - CRPS/CRPS_ref and the interval of the paired CRPS difference",
    )
    parser.add_argument("--variables", nargs="+", help="variables to verify (default: all in both)")
    parser.add_argument(
        "--init",
        nargs="+",
        metavar="TIME",
        help="verify only these initial times of the forecast: times (2019-03-24T00) or "
        "START/END/EVERY ranges, e.g. those a --reference of fewer runs holds (default: all)",
    )
    parser.add_argument(
        "--lead",
        help="verify only these leads of the forecast: a comma list, e.g. 24h or 6h,24h "
        "(default: all)",
    )
    add_members(parser)
    add_init_from_filename(parser)
    parser.add_argument(
        "--seed",
        type=SEED,
        default=0,
        help="seed of the random parts: rank-histogram tie-breaking, the block-bootstrap "
        "intervals and the error surrogates (default 0)",
    )
    parser.add_argument(
        "--physics-init-times",
        type=at_least(0),
        default=8,
        help="init times (evenly spaced) for physics checks and spectra; 0 skips them (default 8)",
    )
    parser.add_argument(
        "--no-energy-score", action="store_true", help="skip the multivariate energy score (O(M²))"
    )
    parser.add_argument(
        "--interval-level",
        type=float,
        default=0.9,
        help="coverage of the block-bootstrap intervals of fair CRPS and spread-skill ratio; "
        "0 skips them (default 0.9)",
    )
    parser.add_argument(
        "--interval-block",
        default="1D",
        help="init times resampled together: those with the same floor to this pandas "
        "frequency (default 1D: the init times of one day)",
    )
    parser.add_argument(
        "--perfect-model-stand-ins",
        type=at_least(0),
        default=5,
        metavar="N",
        help="members that in turn stand in for the truth to give the rank max/min ratio's "
        "noise floor (rank_max_min_perfect_model); 0 skips it (default 5)",
    )
    parser.add_argument(
        "--error-surrogate-replicas",
        type=at_least(0),
        default=None,
        metavar="N",
        help="replicas of a reliable ensemble whose fields correlate in space as the "
        "ensemble-mean errors do, for the rank max/min floor where errors are coherent over "
        "the domain (rank_max_min_error_surrogate); rank max/min passes at most 1.1 x it; "
        "0 skips it (default 20 where they cost under about half a minute of CPU, else "
        "skipped, saying so: they grow as the square of the init times)",
    )
    parser.add_argument(
        "--units",
        action="append",
        default=[],
        metavar="[VARIABLE=]UNIT",
        help="print and report the scores and fields of VARIABLE (or of every variable that "
        "converts to UNIT) in UNIT, e.g. --units msl=hPa or --units hPa (repeatable); the "
        "scores file keeps the store's units",
    )
    cluster = parser.add_mutually_exclusive_group()
    cluster.add_argument(
        "--dask-scheduler",
        metavar="ADDRESS",
        help="address of a running dask scheduler to compute on (tcp://host:8786)",
    )
    cluster.add_argument(
        "--local-cluster",
        action="store_true",
        help="start a dask LocalCluster for the run (default: threads in this process)",
    )
    add_threads(parser)
    add_no_progress(parser)


def run(args: argparse.Namespace) -> int:
    from flows.inputs import check_distinct_outputs, check_output_file, check_outputs_spare_inputs

    check_output_file(args.out, "--out", "scores.nc")  # before scoring, not at its end
    check_output_file(args.report, "--report", "report.html")
    outputs = {"--out": args.out, "--report": args.report}
    check_distinct_outputs(outputs)
    inputs = {"FORECAST": args.forecast, "--truth": args.truth, "--reference": args.reference}
    check_outputs_spare_inputs(outputs, inputs)

    from flows.cluster import dask_client
    from flows.commands.run import parse_leads
    from flows.threads import set_threads
    from pipeline.schema import LEAD_TIME, split_channel
    from pipeline.store import open_store
    from verification.config import (
        OPTIONS,
        VARIABLE,
        VerifyConfig,
        check_interval_block,
        check_interval_level,
    )
    from verification.output import added_scores, card_in_units, printable_card, unit_factors
    from verification.ranks import PASSES, with_rank_pass
    from verification.run import verify_store

    init_times = None
    if args.init:
        from flows.commands.forecast import parse_inits

        init_times = parse_inits(args.init)  # a bad --init is refused before any store opens
    leads = parse_leads(args.lead)  # so is a bad --lead
    # named as typed (--interval-block 1W), not as VerifyConfig's fields, and before reads
    check_interval_level(args.interval_level, OPTIONS)
    check_interval_block(args.interval_block, OPTIONS)
    truth = open_store(args.truth)  # once: passed on, so its warnings are said once
    store_units = {str(n): da.attrs.get("units", "") for n, da in truth.dataset.data_vars.items()}
    factors = unit_factors(args.units, store_units) if args.units else {}  # checked first

    config = VerifyConfig(
        seed=args.seed,
        physics_init_times=args.physics_init_times,
        energy_score=not args.no_energy_score,
        interval_level=args.interval_level,
        interval_block=args.interval_block,
        perfect_model_stand_ins=args.perfect_model_stand_ins,
        error_surrogate_replicas=args.error_surrogate_replicas,
        progress=not args.no_progress,
    )
    use_cluster = args.dask_scheduler or args.local_cluster
    set_threads(args.threads, torch=False)
    done = verify_store(
        args.forecast,
        truth,
        args.out,
        config=config,
        reference=args.reference,
        report=args.report,
        variables=args.variables,
        init_times=init_times,
        leads_hours=leads,
        members=args.members,
        init_from_filename=args.init_from_filename,
        scheduler=dask_client(args.dask_scheduler) if use_cluster else None,
        units=factors,
    )
    print(f"scores: {args.out}")
    card = with_rank_pass(done.tree["scorecard"].to_dataset())
    printed = (
        *(
            f"{score}{end}"
            for score in ("fair_crps", "spread_skill_ratio")
            for end in ("", "_low", "_high")
        ),
        "rank_max_min",
        "rank_max_min_perfect_model",
        "rank_max_min_error_surrogate",
        PASSES,
        "reference_fair_crps",
        "fair_crps_skill_score",
        "fair_crps_minus_reference_low",
        "fair_crps_minus_reference_high",
    )
    missing = [n for n in ("n_missing_truth", "n_missing_forecast") if int(card[n].sum())]
    if missing:  # partial truth or forecast: what verified, what did not and why
        printed = (*printed, "n_verified", *missing)
    paired = card.get("n_verified_with_reference")
    if paired is not None and bool((paired < card["n_verified"]).any()):
        printed = (*dict.fromkeys((*printed, "n_verified")), "n_verified_with_reference")
    columns = [name for name in (*printed, *added_scores(card)) if name in card]
    shown = {split_channel(str(c))[0] for c in card[VARIABLE].values}
    for variable, (unit, factor) in factors.items():
        if variable in shown:
            print(f"{variable}: scores printed in {unit} (x {factor:g} of the stored values)")
    units = store_units | {name: unit for name, (unit, _) in factors.items()}
    print(printable_card(card_in_units(card, factors), columns, units))
    cautions = [card[c].attrs["caution"] for c in columns if "caution" in card[c].attrs]
    if cautions:  # 2 blocks printed [0.1972, 0.1976], as if the CRPS were known that well
        print(cautions[0])
    rows = card.sizes[VARIABLE] * card.sizes[LEAD_TIME]
    if rows > LONG_TABLE:  # 13 channels x 40 leads printed 520 rows, with no word of --lead
        channels = card.sizes[VARIABLE]
        print(
            f"{rows} rows ({channels} channel{'s' * (channels > 1)} x "
            f"{card.sizes[LEAD_TIME]} leads), every one kept in {args.out}; for a short table "
            f"verify a few leads, e.g. --lead {few_leads(card[LEAD_TIME].values)}, or a few "
            "--variables"
        )
    if "physics" in done.tree.children:  # which part failed, on which channel, and the fix
        from pipeline.forecast_store import ForecastProvenance, is_forecast_store, open_forecast
        from pipeline.schema import LAT
        from verification.physics_summary import BALANCE_CHECKS, balance_fixes, physics_lines

        drawn = None  # one opening gives the provenance and the grid
        if is_forecast_store(args.forecast):
            drawn = open_forecast(args.forecast, complete_only=False)
        balanced = None if drawn is None else ForecastProvenance.from_attrs(drawn.attrs).balanced
        # a global grid: --balance keeps its winds, so it is no fix for geostrophy to suggest
        fixes = BALANCE_CHECKS if drawn is None else balance_fixes(drawn[LAT].values)
        physics = done.tree["physics"].to_dataset()
        latitude = None if drawn is None else drawn[LAT].values
        for line in physics_lines(physics, balanced=balanced, fixes=fixes, latitude=latitude):
            print(line)
    if args.report:
        print(f"report: {args.report}")
    return 0


def few_leads(leads) -> str:
    """A --lead value of three of the held ``leads`` (timedelta64) for a short table: 24h,
    72h and 240h where all are held, else the first, middle and last."""
    import numpy as np

    hours = [float(lead / np.timedelta64(1, "h")) for lead in leads]
    chosen = [24.0, 72.0, 240.0]
    if not set(chosen) <= set(hours):
        chosen = list(dict.fromkeys((hours[0], hours[len(hours) // 2], hours[-1])))
    return ",".join(f"{h:g}h" for h in chosen)


def kept(args: argparse.Namespace) -> str:
    """What an interrupted verification kept: nothing of the scoring. The scores and the
    report are each written whole at the end (an earlier file is left as it was)."""
    outputs = " and ".join(path for path in (args.out, args.report) if path)
    return (
        f"nothing of the scoring kept ({outputs} written only whole, at the end); rerun the "
        "same command to verify"
    )
