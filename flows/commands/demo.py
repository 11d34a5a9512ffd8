"""``wxens demo``: the whole chain on the shipped UK sample, offline, on a CPU, in minutes.

ERA5 hourly 2 m temperature over the British Isles, March 2019 (``data/``): ingest it,
train a small flow-matching model on 1–21 March (the repository's
``configs/uk_t2m_flow_matching.yaml``, shortened by :data:`DEMO_OVERRIDES`), draw 50
members at leads 1–24 h for every 6 h of 22–30 March, draw the persistence + past
tendencies baseline for the same forecasts, verify the members beside it and write the
HTML report. Every step is a Prefect flow: run it again and finished steps
are skipped; ``--fresh`` starts over.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

NAME = "demo"
HELP = "offline demo on the shipped UK sample: ingest, train, forecast 50 members, verify, report"

REPOSITORY = Path(__file__).resolve().parents[2]
SAMPLE = REPOSITORY / "data" / "era5-t2m-uk-2019-03.grib"
CONFIG = REPOSITORY / "configs" / "uk_t2m_flow_matching.yaml"
DEMO_OVERRIDES = (
    "data.history=6",  # the last 6 hourly states (the config's 24 costs 2x per step)
    "model.backbone.widths=[16, 32]",
    "batch_size=8",
    "steps=250",
    "optim.warmup_steps=25",
    "fine_tune.steps=50",
    "validate_every=125",
    "checkpoint_every=50",
)
"""A model small and short enough to train in a few CPU minutes: a demo, not a forecast
to trust — train the full config for that (``wxens train --config CONFIG``)."""
TEST_INIT_TIMES = "2019-03-22T00/2019-03-30T18/6h"
TRAINING_PERIOD = "2019-03-01/2019-03-21"
"""The configuration's training period, which the persistence baseline draws from too."""
LEADS_HOURS = (1.0, 3.0, 6.0, 12.0, 24.0)
DEMO_OUTPUTS = (
    "era5-uk.zarr",
    "model",
    "forecast.zarr",
    "persistence.zarr",
    "scores.nc",
    "report.html",
    ".wxens",
)
"""What the demo writes in its work directory (and their temporaries, ``NAME.*``): all
``--fresh`` may delete."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--workdir",
        default="wxens-demo",
        help="where the stores, model, scores and report go (default ./wxens-demo)",
    )
    parser.add_argument("--members", type=int, default=50, help="ensemble size (default 50)")
    parser.add_argument(
        "--init",
        nargs="+",
        default=[TEST_INIT_TIMES],
        metavar="TIME",
        help=f"initial times or START/END/EVERY ranges (default {TEST_INIT_TIMES})",
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="further training config overrides, e.g. --set steps=1000 (repeatable)",
    )
    parser.add_argument("--sample", default=str(SAMPLE), help="the GRIB sample to ingest")
    parser.add_argument("--config", default=str(CONFIG), help="the training config to start from")
    parser.add_argument(
        "--fresh",
        action="store_true",
        help="delete the work directory first and start over (refused if it holds anything "
        "the demo did not write)",
    )
    parser.add_argument("--dask-scheduler", metavar="ADDRESS", help="default: a local cluster")


def run(args: argparse.Namespace) -> int:
    from flows.settings import apply_offline_defaults

    apply_offline_defaults()

    import shutil
    import time

    from flows.commands.forecast import parse_inits
    from flows.commands.run import describe
    from flows.pipelines import ensemble_run
    from flows.runtime import subflow_seconds
    from pipeline.errors import InputError

    for path, what in ((args.sample, "sample"), (args.config, "training config")):
        if not Path(path).is_file():
            raise InputError(
                f"the demo's {what} {path} is missing; run from a checkout of wxens "
                f"(pip install -e .) or give --{what.split()[-1]} PATH"
            )
    workdir = Path(args.workdir).resolve()
    if args.fresh and workdir.exists():
        check_demo_workdir(workdir)
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    state = ensemble_run(
        store=str(workdir / "era5-uk.zarr"),
        checkpoint=str(workdir / "model"),
        forecast_store=str(workdir / "forecast.zarr"),
        scores=str(workdir / "scores.nc"),
        report=str(workdir / "report.html"),
        init_times=[t.isoformat() for t in parse_inits(args.init)],
        leads_hours=list(LEADS_HOURS),
        members=args.members,
        sources=[str(Path(args.sample).resolve())],
        train_config=str(Path(args.config).resolve()),
        train_overrides=[*DEMO_OVERRIDES, *args.overrides],
        baseline_name="persistence",
        baseline_train=TRAINING_PERIOD,
        baseline_store=str(workdir / "persistence.zarr"),
        dask_scheduler=args.dask_scheduler,
        progress=sys.stderr.isatty(),
        return_state=True,
    )
    summary = state.result()
    print(f"\nwxens demo finished in {time.perf_counter() - started:.0f} s")
    print(describe(summary, subflow_seconds(state)))
    if summary["scores"]:
        print(scores_by_lead(summary["scores"]))
        print(f"\nopen the report: file://{summary['report']}")
    return 0


def scores_by_lead(scores: str) -> str:
    """Fair CRPS, the persistence baseline's and the skill score against it, the
    spread-skill ratio and the rank max/min ratio (with its perfect-model floor) of each
    variable by lead, as a text table."""
    import numpy as np
    import xarray as xr

    from pipeline.schema import VARIABLES, split_channel

    card = xr.open_datatree(scores)["scorecard"].to_dataset()
    header = f"{'variable':<10} {'lead':>5}   {'fair CRPS':>11} {'persistence':>11}"
    lines = ["", f"{header} {'skill':>7} {'spread/skill':>12} {'rank max/min (floor)':>20}"]
    columns = (
        "fair_crps",
        "reference_fair_crps",
        "fair_crps_skill_score",
        "spread_skill_ratio",
        "rank_max_min",
        "rank_max_min_perfect_model",
    )
    for variable in card["variable"].values:
        row = card.sel(variable=variable)
        units = VARIABLES[split_channel(str(variable))[0]].units
        hours = row["lead_time"].values / np.timedelta64(1, "h")
        values = zip(*(row[c].values for c in columns), strict=True)
        for lead, (crps, reference, skill, ssr, rank, floor) in zip(hours, values, strict=True):
            lines.append(
                f"{variable:<10} {lead:>3g} h   {crps:7.3f} {units:<3} {reference:7.3f} {units:<3}"
                f" {skill:+7.2f} {ssr:12.2f} {rank:13.2f} ({floor:4.2f})"
            )
    lines.append(
        "(cos-latitude-weighted means; skill 1 - CRPS/CRPS_persistence, > 0 beats persistence "
        "+ past tendencies; the climatology baseline is in data/README.md; rank max/min is 1 "
        "for a flat histogram, the floor what a perfectly reliable ensemble shows here)"
    )
    return "\n".join(lines)


def check_demo_workdir(workdir: Path) -> None:
    """InputError unless ``workdir`` is a folder holding only what the demo writes, so
    ``--fresh`` never deletes anything else."""
    from pipeline.errors import InputError

    if not workdir.is_dir() or workdir.is_symlink():
        raise InputError(f"--workdir {workdir} is not a folder; --fresh deletes nothing there")
    foreign = sorted(
        p.name
        for p in workdir.iterdir()
        if not any(p.name == out or p.name.startswith(f"{out}.") for out in DEMO_OUTPUTS)
    )
    if foreign:
        raise InputError(
            f"--workdir {workdir} holds {foreign[:5]}{' ...' if len(foreign) > 5 else ''}, "
            "which the demo did not write; --fresh deletes only a demo's work directory: "
            "give another --workdir"
        )
