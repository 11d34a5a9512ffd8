"""``wxens info STORE``: what an analysis store holds, its statistics and its state; or
what a forecast store holds and what produced it (model, sampler, calibration, bias
correction); or, for a training run (its directory or checkpoint file), what the checkpoint
was trained on and the digest the forecast stores made with it record. Without a store:
this environment, the versions of wxens and its main packages and the extensions loaded."""

from __future__ import annotations

import argparse

from flows.commands.info_provenance import (
    bias_correction_text,
    calibration_text,
    describe_checkpoint,
)
from flows.commands.options import add_no_progress

NAME = "info"
HELP = (
    "describe an analysis store (variables, grid, period, statistics, missing times), a "
    "forecast store (initial times, members, leads, and the model, sampler, calibration and "
    "bias correction that produced it) or a training run's checkpoint (its digest, and the "
    "grid, channels, step, periods and statistics it was trained on); without one, the "
    "versions of wxens and its main packages and the extensions installed"
)
#: Commits counted by ``wxens info``: each older one is a file read (a store ingested every
#: hour gains three commits an ingest, tens of thousands a year until compacted).
COUNTED_COMMITS = 1000


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "store",
        nargs="?",
        help=(
            "path of an analysis store, a forecast store, a training run (directory or .pt) "
            "or a scores file (wxens verify --out); none: this environment"
        ),
    )
    parser.add_argument(
        "--weighted",
        action="store_true",
        help="weigh an analysis store's mean and std by area (cos latitude) even where it is "
        "too large to read quickly (such a store's stored per-point ones are shown otherwise)",
    )
    add_no_progress(parser)


def describe(store, weigh: bool | None = None, progress: bool = False) -> str:
    """A few lines a person can read: grid, period, variables with their statistics (the
    mean and std weighted by area as ``weigh`` says: :func:`.area_statistics.shown_statistics`,
    with a bar on stderr of the weighing where ``progress``)."""
    import numpy as np

    from flows.commands.area_statistics import shown_statistics
    from pipeline.analysis_store import STATE_ATTR
    from pipeline.errors import counted
    from pipeline.schema import LAT, LEVEL, LON, TIME
    from pipeline.timeaxis import describe_step, missing_names

    ds = store.dataset
    times = ds[TIME].values
    lines = [
        f"store      {store.path}",
        f"period     {str(times[0])[:16]} .. {str(times[-1])[:16]}  "
        f"({counted(len(times), 'time')}, step {describe_step(store.native_step)}, "
        f"{len(store.missing_times)} missing)",
        f"grid       {ds.sizes[LAT]} x {ds.sizes[LON]}  "
        f"lat {float(ds[LAT].min()):g}..{float(ds[LAT].max()):g}  "
        f"lon {float(ds[LON].min()):g}..{float(ds[LON].max()):g}",
    ]
    if LEVEL in ds.dims:
        lines.append(f"levels     {[int(v) for v in ds[LEVEL].values]} hPa")
    statistics, what, nan_points = shown_statistics(store, weigh, progress)
    lines.append(what)
    names = statistics.statistic.values
    lines.append(f"{'variable':<10} {'units':<8} " + " ".join(f"{s:>12}" for s in names))
    for name in statistics.data_vars:
        stats = statistics[name]
        units = ds[name].attrs.get("units", "")
        rows = (
            [(name, stats)]
            if LEVEL not in stats.dims
            else [(f"{name}{int(lev)}", stats.sel({LEVEL: lev})) for lev in stats[LEVEL].values]
        )
        for label, row in rows:
            lines.append(
                f"{label:<10} {units:<8} "
                + " ".join(
                    f"{float(v):12.4g}" if np.isfinite(v) else f"{'undefined':>12}"
                    for v in row.values
                )
            )
    if "tendency_std" in store.statistics.statistic.values:  # per which step: it did not say
        per = (
            f"the std of the change over one step of the store "
            f"({describe_step(store.native_step)}), in the variable's units"
            if store.native_step > np.timedelta64(0)
            else "undefined until the store holds two times one step apart"
        )
        lines.append(f"{'':<10} tendency_std: {per}")
    if store.missing_times:
        lines.append(f"missing    {missing_names(store.missing_times)}")
    kept = ds.attrs.get(STATE_ATTR, {}).get("nan_counts", {})
    nan_counts = {k: v for k, v in kept.items() if v}
    if nan_counts:  # a masked field (land-only, say), kept by --allow-nan
        counts = ", ".join(f"{name} {n}" for name, n in sorted(nan_counts.items()))
        lines.append(
            f"{'NaN':<10} {sum(nan_counts.values())} value(s) kept (--allow-nan): {counts}"
        )
        if nan_points is not None:  # the data was read: where the NaNs are
            lines += [
                f"{'':<10} "
                + _nan_points(name, *nan_points[name].values.tolist(), ds[name][0].size)
                for name in sorted(nan_counts)
            ]
    return "\n".join(lines)


def _nan_points(name: str, always: int, ever: int, size: int) -> str:
    """Where ``name``'s NaNs lie among its ``size`` points, from the counts of points NaN
    at every time and at some time: a fixed mask (land, say) is otherwise a bare count."""
    if always == ever:
        return (
            f"{name} NaN at the same {always} of {size} points ({100 * always / size:.3g} %) "
            "at every time (a mask, such as land)"
        )
    return f"{name} NaN at {ever} of {size} points at some time, {always} at every time"


def describe_forecast(path: str) -> str:
    """A few lines a person can read about a forecast store: initial times (and any not
    completely written, and those missing at the cycle it records or else at the cadence
    read off them), members, leads, grid, variables, and its provenance."""
    import numpy as np
    import pandas as pd

    from pipeline.errors import time_text, times_text
    from pipeline.forecast_store import (
        ANALYSIS_ATTR,
        TRAIN_PERIOD_ATTR,
        WINDOW_ATTR,
        ForecastProvenance,
        complete_init_times,
        open_forecast,
    )
    from pipeline.forecast_times import cadence_text, recorded_cycle
    from pipeline.schema import INIT_TIME, LAT, LEAD_TIME, LON, MEMBER
    from pipeline.timeaxis import hours_text

    written = open_forecast(path, complete_only=False)
    inits = pd.DatetimeIndex(written[INIT_TIME].values)
    unfinished = inits.difference(complete_init_times(path))
    hours = written[LEAD_TIME].values / np.timedelta64(1, "h")
    p = ForecastProvenance.from_attrs(written.attrs)
    cadence, missing = cadence_text(inits, recorded_cycle(written.attrs))
    lines = [
        f"forecast   {path}",
        f"inits      {len(inits) - len(unfinished)} complete of {len(inits)} written: "
        f"{time_text(inits[0])} .. {time_text(inits[-1])}{cadence}",
        f"members    {written.sizes[MEMBER]}   leads {hours_text(hours)} h",
        f"grid       {written.sizes[LAT]} x {written.sizes[LON]}  "
        f"lat {float(written[LAT].min()):g}..{float(written[LAT].max()):g}  "
        f"lon {float(written[LON].min()):g}..{float(written[LON].max()):g}",
        *missing,
        "variables  "
        + ", ".join(f"{n} ({v.attrs.get('units', '?')})" for n, v in written.data_vars.items()),
        f"generator  {p.generator}, checkpoint {p.checkpoint_digest}, sampler {p.sampler} "
        f"(NFE {p.nfe}), seed {p.seed}",
        f"calibration {calibration_text(p.calibration)}",
        f"bias       {bias_correction_text(p.bias_correction)}",
    ]
    if ANALYSIS_ATTR in written.attrs:  # stores written before it was recorded lack it
        lines.append(f"analysis   {written.attrs[ANALYSIS_ATTR]} (of the first forecast)")
    if TRAIN_PERIOD_ATTR in written.attrs:  # a baseline's
        start, end = written.attrs[TRAIN_PERIOD_ATTR].split("/")
        lines.append(f"training   {start} to {end} (the period the members are drawn from)")
    if WINDOW_ATTR in written.attrs:  # a baseline's, drawn since it was recorded
        lines.append(f"window     {written.attrs[WINDOW_ATTR]}")
    if "wxens_software" in written.attrs:  # stores written before it was recorded lack it
        lines.append(f"software   {written.attrs['wxens_software']}")
    if len(unfinished):
        shown = times_text(unfinished[:5])
        lines.append(
            f"incomplete {shown}{' ...' if len(unfinished) > 5 else ''} (not completely "
            "written; rerun the forecast for them)"
        )
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from flows.commands.info_outputs import describe_output
    from pipeline.analysis_store import refuse_stranded_replacement, unfinished_ingest
    from pipeline.errors import StoreError, refuse_dangling_link
    from pipeline.forecast_store import is_forecast_store
    from pipeline.store import open_store, read_state
    from pipeline.transaction import commits

    if args.store is None:
        from flows.commands.environment import describe_environment

        print(describe_environment())
        return 0
    path = Path(args.store)
    refuse_dangling_link(path)
    refuse_stranded_replacement(path)  # an --overwrite killed mid-swap
    if not path.exists():  # not "create it with wxens ingest": it may be any of these
        raise StoreError(
            f"{path}: no such store, training run, checkpoint or scores file; wxens info "
            "reads what ingest, forecast, baseline, train and verify wrote"
        )
    if path.suffix == ".pt" or (path / "last.pt").is_file() or _saved_by_torch(path):
        # what `wxens train --out` wrote, or `wxens calibrate --out` under any name
        print(describe_checkpoint(path))
        return 0
    if (path / "config.yaml").is_file() or (path / "log.jsonl").is_file():
        raise StoreError(
            f"{path}: a training directory without a checkpoint yet (last.pt): a training "
            f"run is starting there, or was stopped before its first one; rerun `wxens train "
            f"--out {path}` with the same options"
        )
    scores = describe_scores(path)
    if scores is not None:
        print(scores)
        return 0
    forecast = is_forecast_store(args.store)  # a plain copy of one too: its inits said
    output = describe_output(path, fields=not forecast)  # an export or products
    if output is not None and not forecast:
        print(output)
        return 0
    if forecast:
        print("\n".join(filter(None, [output, describe_forecast(args.store)])))
    else:
        shown = describe(open_store(args.store), args.weighted or None, not args.no_progress)
        print(shown)
        tip = read_state(args.store)
        if not tip["complete"]:  # open_store read the last complete commit: say so on stdout
            print(
                f"unfinished {unfinished_ingest(tip)}; above is the store as its readers read "
                "it, its last complete commit"
            )
    history = commits(args.store, limit=COUNTED_COMMITS + 1)  # not every one: a file each
    if history:
        _, message, when = history[0]
        count = f"{len(history)} commits"
        if len(history) > COUNTED_COMMITS:
            count = f"over {COUNTED_COMMITS} commits (`wxens compact` forgets the older ones)"
        print(f"committed  {when:%Y-%m-%d %H:%M:%S} UTC, {count}; last: {message}")
    return 0


def describe_scores(path) -> str | None:
    """What a scores file (``wxens verify --out``: NetCDF groups) scored; None if ``path``
    is not one."""
    if not _starts_with(path, b"\x89HDF\r\n\x1a\n"):  # NetCDF-4
        return None
    import xarray as xr

    try:
        with xr.open_datatree(path) as tree:
            groups, a = list(tree.children), dict(tree.attrs)
    except Exception:  # not a tree of groups: taken as before
        return None
    if "scorecard" not in groups:
        return None
    lines = [
        f"scores     {path} (wxens verify; read it with xarray.open_datatree)",
        f"ensemble   {a.get('n_members', '?')} members, {a.get('n_init_times', '?')} initial times",
    ]
    for who, key, label in (
        ("generator", "wxens", ""),
        ("reference", "reference_wxens", "reference "),
    ):
        if f"{key}_generator" in a:
            lines.append(
                f"{who:<10} {a[f'{key}_generator']}, checkpoint "
                f"{a.get(f'{key}_checkpoint_digest', '?')}, sampler {a.get(f'{key}_sampler', '?')}"
            )
            lines += _made_after(a, key, label)
    lines += _verified_inputs(a)
    lines.append("groups     " + ", ".join(groups))
    return "\n".join(lines)


def _made_after(a: dict, key: str, label: str) -> list[str]:
    """The spread calibration and bias correction of the forecast (or reference) that a scores
    file's root attributes ``a`` record under ``key``, a line each as a forecast store's
    `wxens info` shows them: else a calibrated forecast and the same checkpoint's uncalibrated
    one (``--no-calibration``), or a raw and a corrected store, read alike."""
    import json

    lines = []
    if f"{key}_calibration" in a:
        text = calibration_text(json.loads(a[f"{key}_calibration"]))
        lines.append(f"{label}calibration {text}")
    if f"{key}_bias_correction" in a:
        text = bias_correction_text(json.loads(a[f"{key}_bias_correction"]))
        lines.append(f"{(label + 'bias'):<10} {text}")
    return lines


def _verified_inputs(a: dict) -> list[str]:
    """The lines of a scores file's forecast, reference (where it had one) and truth (its root
    attributes ``a``)."""
    from verification import output as o

    named = (("forecast", o.FORECAST_PATH), ("reference", o.REFERENCE_PATH))
    lines = [f"{who:<10} {a[key]}" for who, key in named if key in a]
    if o.TRUTH_PATH not in a:
        return [*lines, "truth      not recorded (the file was written before wxens recorded it)"]
    said = [f"store id {a[o.TRUTH_STORE_ID]}"] if o.TRUTH_STORE_ID in a else []
    said += [str(a[o.TRUTH_TIMES])] if o.TRUTH_TIMES in a else []
    return [*lines, f"truth      {a[o.TRUTH_PATH]}" + (f" ({', '.join(said)})" if said else "")]


def _saved_by_torch(path) -> bool:
    """Whether ``path`` is a file that ``torch.save`` wrote (a zip archive)."""
    return _starts_with(path, b"PK\x03\x04")


def _starts_with(path, magic: bytes) -> bool:
    """Whether ``path`` is a file whose first bytes are ``magic`` (an unreadable one is
    not: it is taken for none of the kinds told apart by them)."""
    if not path.is_file():
        return False
    try:
        with open(path, "rb") as f:
            return f.read(len(magic)) == magic
    except OSError:
        return False
