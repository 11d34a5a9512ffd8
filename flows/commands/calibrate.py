"""``wxens calibrate --checkpoint K --store S (--start A --end B | --fold F ...)``: fit the
spread calibration of a trained checkpoint and store it in the checkpoint."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from flows.commands.options import (
    SEED,
    add_batch_members,
    add_device,
    add_no_progress,
    add_threads,
    at_least,
    check_device,
    positive_hours,
    sampler_spec,
)

if TYPE_CHECKING:
    from generators.config import CalibrationConfig
    from generators.train_plan import TrainResult

NAME = "calibrate"
HELP = (
    "fit a per-lead spread calibration on a held-out period, or on cross-validation folds, "
    "and store it in the checkpoint"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--checkpoint", required=True, help="the checkpoint file or training directory"
    )
    parser.add_argument("--store", required=True, help="analysis store holding the truth")
    parser.add_argument("--start", help="first day of a held-out period (never trained on)")
    parser.add_argument("--end", help="last day of the held-out period (inclusive)")
    parser.add_argument(
        "--fold",
        action="append",
        default=[],
        metavar="CHECKPOINT",
        help="a cross-validation fold: the same recipe trained without one period "
        "(data.exclude), which it forecasts for the fit; repeat for each fold. For a model "
        "trained on all the data, which has no held-out period of its own",
    )
    parser.add_argument(
        "--members", type=at_least(2), default=50, help="ensemble size of the fit forecasts (50)"
    )
    parser.add_argument(
        "--every",
        type=positive_hours(),
        help="time between fit initial times, e.g. 6h or 12 (hours) (default: the store's "
        "step, at least 6 h)",
    )
    parser.add_argument(
        "--lead",
        help="leads to fit: 48h (every native step up to it, as a forecast's default) or "
        "6h,12h (default: the trained leads; a forecast's other leads take factors "
        "interpolated in lead)",
    )
    parser.add_argument(
        "--sampler", type=sampler_spec, help="sampler spec (default: the checkpoint's)"
    )
    parser.add_argument("--seed", type=SEED, default=1, help="random seed of the fit (1)")
    parser.add_argument(
        "--balance",
        action="store_true",
        help="fit on forecasts whose upper air is balanced at every step, for forecasts "
        "made with wxens forecast --balance",
    )
    parser.add_argument(
        "--out", help="write the calibrated checkpoint here (default: over --checkpoint)"
    )
    add_device(parser)
    add_batch_members(parser)
    add_threads(parser)
    add_no_progress(parser)


def run(args: argparse.Namespace) -> int:
    """Calibrate under the lock of the directory written to, a training run's: a
    calibration finished while ``wxens train`` went on there wrote its older weights over
    the run's newer checkpoint."""
    from generators.checkpoint import check_run_writable
    from generators.correction.tuned import checkpoint_file
    from pipeline.transaction import held_alone

    check_device(args.device)  # before the checkpoint and the store are read
    more = " (or give --out FILE in a folder you can write)" * (args.out is None)
    check_run_writable(checkpoint_file(args.out or args.checkpoint), NAME, lock=True, more=more)
    with held_alone(checkpoint_file(args.out or args.checkpoint).parent):
        return _calibrate(args)


def _calibrate(args: argparse.Namespace) -> int:
    import pandas as pd

    from flows.commands.forecast import parse_leads
    from flows.threads import set_threads
    from generators.calibration import CALIBRATE_OPTIONS, calibrate_checkpoint
    from generators.checkpoint import load_checkpoint
    from generators.config import CalibrationConfig
    from pipeline.errors import InputError
    from pipeline.schema import Period

    set_threads(args.threads)
    period = Period(args.start, args.end) if args.start or args.end else None
    if (period is None) == (not args.fold):
        raise InputError(
            "give either a held-out period (--start, --end) or cross-validation folds "
            "(--fold CHECKPOINT, repeated), not both and not neither"
        )
    native_hours = load_checkpoint(args.checkpoint).native_step / pd.Timedelta(hours=1)
    leads = tuple(parse_leads(args.lead, None, native_hours)) if args.lead else None
    calibration = calibrate_checkpoint(
        args.checkpoint,
        args.store,
        CalibrationConfig(
            period=period,
            leads_hours=leads,
            members=args.members,
            init_every_hours=args.every or max(native_hours, 6.0),
            sampler=args.sampler,
            seed=args.seed,
            balance=args.balance,
        ),
        folds=args.fold,
        out=args.out,
        device=args.device,
        progress=not args.no_progress,
        batch_members=args.batch_members,
        options=CALIBRATE_OPTIONS,
    )
    print(calibration.report())
    print(f"calibration stored in {args.out or args.checkpoint}")
    return 0


def calibrate_command(checkpoint: str | Path, store: str | Path, config: CalibrationConfig) -> str:
    """The ``wxens calibrate`` command that fits ``config`` (a training config's
    ``calibration:`` section, whose period it needs) for ``checkpoint`` on ``store``: what
    ``wxens train`` suggests when the calibration after its training fails."""
    from pipeline.errors import shell_word

    leads = ",".join(f"{h:g}h" for h in config.leads_hours) if config.leads_hours else None
    options = {
        "--checkpoint": checkpoint,
        "--store": store,
        "--start": config.period.start if config.period else None,
        "--end": config.period.end if config.period else None,
        "--members": config.members,
        "--every": f"{config.init_every_hours:g}h",
        "--lead": leads,
        "--sampler": config.sampler,
        "--seed": config.seed,
    }
    words = [
        f"{flag} {shell_word(str(value))}" for flag, value in options.items() if value is not None
    ]
    return " ".join(["wxens calibrate", *words, *(["--balance"] if config.balance else [])])


def uncalibrated(store: str, calibration: CalibrationConfig, result: TrainResult) -> str:
    """What ``wxens train`` says when the calibration after its training failed (the error
    follows): the training itself finished and is saved, the checkpoint is not calibrated,
    and the ``wxens calibrate`` command (or the rerun, which trains nothing more) that
    calibrates it once the cause is fixed."""
    return (
        f"wxens train: the training finished and was saved: {result.checkpoint} (step "
        f"{result.step}), but its spread calibration failed (below), so it is not "
        "calibrated. Once the cause is fixed, calibrate it with "
        f"`{calibrate_command(result.checkpoint, store, calibration)}`, or rerun this "
        "wxens train (it trains nothing more, then calibrates)"
    )


def kept(args: argparse.Namespace) -> str:
    """What an interrupted calibration kept: nothing. Its fit forecasts are drawn in
    memory, and the calibration is stored in the checkpoint only once fitted."""
    return (
        f"no calibration stored in {args.out or args.checkpoint} (the fit's forecasts are "
        "drawn in memory, none kept); rerun the same command to fit it"
    )
