"""One self-contained HTML verification report: scorecard, figures, physics checks.

Figures are embedded as base64 PNGs, styles inline; the file needs nothing beside it
and opens offline. Written atomically (temporary file renamed into place).
"""

from __future__ import annotations

import base64
import html
import io
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr
from matplotlib.figure import Figure

from verification.output import atomic_output
from verification.plots import Captioned, report_figures

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; }
h1 { font-size: 1.6em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: .2em; }
table { border-collapse: collapse; font-size: .85em; margin: .5em 0 1.5em; }
th, td { border: 1px solid #ddd; padding: .25em .6em; text-align: right; }
th { background: #f3f3f3; } td.text { text-align: left; max-width: 32em; }
.pass { color: #176b2c; font-weight: bold; } .fail { color: #b3261e; font-weight: bold; }
figure { margin: 1em 0 2em; } figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { font-size: .9em; color: #444; margin-top: .3em; } .note { color: #555; font-size: .9em; }
"""

_SCORECARD_COLUMNS = {
    "fair_crps": "fair CRPS",
    "fair_crps_low": "CRPS low",
    "fair_crps_high": "CRPS high",
    "reference_fair_crps": "reference CRPS",
    "fair_crps_skill_score": "CRPS skill",
    "fair_crps_minus_reference_low": "Δ CRPS low",
    "fair_crps_minus_reference_high": "Δ CRPS high",
    "ensemble_mean_rmse": "RMSE (mean)",
    "ensemble_mean_error": "bias (mean)",
    "ensemble_spread": "spread",
    "spread_skill_ratio": "spread/skill",
    "spread_skill_ratio_low": "spread/skill low",
    "spread_skill_ratio_high": "spread/skill high",
    "rank_delta": "rank δ",
    "rank_p_value": "rank p",
    "rank_max_min": "rank max/min",
    "rank_max_min_perfect_model": "rank max/min floor",
    "rank_max_min_error_surrogate": "rank max/min floor (error correlation)",
    "n_verified": "points",
    "n_missing_truth": "truth missing",
}


def figure_png(fig: Figure, dpi: int = 90) -> str:
    """A figure as a base64-encoded PNG (for an ``<img src="data:...">``)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def scorecard_table(scorecard: xr.Dataset) -> pd.DataFrame:
    """The scorecard as the report shows it: one row per variable and lead (hours)."""
    frame = scorecard.to_dataframe()
    extra = [c for c in frame.columns if c.startswith("brier_score_")]
    frame = frame[[c for c in (*_SCORECARD_COLUMNS, *extra) if c in frame.columns]]
    frame = frame.rename(
        columns=_SCORECARD_COLUMNS | {c: c.replace("brier_score_", "Brier > ") for c in extra}
    )
    hours = frame.index.get_level_values("lead_time") / pd.Timedelta(hours=1)
    frame.index = pd.MultiIndex.from_arrays(
        [frame.index.get_level_values("variable"), hours], names=["variable", "lead (h)"]
    )
    return frame


def _physics_rows(physics: xr.Dataset) -> str:
    rows, previous = [], None
    for name in physics["check"].values:
        sel = physics.sel(check=name)
        family = str(sel["family"].values) if "family" in sel.coords else str(name)
        meaning = "" if family == previous else str(sel["description"].values)
        previous = family
        passed = int(sel["passed"].sum())
        total = sel["passed"].size
        verdict = "pass" if passed == total else "fail"
        rows.append(
            "<tr>"
            f"<td class='text'><b>{html.escape(str(name))}</b></td>"
            f"<td class='text'>{html.escape(meaning)}</td>"
            f"<td>{float(sel['truth_score']):.4g}</td>"
            f"<td>{float(sel['tolerance']):.4g}<br><span class='note'>"
            f"{html.escape(str(sel['tolerance_rule'].values))}</span></td>"
            f"<td>{float(sel['member_score'].median()):.4g}</td>"
            f"<td class='{verdict}'>{verdict.upper()} ({passed}/{total} members)</td>"
            "</tr>"
        )
    return "\n".join(rows)


def _not_computed_rows(physics: xr.Dataset) -> str:
    if "reason" not in physics:
        return ""
    return "\n".join(
        "<tr>"
        f"<td class='text'><b>{html.escape(str(label))}</b></td>"
        f"<td class='text' colspan='4'>{html.escape(str(reason))}</td>"
        "<td>n/a</td>"
        "</tr>"
        for label, reason in zip(
            physics["not_computed"].values, physics["reason"].values, strict=True
        )
    )


def _physics_section(tree: xr.DataTree) -> str:
    if "physics" not in tree.children:
        return "<p class='note'>Physics checks were not run (physics_init_times = 0).</p>"
    physics = tree["physics"].to_dataset()
    rows = _physics_rows(physics) if "check" in physics.dims else ""
    unavailable = _not_computed_rows(physics)
    if not rows and not unavailable:
        return "<p class='note'>No physics check applies.</p>"
    return (
        "<p>Each check scores every member and, the same way, the verifying analysis; the "
        "tolerance is derived from the analysis's own score, so members are asked to be as "
        "physically consistent as the truth, not more. A check or part that cannot be "
        "computed from these data is n/a, with the reason.</p>"
        "<table><tr><th>check</th><th>what it means</th><th>truth score</th><th>tolerance</th>"
        f"<th>median member</th><th>verdict</th></tr>{rows}{unavailable}</table>"
    )


def _figure_html(item: Captioned) -> str:
    return (
        f"<figure><h3>{html.escape(item.title)}</h3>"
        f"<img alt='{html.escape(item.title)}' src='data:image/png;base64,{figure_png(item.figure)}'>"
        f"<figcaption>{html.escape(item.caption)}</figcaption></figure>"
    )


def render_report(
    tree: xr.DataTree, *, title: str = "Ensemble verification", sources: str = ""
) -> str:
    """The report as one HTML string."""
    root = tree.to_dataset()
    card = tree["scorecard"].to_dataset()
    leads = card["lead_time"].values / np.timedelta64(1, "h")
    missing = root.attrs.get("missing_valid_times") or []
    missing = [missing] if isinstance(missing, str) and missing else list(missing)
    summary = (
        f"<p>{int(root.attrs.get('n_members', 0))} members, {int(root.attrs.get('n_init_times', 0))} "
        f"init times, leads {', '.join(f'{h:g}' for h in leads)} h, variables "
        f"{', '.join(map(str, card['variable'].values))}. Scores are cos-latitude-weighted means "
        f"over {html.escape(', '.join(map(str, np.atleast_1d(root.attrs.get('mean_over', [])))))}. "
        f"{len(missing)} valid time(s) missing from the analysis (skipped and counted).</p>"
    )
    table = scorecard_table(card).to_html(float_format=lambda v: f"{v:.4g}", border=0)
    body = "\n".join(_figure_html(item) for item in report_figures(tree))
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>"
        f"<h1>{html.escape(title)}</h1><p class='note'>{html.escape(sources)} — generated {stamp} by wxens</p>"
        f"<h2>Summary</h2>{summary}"
        "<h2>Scorecard</h2><p class='note'>fair CRPS: unbiased for the ensemble's distribution "
        "(lower is better); spread/skill: with the finite-ensemble factor sqrt((M+1)/M), 1 is "
        "reliable; rank δ: Candille–Talagrand flatness, about 1 when flat (inflated by spatial "
        "correlation); rank max/min: largest over smallest bin of the rank histogram, 1 when flat, "
        "beside its floor, what a perfectly reliable ensemble of this size shows on this sample "
        "(members standing in for the truth); Brier > qNN: events above the truth's NN% "
        "quantile.</p>"
        f"{table}<h2>Physical consistency</h2>{_physics_section(tree)}"
        f"<h2>Figures</h2>{body}</body></html>"
    )


def write_report(
    tree: xr.DataTree, path: str | Path, *, title: str = "Ensemble verification", sources: str = ""
) -> Path:
    """Write :func:`render_report` to ``path`` atomically; returns the path."""
    text = render_report(tree, title=title, sources=sources)
    with atomic_output(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)
