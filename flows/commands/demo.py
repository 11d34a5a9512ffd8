"""``wxens demo``: the whole chain on the shipped UK sample, offline, on a CPU, in minutes.

ERA5 hourly 2 m temperature over the British Isles, March 2019 (``data/``): ingest it;
derive a training config from the store's times up to ``--train-end`` (21 March;
:func:`generators.config_derive.derive_config`, with :data:`DEMO_STEPS` fixed main steps
instead of a time budget, so a rerun trains the same model) and train it, its spread
calibration fitted on the config's held-out last 4 days of them; choose the correction
weights on forecasts of those held-out days (``wxens tune``, sized by :data:`TUNE`); draw
50 members at leads 1–24 h for every 6 h of 22–30 March, correct them with the tuned
weights, draw the persistence + past tendencies baseline from 1 March to ``--train-end``
for the same forecasts, verify the members beside it and write the HTML report. Every step
is a Prefect flow or task: run it again and finished steps are skipped; ``--fresh`` starts
over.

The step count and the tune's size were chosen on a validation split inside the
training days, never on the test days: ``--train-end 2019-03-16 --init
2019-03-17T00/2019-03-20T18/6h`` (``python benchmarks/demo.py --split validation``).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from flows.commands.demo_table import scores_by_lead
from flows.commands.options import add_config_overrides, add_threads, at_least

NAME = "demo"
HELP = "offline demo on the shipped UK sample: ingest, train, tune, forecast 50 members, verify"

REPOSITORY = Path(__file__).resolve().parents[2]
SAMPLE = REPOSITORY / "data" / "era5-t2m-uk-2019-03.grib"
DEMO_STEPS = 400
"""Main training steps of the derived config (its fine-tune takes a fifth as many): a
model small and short enough to train in a few CPU minutes. Chosen on the validation
split (benchmarks/results/demo_validation_*.md): 400 and 600 steps both beat persistence
at every lead of 17–20 March; 400 had the lower mean fair CRPS over the leads (0.505
against 0.524 K: 600 was better to 3 h, worse at 12 and 24 h) for 78 % of the CPU time."""
DEMO_LEAD = "24h"
TUNE = {"members": 16, "folds": 1, "every_hours": 6.0}
"""``wxens tune``'s ensemble size, folds and spacing of initial times in the demo: the 12
initial times of the held-out 4 days whose 24 h truth is held out too, every 6 h like the
forecasts, corrected causally in one block (a few days are too few to cut into folds)."""
TEST_INIT_TIMES = "2019-03-22T00/2019-03-30T18/6h"
FIRST_DAY = "2019-03-01"
TRAIN_END = "2019-03-21"
"""The last day the model, its tuned correction and the persistence baseline learn from."""
LEADS_HOURS = (1.0, 3.0, 6.0, 12.0, 24.0)
DEMO_OUTPUTS = (
    "era5-uk.zarr",
    "config.yaml",
    "model",
    "forecast.zarr",
    "corrected.zarr",
    "persistence.zarr",
    "scores.nc",
    "report.html",
    ".wxens",
)
"""What the demo writes in its work directory (and their temporaries, ``NAME.*``, and the
lock files of its stores, ``.NAME.lock``): all ``--fresh`` may delete."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--workdir",
        default="wxens-demo",
        help="where the stores, model, scores and report go (default ./wxens-demo)",
    )
    parser.add_argument(
        "--members", type=at_least(2), default=50, help="ensemble size (default 50)"
    )
    parser.add_argument(
        "--init",
        nargs="+",
        default=[TEST_INIT_TIMES],
        metavar="TIME",
        help=f"initial times or START/END/EVERY ranges (default {TEST_INIT_TIMES})",
    )
    parser.add_argument(
        "--train-end",
        default=TRAIN_END,
        metavar="DAY",
        help=f"the last day trained on, tuned on and drawn from by the baseline ({TRAIN_END})",
    )
    add_config_overrides(
        parser, "further training config overrides, e.g. --set steps=1000 (repeatable)"
    )
    parser.add_argument(
        "--sample", default=str(SAMPLE), help="the sample to ingest (default: the shipped GRIB)"
    )
    parser.add_argument(
        "--allow-nan",
        action="store_true",
        help="keep the NaNs of a masked sample (e.g. a land-only field): the model trains, "
        "draws and is verified where the field has values",
    )
    parser.add_argument(
        "--config", help="a training config to use instead of the one derived from the store"
    )
    parser.add_argument(
        "--fresh",
        action="store_true",
        help="delete the work directory first and start over (refused if it holds anything "
        "the demo did not write)",
    )
    add_threads(parser)
    parser.add_argument(
        "--dask-scheduler",
        metavar="ADDRESS",
        help="run the forecasts and verification on the dask cluster of this scheduler "
        "(tcp://host:8786; default: a local cluster for verification, forecasts in this process)",
    )


def run(args: argparse.Namespace) -> int:
    from flows.settings import ad_hoc_heartbeats_off, apply_offline_defaults

    apply_offline_defaults(args.verbose)

    import shutil

    from flows.commands.forecast import init_parameters
    from flows.commands.run import describe
    from flows.pipelines import ensemble_run, ingest, train
    from flows.runtime import subflow_seconds
    from flows.threads import set_threads
    from pipeline.errors import InputError

    for path, what in ((args.sample, "sample"), (args.config, "training config")):
        if path is not None and not Path(path).is_file():
            raise InputError(
                f"the demo's {what} {path} is missing; run from a checkout of wxens "
                f"(pip install -e .) or give --{what.split()[-1]} PATH"
            )
    # bad arguments stop here, not after the ingest and the training
    inits = init_parameters(args.init)
    check_demo_arguments(args)
    workdir = Path(args.workdir).resolve()
    if args.fresh and workdir.exists():
        check_demo_workdir(workdir)
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    set_threads(args.threads)  # the training, tune and forecasts run in this process
    store, checkpoint = str(workdir / "era5-uk.zarr"), str(workdir / "model")
    steps, started = [], time.perf_counter()
    with ad_hoc_heartbeats_off():  # a second a flow, on the temporary server
        with timed(steps, "ingest"):
            ingest([str(Path(args.sample).resolve())], store, allow_nan=args.allow_nan)
        # before the minutes of training, not after them
        check_demo_inits(store, inits["init_times"])
        with timed(steps, "config"):
            config = derived_config(store, workdir, args.train_end, args.config, args.overrides)
        with timed(steps, "train"):
            train(store, config, checkpoint, args.overrides)
        with timed(steps, "tune"):
            tune(checkpoint, store)
        state = ensemble_run(
            store=store,
            checkpoint=checkpoint,
            forecast_store=str(workdir / "forecast.zarr"),
            scores=str(workdir / "scores.nc"),
            report=str(workdir / "report.html"),
            **inits,
            leads_hours=list(LEADS_HOURS),
            members=args.members,
            corrected_store=str(workdir / "corrected.zarr"),
            baseline_name="persistence",
            baseline_train=f"{FIRST_DAY}/{args.train_end}",
            baseline_store=str(workdir / "persistence.zarr"),
            dask_scheduler=args.dask_scheduler,
            progress=sys.stderr.isatty(),
            return_state=True,
        )
    summary = state.result()
    print(f"\nwxens demo finished in {time.perf_counter() - started:.0f} s")
    print(describe(summary, [*steps, *subflow_seconds(state)]))
    if summary["scores"]:
        print(scores_by_lead(summary["scores"]))
        print(f"\nopen the report: file://{summary['report']}")
    return 0


def kept(args: argparse.Namespace) -> str:
    """What an interrupted demo kept in its work directory, step by step, read back from
    disk (:func:`flows.commands.chain.chain_kept`): the ingest, the training, the tune, then
    the forecast, its correction, the baseline and the verification. The same command skips
    the steps done and resumes the one stopped."""
    from flows.commands import tune as tune_command
    from flows.commands.chain import Step, chain_kept, forecast_steps, ingest_step, train_step
    from flows.commands.forecast import parse_inits

    workdir = Path(args.workdir).resolve()
    store, checkpoint = str(workdir / "era5-uk.zarr"), str(workdir / "model")
    config = str(config_path(workdir, args.config))
    said = argparse.Namespace(checkpoint=checkpoint)
    steps = [
        ingest_step(store),
        train_step(config, args.overrides, checkpoint),
        Step(f"tune ({checkpoint})", lambda: tuned(checkpoint), lambda: tune_command.kept(said)),
        *forecast_steps(
            store,
            checkpoint,
            lambda: [t.isoformat() for t in parse_inits(args.init)],
            str(workdir / "forecast.zarr"),
            corrected=str(workdir / "corrected.zarr"),
            weights=(None, None, None),
            baseline_store=str(workdir / "persistence.zarr"),
            scores=str(workdir / "scores.nc"),
            report=str(workdir / "report.html"),
        ),
    ]
    return chain_kept(steps)


@contextmanager
def timed(steps: list[tuple[str, float]], name: str) -> Iterator[None]:
    """Append (``name``, wall seconds of the block) to ``steps``."""
    begun = time.perf_counter()
    yield
    steps.append((name, time.perf_counter() - begun))


def derived_config(
    store: str, workdir: Path, train_end: str, given: str | None, overrides: Sequence[str] = ()
) -> str:
    """The training config's path: ``given``, else ``workdir/config.yaml``, derived from the
    store's times up to the end of ``train_end`` with :data:`DEMO_STEPS` steps, or those of
    a ``--set steps=N`` in ``overrides`` (:func:`flows.commands.derive.fixed_steps`) (kept when
    an earlier run wrote it, so a rerun trains nothing; refused if that run had another
    ``--train-end``, whose model, tune and baseline the work directory holds)."""
    import pandas as pd

    from flows.commands.derive import fixed_steps, last_time_up_to
    from generators.config import load_train_config
    from generators.config_derive import derive_config
    from pipeline.errors import InputError

    path = config_path(workdir, given)
    if given is not None:
        return str(path)
    if not path.is_file():
        steps = fixed_steps(overrides) or DEMO_STEPS
        derived = derive_config(
            store, lead=DEMO_LEAD, end=train_end, steps=steps, end_option="--train-end"
        )
        derived.write(path)
        return str(path)
    # a derived config's held-out days end at the store's last time up to `end`
    last = last_time_up_to(store, train_end, "--train-end")
    kept = pd.Timestamp(load_train_config(path).data.validation.end)
    if kept != last:
        raise InputError(
            f"{workdir} holds a demo trained to {kept:%Y-%m-%d} ({path}), not to --train-end "
            f"{train_end}; pass --fresh to start over there, or give another --workdir"
        )
    return str(path)


def config_path(workdir: Path, given: str | None) -> Path:
    """Where the demo's training config is: ``given``, else the one derived into
    ``workdir``."""
    return Path(given).resolve() if given is not None else workdir / "config.yaml"


def tune(checkpoint: str, store: str) -> None:
    """The correction weights of ``checkpoint`` chosen on its held-out days
    (:func:`generators.tune.tune_correction` with :data:`TUNE`), unless tuned already."""
    from generators.tune import tune_correction

    if not tuned(checkpoint):
        tune_correction(checkpoint, store, leads_hours=list(LEADS_HOURS), **TUNE)


def tuned(checkpoint: str) -> bool:
    """Whether ``checkpoint`` has its correction weights: the demo's rerun tunes no more."""
    from generators.correction.tuned import load_tuned

    return load_tuned(checkpoint) is not None


def check_demo_arguments(args: argparse.Namespace) -> None:
    """InputError for a ``--train-end`` or ``--workdir`` the demo would otherwise meet only
    after its ingest (or its training); the parser refuses ``--members`` below 2."""
    from generators.config_periods import bound_time
    from pipeline.errors import InputError

    bound_time(args.train_end, "--train-end")  # parsed as wxens config/train parse --end
    workdir = Path(args.workdir)
    if workdir.exists() and not workdir.is_dir():
        raise InputError(f"--workdir {workdir} is a file; give a folder (created if missing)")


def check_demo_inits(store: str, inits: Sequence[str]) -> None:
    """InputError naming the initial times ``store`` holds no state at (a forecast starts
    from it), which the forecast would otherwise meet only after the training and the tune."""
    import pandas as pd

    from pipeline.errors import InputError
    from pipeline.schema import TIME
    from pipeline.store import open_store

    times = open_store(store).dataset.indexes[TIME]
    wanted = pd.DatetimeIndex(inits)
    absent = wanted[~wanted.isin(times)]
    if len(absent):
        shown = ", ".join(f"{t:%Y-%m-%dT%H:%M}" for t in absent[:5])
        raise InputError(
            f"--init {shown}{' ...' if len(absent) > 5 else ''}: {store} holds no state "
            f"there to start from (it covers {times[0]:%Y-%m-%dT%H:%M} to "
            f"{times[-1]:%Y-%m-%dT%H:%M}); choose initial times inside it"
        )


def check_demo_workdir(workdir: Path) -> None:
    """InputError unless ``workdir`` is a folder holding only what the demo writes, so
    ``--fresh`` never deletes anything else."""
    from pipeline.errors import InputError

    if not workdir.is_dir() or workdir.is_symlink():
        raise InputError(f"--workdir {workdir} is not a folder; --fresh deletes nothing there")
    from pipeline.transaction import lock_path

    def written(name: str, out: str) -> bool:  # an output, its temporary or its store's lock
        return name == out or name.startswith(f"{out}.") or name == lock_path(out).name

    foreign = sorted(
        p.name for p in workdir.iterdir() if not any(written(p.name, o) for o in DEMO_OUTPUTS)
    )
    if foreign:
        raise InputError(
            f"--workdir {workdir} holds {foreign[:5]}{' ...' if len(foreign) > 5 else ''}, "
            "which the demo did not write; --fresh deletes only a demo's work directory: "
            "give another --workdir"
        )
