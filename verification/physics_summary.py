"""The ``/physics`` group of a verification as a few printed lines (``wxens verify``): how
many checked parts pass, each failing one with its worst channel (the channel, or channel
and lead, that gave the largest member's score), and, where a balance check fails on
members drawn without ``--balance``, that ``wxens forecast --balance`` exists."""

from __future__ import annotations

import xarray as xr

from verification.report_tables import check_verdict

#: The checks ``wxens forecast --balance`` makes every step pass (generators.balance).
BALANCE_CHECKS = ("hypsometric", "geostrophic")
NOT_BALANCED = (
    "physics: the members were drawn without --balance; `wxens forecast --balance` "
    "projects each step onto hypsometric and geostrophic balance (docs/generate.md)"
)


def physics_lines(
    physics: xr.Dataset, *, balanced: bool | None, balanceable: bool = True
) -> list[str]:
    """The lines to print of ``physics`` (a verification's ``/physics`` group);
    ``balanced``: whether the members were drawn with ``--balance`` (None: not known, not a
    wxens forecast store); ``balanceable``: whether ``--balance`` takes the members' grid
    (not a global one: :func:`pipeline.grid.balance_grid_problem`), else not suggested."""
    if "check" not in physics.dims:
        return []
    failed = []
    for label in physics["check"].values:
        row = physics.sel(check=label)
        verdict, text = check_verdict(row)
        if verdict == "fail":
            failed.append((str(row["family"].values), f"physics {label}: {text}"))
    total = physics.sizes["check"]
    lines = [f"physics: {total - len(failed)} of {total} checked parts pass in every member"] + [
        line for _, line in failed
    ]
    if balanced is False and balanceable and any(family in BALANCE_CHECKS for family, _ in failed):
        lines.append(NOT_BALANCED)
    return lines
