"""``wxens forecast --checkpoint K --store S --init T --members 50 --lead 24h --out F.zarr``,
in one process, over the ranks of ``torchrun --nproc_per_node N -m flows.cli forecast ...``,
or over a dask cluster's workers with ``--dask-scheduler ADDRESS``."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from flows.commands.options import (
    SEED,
    add_batch_members,
    add_device,
    add_no_progress,
    add_threads,
    at_least,
    check_device,
    check_out_writable,
    quiet_other_ranks,
    sampler_spec,
)

if TYPE_CHECKING:
    import pandas as pd

    from generators.rollout_store import ForecastRun

NAME = "forecast"
HELP = "draw ensemble forecasts from a trained checkpoint into a forecast store"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--checkpoint", required=True, help="a checkpoint file or training directory"
    )
    parser.add_argument("--store", required=True, help="analysis store holding the initial states")
    add_time_arguments(parser)
    parser.add_argument(
        "--sampler",
        type=sampler_spec,
        help="sampler spec, e.g. euler:nfe=10, heun:nfe=20, edm_heun:num_steps=20,churn=2.5 "
        "(default: the checkpoint's)",
    )
    parser.add_argument("--seed", type=SEED, default=0, help="random seed (default 0)")
    parser.add_argument("--out", required=True, help="forecast store to create or extend")
    parser.add_argument(
        "--no-calibration",
        action="store_true",
        help="leave members uncalibrated even if the checkpoint holds a spread calibration",
    )
    parser.add_argument(
        "--balance",
        action="store_true",
        help="make every step's upper air hypsometric and geostrophic (z and t on two or more "
        "levels; u and v made geostrophic where present; regular regional grid)",
    )
    add_device(parser)
    parser.add_argument(
        "--no-compile",
        action="store_true",
        help="on CUDA, run the network eagerly instead of through torch.compile (compiling "
        "costs time once: worth it for long runs, not for a few small forecasts)",
    )
    add_batch_members(parser)
    parser.add_argument(
        "--recompute",
        action="store_true",
        help="draw again the initial times --out already holds (default: skip them, and "
        "those another forecast into --out writes while this one runs; forecasts into --out "
        "started together share the batches, each putting off those another has claimed)",
    )
    add_threads(parser)
    add_no_progress(parser)
    parser.add_argument(
        "--dask-scheduler",
        metavar="ADDRESS",
        help="split the initial times over the workers of the dask cluster at ADDRESS "
        "(tcp://host:8786), each writing its own into --out (under torchrun they are split "
        "over the ranks without this)",
    )


def add_time_arguments(parser: argparse.ArgumentParser) -> None:
    """``--init``, ``--members``, ``--lead`` and ``--every``, as every command that draws
    ensembles takes them (read with :func:`parse_inits` and :func:`parse_leads`)."""
    parser.add_argument(
        "--init",
        nargs="+",
        required=True,
        metavar="TIME",
        help="initial times: 2019-03-22T00, or a range START/END/EVERY such as "
        "2019-03-22T00/2019-03-30T18/6h",
    )
    parser.add_argument(
        "--members", type=at_least(1), default=50, help="ensemble size (default 50)"
    )
    parser.add_argument(
        "--lead",
        required=True,
        help="one lead (24h: every --every up to it) or a comma list (1h,3h,6h,12h,24h)",
    )
    parser.add_argument("--every", help="lead spacing with a single --lead (default: native step)")


def parse_inits(values: list[str]) -> pd.DatetimeIndex:
    """Initial times from timestamps and START/END/EVERY ranges (ends included): an
    InputError names a value that is not a time, a range whose EVERY is not positive, or
    one that starts after it ends."""
    import pandas as pd

    from pipeline.errors import InputError

    times = []
    for value in values:
        try:
            if "/" not in value:
                times.append(_timestamp(value))
                continue
            if value.count("/") != 2:
                raise InputError(
                    f"--init {value!r}: a range has three parts, START/END/EVERY (e.g. "
                    f"{value.rstrip('/')}/6h for every 6 hours)"
                )
            start, end, every = value.split("/")
            first, last, step = _timestamp(start), _timestamp(end), _positive_step(every)
        except ValueError as err:
            raise InputError(
                f"--init {value!r} is neither a time (2019-03-22T00) nor a range "
                f"START/END/EVERY (2019-03-22T00/2019-03-30T18/6h): {err}"
            ) from None
        if step is None:
            raise InputError(
                f"--init {value!r}: EVERY must be positive, got {every!r}; e.g. {start}/{end}/6h"
            )
        if first > last:
            raise InputError(
                f"--init {value!r} starts ({start}) after it ends ({end}); "
                "give START/END/EVERY in order"
            )
        times.extend(pd.date_range(first, last, freq=step))
    return pd.DatetimeIndex(sorted(set(times)))


def init_cycle(values: list[str]) -> pd.Timedelta | None:
    """The cycle ``--init`` ``values`` (checked by :func:`parse_inits`) draw on, which the
    forecast store records: the finest EVERY of their ranges when every value is one; None
    with a single time among them (picked by hand: no cycle)."""
    if not all("/" in value for value in values):
        return None
    return min(_positive_step(value.split("/")[2]) for value in values)


def init_parameters(values: list[str]) -> dict[str, object]:
    """The initial times of ``--init`` ``values`` as :func:`flows.pipelines.ensemble_run`
    takes them: ``init_times`` (ISO) and ``init_cycle_hours``, the cycle the store records
    (:func:`init_cycle`; None for times picked by hand), so ``wxens run`` and ``demo``
    record a range's step as ``wxens forecast`` does."""
    import pandas as pd

    cycle = init_cycle(values)
    return {
        "init_times": [t.isoformat() for t in parse_inits(values)],
        "init_cycle_hours": None if cycle is None else cycle / pd.Timedelta(hours=1),
    }


def _timestamp(text: str) -> pd.Timestamp:
    """``pd.Timestamp`` of ``text`` in UTC without a zone, as stores hold times (``Z`` or
    ``+01:00`` converted); ValueError for an empty or NaT one as for garbage."""
    import pandas as pd

    time = pd.Timestamp(text)
    if pd.isna(time):
        raise ValueError(f"{text!r} is not a time")
    return time if time.tzinfo is None else time.tz_convert("UTC").tz_localize(None)


def _positive_step(text: str) -> pd.Timedelta | None:
    """The duration ``text`` (``6h``, ``1d``); None if it is zero or negative; ValueError
    if it is not a duration (an empty one or NaT included)."""
    import pandas as pd

    from pipeline.spec import to_timedelta

    step = to_timedelta(text)
    if pd.isna(step):
        raise ValueError(f"{text!r} is not a duration")
    return step if step > pd.Timedelta(0) else None


def parse_leads(lead: str, every: str | None, native_hours: float) -> list[float]:
    """Lead hours from ``24h`` (+ ``every``) or ``1h,3h,6h``."""
    import numpy as np
    import pandas as pd

    from pipeline.errors import InputError
    from pipeline.spec import to_timedelta

    try:
        parts = [to_timedelta(p) / pd.Timedelta(hours=1) for p in lead.split(",")]
        step = to_timedelta(every) / pd.Timedelta(hours=1) if every else native_hours
    except ValueError as err:
        given = f"--lead {lead!r}" + (f" / --every {every!r}" if every else "")
        raise InputError(f"{given}: not durations such as 24h ({err})") from None
    if every and len(parts) > 1:
        raise InputError(
            f"--every {every} goes with a single --lead (24h: every {every} up to it), not "
            f"with the comma list --lead {lead}: give every lead in the list, or one lead"
        )
    if step <= 0 or min(parts) <= 0:
        raise InputError(f"--lead and --every must be positive durations, got {lead!r}, {every!r}")
    if len(parts) == 1:  # every step (of --every, else the store's) up to the lead
        count = parts[0] / step
        if abs(count - round(count)) < 1e-9:
            parts = [float(h) for h in np.arange(1, int(round(count)) + 1) * step]
        elif every:
            raise InputError(f"--lead {lead} is not a multiple of --every {every}")
    off = [h for h in parts if abs(h / native_hours - round(h / native_hours)) > 1e-9]
    if off:
        raise InputError(
            f"--lead {lead}{f' --every {every}' if every else ''}: "
            f"{', '.join(f'{h:g} h' for h in off)} not whole steps of the store's "
            f"{native_hours:g} h; leads are whole steps ({native_hours:g}h, "
            f"{2 * native_hours:g}h, ...)"
        )
    return parts


def run(args: argparse.Namespace) -> int:
    from contextlib import nullcontext

    from flows.cluster import dask_client, worker_path
    from flows.threads import set_threads
    from generators.checkpoint import load_checkpoint
    from generators.rollout_shard import forecast_sharded
    from pipeline.errors import InputError
    from pipeline.forecast_store import complete_init_times
    from pipeline.forecast_times import record_cycle

    inits = parse_inits(args.init)  # a bad --init is refused before the checkpoint loads
    check_device(args.device, args.dask_scheduler)  # so is a --device missing here
    cycle = init_cycle(args.init)
    try:
        check_out_writable(args.out, "--out", "wxens forecast draws into it")
    except InputError:  # a store holding every asked time is only read: opened only here
        if args.recompute or not inits.difference(complete_init_times(args.out)).empty:
            raise
        cycle = None  # nor is the cycle recorded there
    quiet_other_ranks(args.verbose)  # under torchrun, rank 0 says it, not every rank
    set_threads(args.threads)
    if args.dask_scheduler:  # the workers open these themselves, in their own directory
        args.checkpoint, args.store, args.out = map(
            worker_path, (args.checkpoint, args.store, args.out)
        )
    checkpoint = load_checkpoint(args.checkpoint)
    native_hours = checkpoint.native_step.total_seconds() / 3600
    cluster = dask_client(args.dask_scheduler) if args.dask_scheduler else nullcontext()
    with cluster as client:
        done = forecast_sharded(
            checkpoint,
            args.store,
            inits,
            parse_leads(args.lead, args.every, native_hours),
            args.members,
            args.out,
            client=client,
            sampler=args.sampler,
            seed=args.seed,
            calibrate=not args.no_calibration,
            device=args.device,
            compile=not args.no_compile,
            batch_members=args.batch_members,
            progress=not args.no_progress,
            recompute=args.recompute,
            balance=args.balance,
        )
    if done is None:  # a torchrun rank other than 0: rank 0 reports the whole forecast
        return 0
    if cycle is not None:  # so `wxens info` names the cycles of the range not drawn
        record_cycle(args.out, cycle)
    print(summary(done))
    return 0


def summary(done: ForecastRun) -> str:
    """The line a forecast ends with: what it drew, with what, and what became of the rest
    of the initial times asked for: written by a dask worker of this run that then died
    (kept; the rerun of its task drew only the missing ones) or was retired (scaled down:
    dask moved its task, which found them written), written by another run into
    the store while this one ran (kept, not drawn again), or already in the store (kept;
    ``--recompute`` draws them again)."""
    from pipeline.errors import counted

    p = done.provenance
    died, held = done.written_before_a_worker_died, done.skipped
    other, retired = done.written_by_another_run, done.written_before_a_worker_retired
    return (
        f"{done.out}: {counted(len(done.init_times), 'initial time')} x "
        f"{counted(done.members, 'member')} "
        f"x {counted(len(done.leads_hours), 'lead')} ({p.sampler.split(':')[0]}, NFE {p.nfe}, "
        f"seed {p.seed}"
        + (", calibrated)" if done.calibration else ", uncalibrated)")
        + (
            f"; {died} written by this run before a dask worker died, kept in the store "
            "(the rerun of its task drew only the missing ones)"
            if died
            else ""
        )
        + (
            f"; {retired} written by this run before a dask worker retired, kept in the store"
            if retired
            else ""
        )
        + (f"; {other} written by another run meanwhile, kept" if other else "")
        + (f"; {held} already in the store, kept (--recompute draws them again)" if held else "")
    )


def kept(args: argparse.Namespace) -> str:
    """How many of the initial times asked for the forecast store ``--out`` holds complete
    after an interrupt, and how to go on: each batch of initial times is committed whole,
    and the same command draws only those it lacks (with ``--recompute``, every one again).
    ``wxens baseline`` says the same of its own."""
    from pipeline.errors import counted
    from pipeline.forecast_store import complete_init_times, is_forecast_store

    if not is_forecast_store(args.out):
        return f"nothing written to {args.out}; rerun the same command to draw the forecasts"
    inits = parse_inits(args.init)
    done = inits.intersection(complete_init_times(args.out))
    return (
        f"{args.out}: {len(done)} of {counted(len(inits), 'initial time')} written, kept "
        "(each batch is committed whole); "
        + (
            "rerun the same command without --recompute to draw only the rest"
            if args.recompute
            else "rerun the same command to draw the rest"
        )
    )
