"""One self-contained HTML verification report: scorecard, physics checks, figures.

The scorecard and physics tables come from :mod:`verification.report_tables`, the figures
from :mod:`verification.plots` (:func:`report_figures` lists them with their captions).

Figures are embedded as base64 PNGs, styles inline; the file needs nothing beside it
and opens offline. Written atomically (temporary file renamed into place).
"""

from __future__ import annotations

import base64
import html
import io
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import xarray as xr
from matplotlib.figure import Figure

from pipeline.errors import counted, time_text
from pipeline.schema import LEAD_TIME
from verification.config import VARIABLE
from verification.map_plots import plot_member_maps
from verification.output import atomic_output
from verification.plots import (
    MAX_RANK_PANELS,
    MAX_SHADED,
    MAX_VARIABLES,
    plot_physics,
    plot_rank_histograms,
    plot_reliability,
    plot_scores_by_lead,
    plot_spectra,
    plot_spread_skill_ratio,
)
from verification.report_tables import multivariate_table, physics_table, scorecard_section
from verification.report_units import Units, relabel, tree_in_units

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; }
h1 { font-size: 1.6em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: .2em; }
h3 { font-size: 1.1em; margin-bottom: .2em; }
table { border-collapse: collapse; font-size: .85em; margin: .5em 0 1.5em; }
th, td { border: 1px solid #ddd; padding: .25em .6em; text-align: right; }
th { background: #f3f3f3; font-weight: 600; }
td.text { text-align: left; max-width: 32em; white-space: normal; }
table.scores td { white-space: nowrap; } th.row { text-align: left; white-space: nowrap; }
.interval { color: #666; font-size: .85em; }
.pass { color: #176b2c; font-weight: bold; } .fail { color: #b3261e; font-weight: bold; }
.na { color: #666; font-weight: bold; }
figure { margin: 1em 0 2em; } figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { font-size: .9em; color: #444; margin-top: .3em; }
.note { color: #555; font-size: .9em; }
"""


def figure_png(fig: Figure, dpi: int = 90) -> str:
    """A figure as a base64-encoded PNG (for an ``<img src="data:...">``)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")  # legends kept whole
    return base64.b64encode(buffer.getvalue()).decode("ascii")


@dataclass(frozen=True)
class Captioned:
    """A figure for the report: a title, what it shows and how to read it."""

    title: str
    caption: str
    figure: Figure


def report_figures(tree: xr.DataTree, units: Units | None = None) -> list[Captioned]:
    """The figures of the report, in order, for the groups the tree holds; where ``units``
    (:func:`verification.output.unit_factors`) names some, in those units and labelled so
    (:mod:`verification.report_units`)."""
    return _labelled(_figures(tree_in_units(tree, units or {})), units or {})


def _labelled(figures: list[Captioned], units: Units) -> list[Captioned]:
    """``figures`` drawn of a tree in ``units``, their axes naming those units."""
    for item in figures:
        relabel(item.figure, units)
    return figures


def _figures(tree: xr.DataTree) -> list[Captioned]:
    figures = [
        Captioned(
            "Scores by lead time",
            "Fair CRPS (lower is better; the reference's too when verified beside one), RMSE "
            "of the ensemble mean and ensemble spread per variable. For a reliable ensemble the "
            "spread matches the RMSE up to sqrt((M+1)/M).",
            plot_scores_by_lead(tree["scorecard"].to_dataset()),
        ),
        Captioned(
            "Spread-skill ratio",
            "sqrt((M+1)/M) · spread / RMSE; 1 is reliable, below 1 over-confident (too little "
            "spread), above 1 under-confident. Shaded: the bootstrap interval (for up to "
            f"{MAX_SHADED} variables; the calibration table gives every one).",
            plot_spread_skill_ratio(tree["scorecard"].to_dataset()),
        ),
        _rank_histograms(tree),
        Captioned(
            "Reliability diagrams",
            "Observed frequency of the event against the forecast probability (share of members "
            "with the event). On the diagonal is reliable; a finite ensemble bends slightly "
            "toward the climatological frequency even when reliable.",
            plot_reliability(tree["reliability"].to_dataset()),
        ),
    ]
    if "spectra" in tree.children:
        spectra = tree["spectra"].to_dataset()
        shown = min(spectra.sizes[VARIABLE], MAX_VARIABLES)
        figures.append(
            Captioned(
                "Power spectra",
                "Power of members (mean) and truth by wavenumber at the longest lead, for "
                + _first_of(shown, spectra.sizes[VARIABLE], "variable")
                + "; the ratio below 1 at high wavenumbers means smoothed members, above 1 "
                "noisy ones.",
                plot_spectra(spectra),
            )
        )
    if "maps" in tree.children:
        maps = tree["maps"].to_dataset()
        shown = min(maps.sizes[VARIABLE], 4)
        figures.append(
            Captioned(
                "Members beside the truth",
                f"Init {str(maps['init_time'].values)[:16]}, lead "
                f"{maps['lead_time'].values / np.timedelta64(1, 'h'):g} h: the verifying analysis "
                "and the first members of "
                + _first_of(shown, maps.sizes[VARIABLE], "variable")
                + ", each row on one colour scale covering the truth and the members (arrows "
                "on the colour bar: values beyond it, which take its end colours).",
                plot_member_maps(maps, max_variables=shown),
            )
        )
    if "physics" in tree.children and "check" in tree["physics"].dims:
        figures.append(
            Captioned(
                "Physical consistency",
                "Score of each member (green: within tolerance, red: not), the truth's own score "
                "(black line) and the tolerance derived from it (dashed).",
                plot_physics(tree["physics"].to_dataset()),
            )
        )
    return figures


def _first_of(shown: int, total: int, noun: str) -> str:
    return f"every {noun}" if shown == total else f"the first {shown} of {total} {noun}s"


def _rank_histograms(tree: xr.DataTree) -> Captioned:
    counts = tree["rank_histogram"].to_dataset()["rank_histogram"]
    n_variables, n_leads = counts.sizes[VARIABLE], counts.sizes[LEAD_TIME]
    how = (
        "one image per variable, rank against lead, coloured by frequency × (M+1) (white at 1: "
        "flat; red: too frequent, blue: too rare; red at both ends: too little spread, in the "
        "middle: too much, on one side: a bias); the calibration table gives each one's "
        "max/min ratio and floor"
        if n_variables * n_leads > MAX_RANK_PANELS
        else "bars of frequency × (M+1). Flat (the line at 1) is reliable; U-shaped means too "
        "little spread, a dome too much, a slope a bias. Each panel gives the largest over the "
        "smallest bin, and the same ratio for a perfectly reliable ensemble of this size on "
        "this sample (members standing in for the truth): the floor that correlated ranks "
        "leave even then"
    )
    return Captioned(
        "Rank histograms",
        f"Where the truth falls among the sorted members, for all {n_leads} leads of every "
        f"variable ({n_variables}): {how}.",
        plot_rank_histograms(counts, tree["scorecard"].to_dataset()),
    )


def _listed(root: xr.Dataset, name: str) -> list[str]:
    """A list attribute, in memory or as a scores file holds it (joined by "; ")."""
    value = root.attrs.get(name)
    if isinstance(value, str):
        return value.split("; ") if value else []
    return [] if value is None else list(value)


def _figure_html(item: Captioned) -> str:
    return (
        f"<figure><h3>{html.escape(item.title)}</h3>"
        f"<img alt='{html.escape(item.title)}' "
        f"src='data:image/png;base64,{figure_png(item.figure)}'>"
        f"<figcaption>{html.escape(item.caption)}</figcaption></figure>"
    )


def render_report(
    tree: xr.DataTree,
    *,
    title: str = "Ensemble verification",
    sources: str = "",
    units: Units | None = None,
) -> str:
    """The report as one HTML string; its scorecard and figures in ``units`` where given
    (``{variable: (unit, factor)}`` of :func:`verification.output.unit_factors`: ``wxens
    verify --units``), else in the store's units, as the scores file always is."""
    root = tree.to_dataset()
    shown = tree_in_units(tree, units or {})  # once, for the tables and the figures
    card = shown["scorecard"].to_dataset()
    leads = card["lead_time"].values / np.timedelta64(1, "h")
    missing, inits = _listed(root, "missing_valid_times"), _listed(root, "init_times")
    period = (
        f" ({time_text(inits[0])} to {time_text(inits[-1])})"
        if len(inits) > 1
        else "".join(f" ({time_text(t)})" for t in inits)
    )
    summary = (
        f"<p>{counted(root.attrs.get('n_members', 0), 'member')}, "
        f"{counted(root.attrs.get('n_init_times', 0), 'init time')}{html.escape(period)}, leads "
        f"{', '.join(f'{h:g}' for h in leads)} h, variables "
        f"{', '.join(map(str, card['variable'].values))}. Scores are cos-latitude-weighted means "
        f"over {html.escape(', '.join(map(str, np.atleast_1d(root.attrs.get('mean_over', [])))))}. "
        f"{len(missing)} valid time(s) missing from the analysis (skipped and counted).</p>"
    )
    body = "\n".join(_figure_html(item) for item in _labelled(_figures(shown), units or {}))
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>"
        f"<h1>{html.escape(title)}</h1>"
        f"<p class='note'>{html.escape(sources)} — generated {stamp} by wxens</p>"
        f"<h2>Summary</h2>{summary}<h2>Scorecard</h2>"
        f"{scorecard_section(card, units)}{multivariate_table(tree)}"
        f"<h3>Physical consistency</h3>{physics_table(tree)}"
        f"<h2>Figures</h2>{body}</body></html>"
    )


def write_report(
    tree: xr.DataTree,
    path: str | Path,
    *,
    title: str = "Ensemble verification",
    sources: str = "",
    units: Units | None = None,
) -> Path:
    """Write :func:`render_report` to ``path`` atomically (in ``units`` where given); returns
    the path."""
    text = render_report(tree, title=title, sources=sources, units=units)
    with atomic_output(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)
