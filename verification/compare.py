"""Several experiments' scores side by side (``wxens compare``), as WeatherBench 2's
scorecards: the scorecards of scores files that ``wxens verify`` wrote against one truth,
joined on an ``experiment`` dim (:func:`compare_scorecards`), printed as one block per
score with a column per experiment and the best marked, or as a tidy table for a CSV file
(:mod:`verification.compare_table`).

Files are compared only where that is fair: the same truth store (the root attribute
``truth_store_id``; ``allow_different_truths`` compares anyway, files written before it was
recorded are said to be unchecked), the same units per variable, a variable and a lead in
common, the same initial times (a CRPS over other days is not comparable;
``allow_different_inits`` compares anyway and says which differ) and the same points
verified (``allow_different_points``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from pipeline.errors import InputError
from pipeline.schema import LEAD_TIME
from verification.compare_blocks import BLOCKS, few_blocks_line, interval_blocks
from verification.compare_checks import (
    COUNT,
    check_units,
    different_inits,
    different_points,
    different_truths,
    records_units,
    refuse_unless,
    units_of,
)
from verification.compare_paired import EXPERIMENT, paired_intervals, unpaired_lines
from verification.config import VARIABLE
from verification.output import (
    TRUTH_PATH,
    TRUTH_STORE_ID,
    TRUTH_TIMES,
    VARIABLE_UNITS,
    added_scores,
)
from verification.ranks import ERROR_FLOOR


def lowest_is_best(values: xr.DataArray) -> xr.DataArray:
    """How far a score is from the best (an error: the value itself, lowest best)."""
    return values


def nearest_one_is_best(values: xr.DataArray) -> xr.DataArray:
    """How far a ratio is from the best, 1 (a calibrated spread)."""
    return abs(values - 1)


def nearest_its_floor(floor: xr.DataArray, values: xr.DataArray) -> xr.DataArray:
    """How far each file's rank max/min is from its own ``floor`` (:func:`floor_of`):
    ``|ratio / floor - 1|``; NaN (none marked) in a row where a file has a ratio but no
    finite floor (of the perfect-model one: fewer than 3 members, ``--perfect-model-stand-ins
    0``).

    Not from 1: a reliable ensemble's ratio grows with its bins and the dependence of its
    points, so the fewest members read flattest by chance alone. The floor is the median
    ratio of a reliable ensemble of the file's own members, points and dependence, so a
    reliable file lands on either side of it, and the pass rule is a multiple of it (within
    1.1 x): the ratio over it is comparable across member counts where the difference is not
    (a floor of 5 is noisier than one of 1.5)."""
    distance = abs(values / floor - 1)
    return distance.where(~(values.notnull() & ~np.isfinite(floor)).any(EXPERIMENT))


#: Scores compared (card name: printed header, how far a value is from the best; the best
#: marked is the nearest). ``rank_max_min`` is printed with its floor and read against it
#: (:func:`compared` binds the table's floor to :func:`nearest_its_floor`).
COMPARED = {
    "fair_crps": ("fair CRPS", lowest_is_best),
    "spread_skill_ratio": ("spread/skill", nearest_one_is_best),
    "rank_max_min": ("rank max/min (floor)", None),
    "ensemble_mean_rmse": ("ensemble-mean RMSE", lowest_is_best),
}


def distance_from(best: float, values: xr.DataArray) -> xr.DataArray:
    """How far a score is from ``best``, its value for a perfect forecast."""
    return abs(values - best)


def compared(card: xr.Dataset) -> dict[str, tuple[str, Callable | None]]:
    """:data:`COMPARED`, its rank max/min read against ``card``'s floor
    (:func:`nearest_its_floor`; none marked without one), then the scores extensions added
    to ``card`` (:func:`~verification.output.added_scores`): headed by their names, the
    best the nearest to their ``best`` attribute (none marked where it is NaN, as a
    spread's)."""
    floor = floor_of(card)
    header = f"rank max/min ({FLOORS[floor]} floor)"
    floored = partial(nearest_its_floor, card[floor]) if floor in card else None
    added = {"rank_max_min": (header, floored)}
    for name in added_scores(card):
        best = float(card[name].attrs.get("best", np.nan))
        added[name] = (name, None if np.isnan(best) else partial(distance_from, best))
    return COMPARED | added


FLOOR = "rank_max_min_perfect_model"
#: The floors a rank max/min is read against, as headers and legends name them.
FLOORS = {ERROR_FLOOR: "error", FLOOR: "perfect-model"}


def floor_of(table: xr.Dataset) -> str:
    """The floor ``table``'s rank max/min is read against: the error-correlation one where
    it is there (in every file compared: :func:`compare_scorecards` keeps it only then), as
    the project's pass rule reads it (:func:`verification.ranks.with_rank_pass`), else the
    perfect-model one (files verified with ``--error-surrogate-replicas 0``, or before it
    was computed by default)."""
    return ERROR_FLOOR if ERROR_FLOOR in table else FLOOR


#: The coordinate along ``experiment`` of each file's number of members (its root attribute).
MEMBERS = "n_members"
MARK = "*"
#: The suffixes of a score's block-bootstrap interval in a scorecard (``fair_crps_low``...).
ENDS = ("_low", "_high")
VERIFY_HINT = "give the file verify_store wrote, scores= (--out of `wxens verify`)"


def with_intervals(scores: Iterable[str]) -> list[str]:
    """The names of ``scores``, each followed by its interval's ends (:data:`ENDS`)."""
    return [f"{name}{end}" for name in scores for end in ("", *ENDS)]


@dataclass(frozen=True)
class Scores:
    """One experiment: its name, where it came from, its scorecard, initial times, the
    root attributes naming its truth (:data:`~verification.output.TRUTH_PATH`...), its
    number of members and its per-init CRPS (``/per_init``, which pairs it with another's:
    :mod:`verification.compare_paired`); None or empty where the file does not hold them."""

    name: str
    source: str
    card: xr.Dataset
    init_times: tuple[str, ...] | None
    truth: dict[str, str] | None = None
    members: int | None = None
    per_init: xr.Dataset | None = None


def read_scores(source: str | os.PathLike | xr.DataTree, name: str) -> Scores:
    """The scorecard of a scores file (a path, or a tree from :func:`verification.verify`);
    an :class:`InputError` naming a file that is not a wxens scores file."""
    if isinstance(source, xr.DataTree):
        return _scores_of(source, name, "a scores tree")
    if Path(source).is_dir():
        raise InputError(f"{source} is a folder, not a wxens scores file; {VERIFY_HINT}")
    if not Path(source).is_file():
        raise InputError(f"scores file {source} does not exist; {VERIFY_HINT}")
    try:
        tree = xr.open_datatree(source)
    except (OSError, ValueError):
        raise InputError(
            f"{source} is not a wxens scores file (not NetCDF); {VERIFY_HINT}"
        ) from None
    with tree:  # closed once read: a handle left open per file, read again, crashed HDF5
        return _scores_of(tree, name, str(source))


def _scores_of(tree: xr.DataTree, name: str, label: str) -> Scores:
    """The :class:`Scores` of an opened scores ``tree`` (its scorecard loaded)."""
    if "scorecard" not in tree.children or "fair_crps" not in tree["scorecard"].data_vars:
        raise InputError(
            f"{label} is not a wxens scores file (no /scorecard group with fair_crps); "
            f"{VERIFY_HINT}"
        )
    card = tree["scorecard"].to_dataset().load()
    inits = tree.attrs.get("init_times")
    if isinstance(inits, str):
        inits = [t for t in inits.split("; ") if t]
    times = None if inits is None else tuple(str(pd.Timestamp(t)) for t in np.atleast_1d(inits))
    named = (TRUTH_PATH, TRUTH_STORE_ID, TRUTH_TIMES)
    truth = {k: str(tree.attrs[k]) for k in named if k in tree.attrs}
    members = None if (n := tree.attrs.get(MEMBERS)) is None else int(n)
    per_init = tree["per_init"].to_dataset().load() if "per_init" in tree.children else None
    return Scores(name, label, card, times, truth, members, per_init)


def default_names(paths: Sequence[str | os.PathLike]) -> list[str]:
    """The files' stems (``scores_fm`` of ``runs/scores_fm.nc``); where two share a stem,
    as many of the last folders as tell them apart (``fm/scores``, ``dm/scores``)."""
    parts = [Path(p).with_suffix("").parts for p in paths]
    for depth in range(1, max(len(p) for p in parts) + 1):
        names = ["/".join(p[-depth:]) for p in parts]
        if len(set(names)) == len(names):
            return names
    return ["/".join(p) for p in parts]


def compare_scorecards(
    sources: Sequence[str | os.PathLike | xr.DataTree],
    names: Sequence[str] | None = None,
    *,
    leads_hours: Sequence[float] | None = None,
    allow_different_inits: bool = False,
    allow_different_truths: bool = False,
    allow_different_points: bool = False,
) -> xr.Dataset:
    """The scorecards of ``sources`` (scores files, or trees) side by side.

    Returns a Dataset with dims ``(experiment, variable, lead_time)`` holding
    :func:`compared`'s scores (an extension's too) with the intervals the files hold
    (``fair_crps_low``, ``fair_crps_high``...), ``fair_crps_paired_low/high`` (dim
    ``rival`` too) where two files pair their CRPS by initial time
    (:func:`~verification.compare_paired.paired_intervals`), the floors (the
    error-correlation one only where every file holds it: :func:`floor_of`), ``blocks``
    (those the intervals rest on: :func:`~verification.compare_blocks.interval_blocks`) and
    ``n_verified`` where the files hold
    them (NaN where one file lacks a score), the coordinates ``variable_units`` (variable)
    and ``n_members`` (experiment; NaN where a file does not record it), on the variables
    and leads every file holds
    (``leads_hours``: only these). Its attrs: ``left_out``, ``different_inits``,
    ``different_truths``, ``different_points``, ``truth_unrecorded`` (files written
    before the truth, or the units, were recorded: their units are not checked) and
    ``unpaired`` (files whose fair CRPS did not pair, and why), lines to show, and
    ``few_blocks``, the line naming files whose intervals rest on too few blocks ("" where
    none: :func:`~verification.compare_blocks.few_blocks_line`).

    Raises :class:`InputError` for a file that is not a wxens scores file, names that are
    not one per file or repeat, a variable in other units in two files, no variable or lead
    in common, a lead of ``leads_hours`` not in common, files of other initial times
    (unless ``allow_different_inits``), files verified against other truth stores
    (unless ``allow_different_truths``) and files that verified other numbers of points
    on the variables and leads compared (unless ``allow_different_points``).
    """
    if not sources:
        raise InputError("give at least one scores file to compare")
    if names is None:
        paths = [s if not isinstance(s, xr.DataTree) else f"tree{i}" for i, s in enumerate(sources)]
        names = default_names(paths)
    if len(names) != len(sources):
        listed = any("," in str(n) for n in names)  # --name a,b: one name, not a list
        raise InputError(
            f"{len(names)} names for {len(sources)} scores files; give one name per file "
            "in names= (--name), in the files' order, or none (the file names)"
            + ("; a comma list is one name: the flag is repeated, once per file" if listed else "")
        )
    if len(set(names)) != len(names):
        twice = sorted({n for n in names if list(names).count(n) > 1})
        raise InputError(f"experiment name {', '.join(twice)} given twice; give each its own")
    experiments = [read_scores(s, str(n)) for s, n in zip(sources, names, strict=True)]
    truths_differ = different_truths(experiments)
    refuse_unless(
        allow_different_truths,
        truths_differ,
        "were verified against different truth stores, and scores against other truths are",
        "the same truth store (--truth), or pass allow_different_truths=True "
        "(--allow-different-truths)",
    )
    unrecorded = [
        f"{e.name} ({e.source}): its truth is not recorded (written before wxens verify "
        "recorded it): not checked to be the others'; verify it again to check"
        if records_units(e.card)
        else f"{e.name} ({e.source}): its truth and units are not recorded (written by an "
        "older wxens): not checked to be the others'; verify it again to check"
        for e in experiments
        if not e.truth or not records_units(e.card)
    ]
    check_units(experiments)
    left_out = []
    variables = _common(experiments, VARIABLE, "variable", left_out)
    leads = _common(experiments, LEAD_TIME, "lead", left_out)
    if leads_hours is not None:
        leads = _chosen_leads(leads, leads_hours)
    different = different_inits(experiments)
    refuse_unless(
        allow_different_inits,
        different,
        "verified different initial times, and a CRPS over other days is",
        "the same initial times (--init), or pass allow_different_inits=True "
        "(--allow-different-inits)",
    )
    scores = dict.fromkeys(n for e in experiments for n in compared(e.card))
    error_floor = [ERROR_FLOOR] if all(ERROR_FLOOR in e.card for e in experiments) else []
    wanted = [*with_intervals(scores), *error_floor, FLOOR, COUNT]
    cards = [
        e.card[[n for n in wanted if n in e.card]].sel({VARIABLE: variables, LEAD_TIME: leads})
        for e in experiments
    ]
    points_differ = different_points(experiments, {VARIABLE: variables, LEAD_TIME: leads})
    refuse_unless(
        allow_different_points,
        points_differ,
        "verified different points, and scores over other weather are",
        "the same region and grid, or pass allow_different_points=True (--allow-different-points)",
    )
    recorded = [e.card for e in experiments if records_units(e.card)]
    units_card = recorded[0] if recorded else experiments[0].card
    names_index = pd.Index(np.array([e.name for e in experiments]), name=EXPERIMENT)
    table = xr.concat(cards, dim=names_index)
    members = [np.nan if e.members is None else e.members for e in experiments]
    table = table.assign_coords(
        source=(EXPERIMENT, [e.source for e in experiments]),
        **{MEMBERS: (EXPERIMENT, members)},
        **{VARIABLE_UNITS: (VARIABLE, [units_of(units_card, v) for v in variables])},
    )
    at = {VARIABLE: variables, LEAD_TIME: leads}
    table = table.merge(paired_intervals(experiments, at))
    table[BLOCKS] = interval_blocks(experiments, at)
    return table.assign_attrs(
        unpaired=unpaired_lines(experiments, at),
        few_blocks=few_blocks_line(experiments, table[BLOCKS]),
        left_out=left_out,
        different_inits=different,
        different_truths=truths_differ,
        different_points=points_differ,
        truth_unrecorded=unrecorded if len(experiments) > 1 else [],
    )


def _common(experiments: list[Scores], dim: str, what: str, left_out: list[str]) -> list:
    """The values of ``dim`` every card holds, in the first card's order; the others are
    said in ``left_out``; none in common is an :class:`InputError`."""
    held = [list(e.card[dim].values) for e in experiments]
    common = [v for v in held[0] if all(v in h for h in held[1:])]
    if not common:
        each = "; ".join(
            f"{e.name}: {', '.join(map(_text, h))}" for e, h in zip(experiments, held, strict=True)
        )
        option = "leads_hours= (--lead)" if what == "lead" else "variables= (--variables)"
        raise InputError(
            f"the scores files have no {what} in common ({each}); verify each forecast with "
            f"the same {option}"
        )
    for e, h in zip(experiments, held, strict=True):
        extra = [v for v in h if v not in common]
        if extra:
            left_out.append(
                f"{e.name}: {what}s {', '.join(map(_text, extra))} left out (not in every file)"
            )
    return common


def _text(value) -> str:
    """A variable's name, or a lead in hours (``24h``)."""
    if isinstance(value, np.timedelta64):
        return f"{value / np.timedelta64(1, 'h'):g}h"
    return str(value)


def _chosen_leads(common: list, hours: Sequence[float]) -> list:
    held = {float(v / np.timedelta64(1, "h")): v for v in common}
    missing = [h for h in hours if float(h) not in held]
    if missing:
        raise InputError(
            f"leads_hours= (--lead) {', '.join(f'{h:g}h' for h in missing)} is not a lead every "
            "scores file "
            f"holds; choose from {', '.join(map(_text, common))}"
        )
    return [held[float(h)] for h in dict.fromkeys(hours)]
