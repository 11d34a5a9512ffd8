"""The scorecard and physics checks as HTML tables for the report.

The scorecard is split by what it answers: skill (CRPS, its interval and the reference's,
RMSE, bias, coverage), calibration (spread, spread/skill, rank-histogram flatness and its
floors) and events (Brier scores), each a row per variable and lead; the physics table has
a row per check the tree holds, whatever checks those are. A score the card lacks is left
out, an interval shows small beside its score.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import xarray as xr

from pipeline.schema import LEAD_TIME, split_channel
from verification.config import VARIABLE
from verification.output import added_scores
from verification.plots import channel_units, label_with_units
from verification.ranks import PASS_FACTOR, PASSES, pass_text, with_rank_pass
from verification.report_units import Units


def number(value: float) -> str:
    """Four significant digits; a dash for NaN (nothing to score), ∞ for an infinite score
    (a rank max/min over an empty bin: the worst flatness, not a missing one)."""
    if np.isinf(value):
        return "∞" if value > 0 else "−∞"
    return "–" if np.isnan(value) else f"{value:.4g}"


def count(value: float) -> str:
    """A count of points in full (58212, not 5.821e+04); a dash for NaN."""
    return "–" if not np.isfinite(value) else f"{int(round(value))}"


def p_value(value: float) -> str:
    """As :func:`number`, and below 0.0001 just that (HTML-escaped: the report's tables)."""
    return number(value) if not 0 <= value < 1e-4 else "&lt; 0.0001"


@dataclass(frozen=True)
class Column:
    """A scorecard column: its heading, the score it shows and, when the scorecard has
    them, the ends of that score's interval (shown small beside it). ``score`` may be
    empty for a column that is an interval only."""

    heading: str
    score: str
    low: str = ""
    high: str = ""
    format: Callable[[float], str] = number


SKILL = (
    Column("fair CRPS", "fair_crps", "fair_crps_low", "fair_crps_high"),
    Column("reference CRPS", "reference_fair_crps"),
    Column("CRPS skill", "fair_crps_skill_score"),
    Column("Δ CRPS", "", "fair_crps_minus_reference_low", "fair_crps_minus_reference_high"),
    Column("RMSE (mean)", "ensemble_mean_rmse"),
    Column("bias (mean)", "ensemble_mean_error"),
    Column("points", "n_verified", format=count),
    Column("no truth", "n_missing_truth", format=count),
)
"""How good: the skill table (Δ CRPS: the interval of CRPS − reference CRPS)."""

WITH_REFERENCE = Column("points with reference", "n_verified_with_reference", format=count)
"""Beside ``points`` where the reference lacks some of them (:func:`partly_paired`)."""

NO_FORECAST = Column("no forecast", "n_missing_forecast", format=count)
"""After ``no truth`` where some points have a truth but no member (a lead or run NaN in
the forecast): without it such a lead read 0 points verified and 0 skipped."""

PARTLY_PAIRED = (
    " The reference lacks some of the points verified (runs or points it does not hold): "
    "reference CRPS, CRPS skill and Δ CRPS compare the two on the points both hold (points "
    "with reference), fair CRPS is the forecast's on all its points."
)
"""Added to the skill table's note where the reference covers fewer points."""

CALIBRATION = (
    Column("spread", "ensemble_spread"),
    Column(
        "spread/skill", "spread_skill_ratio", "spread_skill_ratio_low", "spread_skill_ratio_high"
    ),
    Column("rank δ", "rank_delta"),
    Column("rank p", "rank_p_value", format=p_value),
    Column("rank max/min", "rank_max_min"),
    Column("rank max/min floor", "rank_max_min_perfect_model"),
    Column("floor (error correlation)", "rank_max_min_error_surrogate"),
    Column("rank max/min passes", PASSES, format=pass_text),
)
"""How reliable: the calibration table."""


def _cell(card: xr.Dataset, column: Column) -> str:
    text = column.format(float(card[column.score])) if column.score else ""
    if column.low in card and column.high in card:
        low, high = float(card[column.low]), float(card[column.high])
        if np.isfinite(low) and np.isfinite(high):  # none for a score that has none
            text += f" <span class='interval'>[{low:.3g}, {high:.3g}]</span>"
        elif not column.score:  # an interval-only column (Δ CRPS): say so, not a blank cell
            text = "<span class='interval'>[n/a]</span>"
    return f"<td>{text.strip()}</td>"


def _present(card: xr.Dataset, columns: tuple[Column, ...]) -> list[Column]:
    return [c for c in columns if c.score in card or (not c.score and c.low in card)]


def score_table(card: xr.Dataset, columns: list[Column], units: Units | None = None) -> str:
    """One scorecard table: a row per variable and lead, the ``columns`` the card holds;
    headings carry the score's long name as a tooltip, the variable its units (the store's,
    or those ``units`` gives it: ``{variable: (unit, factor)}``, the card converted)."""
    heads = "".join(
        f"<th title='{html.escape(str(card[c.score or c.low].attrs.get('long_name', '')))}'>"
        f"{html.escape(c.heading)}</th>"
        for c in columns
    )
    rows = []
    hours = card[LEAD_TIME].values / np.timedelta64(1, "h")
    for name in card[VARIABLE].values:
        label = html.escape(label_with_units(str(name), _unit(str(name), units)))
        for index, lead in enumerate(hours):
            at = card.sel({VARIABLE: name}).isel({LEAD_TIME: index})
            first = f"<th class='row' rowspan='{len(hours)}'>{label}</th>" if index == 0 else ""
            cells = "".join(_cell(at, c) for c in columns)
            rows.append(f"<tr>{first}<td>{lead:g}</td>{cells}</tr>")
    head = f"<tr><th>variable</th><th>lead (h)</th>{heads}</tr>"
    return f"<table class='scores'>{head}{''.join(rows)}</table>"


def _unit(channel: str, units: Units | None) -> str:
    """The unit a channel's scores are shown in: that of ``units``, else the store's."""
    shown = units.get(split_channel(channel)[0]) if units else None
    return channel_units(channel) if shown is None else shown[0]


def scorecard_tables(card: xr.Dataset, units: Units | None = None) -> dict[str, str]:
    """The scorecard's tables in HTML: ``skill`` (the extensions' scores last, by name, their
    long names as tooltips), ``calibration`` and, when the card has Brier scores, ``events``;
    the variables' units those of ``units`` (:func:`score_table`) where given."""
    brier = [
        Column(name.replace("brier_score_", "Brier > "), name)
        for name in map(str, card.data_vars)
        if name.startswith("brier_score_")
    ]
    card = with_rank_pass(card)  # the pass mark where the card has the error floor
    skill = _present(card, SKILL)
    if "n_missing_forecast" in card and int(card["n_missing_forecast"].sum()):
        skill.append(NO_FORECAST)
    if partly_paired(card):
        skill.insert(skill.index(SKILL[-2]) + 1, WITH_REFERENCE)
    skill += [Column(name, name) for name in added_scores(card)]  # an extension's, last
    tables = {
        "skill": score_table(card, skill, units),
        "calibration": score_table(card, _present(card, CALIBRATION), units),
    }
    return tables | ({"events": score_table(card, brier, units)} if brier else {})


NOTES = {
    "skill": "fair CRPS: unbiased for the ensemble's distribution (lower is better), in the "
    "variable's units; [low, high]: its bootstrap interval; CRPS skill: 1 − CRPS/reference "
    "CRPS; Δ CRPS: interval of CRPS − reference CRPS (below 0: better than the reference); "
    "RMSE and bias of the ensemble mean; points verified, and skipped for no truth (a valid "
    "time the analysis lacks, or a masked point) or, where shown, no forecast (every member "
    "NaN).",
    "calibration": "spread/skill: with the finite-ensemble factor sqrt((M+1)/M), 1 is "
    "reliable; rank δ: Candille–Talagrand flatness, about 1 when flat (inflated by spatial "
    "correlation); rank p: flatness p-value (independent ranks assumed); rank max/min: "
    "largest over smallest bin of the rank histogram, 1 when flat (∞: a rank the truth never "
    "took), beside its floors, what a perfectly reliable ensemble of this size shows on this "
    "sample: members standing in for the truth, and (error correlation) fields correlated in "
    f"space as the ensemble-mean errors are; it passes at most {PASS_FACTOR:g} × the latter (the "
    "median over its replicas).",
    "events": "Brier score of the event value > qNN, the truth's NN% quantile (lower is "
    "better; 0 is perfect).",
}
"""What each table's columns mean, printed above it."""


def partly_paired(card: xr.Dataset) -> bool:
    """Whether the reference of ``card`` lacks some of the points the forecast verifies."""
    if "n_verified_with_reference" not in card or "n_verified" not in card:
        return False
    return bool((card["n_verified_with_reference"] < card["n_verified"]).any())


def interval_caution(card: xr.Dataset) -> str:
    """The ``caution`` the scores put on their intervals (too few blocks to read them as
    uncertainty: :func:`verification.comparison.few_blocks_caution`), "" where none."""
    ends = [c.low for c in (*SKILL, *CALIBRATION) if c.low in card]
    return next((str(card[n].attrs["caution"]) for n in ends if "caution" in card[n].attrs), "")


def scorecard_section(card: xr.Dataset, units: Units | None = None) -> str:
    """Each scorecard table under its heading and a note on how to read it (HTML); above
    the first, once, the intervals' caution where they carry one. ``units``: those the
    (converted) card is in, for the labels (:func:`score_table`)."""
    notes = NOTES | ({"skill": NOTES["skill"] + PARTLY_PAIRED} if partly_paired(card) else {})
    caution = interval_caution(card)
    said = f"<p class='note'>[low, high]: {html.escape(caution)}.</p>" if caution else ""
    return said + "".join(
        f"<h3>{name.capitalize()}</h3><p class='note'>{html.escape(notes[name])}</p>{table}"
        for name, table in scorecard_tables(card, units).items()
    )


def check_verdict(sel: xr.Dataset) -> tuple[str, str]:
    """The css class and text of one check's verdict: pass, fail (naming the worst channel,
    :func:`worst_channel`, where its score is a largest over channels), or n/a where no
    member score (or the truth's) could be computed."""
    scores = sel["member_score"].values.astype(float)
    computed = np.isfinite(scores)
    if not computed.any() or not np.isfinite(float(sel["truth_score"])):
        return "na", "n/a (not computable on these data)"
    passed = int((sel["passed"].values & computed).sum())
    total = int(computed.sum())
    skipped = f"; n/a for {scores.size - total}" if total < scores.size else ""
    verdict = "pass" if passed == total else "fail"
    worst = worst_channel(sel) if verdict == "fail" else ""
    said = f", worst channel {worst}" if worst else ""
    return verdict, f"{verdict.upper()} ({passed}/{total} members pass{skipped}){said}"


def worst_channel(row: xr.Dataset) -> str:
    """The channel that gave the largest score of the failing members of one ``check`` row
    (``""`` where its score is no largest over channels, or a file written before it was
    kept)."""
    if "worst" not in row:
        return ""
    scores = np.where(row["passed"].values, -np.inf, row["member_score"].values.astype(float))
    scores = np.where(np.isfinite(scores), scores, -np.inf)
    return str(row["worst"].values[int(np.argmax(scores))])


def _physics_rows(physics: xr.Dataset) -> str:
    rows, previous = [], None
    for name in physics["check"].values:
        sel = physics.sel(check=name)
        family = str(sel["family"].values) if "family" in sel.coords else str(name)
        meaning = "" if family == previous else str(sel["description"].values)
        previous = family
        verdict, text = check_verdict(sel)
        finite = sel["member_score"].values[np.isfinite(sel["member_score"].values)]
        median = float(np.median(finite)) if finite.size else float("nan")
        rows.append(
            "<tr>"
            f"<th class='row'>{html.escape(str(name))}</th>"
            f"<td class='text'>{html.escape(meaning)}</td>"
            f"<td>{number(float(sel['truth_score']))}</td>"
            f"<td>{number(float(sel['tolerance']))}<br><span class='note'>"
            f"{html.escape(str(sel['tolerance_rule'].values))}</span></td>"
            f"<td>{number(median)}</td>"
            f"<td class='{verdict}'>{html.escape(text)}</td>"
            "</tr>"
        )
    return "\n".join(rows)


def _not_computed_rows(physics: xr.Dataset) -> str:
    """One n/a row, with its reason, per check or part that could not be computed."""
    if "reason" not in physics:
        return ""
    return "\n".join(
        "<tr>"
        f"<th class='row'>{html.escape(str(label))}</th>"
        f"<td class='text' colspan='4'>{html.escape(str(reason))}</td>"
        "<td class='na'>n/a</td>"
        "</tr>"
        for label, reason in zip(
            physics["not_computed"].values, physics["reason"].values, strict=True
        )
    )


def physics_table(tree: xr.DataTree) -> str:
    """The physics checks of ``tree`` as HTML: a row per check and part, an n/a row with
    its reason for each that could not be computed (a note where none ran or applies)."""
    if "physics" not in tree.children:
        return "<p class='note'>Physics checks were not run (physics_init_times = 0).</p>"
    physics = tree["physics"].to_dataset()
    rows = _physics_rows(physics) if "check" in physics.dims else ""
    unavailable = _not_computed_rows(physics)
    if not rows and not unavailable:
        return "<p class='note'>No physics check applies.</p>"
    return (
        "<p class='note'>Each check scores every member and, the same way, the verifying "
        "analysis; the tolerance is derived from the analysis's own score, so members are asked "
        "to be as physically consistent as the truth, not more. A check or part that cannot be "
        "computed from these data is n/a, with the reason.</p>"
        "<table><tr><th>check</th><th>what it means</th><th>truth score</th><th>tolerance</th>"
        f"<th>median member</th><th>verdict</th></tr>{rows}{unavailable}</table>"
    )


def multivariate_table(tree: xr.DataTree) -> str:
    """The energy score of ``/multivariate`` by lead as HTML ("" where it was not run)."""
    if "multivariate" not in tree.children:
        return ""
    energy = next(iter(tree["multivariate"].to_dataset().data_vars.values()))
    rows = "".join(
        f"<tr><td>{lead / np.timedelta64(1, 'h'):g}</td><td>{number(float(value))}</td></tr>"
        for lead, value in zip(energy[LEAD_TIME].values, energy.values, strict=True)
    )
    return (
        "<h3>All variables together</h3><p class='note'>Fair energy score of the vector of "
        "every variable and level, each divided by the truth's standard deviation on the "
        "physics checks' initial times (unscaled where none are checked; lower is better): "
        "a CRPS of all variables at once, which also rewards members whose variables "
        "vary together as the truth's do.</p>"
        f"<table><tr><th>lead (h)</th><th>energy score</th></tr>{rows}</table>"
    )
