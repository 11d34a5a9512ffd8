"""``wxens plume FORECAST --at LAT,LON --out P.png [--init T] [--truth STORE] [--variable
t2m] [--units t2m=degC] [--members perturbed]``: a forecaster's plume (EPSgram-style) at a
place, every member (or an ENS file's perturbed ones) at the nearest grid point against
valid time, percentiles shaded, the truth over it; drawn by
:func:`verification.plume.plot_plume`."""

from __future__ import annotations

import argparse
from pathlib import Path

from flows.commands.options import add_forecast, add_init_from_filename, add_members

NAME = "plume"
HELP = (
    "a forecaster's plume at a place: every member at the nearest grid point against valid "
    "time, the percentiles shaded and the truth over it, to a PNG"
)


def a_place(text: str) -> tuple[float, float]:
    """``"51.5,-0.12"`` -> ``(51.5, -0.12)``, degrees north and east (either longitude
    convention); argparse's refusal with an example else."""
    try:
        latitude, longitude = (float(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r}: give LAT,LON in degrees north and east, e.g. 51.5,-0.12"
        ) from None
    return latitude, longitude


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_forecast(parser)
    parser.add_argument(
        "--at",
        required=True,
        type=a_place,
        metavar="LAT,LON",
        help="the place, degrees north and east (51.5,-0.12); its nearest grid point is drawn",
    )
    parser.add_argument("--out", required=True, help="the figure: a PNG (or .pdf, .svg)")
    parser.add_argument("--init", help="the initial time to draw (default the latest)")
    add_init_from_filename(parser)
    add_members(parser)
    parser.add_argument("--truth", help="analysis store whose values are drawn as markers")
    parser.add_argument(
        "--variable",
        action="append",
        default=[],
        help="a variable or channel (z500) to draw, a panel each (repeatable; default all)",
    )
    parser.add_argument(
        "--quantiles",
        metavar="PERCENTS",
        default="10,50,90",
        help="member percentiles: the outer two shaded, those between drawn as lines",
    )
    parser.add_argument(
        "--units",
        action="append",
        default=[],
        metavar="[VARIABLE=]UNIT",
        help="draw VARIABLE (or every variable converting to UNIT) in UNIT, converted as "
        "wxens products converts: --units t2m=degC (repeatable)",
    )


def run(args: argparse.Namespace) -> int:
    from pipeline.store import open_store
    from verification.plume import plot_plume, plume_title, point_series, truth_series
    from verification.product_output import parse_percents

    quantiles = parse_percents(args.quantiles)
    latitude, longitude = args.at
    series = point_series(
        args.forecast,
        latitude,
        longitude,
        init=args.init,
        variables=args.variable,
        units=args.units,
        init_from_filename=args.init_from_filename,
        members=args.members,
    )
    truth = truth_series(open_store(args.truth).dataset, series) if args.truth else None
    fig = plot_plume(series, truth, quantiles)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=100)
    said = f"{args.out}: {args.forecast}'s {plume_title(series)}"
    if truth is not None:
        arrived = truth.sizes.get("valid_time", 0)
        said += f"; truth at {arrived} of {series.sizes['valid_time']} valid times"
    print(said)
    return 0
