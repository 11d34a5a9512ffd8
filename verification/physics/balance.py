"""Balance checks on pressure levels: hypsometric thickness per layer, geostrophic wind per
level.

Relations from Holton & Hakim, *An Introduction to Dynamic Meteorology*, 5th ed., §1.6.2
(hypsometric equation) and §3.2 (geostrophic wind).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

import dask
import numpy as np
import xarray as xr

from pipeline.schema import EARTH_RADIUS, LAT, LEVEL, LON, OMEGA, R_DRY, VIRTUAL_FACTOR
from verification.aggregation import mean_of, mean_terms
from verification.base import CheckResult, register_check
from verification.physics.common import PART, TruthRelativeCheck, has, labelled, over_all_but
from verification.spectra import is_global


@register_check
@dataclass(frozen=True)
class Hypsometric(TruthRelativeCheck):
    """Thickness of every layer between adjacent levels against the hypsometric equation.

    ``Φ_top - Φ_bottom = R_d T̄_v ln(p_bottom / p_top)`` with ``T̄_v`` the layer-mean
    (virtual, if ``q`` is given) temperature, trapezoidal in ln p: the mean of the two
    levels' temperatures. Score per layer: RMS residual over RMS thickness. The two-level
    mean is not the true layer mean, so even the analysis leaves a residual, larger for
    thicker layers.

    A level at which the members hold no ``z`` or ``t`` (NaN throughout) is stepped over:
    the layer between the levels either side of it is judged as one (``850-500 hPa``), the
    truth on the same thick layer, and each adjacent layer it bounds is n/a, saying so.
    """

    name: ClassVar[str] = "hypsometric"
    description: ClassVar[str] = (
        "Geopotential thickness of each layer between adjacent pressure levels against "
        "R_d · T̄ · ln(p_bottom/p_top) with the layer-mean temperature: temperature and "
        "geopotential must describe the same air column. Score: RMS residual / RMS thickness."
    )
    units: ClassVar[str] = "1"
    requires: ClassVar[str] = "z and t on at least two pressure levels"
    factor: float = 2.0
    floor: float = 2e-3

    def applies(self, forecast: xr.Dataset) -> bool:
        return (
            has(forecast, ("z", "t"))
            and LEVEL in forecast["z"].dims
            and forecast.sizes.get(LEVEL, 0) >= 2
        )

    def terms(self, ds: xr.Dataset) -> xr.Dataset:
        temperature = ds["t"] * (1 + VIRTUAL_FACTOR * ds["q"]) if "q" in ds else ds["t"]
        levels = sorted((float(p) for p in ds[LEVEL].values), reverse=True)  # bottom first
        parts, labels = [], []
        for bottom, top in zip(levels[:-1], levels[1:], strict=True):
            pair = {LEVEL: [bottom, top]}
            # the trapezoid in ln p over two levels: both, or NaN (never one level's alone)
            mean_t = temperature.sel(pair).mean(LEVEL, skipna=False)
            z = ds["z"].sel(pair)
            thickness = z.sel({LEVEL: top}, drop=True) - z.sel({LEVEL: bottom}, drop=True)
            residual = thickness - R_DRY * mean_t * np.log(bottom / top)
            thickness = thickness.where(residual.notnull())
            dims = over_all_but(residual)
            parts.append(mean_terms(residual**2, dims) + mean_terms(thickness**2, dims))
            labels.append(f"{bottom:g}-{top:g} hPa")
        names = ("residual", "residual_weight", "thickness", "thickness_weight")
        return xr.Dataset(
            {name: labelled([p[i] for p in parts], labels) for i, name in enumerate(names)}
        )

    def from_terms(self, terms: xr.Dataset) -> xr.DataArray:
        residual = mean_of(terms["residual"], terms["residual_weight"])
        return np.sqrt(residual / mean_of(terms["thickness"], terms["thickness_weight"]))

    def reads(self, forecast: xr.Dataset) -> list[str]:
        return ["z", "t"] + (["q"] if "q" in forecast else [])

    def judge(
        self, forecast: xr.Dataset, truth: xr.Dataset, initial: xr.Dataset | None = None
    ) -> list[CheckResult]:
        return self._over_held_levels(
            forecast, truth, lambda f, t: TruthRelativeCheck.judge(self, f, t, initial)
        )

    def judge_blocks(
        self, forecast: xr.Dataset, truth: xr.Dataset, initial: xr.Dataset | None, length: int
    ) -> list[CheckResult]:
        return self._over_held_levels(
            forecast,
            truth,
            lambda f, t: TruthRelativeCheck.judge_blocks(self, f, t, initial, length),
        )

    def _over_held_levels(
        self, forecast: xr.Dataset, truth: xr.Dataset, judge: Callable
    ) -> list[CheckResult]:
        """``judge(forecast, truth)`` on the levels at which the members hold every
        variable (all of them, usually), and n/a for each layer a level they lack bounds."""
        names = self.reads(forecast)
        # one field of each (the first member, time and lead): a read, not a pass over all
        first = {d: 0 for d in forecast["z"].dims if d not in (LEVEL, LAT, LON)}
        fields = [forecast[n].isel(first).notnull().any([LAT, LON]) for n in names]
        held = np.logical_and.reduce([f.values for f in dask.compute(*fields)])  # one read
        levels = np.sort(forecast[LEVEL].values.astype(float))[::-1]  # bottom first
        held = dict(zip(forecast[LEVEL].values.astype(float).tolist(), held.tolist(), strict=True))
        lacking = [p for p in levels if not held[p]]
        if not lacking:
            return judge(forecast, truth)
        kept = [p for p in levels if held[p]]
        results = []
        if len(kept) >= 2:
            pick = {LEVEL: [p for p in forecast[LEVEL].values if float(p) in kept]}
            results = judge(forecast.sel(pick), truth.sel(pick))
        spans = [
            f"{b:g}-{t:g} hPa"
            for b, t in zip(kept[:-1], kept[1:], strict=True)
            if any(t < p < b for p in lacking)
        ]
        instead = f"judged across as {', '.join(spans)}" if spans else "no layer spans it"
        missing = ", ".join(f"{p:g} hPa" for p in lacking)
        reason = f"the members lack {' or '.join(names)} at {missing} (NaN throughout); {instead}"
        members = forecast["z"].isel({d: 0 for d in forecast["z"].dims if d != "member"})
        for bottom, top in zip(levels[:-1], levels[1:], strict=True):
            if not (held[bottom] and held[top]):
                part = f"{bottom:g}-{top:g} hPa"
                results.append(CheckResult.not_computed(self, members, reason, part))
        return results


def geostrophic_wind(z: xr.DataArray) -> tuple[xr.DataArray, xr.DataArray]:
    """Geostrophic wind from geopotential on a sphere, centred differences.

    ``u_g = -(1/(f R)) ∂Φ/∂φ``, ``v_g = (1/(f R cos φ)) ∂Φ/∂λ``, ``f = 2Ω sin φ``; the
    longitude derivative wraps around on a global grid. NaN on the equator, where ``f = 0``
    leaves it undefined (not divided by, so a global grid prints no RuntimeWarning). Lazy
    on dask (the grid must be one chunk, as in wxens stores).
    """
    per_radian = 180.0 / np.pi
    phi = np.deg2rad(z[LAT])
    f = 2 * OMEGA * np.sin(phi)
    f = f.where(f != 0)
    dz_dphi = z.differentiate(LAT) * per_radian
    if is_global(z[LON]):
        # the neighbours' longitude difference, wrapped to (-180, 180]: right whether the
        # longitudes ascend or descend (a sign of the step lost flips v_g), and at the seam
        lon = z[LON].astype(np.float64)
        span = (lon.roll({LON: -1}) - lon.roll({LON: 1}) + 180.0) % 360.0 - 180.0
        dz_dlambda = (z.roll({LON: -1}) - z.roll({LON: 1})) / span.values * per_radian
    else:
        dz_dlambda = z.differentiate(LON) * per_radian
    return -dz_dphi / (f * EARTH_RADIUS), dz_dlambda / (f * EARTH_RADIUS * np.cos(phi))


@register_check
@dataclass(frozen=True)
class Geostrophic(TruthRelativeCheck):
    """Winds against the geostrophic wind of the geopotential, per level, in mid-latitudes.

    Score per level: ``mean |V - V_g| / mean |V|`` over 20° ≤ |φ| ≤ 80° (both
    hemispheres), every time and grid point, cos-lat weighted: the mean ageostrophic
    wind relative to the mean wind speed, the form used to judge the balance of analyses
    and forecasts. Synoptic-scale mid-latitude flow is close to geostrophic; members whose
    winds and heights disagree at a level more than the analysis does there were not drawn
    from a balanced atmosphere. Each level is judged on its own, so a well-balanced lower
    level cannot hide an unbalanced upper one.
    """

    name: ClassVar[str] = "geostrophic"
    description: ClassVar[str] = (
        "Wind against the geostrophic wind computed from the geopotential (spherical "
        "derivatives, 20°–80° latitude in both hemispheres), per pressure level: "
        "mid-latitude wind and pressure fields must be in near balance. Score: mean "
        "|V − V_g| / mean |V|."
    )
    units: ClassVar[str] = "1"
    requires: ClassVar[str] = (
        "z, u and v on pressure levels, 3 or more latitudes at 20°–80° and 3 or more longitudes"
    )
    min_abs_latitude: float = 20.0
    max_abs_latitude: float = 80.0
    factor: float = 1.5
    floor: float = 0.05

    def _band(self, latitude: xr.DataArray) -> xr.DataArray:
        return (np.abs(latitude) >= self.min_abs_latitude) & (
            np.abs(latitude) <= self.max_abs_latitude
        )

    def applies(self, forecast: xr.Dataset) -> bool:
        return (
            has(forecast, ("z", "u", "v"))
            and LEVEL in forecast["z"].dims
            and int(self._band(forecast[LAT]).sum()) >= 3
            and forecast.sizes.get(LON, 0) >= 3  # a transect has no zonal derivative
        )

    def reads(self, forecast: xr.Dataset) -> list[str]:
        return ["z", "u", "v"]

    def terms(self, ds: xr.Dataset) -> xr.Dataset:
        ug, vg = geostrophic_wind(ds["z"])
        band = self._band(ds[LAT])
        ageostrophic = np.hypot(ds["u"] - ug, ds["v"] - vg).where(band)
        speed = np.hypot(ds["u"], ds["v"]).where(ageostrophic.notnull())
        dims = over_all_but(ageostrophic, LEVEL)
        (ageostrophic, ageostrophic_weight), (speed, speed_weight) = (
            mean_terms(ageostrophic, dims),
            mean_terms(speed, dims),
        )
        by_level = xr.Dataset(
            {
                "ageostrophic": ageostrophic,
                "ageostrophic_weight": ageostrophic_weight,
                "speed": speed,
                "speed_weight": speed_weight,
            }
        )
        labels = [f"{float(p):g} hPa" for p in by_level[LEVEL].values]
        return by_level.rename({LEVEL: PART}).assign_coords({PART: labels})

    def from_terms(self, terms: xr.Dataset) -> xr.DataArray:
        ageostrophic = mean_of(terms["ageostrophic"], terms["ageostrophic_weight"])
        return ageostrophic / mean_of(terms["speed"], terms["speed_weight"])
