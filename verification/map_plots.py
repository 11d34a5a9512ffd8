"""Maps of members beside the truth (the verification tree's ``/maps`` group), on one colour
scale per variable; a module of its own beside :mod:`verification.plots`, which it draws
with (figure size, units labels)."""

from __future__ import annotations

import numpy as np
import xarray as xr
from matplotlib.figure import Figure

from verification.config import VARIABLE
from verification.plots import (
    PAGE_WIDTH_INCHES,
    channel_units,
    label_with_units,
    panel_figure,
)

MAP_PERCENTILES = (0.5, 99.5)
"""The member maps' colour range: these percentiles of the truth and the members pooled;
values beyond it show at the ends of the colour bar, whose arrows say so."""


def map_colour_range(*fields: xr.DataArray) -> tuple[float, float, str]:
    """One colour range for ``fields``: the :data:`MAP_PERCENTILES` of their values pooled
    (NaN ignored), and the colour bar's ``extend`` (which ends have values beyond it)."""
    values = np.concatenate([np.ravel(np.asarray(f, dtype=float)) for f in fields])
    values = values[np.isfinite(values)]
    if values.size == 0:
        return 0.0, 1.0, "neither"
    lo, hi = (float(v) for v in np.percentile(values, MAP_PERCENTILES))
    if hi <= lo:
        lo, hi = lo - 0.5, hi + 0.5
    below, above = bool((values < lo).any()), bool((values > hi).any())
    extend = {(True, True): "both", (True, False): "min", (False, True): "max"}
    return lo, hi, extend.get((below, above), "neither")


def plot_member_maps(maps: xr.Dataset, max_variables: int = 4) -> Figure:
    """The truth beside a few members, one row per variable, each row on one colour scale
    covering the truth and the members (:func:`map_colour_range`), labelled with units."""
    variables = maps[VARIABLE].values[:max_variables]
    n_members = maps.sizes["member"]
    width = min(2.8, (PAGE_WIDTH_INCHES - 1.2) / (n_members + 1))
    fig = panel_figure(n_members + 1, len(variables), width, 2.4, extra=1.2)
    axes = fig.subplots(len(variables), n_members + 1, squeeze=False, sharex=True, sharey=True)
    for i, name in enumerate(variables):
        truth = maps["truth"].sel({VARIABLE: name})
        members = maps["forecast"].sel({VARIABLE: name})
        lo, hi, extend = map_colour_range(truth, members)
        panels = [("truth", truth)] + [
            (f"member {int(m)}", members.sel(member=m)) for m in members["member"].values
        ]
        for j, (label, field) in enumerate(panels):
            ax = axes[i, j]
            lon, lat = field["longitude"], field["latitude"]
            mesh = ax.pcolormesh(lon, lat, field.values, vmin=lo, vmax=hi, shading="auto")
            ax.set_title(f"{name}: {label}", fontsize="small")
            ax.set_aspect("auto")
            ax.set_xlabel("longitude (°E)", fontsize="small")
            ax.set_ylabel("latitude (°N)", fontsize="small")
            ax.label_outer()
        bar = fig.colorbar(mesh, ax=axes[i, :], shrink=0.9, pad=0.02, extend=extend)
        bar.set_label(label_with_units(str(name), channel_units(name)))
    return fig
