"""Physical bounds: values no analysis would hold (negative humidity, 400 K air)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import xarray as xr

from pipeline.schema import VARIABLES
from verification.aggregation import mean_of, mean_terms
from verification.base import register_check
from verification.physics.common import TruthRelativeCheck, has, labelled, over_all_but

#: Pairs of wind components whose speed is bounded by the component bound.
WIND_PAIRS = (("u", "v"), ("u10", "v10"))


def _bounded(name: str) -> bool:
    spec = VARIABLES.get(name)
    return spec is not None and (spec.lower_bound is not None or spec.upper_bound is not None)


@register_check
@dataclass(frozen=True)
class PhysicalBounds(TruthRelativeCheck):
    """Values outside the physical bounds of :data:`pipeline.schema.VARIABLES`, per variable.

    Temperatures within 150-350 K, humidity and precipitation ≥ 0, wind components and
    wind speed (a part of its own, ``wind speed u/v``) within the component bound. Score:
    the fraction of values out of bounds. Tolerance: no more often than the truth.
    """

    name: ClassVar[str] = "physical_bounds"
    description: ClassVar[str] = (
        "Values outside physical bounds (temperatures 150–350 K, humidity and precipitation ≥ 0, "
        "wind speed within its limit), per variable. Score: fraction of values out of bounds; "
        "a member may break bounds no more often than the analysis."
    )
    units: ClassVar[str] = "1"
    requires: ClassVar[str] = "a variable with physical bounds"
    factor: float = 1.0
    floor: float = 0.0

    def applies(self, forecast: xr.Dataset) -> bool:
        return any(_bounded(str(n)) for n in forecast.data_vars)

    def reads(self, forecast: xr.Dataset) -> list[str]:
        bounded = [str(n) for n in forecast.data_vars if _bounded(str(n))]
        winds = [n for pair in WIND_PAIRS if has(forecast, pair) for n in pair]
        return list(dict.fromkeys(bounded + winds))

    def terms(self, ds: xr.Dataset) -> xr.Dataset:
        out_of_bounds, labels = [], []
        for name in (str(n) for n in ds.data_vars if _bounded(str(n))):
            spec = VARIABLES[name]
            da = ds[name]
            bad = (da < spec.lower_bound if spec.lower_bound is not None else False) | (
                da > spec.upper_bound if spec.upper_bound is not None else False
            )
            out_of_bounds.append(bad.where(da.notnull()))
            labels.append(name)
        for u, v in WIND_PAIRS:
            if has(ds, (u, v)) and VARIABLES[u].upper_bound is not None:
                speed = np.hypot(ds[u], ds[v])
                out_of_bounds.append((speed > VARIABLES[u].upper_bound).where(speed.notnull()))
                labels.append(f"wind speed {u}/{v}")
        sums = [mean_terms(bad.astype(float), over_all_but(bad)) for bad in out_of_bounds]
        return xr.Dataset(
            {
                "out": labelled([out for out, _ in sums], labels),
                "weight": labelled([weight for _, weight in sums], labels),
            }
        )

    def from_terms(self, terms: xr.Dataset) -> xr.DataArray:
        return mean_of(terms["out"], terms["weight"])
