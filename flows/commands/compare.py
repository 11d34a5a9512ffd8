"""``wxens compare scores_a.nc scores_b.nc ... [--name A ...] [--lead 6h,24h] [--out t.csv]``
(``--units z=hPa``, ``--allow-different-inits``, ``--allow-different-truths``,
``--allow-different-points``).

Prints the scorecards of several ``wxens verify`` scores files side by side (one block per
score, a column per experiment, the best marked), as :mod:`verification.compare` joins
them and :mod:`verification.compare_table` shows them; ``--out`` writes the table as CSV.
"""

from __future__ import annotations

import argparse

NAME = "compare"
HELP = "compare the scores files of several experiments side by side (fair CRPS, spread/skill, ...)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "scores",
        nargs="+",
        metavar="SCORES",
        help="scores files of `wxens verify --out`, each verified against the same truth",
    )
    parser.add_argument(
        "--name",
        action="append",
        metavar="NAME",
        help="name of each experiment, repeated once per file in their order: --name FM "
        "--name DM (default: the file names)",
    )
    parser.add_argument(
        "--lead", help="compare only these leads: a comma list, e.g. 6h,24h (default: all)"
    )
    parser.add_argument("--out", help="CSV file to write the table to (full precision)")
    parser.add_argument(
        "--units",
        action="append",
        default=[],
        metavar="[VARIABLE=]UNIT",
        help="show the CRPS and RMSE of VARIABLE (or of every variable that converts to UNIT) "
        "in UNIT, as `wxens verify --units`, e.g. --units msl=hPa (repeatable; also in --out)",
    )
    parser.add_argument(
        "--allow-different-inits",
        action="store_true",
        help="compare files that verified different initial times (their CRPS is over other "
        "days: not comparable; each file's times are said)",
    )
    parser.add_argument(
        "--allow-different-truths",
        action="store_true",
        help="compare files verified against different truth stores (another region or "
        "analysis, a store re-ingested with --overwrite; each file's truth is said)",
    )
    parser.add_argument(
        "--allow-different-points",
        action="store_true",
        help="compare files that scored fields of other sizes (a global domain and a region, "
        "another grid: scores over other weather; each file's points per field are said)",
    )


def run(args: argparse.Namespace) -> int:
    from flows.commands.run import parse_leads
    from flows.inputs import check_output_file, check_outputs_spare_inputs

    check_output_file(args.out, "--out", "table.csv")
    check_outputs_spare_inputs(
        {"--out": args.out}, {f"SCORES {i + 1}": p for i, p in enumerate(args.scores)}
    )
    leads = parse_leads(args.lead)

    from verification.compare import compare_scorecards
    from verification.compare_table import comparison_frame, comparison_table, table_in_units
    from verification.output import atomic_output

    table = compare_scorecards(
        args.scores,
        args.name,
        leads_hours=leads,
        allow_different_inits=args.allow_different_inits,
        allow_different_truths=args.allow_different_truths,
        allow_different_points=args.allow_different_points,
    )
    for line in table.attrs["different_truths"]:
        print(f"different truths (--allow-different-truths): {line}")
    for line in table.attrs["truth_unrecorded"]:
        print(line)
    for line in table.attrs["different_inits"]:
        print(f"different initial times (--allow-different-inits): {line}")
    for line in table.attrs["different_points"]:
        print(f"different points (--allow-different-points): {line}")
    for line in table.attrs["left_out"]:
        print(line)
    if args.units:
        table, factors = table_in_units(table, args.units)
        for variable, (unit, factor) in factors.items():
            print(f"{variable}: scores printed in {unit} (x {factor:g} of the stored values)")
    print(comparison_table(table))
    if args.out:
        with atomic_output(args.out) as tmp:
            comparison_frame(table).to_csv(tmp, index=False)
        print(f"table: {args.out}")
    return 0
