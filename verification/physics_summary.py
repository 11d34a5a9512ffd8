"""The ``/physics`` group of a verification as a few printed lines (``wxens verify``): how
many checked parts pass, each failing one with its worst channel (the channel, or channel
and lead, that gave the largest member's score), and, where a check that ``wxens forecast
--balance`` would fix fails on members drawn without it, that it exists."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import xarray as xr

from pipeline.grid import balance_grid_problem
from verification.report_tables import check_verdict

#: The checks ``wxens forecast --balance`` makes every step pass (generators.balance).
BALANCE_CHECKS = ("hypsometric", "geostrophic")


def balance_fixes(latitude: Sequence[float] | np.ndarray) -> tuple[str, ...]:
    """The checks ``--balance`` makes pass on a grid of ``latitude``: both, or the
    hypsometric alone where f vanishes (a global grid: its winds are kept as drawn)."""
    return BALANCE_CHECKS if balance_grid_problem(latitude) is None else BALANCE_CHECKS[:1]


def not_balanced(fixes: Sequence[str], latitude: Sequence[float] | np.ndarray | None = None) -> str:
    """The line that says ``--balance`` exists and what it fixes (``fixes``); where it keeps
    the winds, why, from the grid's ``latitude`` (one that reaches within 10° of the
    equator without crossing it has no f = 0 to blame)."""
    problem = None if latitude is None else balance_grid_problem(latitude)
    why = problem or "f = 0 on the equator"
    kept = "" if "geostrophic" in fixes else f" (its winds are kept: {why})"
    return (
        "physics: the members were drawn without --balance; `wxens forecast --balance` "
        f"projects each step onto {' and '.join(fixes)} balance{kept} (docs/generate.md)"
    )


def physics_lines(
    physics: xr.Dataset,
    *,
    balanced: bool | None,
    fixes: Sequence[str] = BALANCE_CHECKS,
    latitude: Sequence[float] | np.ndarray | None = None,
) -> list[str]:
    """The lines to print of ``physics`` (a verification's ``/physics`` group);
    ``balanced``: whether the members were drawn with ``--balance`` (None: not known, not a
    wxens forecast store); ``fixes``: the checks ``--balance`` makes pass on the members'
    grid (:func:`balance_fixes`), suggested only where one of those fails; ``latitude``:
    the grid's, to say why the winds are kept where they are."""
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
    if balanced is False and any(family in fixes for family, _ in failed):
        lines.append(not_balanced(fixes, latitude))
    return lines
