"""``wxens tune --checkpoint K --store S [--lead ...] [--members M] [--folds N | --fold F
...]``: choose the correction weights of a checkpoint on forecasts of its held-out period
(else its training period), or of its cross-validation folds' held-out periods
(:mod:`generators.tune`), and store them beside it, where
``wxens bias-correct`` and ``wxens run`` find them when no weight is given."""

from __future__ import annotations

import argparse

from flows.commands.options import (
    SEED,
    add_device,
    add_no_progress,
    add_threads,
    at_least,
    check_device,
    deprecated_alias,
    positive_hours,
    sampler_spec,
)
from generators.correction.spec import CANDIDATES

NAME = "tune"
HELP = (
    "choose the bias, spread and rank correction weights of a checkpoint by cross-validation "
    "on forecasts of its held-out (else training) period, and store them with it"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--checkpoint", required=True, help="the checkpoint file or training directory"
    )
    parser.add_argument("--store", required=True, help="analysis store holding the truth")
    parser.add_argument(
        "--lead",
        help="comma list of leads scored, e.g. 1h,6h,24h; one lead (24h) is that lead alone, "
        "not every step up to it as for wxens forecast (default: the checkpoint's trained leads)",
    )
    deprecated_alias(parser, "--leads", "--lead")
    parser.add_argument(
        "--members", type=at_least(2), default=20, help="ensemble size of the tuning forecasts (20)"
    )
    parser.add_argument(
        "--folds",
        type=at_least(1),
        help="consecutive blocks of initial times (default: as many as keep 4 days of them in "
        "each, at most 4)",
    )
    parser.add_argument(
        "--fold",
        action="append",
        default=[],
        metavar="CHECKPOINT",
        help="a cross-validation fold, as for wxens calibrate: the same recipe trained without "
        "one period (data.exclude), whose forecasts of that period are one block; repeat for "
        "each fold. For a model trained on all the data (not with --folds, --start, --end)",
    )
    parser.add_argument(
        "--every",
        type=positive_hours(),
        help="time between initial times, e.g. 6h or 12 (hours) (default: the store's step, "
        "at least 6 h)",
    )
    parser.add_argument(
        "--start",
        help="first day of the initial times (default: the held-out period's, else the training "
        "period's)",
    )
    parser.add_argument(
        "--end",
        help="last day of the period (default: the held-out period's, else the training "
        "period's): its initial times end the longest lead before it, their truth inside it",
    )
    parser.add_argument(
        "--variable",
        help="the one channel whose scores choose, e.g. t2m or z500 (default: every channel, "
        "on the mean over them of each one's fair CRPS / the uncorrected forecast's)",
    )
    for stage in CANDIDATES:
        parser.add_argument(
            f"--{stage}-weights",
            metavar="W,W,...",
            help=f"the candidate {stage} weights, each in (0, 1] (default: "
            + ",".join(f"{w:g}" for w in CANDIDATES[stage])
            + ")",
        )
    parser.add_argument(
        "--sampler", type=sampler_spec, help="sampler spec (default: the checkpoint's)"
    )
    parser.add_argument("--seed", type=SEED, default=0, help="random seed (default 0)")
    add_device(parser)
    add_threads(parser)
    add_no_progress(parser)


def parse_weights(text: str | None, stage: str) -> tuple[float, ...]:
    """The candidate weights of ``--STAGE-weights`` (comma list), or the defaults."""
    from pipeline.errors import InputError

    if text is None:
        return CANDIDATES[stage]
    try:
        return tuple(float(part) for part in text.split(","))
    except ValueError:
        raise InputError(
            f"--{stage}-weights {text!r}: give a comma list of weights in (0, 1], e.g. 0.1,0.4"
        ) from None


def run(args: argparse.Namespace) -> int:
    from flows.commands.run import parse_leads
    from flows.threads import set_threads
    from generators.correction.spec import CorrectionByVariable
    from generators.tune import OPTIONS, tune_correction
    from pipeline.schema import Period

    check_device(args.device)  # before the checkpoint and the store are read
    set_threads(args.threads)
    period = Period(args.start, args.end) if args.start or args.end else None
    tuned = tune_correction(
        args.checkpoint,
        args.store,
        leads_hours=parse_leads(args.lead),
        members=args.members,
        folds=args.folds,
        every_hours=args.every,
        period=period,
        variable=args.variable,
        bias_weights=parse_weights(args.bias_weights, "bias"),
        spread_weights=parse_weights(args.spread_weights, "spread"),
        rank_weights=parse_weights(args.rank_weights, "rank"),
        sampler=args.sampler,
        seed=args.seed,
        device=args.device,
        progress=not args.no_progress,
        fold_checkpoints=args.fold,
        options=OPTIONS,
    )
    forecasts = ", ".join(str(f) for f in tuned.forecasts)
    print(f"cross-validated scores of the candidates (mean over the leads), {forecasts}:")
    number = {"float_format": lambda v: f"{v:.4g}", "line_width": 100}
    print(tuned.selection.table.to_string(**number))
    spec = tuned.spec
    if spec.applies:
        chosen = spec.describe()
        if isinstance(spec, CorrectionByVariable) and not all(s.applies for _, s in spec.specs):
            chosen += " (none: no bias correction lowered its cross-validated fair CRPS)"
    else:
        chosen = (
            "none (weight 0: no bias correction lowers the cross-validated fair CRPS; the "
            "spread and rank stages act on a bias-corrected forecast, so they were not tried)"
        )
    print(f"chosen: {chosen}; stored in {tuned.path}")
    return 0


def kept(args: argparse.Namespace) -> str:
    """What an interrupted tuning kept: its forecasts, drawn into a store beside the
    checkpoint, or beside each fold (``tune-DIGEST-KEY.zarr``, one per store, leads,
    members, sampler and seed) batch by batch, each batch committed whole; the same command
    draws only those missing. No weight is stored until every forecast is drawn and scored."""
    from generators.correction.tuned import checkpoint_digest, checkpoint_file
    from pipeline.forecast_store import complete_init_times, is_forecast_store

    found = []
    for checkpoint in [args.checkpoint, *args.fold]:  # with folds, the stores are beside them
        path = checkpoint_file(checkpoint)
        if path.is_file():
            found += sorted(path.parent.glob(f"tune-{checkpoint_digest(path)}-*.zarr"))
    stores = [store for store in found if is_forecast_store(store)]
    if not stores:
        return "no tuning forecast written and no weight stored; rerun the same command to tune"
    counts = ", ".join(f"{s} ({len(complete_init_times(s))} initial times)" for s in stores)
    return (
        f"no weight stored; tuning forecasts kept (each batch committed whole): {counts}; "
        "rerun the same command to draw only the rest and choose the weights"
    )
