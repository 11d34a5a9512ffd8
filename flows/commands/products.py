"""``wxens products FORECAST --out P.zarr|P.nc [--mean] [--spread] [--quantiles 10,50,90]
[--probability 't2m<0degC' ...] [--units t2m=degC] [--members perturbed]``: the ensemble's
products for a forecaster (mean, spread, member quantiles, event probabilities; of an ENS
file's perturbed members alone with ``--members perturbed``), computed lazily by
:func:`verification.product_output.write_products` and written to Zarr or CF NetCDF-4."""

from __future__ import annotations

import argparse

from flows.commands.options import (
    add_forecast,
    add_init_from_filename,
    add_members,
    add_no_progress,
    add_threads,
)

NAME = "products"
HELP = (
    "the ensemble's products for a forecaster: mean, spread, member percentiles and event "
    "probabilities (t2m<0degC), to a Zarr store or a CF NetCDF-4 file"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_forecast(parser)
    parser.add_argument(
        "--out",
        required=True,
        help="products to write: a Zarr store, or CF NetCDF-4 if it ends .nc",
    )
    parser.add_argument(
        "--init",
        nargs="+",
        metavar="TIME",
        help="the products of only these initial times of FORECAST: times (2019-03-24T00) "
        "or START/END/EVERY ranges, as wxens verify --init takes them (default: all)",
    )
    add_init_from_filename(parser)
    add_members(parser)
    add_product_options(parser)
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace earlier products at --out (anything else there is refused, never deleted)",
    )
    add_no_progress(parser)
    add_threads(parser)


def add_product_options(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """The flags that choose the products (``wxens products``, ``wxens run``): what
    :func:`request` reads."""
    parser.add_argument("--mean", action="store_true", help="the ensemble mean, NAME_mean")
    parser.add_argument(
        "--spread",
        action="store_true",
        help="the ensemble spread, NAME_spread: the members' standard deviation (ddof=1)",
    )
    parser.add_argument(
        "--quantiles",
        metavar="PERCENTS",
        help="member percentiles, NAME_quantiles with a quantile dim (0.1 for 10), e.g. "
        "10,50,90; numpy's linear interpolation between sorted members",
    )
    parser.add_argument(
        "--probability",
        action="append",
        default=[],
        metavar="EVENT",
        help="probability of an event, the share of members strictly beyond a threshold with "
        "its units: 't2m<0degC' (frost), 'u10>15m s-1' (repeatable)",
    )
    parser.add_argument(
        "--units",
        action="append",
        default=[],
        metavar="[VARIABLE=]UNIT",
        help="write VARIABLE's products (or those of every variable converting to UNIT) in "
        "UNIT, e.g. --units t2m=degC (repeatable)",
    )


def request(args: argparse.Namespace) -> dict[str, object]:
    """The products the flags of :func:`add_product_options` ask for, as the mapping a flow
    takes (:class:`verification.product_output.ProductRequest`'s fields)."""
    return dict(
        mean=args.mean,
        spread=args.spread,
        quantiles=args.quantiles,
        probability=list(args.probability),
        units=list(args.units),
    )


def run(args: argparse.Namespace) -> int:
    from flows.commands.forecast import parse_inits
    from flows.threads import set_threads
    from verification.product_output import ProductRequest, write_products

    asked = ProductRequest.of(request(args))
    asked.parsed()  # a bad request, or --init, refused before any read
    inits = None if args.init is None else [t.isoformat() for t in parse_inits(args.init)]
    set_threads(args.threads, torch=False)
    out, written = write_products(
        args.forecast,
        args.out,
        asked,
        init_times=inits,
        init_from_filename=args.init_from_filename,
        members=args.members,
        overwrite=args.overwrite,
        progress=not args.no_progress,
    )
    print(f"{out}: ensemble products of {args.forecast}: {', '.join(written)}")
    return 0
