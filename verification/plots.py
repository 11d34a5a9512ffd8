"""Matplotlib figures of a verification tree (:func:`verification.scorecard.verify`).

Every function takes a group of the tree and returns a ``matplotlib.figure.Figure``
built without ``pyplot``, so nothing depends on a display or a global backend (headless
servers, dask workers, notebooks alike). :func:`report_figures` lists the figures the
HTML report shows, each with a caption.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import xarray as xr
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter

from pipeline.schema import LEAD_TIME
from verification.config import VARIABLE

MAX_COLUMNS = 4
MAX_LEADS = 4
MAX_VARIABLES = 8


@dataclass(frozen=True)
class Captioned:
    """A figure for the report: a title, what it shows and how to read it."""

    title: str
    caption: str
    figure: Figure


def _lead_hours(ds: xr.Dataset | xr.DataArray) -> np.ndarray:
    return ds[LEAD_TIME].values / np.timedelta64(1, "h")


def _spacing(
    fig: Figure, *, hspace: float = 0.45, right: float = 0.97, bottom_inches: float = 0.55
) -> None:
    """Fixed margins, in inches so small figures keep room for titles and axis labels
    (a layout engine is slow on figures with dozens of axes)."""
    width, height = fig.get_size_inches()
    fig.subplots_adjust(
        left=min(0.7 / width, 0.3),
        right=right,
        bottom=min(bottom_inches / height, 0.4),
        top=max(1 - 0.4 / height, 0.6),
        wspace=0.3,
        hspace=hspace,
    )


def _grid(
    n: int, width: float = 3.6, height: float = 3.0, columns: int = MAX_COLUMNS
) -> tuple[Figure, np.ndarray]:
    cols = max(1, min(n, columns))
    rows = math.ceil(n / cols)
    fig = Figure(figsize=(width * cols, height * rows))
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False).ravel())
    _spacing(fig)
    for ax in axes[n:]:
        ax.set_visible(False)
    return fig, axes


def plot_scores_by_lead(scorecard: xr.Dataset) -> Figure:
    """Fair CRPS (and the reference's, when verified beside one), ensemble-mean RMSE and
    spread against lead time, one panel per variable."""
    variables = scorecard[VARIABLE].values
    fig, axes = _grid(len(variables))
    hours = _lead_hours(scorecard)
    for ax, name in zip(axes, variables, strict=False):
        card = scorecard.sel({VARIABLE: name})
        for score, style in (
            ("fair_crps", "o-"),
            ("reference_fair_crps", "x-."),
            ("ensemble_mean_rmse", "s--"),
            ("ensemble_spread", "^:"),
        ):
            if score in card:
                ax.plot(hours, card[score].values, style, label=score.replace("_", " "))
        ax.set_title(str(name))
        ax.set_xlabel("lead time (h)")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize="small")
    return fig


def plot_spread_skill_ratio(scorecard: xr.Dataset) -> Figure:
    """Spread-skill ratio (with the finite-ensemble factor) against lead time, all variables,
    shaded over its bootstrap interval when the scorecard has one."""
    fig = Figure(figsize=(6.5, 4))
    ax = fig.subplots()
    _spacing(fig)
    hours = _lead_hours(scorecard)
    for name in scorecard[VARIABLE].values:
        card = scorecard.sel({VARIABLE: name})
        (line,) = ax.plot(hours, card["spread_skill_ratio"].values, "o-", label=str(name))
        if "spread_skill_ratio_low" in card:
            ax.fill_between(
                hours,
                card["spread_skill_ratio_low"].values,
                card["spread_skill_ratio_high"].values,
                color=line.get_color(),
                alpha=0.15,
                lw=0,
            )
    ax.axhline(1.0, color="k", lw=1)
    ax.set_xlabel("lead time (h)")
    ax.set_ylabel("spread-skill ratio")
    ax.legend(fontsize="small", ncol=2)
    ax.grid(alpha=0.3)
    return fig


def _some_leads(ds: xr.Dataset | xr.DataArray) -> xr.Dataset | xr.DataArray:
    n = ds.sizes[LEAD_TIME]
    return ds.isel(
        {LEAD_TIME: np.unique(np.linspace(0, n - 1, min(n, MAX_LEADS)).round().astype(int))}
    )


def plot_rank_histograms(counts: xr.DataArray, scorecard: xr.Dataset | None = None) -> Figure:
    """Rank histograms, variables by rows and (up to four) leads by columns.

    Bars are the frequency of each rank times (M + 1), so a flat, reliable histogram
    sits on the line at 1; U-shaped is under-dispersive, dome over-dispersive. With the
    ``scorecard``, each panel gives its max/min bin ratio and that ratio's perfect-model
    floor (``rank_max_min``, ``rank_max_min_perfect_model``).
    """
    counts = _some_leads(counts)
    variables, leads = counts[VARIABLE].values[:MAX_VARIABLES], counts[LEAD_TIME].values
    fig = Figure(figsize=(2.6 * len(leads) + 0.6, 1.9 * len(variables) + 0.8))
    axes = fig.subplots(len(variables), len(leads), squeeze=False, sharex=True)
    _spacing(fig, hspace=0.3, bottom_inches=0.8)
    ranks = counts["rank"].values
    for i, name in enumerate(variables):
        for j, lead in enumerate(leads):
            c = counts.sel({VARIABLE: name, LEAD_TIME: lead}).values.astype(float)
            ax = axes[i, j]
            bars = c / max(c.sum(), 1) * len(ranks)
            ax.bar(ranks, bars, width=1.0, color="tab:blue", alpha=0.8)
            ax.axhline(1.0, color="k", lw=1)
            if scorecard is not None and "rank_max_min" in scorecard:
                ax.set_ylim(0, 1.3 * max(bars.max(), 1.0))  # room for the label
                ax.text(
                    0.5,
                    0.97,
                    _rank_ratio_label(scorecard.sel({VARIABLE: name, LEAD_TIME: lead})),
                    transform=ax.transAxes,
                    ha="center",
                    va="top",
                    fontsize=8,
                )
            if i == 0:
                ax.set_title(f"{lead / np.timedelta64(1, 'h'):g} h")
            if j == 0:
                ax.set_ylabel(str(name))
    fig.supxlabel("rank of the truth among the members", y=0.12 / fig.get_size_inches()[1])
    return fig


def _rank_ratio_label(card: xr.Dataset) -> str:
    label = f"max/min {float(card['rank_max_min']):.2f}"
    if "rank_max_min_perfect_model" in card:
        label += f" (floor {float(card['rank_max_min_perfect_model']):.2f})"
    return label


def plot_reliability(table: xr.Dataset) -> Figure:
    """Reliability diagrams, one panel per event, one line per variable (all leads pooled)."""
    pooled = table[["count", "event_count"]].sum(LEAD_TIME)
    events = pooled["event"].values
    fig, axes = _grid(len(events), width=4.2, height=4.0)
    p = pooled["forecast_probability"].values
    for ax, event in zip(axes, events, strict=False):
        for name in pooled[VARIABLE].values:
            sel = pooled.sel({"event": event, VARIABLE: name})
            n = sel["count"].values
            frequency = np.where(n > 0, sel["event_count"].values / np.maximum(n, 1), np.nan)
            ax.plot(p, frequency, "o-", ms=3, label=str(name))
        ax.plot([0, 1], [0, 1], "k", lw=1)
        ax.set_title(f"event: value > {event} of the truth")
        ax.set_xlabel("forecast probability")
        ax.set_ylabel("observed frequency")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize="small", ncol=2)
    return fig


def plot_spectra(spectra: xr.Dataset) -> Figure:
    """Member and truth power spectra at the longest lead (top) and their ratio (bottom)."""
    last = spectra.isel({LEAD_TIME: -1})
    variables = last[VARIABLE].values[:MAX_VARIABLES]
    k_dim = next(d for d in last["truth_power"].dims if d != VARIABLE)
    cols = min(len(variables), MAX_COLUMNS)
    rows = math.ceil(len(variables) / cols)
    fig = Figure(figsize=(3.4 * cols, 5.4 * rows))
    axes = fig.subplots(2 * rows, cols, squeeze=False)
    _spacing(fig, hspace=0.5)
    k = last[k_dim].values
    positive = k > 0
    for index, name in enumerate(variables):
        top, bottom = (
            axes[2 * (index // cols), index % cols],
            axes[2 * (index // cols) + 1, index % cols],
        )
        sel = last.sel({VARIABLE: name})
        top.loglog(k[positive], sel["truth_power"].values[positive], "k-", label="truth")
        top.loglog(k[positive], sel["forecast_power"].values[positive], "r--", label="members")
        top.set_title(str(name))
        bottom.semilogx(k[positive], sel["spectral_ratio"].values[positive], "r-")
        bottom.axhline(1.0, color="k", lw=1)
        bottom.set_xlabel(
            k_dim.replace("_", " ") + (" (cycles/km)" if k_dim == "wavenumber" else "")
        )
        bottom.set_ylabel("members / truth")
    for index in range(len(variables), rows * cols):
        for row in (2 * (index // cols), 2 * (index // cols) + 1):
            axes[row, index % cols].set_visible(False)
    for ax in axes.ravel():
        ax.xaxis.set_minor_formatter(NullFormatter())
    axes[0, 0].legend(fontsize="small")
    return fig


def plot_member_maps(maps: xr.Dataset, max_variables: int = 4) -> Figure:
    """The truth beside a few members, one row per variable, one colour scale per row."""
    variables = maps[VARIABLE].values[:max_variables]
    n_members = maps.sizes["member"]
    fig = Figure(figsize=(3.0 * (n_members + 1) + 1.0, 2.6 * len(variables) + 0.4))
    axes = fig.subplots(len(variables), n_members + 1, squeeze=False)
    _spacing(fig, right=0.88)
    for i, name in enumerate(variables):
        truth = maps["truth"].sel({VARIABLE: name})
        members = maps["forecast"].sel({VARIABLE: name})
        lo, hi = float(np.nanmin(truth)), float(np.nanmax(truth))
        panels = [("truth", truth)] + [
            (f"member {int(m)}", members.sel(member=m)) for m in members["member"].values
        ]
        for j, (label, field) in enumerate(panels):
            ax = axes[i, j]
            mesh = ax.pcolormesh(
                field["longitude"],
                field["latitude"],
                field.values,
                vmin=lo,
                vmax=hi,
                shading="auto",
            )
            ax.set_title(f"{name}: {label}", fontsize="small")
            ax.set_aspect("auto")
        fig.colorbar(mesh, ax=axes[i, :], shrink=0.8, pad=0.02)
    return fig


def plot_physics(physics: xr.Dataset) -> Figure:
    """Each physics check: member scores (dots), the truth's score and the tolerance."""
    checks = physics["check"].values
    fig, axes = _grid(len(checks), width=3.4, height=3.0, columns=5)
    for ax, name in zip(axes, checks, strict=False):
        sel = physics.sel(check=name)
        scores = sel["member_score"].values
        colors = np.where(sel["passed"].values, "tab:green", "tab:red")
        ax.scatter(np.arange(scores.size), scores, c=colors, s=14)
        ax.axhline(float(sel["tolerance"]), color="tab:red", ls="--", label="tolerance")
        ax.axhline(float(sel["truth_score"]), color="k", lw=1, label="truth")
        ax.set_title(str(name), fontsize="small")
        ax.set_xlabel("member")
        units = str(sel["units"].values)
        ax.set_ylabel("score (dimensionless)" if units in ("", "1") else units)
    axes[0].legend(fontsize="small")
    return fig


def report_figures(tree: xr.DataTree) -> list[Captioned]:
    """The figures of the report, in order, for the groups the tree holds."""
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
            "spread), above 1 under-confident.",
            plot_spread_skill_ratio(tree["scorecard"].to_dataset()),
        ),
        Captioned(
            "Rank histograms",
            "Where the truth falls among the sorted members. Flat (the line at 1) is reliable; "
            "U-shaped means too little spread, a dome too much, a slope a bias. Each panel "
            "gives the largest over the smallest bin, and the same ratio for a perfectly "
            "reliable ensemble of this size on this sample (members standing in for the "
            "truth): the floor that correlated ranks leave even then.",
            plot_rank_histograms(
                tree["rank_histogram"].to_dataset()["rank_histogram"],
                tree["scorecard"].to_dataset(),
            ),
        ),
        Captioned(
            "Reliability diagrams",
            "Observed frequency of the event against the forecast probability (share of members "
            "with the event). On the diagonal is reliable; a finite ensemble bends slightly "
            "toward the climatological frequency even when reliable.",
            plot_reliability(tree["reliability"].to_dataset()),
        ),
    ]
    if "spectra" in tree.children:
        figures.append(
            Captioned(
                "Power spectra",
                "Power of members (mean) and truth by wavenumber at the longest lead; the ratio "
                "below 1 at high wavenumbers means smoothed members, above 1 noisy ones.",
                plot_spectra(tree["spectra"].to_dataset()),
            )
        )
    if "maps" in tree.children:
        maps = tree["maps"].to_dataset()
        figures.append(
            Captioned(
                "Members beside the truth",
                f"Init {str(maps['init_time'].values)[:16]}, lead "
                f"{maps['lead_time'].values / np.timedelta64(1, 'h'):g} h: the verifying analysis "
                "and the first members, on one colour scale per variable.",
                plot_member_maps(maps),
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
