"""``wxens info STORE``: what an analysis store holds, its statistics and its state."""

from __future__ import annotations

import argparse

NAME = "info"
HELP = "describe an analysis store: variables, grid, period, statistics, missing times"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("store", help="path of an analysis store")


def describe(store) -> str:
    """A few lines a person can read: grid, period, variables with their statistics."""
    from pipeline.schema import LAT, LEVEL, LON, TIME

    ds = store.dataset
    times = ds[TIME].values
    lines = [
        f"store      {store.path}",
        f"period     {str(times[0])[:16]} .. {str(times[-1])[:16]}  "
        f"({len(times)} times, step {store.native_step}, {len(store.missing_times)} missing)",
        f"grid       {ds.sizes[LAT]} x {ds.sizes[LON]}  "
        f"lat {float(ds[LAT].min()):g}..{float(ds[LAT].max()):g}  "
        f"lon {float(ds[LON].min()):g}..{float(ds[LON].max()):g}",
    ]
    if LEVEL in ds.dims:
        lines.append(f"levels     {[int(v) for v in ds[LEVEL].values]} hPa")
    lines.append(
        f"{'variable':<10} {'units':<8} "
        + " ".join(f"{s:>12}" for s in store.statistics.statistic.values)
    )
    for name in store.statistics.data_vars:
        stats = store.statistics[name]
        units = ds[name].attrs.get("units", "")
        rows = (
            [(name, stats)]
            if LEVEL not in stats.dims
            else [(f"{name}{int(lev)}", stats.sel({LEVEL: lev})) for lev in stats[LEVEL].values]
        )
        for label, row in rows:
            lines.append(
                f"{label:<10} {units:<8} " + " ".join(f"{float(v):12.4g}" for v in row.values)
            )
    if store.missing_times:
        shown = ", ".join(str(t) for t in store.missing_times[:5])
        lines.append(f"missing    {shown}{' ...' if len(store.missing_times) > 5 else ''}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from pipeline.store import open_store

    print(describe(open_store(args.store)))
    return 0
