"""The paired judgment of ``wxens compare``: where two scores files both hold verify's
per-init fair CRPS (``/per_init``, :func:`verification.card_groups.per_init_group`) of the
same initial times, the block-bootstrap interval of the mean of their day-by-day
difference (:func:`paired_intervals`). Two forecasts of the same days share the weather, so
their errors correlate: the paired interval is far narrower than the two unpaired ones
side by side, which can overlap where every day shows the difference. It is drawn as
``wxens verify --reference`` draws its own (:func:`verification.comparison.interval_card`,
with the files' own blocks, draws, level and seed), so it reads as the files' intervals do.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import xarray as xr

from pipeline.schema import INIT_TIME
from verification.card_groups import INTERVAL_SETTINGS
from verification.comparison import interval_card
from verification.config import VerifyConfig
from verification.output import UNITS_PER_VARIABLE, VARIABLE_UNITS

if TYPE_CHECKING:
    from verification.compare import Scores

EXPERIMENT = "experiment"
#: The dim of the experiment each one's CRPS is paired with (its names, as ``experiment``).
RIVAL = "rival"
#: The table's entries ``fair_crps_paired_low/high``: the interval of the mean CRPS of an
#: experiment minus its rival's.
PAIRED = "fair_crps_paired"


def paired_intervals(experiments: list[Scores], at: dict[str, list]) -> xr.Dataset:
    """``fair_crps_paired_low/high`` (experiment, rival and ``at``'s dims: the variables
    and leads compared): the interval of mean CRPS(experiment) - CRPS(rival) over their
    initial times; NaN where the pair is not :func:`pairable`, for an experiment and itself,
    and where too few blocks hold a value. Empty where no pair is pairable."""
    names = [e.name for e in experiments]
    pairs = {
        (e.name, r.name): _difference(e, r, at)
        for e in experiments
        for r in experiments
        if e is not r and pairable(e, r, at)
    }
    if not pairs:
        return xr.Dataset()
    out = xr.Dataset()
    for side in ("low", "high"):
        rows = [
            xr.concat(
                [pairs[(e, r)][side] if (e, r) in pairs else _nan(pairs) for r in names], RIVAL
            )
            for e in names
        ]
        attrs = {
            "long_name": f"fair CRPS minus the rival's, paired by initial time: {side} end of "
            "its block-bootstrap interval (the files' blocks, draws, level and seed)",
            UNITS_PER_VARIABLE: VARIABLE_UNITS,
        }
        out[f"{PAIRED}_{side}"] = xr.concat(rows, EXPERIMENT).assign_attrs(attrs)
    return out.reset_coords(drop=True).assign_coords({EXPERIMENT: names, RIVAL: names})


def pairable(e: Scores, r: Scores, at: dict[str, list]) -> bool:
    """Whether the CRPS of ``e`` and ``r`` pair by initial time on ``at``
    (:func:`why_unpaired` finds no reason they do not)."""
    return why_unpaired(e, r, at) is None


def why_unpaired(e: Scores, r: Scores, at: dict[str, list]) -> str | None:
    """Why the CRPS of ``e`` and ``r`` do not pair by initial time on ``at``, None where
    they do: both files must hold ``/per_init`` (an older wxens wrote none), of the same
    initial times, drawn with the same interval settings, and verify the same share of the
    grid at each (the same points; else their means are over other weather)."""
    lacking = [s.name for s in (e, r) if s.per_init is None]
    if lacking:
        return f"no /per_init in {' and '.join(lacking)}"
    if set(e.per_init[INIT_TIME].values) != set(r.per_init[INIT_TIME].values):
        return "other initial times"
    settings = [n for n in INTERVAL_SETTINGS if e.per_init.attrs.get(n) != r.per_init.attrs.get(n)]
    if settings:
        return f"other interval settings ({', '.join(settings)})"
    a, b = (s.per_init.sel(at).sel({INIT_TIME: e.per_init[INIT_TIME]}) for s in (e, r))
    same = np.allclose(a["weight"], b["weight"], equal_nan=True)
    return None if same else "other points verified"


def unpaired_lines(experiments: list[Scores], at: dict[str, list]) -> list[str]:
    """What the legend says of the files whose fair CRPS did not pair, and the fix: a line
    per file without ``/per_init``, one per other pair that did not pair."""
    lines = [
        f"{e.name} ({e.source}): no /per_init (written by an older wxens, or with "
        "--interval-level 0): verify it again to pair it"
        for e in experiments
        if e.per_init is None and len(experiments) > 1
    ]
    held = [e for e in experiments if e.per_init is not None]
    for i, e in enumerate(held):
        for r in held[i + 1 :]:
            if (why := why_unpaired(e, r, at)) is not None:
                lines.append(f"{e.name} and {r.name}: {why}")
    return lines


def _difference(e: Scores, r: Scores, at: dict[str, list]) -> dict[str, xr.DataArray]:
    """The ends of the interval of mean CRPS(e) - CRPS(r), weighted by ``e``'s shares."""
    a = e.per_init.sel(at)
    b = r.per_init.sel(at).sel({INIT_TIME: a[INIT_TIME]})
    parts = xr.Dataset({"fair_crps": a["fair_crps"] - b["fair_crps"], "weight": a["weight"]})
    settings = e.per_init.attrs
    config = VerifyConfig(
        interval_level=float(settings["interval_level"]),
        interval_block=str(settings["interval_block"]),
        interval_draws=int(settings["interval_draws"]),
        seed=int(settings["seed"]),
    )
    bounds = interval_card(parts.drop_attrs(), 0, config, say=False)  # no spread: no M
    return {side: bounds[f"fair_crps_{side}"].drop_attrs() for side in ("low", "high")}


def _nan(pairs: dict) -> xr.DataArray:
    """An end of no interval, shaped as the others."""
    return xr.full_like(next(iter(pairs.values()))["low"], np.nan)
