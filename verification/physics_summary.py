"""The ``/physics`` group of a verification as a few printed lines (``wxens verify``): how
many checked parts pass, and each failing one with its worst channel (the channel, or
channel and lead, that gave the largest member's score)."""

from __future__ import annotations

import numpy as np
import xarray as xr

from verification.report_tables import check_verdict


def worst_channel(row: xr.Dataset) -> str:
    """The channel that gave the largest score of the failing members of one ``check`` row
    (``""`` where its score is no largest over channels, or a file written before it was
    kept)."""
    if "worst" not in row:
        return ""
    scores = np.where(row["passed"].values, -np.inf, row["member_score"].values.astype(float))
    scores = np.where(np.isfinite(scores), scores, -np.inf)
    return str(row["worst"].values[int(np.argmax(scores))])


def physics_lines(physics: xr.Dataset) -> list[str]:
    """The lines to print of ``physics`` (a verification's ``/physics`` group)."""
    if "check" not in physics.dims:
        return []
    failed = []
    for label in physics["check"].values:
        row = physics.sel(check=label)
        verdict, text = check_verdict(row)
        if verdict == "fail":
            worst = worst_channel(row)
            said = f", worst channel {worst}" if worst else ""
            failed.append((str(row["family"].values), f"physics {label}: {text}{said}"))
    total = physics.sizes["check"]
    lines = [
        f"physics: {total - len(failed)} of {total} checked parts pass in every member"
    ] + [line for _, line in failed]
    return lines
