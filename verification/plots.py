"""Matplotlib figures of a verification tree (:func:`verification.scorecard.verify`).

Every function takes a group of the tree and returns a ``matplotlib.figure.Figure``
built without ``pyplot``, so nothing depends on a display or a global backend (headless
servers, dask workers, notebooks alike), laid out by matplotlib's constrained layout and
never wider than :data:`PAGE_WIDTH_INCHES` (the report's page). Every axis is labelled,
with units where the variable has them; legends sit outside the panels.
"""

from __future__ import annotations

import math
import textwrap

import numpy as np
import xarray as xr
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import TwoSlopeNorm
from matplotlib.figure import Figure
from matplotlib.ticker import FormatStrFormatter, LogLocator, MaxNLocator, NullFormatter

from pipeline.schema import LEAD_TIME, VARIABLES, split_channel
from verification.config import VARIABLE
from verification.spectra import SPECTRUM_REASON

MAX_COLUMNS = 4
MAX_VARIABLES = 8
PAGE_WIDTH_INCHES = 13.0
"""The widest figure: at the report's 90 dpi it fits the page's 1,200 px column, so no
figure is shown scaled down."""
MAX_RANK_PANELS = 48
"""Above this many (variable, lead) rank histograms, each variable's histograms are drawn
as one image of rank against lead instead of one bar chart per lead."""


def _lead_hours(ds: xr.Dataset | xr.DataArray) -> np.ndarray:
    return ds[LEAD_TIME].values / np.timedelta64(1, "h")


def channel_units(channel: str) -> str:
    """The units of a channel (``"z500"`` -> ``"m2 s-2"``); empty when not in the vocabulary."""
    try:
        return VARIABLES[split_channel(str(channel))[0]].units
    except (ValueError, KeyError):
        return ""


def label_with_units(label: str, units: str) -> str:
    """``"t2m", "K"`` -> ``"t2m (K)"``; the label alone without units."""
    return f"{label} ({units})" if units else label


def panel_figure(
    columns: int, rows: int, width: float, height: float, extra: float = 0.0
) -> Figure:
    """A figure of ``columns`` x ``rows`` panels of about ``width`` x ``height`` inches
    (plus ``extra`` inches of width for colour bars), never wider than
    :data:`PAGE_WIDTH_INCHES`, laid out by matplotlib's constrained layout (labels, titles
    and legends outside the axes are never clipped or overlapped)."""
    size = (min(width * columns + extra, PAGE_WIDTH_INCHES), height * rows + 0.5)
    return Figure(figsize=size, layout="constrained")


def _grid(
    n: int, width: float = 3.2, height: float = 2.8, columns: int = MAX_COLUMNS
) -> tuple[Figure, np.ndarray]:
    cols = max(1, min(n, columns))
    rows = math.ceil(n / cols)
    fig = panel_figure(cols, rows, width, height)
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False).ravel())
    for ax in axes[n:]:
        ax.set_visible(False)
    return fig, axes


def _lead_axis(ax, hours: np.ndarray) -> None:
    """An x axis of lead times ticked at whole hours (not 7.5 h, or 5.8 h around one lead)."""
    ax.set_xlabel("lead time (h)")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if hours.size == 1:
        ax.set_xlim(hours[0] - 1, hours[0] + 1)


def _legend_above(fig: Figure, ax, columns: int = 4) -> None:
    """One legend for the figure, above the panels (it covers no data), in the most columns
    up to ``columns`` that fit the figure's width (a wider row widened the image)."""
    handles, labels = ax.get_legend_handles_labels()
    renderer = FigureCanvasAgg(fig).get_renderer()  # text extents, nothing drawn
    for ncol in range(min(columns, len(labels)), 0, -1):
        shown = fig.legend(handles, labels, loc="outside upper center", ncol=ncol, fontsize="small")
        if ncol == 1 or shown.get_window_extent(renderer).width <= fig.bbox.width:
            return
        shown.remove()


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
        _lead_axis(ax, hours)
        ax.set_ylabel(label_with_units("score", channel_units(name)))
        ax.grid(alpha=0.3)
    _legend_above(fig, axes[0])
    return fig


def plot_spread_skill_ratio(scorecard: xr.Dataset) -> Figure:
    """Spread-skill ratio (with the finite-ensemble factor) against lead time, all variables,
    shaded over its bootstrap interval when the scorecard has one."""
    fig = Figure(figsize=(8.0, 4.0), layout="constrained")
    ax = fig.subplots()
    hours = _lead_hours(scorecard)
    names = scorecard[VARIABLE].values
    for index, name in enumerate(names):
        card = scorecard.sel({VARIABLE: name})
        (line,) = ax.plot(
            hours, card["spread_skill_ratio"].values, label=str(name), **_line_style(index)
        )
        if "spread_skill_ratio_low" in card and len(names) <= MAX_SHADED:
            x = hours if hours.size > 1 else hours[0] + np.array([-0.2, 0.2])  # one: visible
            ax.fill_between(
                x,
                np.resize(card["spread_skill_ratio_low"].values, x.size),
                np.resize(card["spread_skill_ratio_high"].values, x.size),
                color=line.get_color(),
                alpha=0.15,
                lw=0,
            )
    ax.axhline(1.0, color="k", lw=1)
    _lead_axis(ax, hours)
    ax.set_ylabel("spread-skill ratio")
    ax.grid(alpha=0.3)
    if not np.isfinite(scorecard["spread_skill_ratio"].values).any():
        _not_available(ax, "the spread needs at least two members")
        ax.set_xlim(hours.min() - 1, hours.max() + 1)
        return fig
    columns = math.ceil(len(names) / 16)
    fig.legend(loc="outside right upper", fontsize="small", title="variable", ncol=columns)
    return fig


MAX_SHADED = 4
"""Above this many variables the spread-skill intervals are not shaded (overlapping bands
hide the lines); the calibration table gives them all."""


def _line_style(index: int) -> dict[str, str]:
    """A style per line that no other of the first 40 shares: the ten default colours,
    then again with another marker and dash."""
    turn = index // 10
    return {
        "color": f"C{index % 10}",
        "marker": "os^Dv"[turn % 5],
        "linestyle": ("-", "--", ":", "-.")[turn % 4],
    }


def _not_available(ax, why: str) -> None:
    """Say on an empty panel that its score could not be computed, and why."""
    box = {"facecolor": "white", "edgecolor": "none"}  # over the reference line, not under it
    ax.text(0.5, 0.7, f"n/a: {why}", transform=ax.transAxes, ha="center", va="center", bbox=box)


def plot_rank_histograms(counts: xr.DataArray, scorecard: xr.Dataset | None = None) -> Figure:
    """The rank histogram of every variable and lead.

    Bars are the frequency of each rank times (M + 1), so a flat, reliable histogram
    sits on the line at 1; U-shaped is under-dispersive, dome over-dispersive. One bar
    chart per (variable, lead), each variable's leads in rows of up to six, with the
    ``scorecard`` each giving its max/min bin ratio and that ratio's perfect-model floor
    (``rank_max_min``, ``rank_max_min_perfect_model``). Beyond :data:`MAX_RANK_PANELS`
    charts, :func:`plot_rank_images` instead."""
    variables, leads = counts[VARIABLE].values, counts[LEAD_TIME].values
    if len(variables) * len(leads) > MAX_RANK_PANELS:
        return plot_rank_images(counts)
    columns = min(len(leads), 6)
    rows_per_variable = math.ceil(len(leads) / columns)
    fig = panel_figure(columns, rows_per_variable * len(variables), 2.15, 2.0)
    axes = fig.subplots(rows_per_variable * len(variables), columns, squeeze=False)
    ranks = counts["rank"].values
    for i, name in enumerate(variables):
        for j, lead in enumerate(leads):
            ax = axes[i * rows_per_variable + j // columns, j % columns]
            c = counts.sel({VARIABLE: name, LEAD_TIME: lead}).values.astype(float)
            bars = c / max(c.sum(), 1) * len(ranks)
            ax.bar(ranks, bars, width=1.0, color="tab:blue", alpha=0.8)
            ax.axhline(1.0, color="k", lw=1)
            ax.set_ylim(0, 1.3 * max(bars.max(), 1.0))  # room for the label
            if not c.sum():  # every forecast or truth of this lead NaN
                _not_available(ax, "no point verified")
            elif scorecard is not None and "rank_max_min" in scorecard:
                ax.text(
                    0.5,
                    0.97,
                    _rank_ratio_label(scorecard.sel({VARIABLE: name, LEAD_TIME: lead})),
                    transform=ax.transAxes,
                    ha="center",
                    va="top",
                    fontsize=7,
                )
            ax.set_title(f"{name}, {lead / np.timedelta64(1, 'h'):g} h", fontsize="medium")
            ax.set_xlabel("rank of the truth", fontsize="small")
            ax.set_ylabel("frequency × (M+1)", fontsize="small")
            ax.xaxis.set_major_locator(MaxNLocator(nbins=5, integer=True))  # 51 ranks: 0, 10, ..
        for j in range(len(leads), rows_per_variable * columns):
            axes[i * rows_per_variable + j // columns, j % columns].set_visible(False)
    return fig


def plot_rank_images(counts: xr.DataArray) -> Figure:
    """Every variable's rank histograms as one image: rank (x) against lead (y), coloured
    by frequency times (M + 1) on a scale centred on 1 (flat, reliable) — red where a rank
    is too frequent, blue where too rare; red edges are under-dispersion, a red side a bias."""
    variables, hours = counts[VARIABLE].values, _lead_hours(counts)
    fig, axes = _grid(len(variables), width=3.2, height=max(2.8, 0.12 * len(hours) + 1.2))
    ranks = counts["rank"].values
    frequency = counts / counts.sum("rank").clip(min=1) * len(ranks)
    norm = TwoSlopeNorm(vcenter=1.0, vmin=0.0, vmax=max(2.0, float(frequency.max())))
    rows = np.arange(len(hours))  # a row per lead, equal heights however uneven the leads
    every = math.ceil(len(hours) / 12)
    for ax, name in zip(axes, variables, strict=False):
        image = ax.pcolormesh(
            ranks,
            rows,
            frequency.sel({VARIABLE: name}).transpose(LEAD_TIME, "rank").values,
            cmap="RdBu_r",
            norm=norm,
            shading="nearest",
        )
        ax.set_yticks(rows[::every], [f"{h:g}" for h in hours[::every]])
        ax.xaxis.set_major_locator(MaxNLocator(nbins=5, integer=True))
        ax.set_title(str(name))
        ax.set_xlabel("rank of the truth")
        ax.set_ylabel("lead time (h)")
    bar = fig.colorbar(image, ax=axes.tolist(), shrink=0.8)
    bar.set_label("frequency × (M+1)")
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
    fig, axes = _grid(len(events), width=3.6, height=3.6)
    p = pooled["forecast_probability"].values
    for ax, event in zip(axes, events, strict=False):
        for name in pooled[VARIABLE].values:
            sel = pooled.sel({"event": event, VARIABLE: name})
            n = sel["count"].values
            frequency = np.where(n > 0, sel["event_count"].values / np.maximum(n, 1), np.nan)
            ax.plot(p, frequency, "o-", ms=3, label=str(name))
        ax.plot([0, 1], [0, 1], "k", lw=1)
        ax.set_title(f"event: value > {event} of the truth", fontsize="medium")
        ax.set_xlabel("forecast probability")
        ax.set_ylabel("observed frequency")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_aspect("equal")
        ax.grid(alpha=0.3)
    _legend_above(fig, axes[0], columns=8)
    return fig


def plot_spectra(spectra: xr.Dataset) -> Figure:
    """Member and truth power spectra at the longest lead (top) and their ratio (bottom); a
    variable without a spectrum (a masked field) has its panels say why."""
    last = spectra.isel({LEAD_TIME: -1})
    variables = last[VARIABLE].values[:MAX_VARIABLES]
    k_dim = next(d for d in last["truth_power"].dims if d != VARIABLE)
    k_label = k_dim.replace("_", " ") + (" (cycles/km)" if k_dim == "wavenumber" else "")
    cols = min(len(variables), MAX_COLUMNS)
    rows = math.ceil(len(variables) / cols)
    fig = panel_figure(cols, 2 * rows, 3.2, 2.6)
    axes = fig.subplots(2 * rows, cols, squeeze=False)
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
        top.set_xlabel(k_label)
        units = channel_units(name)
        squared = f"({units})²" if " " in units else f"{units}²" if units else ""
        if squared and k_dim != "wavenumber":  # zonal: power per unit wavenumber along a circle
            squared += " m"
        top.set_ylabel(label_with_units("power", squared))
        bottom.semilogx(k[positive], sel["spectral_ratio"].values[positive], "r-")
        bottom.axhline(1.0, color="k", lw=1)
        reason = str(sel[SPECTRUM_REASON].values) if SPECTRUM_REASON in sel.coords else ""
        if reason or not np.isfinite(sel["spectral_ratio"].values).any():
            why = f"no spectrum: {reason}" if reason else "NaN in the fields (masked)"
            _not_available(top, textwrap.fill(why, 30))  # the panel's width
            _not_available(bottom, "no ratio")
        bottom.set_xlabel(k_label)
        bottom.set_ylabel("members / truth")
    for index in range(len(variables), rows * cols):
        for row in (2 * (index // cols), 2 * (index // cols) + 1):
            axes[row, index % cols].set_visible(False)
    for ax in axes.ravel():
        _wavenumber_ticks(ax, k[positive])
    _legend_above(fig, axes[0, 0])
    return fig


def _wavenumber_ticks(ax, k: np.ndarray) -> None:
    """Log-axis ticks a reader can use: over less than two decades of ``k`` (a small grid's
    zonal wavenumbers 1-12 showed a single label, 10¹), 1-2-5 ticks as plain numbers;
    over more, matplotlib's decades. Minor ticks unlabelled."""
    if k.size and k.max() < 100 * k.min():
        ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_major_formatter(FormatStrFormatter("%g"))
    ax.xaxis.set_minor_formatter(NullFormatter())


def plot_physics(physics: xr.Dataset) -> Figure:
    """Each physics check: member scores (dots), the truth's score and the tolerance."""
    checks = physics["check"].values
    fig, axes = _grid(len(checks), width=3.2, height=2.8)
    for ax, name in zip(axes, checks, strict=False):
        sel = physics.sel(check=name)
        scores = sel["member_score"].values
        colors = np.where(sel["passed"].values, "tab:green", "tab:red")
        ax.scatter(np.arange(scores.size), scores, c=colors, s=14)
        ax.axhline(float(sel["tolerance"]), color="tab:red", ls="--", label="tolerance")
        ax.axhline(float(sel["truth_score"]), color="k", lw=1, label="truth")
        if not np.isfinite(scores).any():
            ax.text(0.5, 0.5, "n/a: not computable", transform=ax.transAxes, ha="center")
        ax.set_title(str(name), fontsize="small")
        ax.set_xlabel("member")
        units = str(sel["units"].values)
        ax.set_ylabel("score (dimensionless)" if units in ("", "1") else units)
    _legend_above(fig, axes[0])
    return fig
