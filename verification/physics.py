"""Physical-consistency checks of ensemble members, each judged against the truth itself.

Every check returns a :class:`~verification.base.CheckResult`: one score per member
(aggregated over init times, leads, levels and the grid, cos-latitude weighted), the
same score of the truth at the same valid times, and a tolerance derived from the truth
by a documented rule, so that a check never demands more of the members than the
analysis itself achieves. Inputs: ``forecast`` in the wxens layout (``member`` plus the
truth's dims), ``truth`` aligned to it (:func:`pipeline.adapters.align_with_truth`).

Constants in :mod:`verification.constants`; the relations from Holton & Hakim, *An
Introduction to Dynamic Meteorology*, 5th ed., §1.6.2 and §3.2.
"""

from __future__ import annotations

import itertools
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import xarray as xr

from pipeline.errors import InputError
from pipeline.schema import (
    EARTH_RADIUS,
    INIT_TIME,
    LAT,
    LEAD_TIME,
    LEVEL,
    LON,
    MEMBER,
    OMEGA,
    R_DRY,
    VARIABLES,
    VIRTUAL_FACTOR,
)
from verification.aggregation import mean_over
from verification.base import CheckResult, register_check
from verification.spectra import band_power, is_global, power_spectrum

#: Pairs of wind components whose speed is bounded by the component bound.
WIND_PAIRS = (("u", "v"), ("u10", "v10"))


def _over_all_but_member(da: xr.DataArray) -> tuple[str, ...]:
    return tuple(str(d) for d in da.dims if d != MEMBER)


def _has(ds: xr.Dataset, names: tuple[str, ...]) -> bool:
    return all(n in ds.data_vars for n in names)


class TruthRelativeCheck(ABC):
    """A check whose score applies to members and truth alike.

    Tolerance rule: ``max(factor × truth score, floor)`` — a member may be at most
    ``factor`` times as inconsistent as the analysis, and ``floor`` absorbs round-off
    when the truth is exact (the balanced synthetic fields).
    """

    name: ClassVar[str]
    description: ClassVar[str]
    units: ClassVar[str]
    factor: float
    floor: float

    @abstractmethod
    def score(self, ds: xr.Dataset) -> xr.DataArray:
        """The score of ``ds``, reduced over every dim but ``member``."""

    def __call__(
        self, forecast: xr.Dataset, truth: xr.Dataset, initial: xr.Dataset | None = None
    ) -> CheckResult:
        truth_value = float(self.score(truth))
        return CheckResult(
            name=self.name,
            description=self.description,
            units=self.units,
            member_score=self.score(forecast).compute(),
            truth_score=truth_value,
            tolerance=max(self.factor * truth_value, self.floor),
            tolerance_rule=f"max({self.factor:g} × truth score, {self.floor:g})",
        )


@register_check
@dataclass(frozen=True)
class Hypsometric(TruthRelativeCheck):
    """Thickness between two levels against the hypsometric equation.

    ``Φ_top - Φ_bottom = R_d T̄_v ln(p_bottom / p_top)`` with ``T̄_v`` the layer-mean
    (virtual, if ``q`` is given) temperature, trapezoidal in ln p over the levels in the
    layer. Score: RMS residual over RMS thickness (relative). ERA5 itself leaves about
    0.5 % with two levels, because the two-level mean is not the layer mean.
    """

    name: ClassVar[str] = "hypsometric"
    description: ClassVar[str] = (
        "Geopotential thickness between two pressure levels against R_d · T̄ · ln(p_bottom/p_top) "
        "with the layer-mean temperature: temperature and geopotential must describe the same "
        "air column. Score: RMS residual / RMS thickness."
    )
    units: ClassVar[str] = "1"
    bottom: float = 850.0
    top: float = 500.0
    factor: float = 2.0
    floor: float = 2e-3

    def applies(self, forecast: xr.Dataset) -> bool:
        return (
            _has(forecast, ("z", "t"))
            and LEVEL in forecast["z"].dims
            and {self.bottom, self.top} <= set(forecast[LEVEL].values.tolist())
        )

    def score(self, ds: xr.Dataset) -> xr.DataArray:
        layer = ds.sel({LEVEL: (ds[LEVEL] >= self.top) & (ds[LEVEL] <= self.bottom)}).sortby(LEVEL)
        temperature = layer["t"] * (1 + VIRTUAL_FACTOR * layer["q"]) if "q" in layer else layer["t"]
        log_p = np.log(layer[LEVEL])
        mean_t = temperature.assign_coords({LEVEL: log_p}).integrate(LEVEL) / float(
            log_p[-1] - log_p[0]
        )
        thickness = layer["z"].sel({LEVEL: self.top}) - layer["z"].sel({LEVEL: self.bottom})
        residual = thickness - R_DRY * mean_t * np.log(self.bottom / self.top)
        dims = _over_all_but_member(residual)
        return np.sqrt(mean_over(residual**2, dims) / mean_over(thickness**2, dims))


def geostrophic_wind(z: xr.DataArray) -> tuple[xr.DataArray, xr.DataArray]:
    """Geostrophic wind from geopotential on a sphere, centred differences.

    ``u_g = -(1/(f R)) ∂Φ/∂φ``, ``v_g = (1/(f R cos φ)) ∂Φ/∂λ``, ``f = 2Ω sin φ``; the
    longitude derivative wraps around on a global grid. Lazy on dask (the grid must be
    one chunk, as in wxens stores).
    """
    per_radian = 180.0 / np.pi
    phi = np.deg2rad(z[LAT])
    f = 2 * OMEGA * np.sin(phi)
    dz_dphi = z.differentiate(LAT) * per_radian
    if is_global(z[LON]):
        step = float(np.median(np.diff(np.sort(z[LON].values))))
        dz_dlambda = (z.roll({LON: -1}) - z.roll({LON: 1})) / (2 * step) * per_radian
    else:
        dz_dlambda = z.differentiate(LON) * per_radian
    return -dz_dphi / (f * EARTH_RADIUS), dz_dlambda / (f * EARTH_RADIUS * np.cos(phi))


@register_check
@dataclass(frozen=True)
class Geostrophic(TruthRelativeCheck):
    """Winds against the geostrophic wind of the geopotential, outside the tropics.

    Score: the ageostrophic fraction ``‖V - V_g‖ / ‖V‖`` (RMS over |φ| ≥ 20°, every
    level, time and grid point, cos-lat weighted). Synoptic-scale mid-latitude flow is
    close to geostrophic; members whose winds and heights disagree more than the
    analysis does were not drawn from a balanced atmosphere.
    """

    name: ClassVar[str] = "geostrophic"
    description: ClassVar[str] = (
        "Wind against the geostrophic wind computed from the geopotential (spherical "
        "derivatives, |latitude| ≥ 20°): mid-latitude wind and pressure fields must be in "
        "near balance. Score: RMS ageostrophic wind / RMS wind."
    )
    units: ClassVar[str] = "1"
    min_abs_latitude: float = 20.0
    factor: float = 1.5
    floor: float = 0.05

    def applies(self, forecast: xr.Dataset) -> bool:
        return (
            _has(forecast, ("z", "u", "v"))
            and LEVEL in forecast["z"].dims
            and int((np.abs(forecast[LAT]) >= self.min_abs_latitude).sum()) >= 3
        )

    def score(self, ds: xr.Dataset) -> xr.DataArray:
        ug, vg = geostrophic_wind(ds["z"])
        outside_tropics = np.abs(ds[LAT]) >= self.min_abs_latitude
        ageostrophic = ((ds["u"] - ug) ** 2 + (ds["v"] - vg) ** 2).where(outside_tropics)
        speed = (ds["u"] ** 2 + ds["v"] ** 2).where(outside_tropics)
        dims = _over_all_but_member(ageostrophic)
        return np.sqrt(mean_over(ageostrophic, dims) / mean_over(speed, dims))


@register_check
@dataclass(frozen=True)
class PhysicalBounds(TruthRelativeCheck):
    """Values outside the physical bounds of :data:`pipeline.schema.VARIABLES`.

    Temperatures within 150-350 K, humidity and precipitation ≥ 0, wind components and
    wind speed within the component bound. Score: the fraction of values out of bounds
    over every bounded variable. Tolerance: no more often than the truth.
    """

    name: ClassVar[str] = "physical_bounds"
    description: ClassVar[str] = (
        "Values outside physical bounds (temperatures 150–350 K, humidity and precipitation ≥ 0, "
        "wind speed within its limit). Score: fraction of values out of bounds; a member may "
        "break bounds no more often than the analysis."
    )
    units: ClassVar[str] = "1"
    factor: float = 1.0
    floor: float = 0.0

    def applies(self, forecast: xr.Dataset) -> bool:
        return any(_bounded(str(n)) for n in forecast.data_vars)

    def score(self, ds: xr.Dataset) -> xr.DataArray:
        out_of_bounds, counts = [], []
        for name in (str(n) for n in ds.data_vars if _bounded(str(n))):
            spec = VARIABLES[name]
            da = ds[name]
            bad = (da < spec.lower_bound if spec.lower_bound is not None else False) | (
                da > spec.upper_bound if spec.upper_bound is not None else False
            )
            out_of_bounds.append(bad.where(da.notnull()))
        for u, v in WIND_PAIRS:
            if _has(ds, (u, v)) and VARIABLES[u].upper_bound is not None:
                speed = np.hypot(ds[u], ds[v])
                out_of_bounds.append((speed > VARIABLES[u].upper_bound).where(speed.notnull()))
        for bad in out_of_bounds:
            counts.append(mean_over(bad.astype(float), _over_all_but_member(bad)))
        return sum(counts) / len(counts)


def _bounded(name: str) -> bool:
    spec = VARIABLES.get(name)
    return spec is not None and (spec.lower_bound is not None or spec.upper_bound is not None)


def _split_half(da: xr.DataArray) -> tuple[xr.DataArray, xr.DataArray]:
    """The first and second halves of the init times (two independent-ish samples)."""
    half = da.sizes[INIT_TIME] // 2
    return da.isel({INIT_TIME: slice(0, half)}), da.isel({INIT_TIME: slice(half, 2 * half)})


@register_check
@dataclass(frozen=True)
class SpectralRatio:
    """Member against truth power spectra in three wavenumber bands, per variable/level.

    Per variable and band, spectra averaged over init times and leads: the member's
    ``|ln(member power / truth power)|`` over the band's tolerance, the same statistic
    between the first and second halves of the truth's own init times times ``factor``
    (at least ``floor``): the truth's own period-to-period variability of that band.
    Score: the largest over variables and bands; a member passes at ≤ 1. The truth's
    score is its split-half statistic on the same scale (≤ 1/factor).
    """

    name: ClassVar[str] = "spectral_ratio"
    description: ClassVar[str] = (
        "Power spectra of members against the truth in large/medium/small-scale bands "
        "(zonal spectra on global grids, isotropic on regional ones): a ratio below 1 at "
        "small scales means smoothed members, above 1 noisy ones. Score: largest "
        "|ln(member/truth power)| over variables and bands, in units of the band's tolerance "
        "(the truth's own variability between two periods)."
    )
    units: ClassVar[str] = "band tolerance"
    factor: float = 2.0
    floor: float = 0.405  # ln 1.5: band power within 50 % of the truth's on short samples

    def applies(self, forecast: xr.Dataset) -> bool:
        return forecast.sizes.get(LAT, 0) >= 8 and forecast.sizes.get(LON, 0) >= 8

    def __call__(
        self, forecast: xr.Dataset, truth: xr.Dataset, initial: xr.Dataset | None = None
    ) -> CheckResult:
        member_scores, truth_scores = [], []
        for name in forecast.data_vars:
            member_bands = band_power(power_spectrum(forecast[name]))
            truth_bands = band_power(power_spectrum(truth[name]))
            samples = [d for d in (INIT_TIME, LEAD_TIME) if d in truth_bands.dims]
            first, second = _split_half(truth_bands)
            split = np.abs(np.log(first.mean(samples) / second.mean(samples)))
            tolerance = np.maximum(self.factor * split, self.floor)
            ratio = np.abs(np.log(member_bands.mean(samples) / truth_bands.mean(samples)))
            member_scores.append(_max_but_member(ratio / tolerance))
            truth_scores.append(_max_but_member(split / tolerance))
        member_score = xr.concat(member_scores, dim="variable").max("variable").compute()
        truth_score = float(xr.concat(truth_scores, dim="variable").max().compute())
        return CheckResult(
            name=self.name,
            description=self.description,
            units=self.units,
            member_score=member_score,
            truth_score=truth_score,
            tolerance=1.0,
            tolerance_rule=(
                f"per band max({self.factor:g} × truth first-half/second-half |ln ratio|, "
                f"{self.floor:g}); score in units of it"
            ),
        )


def _max_but_member(da: xr.DataArray) -> xr.DataArray:
    return da.max([d for d in da.dims if d != MEMBER])


def wasserstein_1(a: np.ndarray, b: np.ndarray, n_quantiles: int = 512) -> float:
    """Wasserstein-1 distance of two samples, ``∫₀¹ |F_a⁻¹(q) - F_b⁻¹(q)| dq``.

    Evaluated on ``n_quantiles`` mid-point quantiles (exact for equal-size samples of
    that size; NaNs dropped). Same value as ``scipy.stats.wasserstein_distance`` up to
    the quantile discretisation.
    """
    q = (np.arange(n_quantiles) + 0.5) / n_quantiles
    a, b = a[~np.isnan(a)], b[~np.isnan(b)]
    return float(np.abs(np.quantile(a, q) - np.quantile(b, q)).mean())


@register_check
@dataclass(frozen=True)
class TendencyDistribution:
    """Distribution of member changes since the init time against the truth's (W1 distance).

    At each lead, the change ``x(lead) - x(init)`` of a member (pooled over init times
    and the grid) against the truth's ``y(lead) - y(init)``, both from the analysis at the
    init time (``initial``): their Wasserstein-1 distance divided by the std of the
    truth's change. Members drawn independently at each lead (not as trajectories) are
    scored correctly this way. Score: the largest over variables, levels and leads.
    Tolerance: the same distance between the truth's first and second halves of init
    times, times ``factor``, at least ``floor``.
    """

    name: ClassVar[str] = "tendency_distribution"
    description: ClassVar[str] = (
        "Distribution of each member's change since the initial time against the truth's "
        "change over the same lead, as a Wasserstein-1 distance in units of the truth's std: "
        "members must evolve as fast, and as often, as the real atmosphere."
    )
    units: ClassVar[str] = "truth change std"
    factor: float = 2.0
    floor: float = 0.1

    def applies(self, forecast: xr.Dataset) -> bool:
        return forecast.sizes.get(INIT_TIME, 0) >= 2

    def __call__(
        self, forecast: xr.Dataset, truth: xr.Dataset, initial: xr.Dataset | None = None
    ) -> CheckResult:
        if initial is None:
            raise InputError(
                "the tendency check needs the analysis at the init times (initial=...); "
                "pipeline.adapters.align_with_truth gives it as .initial"
            )
        member_distances, truth_distances = [], []
        for name in forecast.data_vars:
            members = (forecast[name] - initial[name]).compute()
            observed = (truth[name] - initial[name]).compute()
            for case in _cases(observed, keep=(INIT_TIME, LAT, LON)):
                truth_change = observed.sel(case)
                scale = float(truth_change.std())
                if not scale > 0:
                    continue  # lead 0: nothing has changed yet
                first, second = _split_half(truth_change)
                truth_distances.append(
                    wasserstein_1(first.values.ravel(), second.values.ravel()) / scale
                )
                member_change = members.sel(case)
                member_distances.append(
                    [
                        wasserstein_1(
                            member_change.isel({MEMBER: m}).values.ravel(),
                            truth_change.values.ravel(),
                        )
                        / scale
                        for m in range(member_change.sizes[MEMBER])
                    ]
                )
        member_score = xr.DataArray(
            np.max(member_distances, axis=0), dims=(MEMBER,), coords={MEMBER: forecast[MEMBER]}
        )
        truth_score = float(np.max(truth_distances))
        return CheckResult(
            name=self.name,
            description=self.description,
            units=self.units,
            member_score=member_score,
            truth_score=truth_score,
            tolerance=max(self.factor * truth_score, self.floor),
            tolerance_rule=f"max({self.factor:g} × truth first-half/second-half distance, {self.floor:g})",
        )


def _cases(da: xr.DataArray, keep: tuple[str, ...]) -> list[dict[str, object]]:
    """One selection per combination of the values of the dims not in ``keep``."""
    other = [str(d) for d in da.dims if d not in keep]
    return [
        dict(zip(other, values, strict=True))
        for values in itertools.product(*(da[d].values for d in other))
    ]
