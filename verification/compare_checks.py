"""The checks that make ``wxens compare``'s files comparable (:mod:`verification.compare`):
the same units per variable, truth store, initial times and points verified; each names the
files that differ and the fix, or the flag that compares them anyway."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import xarray as xr

from pipeline.errors import InputError
from verification.config import VARIABLE
from verification.output import TRUTH_PATH, TRUTH_STORE_ID, TRUTH_TIMES, VARIABLE_UNITS

#: The scorecard's points verified, per variable and lead.
COUNT = "n_verified"
#: The counts of a scorecard that together are every point of every field scored.
FIELD_COUNTS = (COUNT, "n_missing_truth", "n_missing_forecast")

if TYPE_CHECKING:
    from verification.compare import Scores


def refuse_unless(allowed: bool, lines: list[str], differ: str, fix: str) -> None:
    """InputError where the files differ (``lines``, one a file) in what ``differ`` says,
    unless ``allowed``; ``fix``: how to verify them alike, or the flag that allows it."""
    if lines and not allowed:
        listed = "\n".join(f"  {line}" for line in lines)
        raise InputError(
            f"the scores files {differ} not comparable:\n{listed}\nverify each forecast with "
            f"{fix} to compare anyway"
        )


def records_units(card: xr.Dataset) -> bool:
    """Whether a scorecard names its variables' units (an older wxens's does not: its
    units are unknown, not none)."""
    return VARIABLE_UNITS in card.coords


def units_of(card: xr.Dataset, variable: str) -> str:
    if not records_units(card):
        return ""
    return str(card[VARIABLE_UNITS].sel({VARIABLE: variable}).item())


def check_units(experiments: list[Scores]) -> None:
    """Refuse a variable held in other units by two files (each named, with its units): a
    file keeps the units of the analysis store it was verified against, so neither
    ``--units`` (of verify or of compare, applied after this) makes them comparable."""
    seen: dict[str, tuple[str, str]] = {}
    for e in filter(lambda e: records_units(e.card), experiments):  # others: a line
        for variable in map(str, e.card[VARIABLE].values):
            unit = units_of(e.card, variable)
            first = seen.setdefault(variable, (unit, f"{e.name} ({e.source})"))
            if first[0] != unit:
                raise InputError(
                    f"{variable} is in {first[0] or 'no unit'} in {first[1]} but in "
                    f"{unit or 'no unit'} in {e.name} ({e.source}): their scores are not "
                    "comparable. A scores file keeps the units of the analysis store it was "
                    "verified against, whatever units= (--units) printed; run `wxens verify` of "
                    "each forecast against the same analysis store, then compare the new files"
                )


def different_truths(experiments: list[Scores]) -> list[str]:
    """One line per file (its truth's path, store id and times) where the files that record
    their truth store's id record more than one, else []."""
    ids = {e.truth[TRUTH_STORE_ID] for e in experiments if e.truth and TRUTH_STORE_ID in e.truth}
    if len(ids) <= 1:
        return []
    lines = []
    for e in experiments:
        if not e.truth:
            lines.append(f"{e.name} ({e.source}): truth not recorded")
            continue
        said = [e.truth.get(TRUTH_PATH, "?"), f"store id {e.truth.get(TRUTH_STORE_ID, '?')}"]
        if TRUTH_TIMES in e.truth:
            said.append(e.truth[TRUTH_TIMES])
        lines.append(f"{e.name} ({e.source}): truth {', '.join(said)}")
    return lines


def different_inits(experiments: list[Scores]) -> list[str]:
    """One line per file where the files' initial times differ, else []."""
    sets = [e.init_times for e in experiments]
    if all(s is not None for s in sets) and len({frozenset(s) for s in sets}) == 1:
        return []
    first = experiments[0]
    lines = []
    for e in experiments:
        if e.init_times is None:
            lines.append(f"{e.name} ({e.source}): initial times not recorded")
            continue
        times = sorted(e.init_times)
        span = f"{times[0]} to {times[-1]}" if times else "none"
        line = f"{e.name} ({e.source}): {len(times)} initial times, {span}"
        if e is not first and first.init_times is not None:
            others = set(first.init_times)
            line += (
                f"; {len(set(times) - others)} not in {first.name}, "
                f"{len(others - set(times))} of {first.name}'s missing"
            )
        lines.append(line)
    return lines


def different_points(experiments: list[Scores], at: dict[str, list]) -> list[str]:
    """One line per file (its points per field: verified, or skipped for a missing truth or
    forecast, over its initial times; fewest to most over its variables and leads) where
    the files, on the variables and leads they share (``at``: each dim's values), scored
    fields of other sizes (a global domain and a region, another grid), else []. Per field,
    not in all, so that files of other initial times (``--allow-different-inits``) compare;
    a file not counting them (an older wxens's) is left out, unchecked."""
    sizes = [
        (e, (sum(e.card[n].sel(at) for n in FIELD_COUNTS) / len(e.init_times)).values)
        for e in experiments
        if e.init_times and all(n in e.card for n in FIELD_COUNTS)
    ]
    if all(np.array_equal(sizes[0][1], n, equal_nan=True) for _, n in sizes[1:]):
        return []
    lines = []
    for e, n in sizes:
        low, high = float(np.nanmin(n)), float(np.nanmax(n))
        span = f"{low:,.0f}" if low == high else f"{low:,.0f} to {high:,.0f}"
        lines.append(f"{e.name} ({e.source}): {span} points per field")
    return lines
