"""How ``wxens compare`` shows the joined scorecards of :mod:`verification.compare`: one
block per score with a column per experiment and the best marked (:func:`comparison_table`),
or a tidy table for a CSV file (:func:`comparison_frame`)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import xarray as xr

from pipeline.schema import LEAD_TIME, split_channel
from verification.compare import (
    COUNT,
    ENDS,
    EXPERIMENT,
    FLOOR,
    FLOORS,
    MARK,
    compared,
    floor_of,
    with_intervals,
)
from verification.compare_blocks import BLOCKS, row_blocks
from verification.compare_paired import PAIRED, RIVAL
from verification.config import VARIABLE
from verification.output import (
    UNITS_PER_VARIABLE,
    VARIABLE_UNITS,
    added_scores,
    card_in_units,
    interval_text,
    score_text,
    unit_factors,
)
from verification.ranks import ERROR_FLOOR

#: The mark of a best within the noise (:func:`within_noise`), where :data:`MARK` would
#: claim a difference the files' intervals do not show.
NOISE_MARK = "~"

#: What a floor in brackets is, and why a file has none, in the legend (:data:`FLOORS`).
FLOOR_MEANINGS = {
    ERROR_FLOOR: "what a reliable ensemble of as many members shows on as many points where its "
    "fields correlate as the errors do, the pass rule's floor",
    FLOOR: "what a perfect model of as many members shows on as many points",
}
NO_FLOOR = {
    ERROR_FLOOR: "fewer than 2 initial times",
    FLOOR: "fewer than 3 members, or verified with --perfect-model-stand-ins 0",
}


def table_in_units(table: xr.Dataset, wanted) -> tuple[xr.Dataset, dict[str, tuple[str, float]]]:
    """``table`` (of :func:`~verification.compare.compare_scorecards`) with its CRPS and RMSE
    in the units of ``--units`` items (``msl=hPa``, ``hPa``) as ``wxens verify`` converts
    them (:func:`~verification.output.unit_factors`: a difference's scale, no offset) and
    :data:`VARIABLE_UNITS` following, and the factors; ratios unchanged. A unit that does not
    convert is an InputError."""
    channels = [str(c) for c in table[VARIABLE].values]
    variables = [split_channel(c)[0] for c in channels]
    held = dict(zip(variables, map(str, table[VARIABLE_UNITS].values), strict=True))
    factors = unit_factors(wanted, held)
    units = [factors.get(v, (held[v], 1.0))[0] for v in variables]
    converted = card_in_units(table, factors)
    return converted.assign_coords({VARIABLE_UNITS: (VARIABLE, units)}), factors


#: Distances from the best within this share of the row's largest value are a tie: the
#: same forecast verified twice (another ``--lead``, other chunks) differs in the last bits
#: of its float sums, and one file was starred alone.
TIE_RTOL = 1e-9


def best(values: xr.DataArray, from_best: Callable | None) -> xr.DataArray:
    """Where along ``experiment`` each row's best value is (bool; ties, to
    :data:`TIE_RTOL`, all marked): the nearest by ``from_best`` (a distance of
    :func:`~verification.compare.compared`); nothing marked where it is None (the floor,
    the points verified)."""
    if from_best is None:
        return xr.zeros_like(values, dtype=bool)
    distance = from_best(values)
    finite = abs(values).where(np.isfinite(values))  # an inf rank ratio: no inf slack
    slack = (TIE_RTOL * finite.max(EXPERIMENT, skipna=True)).fillna(0.0)
    return (distance <= distance.min(EXPERIMENT, skipna=True) + slack) & values.notnull()


def within_noise(
    table: xr.Dataset, score: str, from_best: Callable | None, marks: xr.DataArray
) -> xr.DataArray:
    """Where a best of ``marks`` (:func:`best` of ``score``) is within the noise (bool),
    judged rival by rival (:func:`rival_rules`): against a rival whose fair CRPS pairs with
    the best's, where the paired interval of (best - rival) reaches 0; against any other,
    where the best's block-bootstrap interval reaches as far from the best as the rival's
    comes near it, so the files cannot tell them apart (a CRPS of .159 [.14, .18] beside
    .169 [.15, .19]). Unpaired intervals: conservative, as the experiments' errors on the
    same days are correlated. One rival within the noise makes the best ``~``. False (the
    point estimate decides) where the files hold no interval of ``score``; against the
    unpaired rivals also where one is n/a in the row (too few blocks).

    An interval's distances from the best are its ends' for a score lowest best, and, for
    one nearest a value (a ratio nearest 1), 0 near where it holds that value: its ends'
    distances ``a`` and ``b`` then add up to its width ``w``, and the nearest is
    ``(a + b - w) / 2`` in both cases (every distance with intervals changes as the score
    does, :func:`~verification.compare.distance_from`)."""
    names = [f"{score}{end}" for end in ENDS]
    if from_best is None or not all(name in table for name in names):
        return xr.zeros_like(marks)
    low, high = (table[name] for name in names)
    ends = from_best(low), from_best(high)
    near, far = (ends[0] + ends[1] - (high - low)) / 2, np.maximum(*ends)
    judged = (low.notnull() & high.notnull() | table[score].isnull()).all(EXPERIMENT)
    paired, unpaired = rival_rules(table, score)
    noise = (unpaired & judged & (far >= near.rename({EXPERIMENT: RIVAL}))).any(RIVAL)
    if bool(paired.any()):
        noise = noise | (paired & (table[f"{PAIRED}_high"] >= 0)).any(RIVAL)  # may be >= 0
    return marks & noise


def rival_rules(table: xr.Dataset, score: str) -> tuple[xr.DataArray, xr.DataArray]:
    """Which rule judges each experiment's ``score`` against each rival with a value
    (bools over ``experiment`` and ``rival``, by row): paired, where the interval of their
    fair CRPS difference is there (:func:`~verification.compare_paired.paired_intervals`:
    ``/per_init`` in both files, the same initial times, enough blocks), and unpaired
    elsewhere (a file an older wxens wrote; every score but the fair CRPS)."""
    rivals = table[score].notnull().rename({EXPERIMENT: RIVAL})
    rivals = rivals & (table[EXPERIMENT] != rivals[RIVAL])
    if score != "fair_crps" or f"{PAIRED}_high" not in table:
        return xr.zeros_like(rivals), rivals
    paired = rivals & table[f"{PAIRED}_high"].notnull()
    return paired, rivals & ~paired


def noise_rule(table: xr.Dataset, score: str, marks: xr.DataArray, at: dict) -> str:
    """The rule :func:`within_noise` judged the row ``at``'s marked best with: ``paired``
    or ``unpaired`` against every rival (:func:`rival_rules`), ``mixed`` (some of each: the
    legend names which), or "" (no interval: the point estimate). One word, not a rule per
    rival, so that a CSV filters on it; ties: the bests' words joined by ``;``."""
    if f"{score}{ENDS[0]}" not in table:
        return ""
    paired, unpaired = (r.sel(at).any(RIVAL).values for r in rival_rules(table, score))
    words = np.where(paired & unpaired, "mixed", np.where(paired, "paired", "unpaired"))
    return ";".join(dict.fromkeys(map(str, words[marks.sel(at).values])))


def comparison_frame(table: xr.Dataset) -> pd.DataFrame:
    """A row per score, variable and lead, a column per experiment (the ends of a score's
    interval, ``fair_crps_low``..., and the rank max/min's floors,
    ``rank_max_min_error_surrogate`` and ``rank_max_min_perfect_model``, as rows of their own),
    ``best``: the experiments marked best, joined by ``;``, and ``within_noise``: those of
    them within the noise (:func:`within_noise`), ``noise_rule``, ``blocks``: the fewest
    blocks the row's intervals rest on (:func:`~verification.compare_blocks.row_blocks`;
    under 10, not to be read as uncertainty), and :func:`paired_columns`. For a CSV file:
    full precision."""
    rows = []
    scores = compared(table)
    shown = [n for n in (*with_intervals(scores), *FLOORS, COUNT) if n in table]
    for score in shown:
        from_best = scores.get(score, (None, None))[1]
        marks = best(table[score], from_best)
        noise = within_noise(table, score, from_best, marks)
        for variable in table[VARIABLE].values:
            for lead in table[LEAD_TIME].values:
                at = {VARIABLE: variable, LEAD_TIME: lead}
                row = {"score": score, "variable": str(variable), "lead_hours": _hours(lead)}
                row["unit"] = _unit(table, score, variable)
                values = table[score].sel(at).values.tolist()
                row |= dict(zip(map(str, table[EXPERIMENT].values), values, strict=True))
                for column, marked in (("best", marks), ("within_noise", noise)):
                    chosen = table[EXPERIMENT].values[marked.sel(at).values]
                    row[column] = ";".join(map(str, chosen))
                row["noise_rule"] = noise_rule(table, score, marks, at)
                row[BLOCKS] = row_blocks(table, score, at)
                row |= paired_columns(table, score, marks, at)
                rows.append(row)
    return pd.DataFrame(rows)


def paired_columns(table: xr.Dataset, score: str, marks: xr.DataArray, at: dict) -> dict:
    """``paired_rival``, ``fair_crps_paired_low`` and ``_high`` of a fair CRPS row with
    one best judged paired against some rival (:func:`rival_rules`): the interval of its CRPS
    minus the paired rival's whose interval reaches highest, the nearest the paired rule
    reads (``~`` where its high end reaches 0, or, where the rule is ``mixed``, an unpaired
    rival's interval overlaps); "" and NaN elsewhere. Columns on the row the mark is on, not a
    row per pair: a pair's difference is no one experiment's, and a researcher reads the
    mark and its evidence in one row (every pair: ``compare_scorecards``'s table)."""
    columns = {"paired_rival": "", f"{PAIRED}_low": np.nan, f"{PAIRED}_high": np.nan}
    chosen = table[EXPERIMENT].values[marks.sel(at).values]
    if score != "fair_crps" or len(chosen) != 1:
        return columns
    paired = rival_rules(table, score)[0].sel(at | {EXPERIMENT: chosen[0]})
    if not bool(paired.any()):
        return columns
    high = table[f"{PAIRED}_high"].sel(at | {EXPERIMENT: chosen[0]}).where(paired)
    nearest = high[RIVAL].values[np.argmax(high.fillna(-np.inf).values)]
    pair = {EXPERIMENT: chosen[0], RIVAL: nearest}
    columns["paired_rival"] = str(pair[RIVAL])
    for end in ("_low", "_high"):
        columns[f"{PAIRED}{end}"] = float(table[f"{PAIRED}{end}"].sel(at | pair))
    return columns


def _hours(lead: np.timedelta64) -> float:
    return float(lead / np.timedelta64(1, "h"))


def _unit(table: xr.Dataset, score: str, variable) -> str:
    """The variable's units for a score in them (CRPS, RMSE, an extension's so marked), ""
    for a count, else the score's own ("1" for a ratio)."""
    if score in ("fair_crps", "ensemble_mean_rmse") or UNITS_PER_VARIABLE in table[score].attrs:
        return str(table[VARIABLE_UNITS].sel({VARIABLE: variable}).item())
    return "" if score == COUNT else str(table[score].attrs.get("units", "1"))


def comparison_table(table: xr.Dataset) -> str:
    """The text to print: a block per score (its header and unit), a row per variable and
    lead (hours), a column per experiment, four significant digits, a score's interval where
    the files hold it as ``wxens verify`` prints it (``value [low, high]``), the best marked
    ``*`` (the lowest CRPS and RMSE, the spread/skill and rank max/min nearest 1), or
    :data:`NOISE_MARK` where its interval overlaps another's (:func:`within_noise`); the rank
    max/min as ``value (floor)``, the nearest its floor marked, none where a file has
    no floor (the legend names it); an extension's scores after them, the nearest
    their best marked. Points verified are shown only where the experiments differ."""
    blocks, floor = [], floor_of(table)
    for score, (header, from_best) in compared(table).items():
        if score not in table:
            continue
        marks = best(table[score], from_best)
        noise = within_noise(table, score, from_best, marks)
        rows = []
        for variable in table[VARIABLE].values:
            for lead in table[LEAD_TIME].values:
                at = {VARIABLE: variable, LEAD_TIME: lead}
                row = {"variable": str(variable), "lead (h)": f"{_hours(lead):g}"}
                for name in table[EXPERIMENT].values:
                    one = {**at, EXPERIMENT: name}
                    text = score_text(float(table[score].sel(one)))
                    if all(f"{score}{end}" in table for end in ENDS):
                        ends = (table[f"{score}{end}"].sel(one) for end in ENDS)
                        text += f" {interval_text(*ends)}"
                    if score == "rank_max_min" and floor in table:
                        text += f" ({score_text(float(table[floor].sel(one)))})"
                    mark = NOISE_MARK if bool(noise.sel(one)) else MARK
                    row[str(name)] = text + (mark if bool(marks.sel(one)) else "")
                row["unit"] = _unit(table, score, variable)
                rows.append(row)
        blocks.append(f"{header}\n{pd.DataFrame(rows).to_string(index=False)}")
    if COUNT in table and bool((table[COUNT] != table[COUNT].isel({EXPERIMENT: 0})).any()):
        counts = table[COUNT].to_dataframe()[COUNT].unstack(EXPERIMENT)
        counts.index = [f"{v} {_hours(lead):g}h" for v, lead in counts.index]
        blocks.append(f"points verified (they differ)\n{counts.to_string()}")
    legend = (
        f"{MARK} best: lowest fair CRPS and RMSE, spread/skill nearest 1, rank max/min nearest "
        f"its floor (in brackets: {FLOOR_MEANINGS[floor]}; the ratio over it nearest 1)"
    ) + ("; an extension's score: nearest its best" if added_scores(table) else "")
    legend += "\n" + noise_legend(table)
    legend += f"\n{table.attrs['few_blocks']}" if table.attrs.get("few_blocks") else ""
    unfloored = without_floor(table)
    if unfloored:
        legend += (
            f"\nrank max/min: none marked where a file has no floor ({', '.join(unfloored)}: "
            f"{NO_FLOOR[floor]})"
        )
    return "\n\n".join([*blocks, legend])


def noise_legend(table: xr.Dataset) -> str:
    """The legend's lines on :data:`NOISE_MARK`: which scores' best is judged against the
    noise by the unpaired intervals (those the files hold, less a fair CRPS judged paired at
    every row), that the others' is not, the paired rule (:func:`paired_legend`) and why
    files did not pair (the table's ``unpaired`` attr)."""
    judged = [h for n, (h, _) in compared(table).items() if f"{n}{ENDS[0]}" in table]
    if not judged:
        return (
            f"no intervals in the files: {MARK} is the best point estimate, however near the "
            "others (verify with --interval-level 0.9 to judge the noise)"
        )
    marks = best(table["fair_crps"], compared(table)["fair_crps"][1])
    paired = paired_legend(table)
    unpaired = rival_rules(table, "fair_crps")[1].any(RIVAL)
    if paired and not bool((marks & unpaired).any()):  # every CRPS mark judged paired
        judged.remove(compared(table)["fair_crps"][0])
    lines = [
        f"{NOISE_MARK} best, but within the noise ({', '.join(judged)}): its interval overlaps "
        f"another's, read as distance from the best (unpaired intervals: conservative); {MARK} "
        "there only where none does, or an interval is n/a; a score with no "
        f"interval: {MARK} is the best point estimate"
        if judged
        else f"the scores other than fair CRPS hold no interval: {MARK} is the best point estimate"
    ]
    lines += [paired] if paired else []
    if table.attrs.get("unpaired"):
        lines.append(f"fair CRPS not paired: {'; '.join(table.attrs['unpaired'])}")
    return "\n".join(lines)


def paired_legend(table: xr.Dataset) -> str:
    """The legend's line on the fair CRPS's marks the paired rule judged
    (:func:`rival_rules`): at every row against every rival, or, rival by rival, against
    which rivals each best was judged paired and against which unpaired; "" where none."""
    marks = best(table["fair_crps"], compared(table)["fair_crps"][1])
    rules = rival_rules(table, "fair_crps")
    if not bool((marks & rules[0].any(RIVAL)).any()):
        return ""
    where = "at every row"
    if bool((marks & rules[1].any(RIVAL)).any()):
        where = "rival by rival: " + "; ".join(
            _judged_against(rules, marks.sel({EXPERIMENT: name}), name)
            for name in table[EXPERIMENT].values
            if bool(marks.sel({EXPERIMENT: name}).any())
        )
    return (
        f"fair CRPS judged paired ({where}): {NOISE_MARK} where the interval of the best's "
        "CRPS minus a paired rival's, paired by initial time (the files' blocks, draws and "
        f"seed), reaches 0; {MARK} where it is below 0 against every paired rival, even "
        "where the intervals shown (each file's alone) overlap: the two share the weather, "
        "so the paired one is sharper (an unpaired rival: its file did not pair, or too few "
        "blocks; the intervals shown judge); for any two: wxens verify A --reference B"
    )


def _judged_against(rules: tuple, marked: xr.DataArray, name) -> str:
    """``a paired against b, unpaired against c``: the rivals the best ``name`` was judged
    against by each rule (:func:`rival_rules`) at the rows ``marked`` (a rival may be in
    both, where too few blocks left its pair unpaired at some)."""
    parts = []
    for word, rule in zip(("paired", "unpaired"), rules, strict=True):
        against = (rule.sel({EXPERIMENT: name}) & marked).any([VARIABLE, LEAD_TIME])
        rivals = against[RIVAL].values[against.values]
        parts += [f"{word} against {', '.join(map(str, rivals))}"] if rivals.size else []
    return f"{name} {', '.join(parts)}"


def without_floor(table: xr.Dataset) -> list[str]:
    """The experiments with a rank max/min but no finite floor somewhere: none is marked in
    those rows (:func:`~verification.compare.nearest_its_floor`)."""
    if "rank_max_min" not in table:
        return []
    name = floor_of(table)
    floor = table[name] if name in table else xr.full_like(table["rank_max_min"], np.nan)
    lacking = (table["rank_max_min"].notnull() & ~np.isfinite(floor)).any([VARIABLE, LEAD_TIME])
    return [str(name) for name in table[EXPERIMENT].values[lacking.values]]
