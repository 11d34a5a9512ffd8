"""The configuration of the synthetic source, and its spec ``synthetic:key=value,...``.

The keys of a spec are the fields of :class:`SyntheticConfig`, parsed by the project's one
``key=value`` parser (:mod:`pipeline.spec`), levels joined by ``/``::

    wxens ingest synthetic:n_lat=16,n_lon=24,n_times=120,step=6h,seed=3 --store store.zarr

Every value is checked here, with an :class:`InputError` naming the key and the rule.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from pipeline.errors import InputError
from pipeline.schema import EARTH_RADIUS
from pipeline.spec import coerce_field, field_types, format_spec, parse_fields, split_scheme

#: The scheme of a synthetic spec: ``synthetic`` or ``synthetic:key=value,...``.
SCHEME = "synthetic"

_MAX_EAGER_BYTES = 2 * 1024**3  # t2m is generated in memory; refuse larger requests
_MIN_ABS_LATITUDE = 10.0  # geostrophy needs f well away from 0
_MAX_ABS_LATITUDE = 80.0  # and cos(lat) well away from 0


@dataclass(frozen=True)
class SyntheticConfig:
    """Everything that defines a synthetic dataset; same config and seed, same data.

    Grid: ``n_lat`` x ``n_lon`` points, latitudes ``lat_min..lat_max`` ascending and
    longitudes ``lon_min..lon_max`` (degrees, both ends included, contiguous), in one
    hemisphere between 10 and 80 degrees so that geostrophy is meaningful. Time:
    ``n_times`` states from ``start`` every ``step``. Upper air on ``levels`` (hPa,
    at least two; stored ascending).

    Surface process (:mod:`pipeline.sources.synthetic.surface`): AR coefficient per step ``rho``,
    stationary std ``sigma`` (K), Gaussian ``correlation_length_km``, advection
    ``advection_u``/``advection_v`` (m s-1, eastward/northward, at the central latitude),
    ``diurnal_amplitude`` (K), ``t2m_mean`` (K at the central latitude) and
    ``temperature_gradient`` (K per degree poleward, shared with the upper air).

    Upper air (:mod:`pipeline.sources.synthetic.upper_air`): ``zonal_wind`` (m s-1 at the
    bottom level and central latitude; the thermal wind adds to it above), ``n_waves``
    planetary waves of geopotential amplitude
    up to ``wave_amplitude`` (m2 s-2), temperature amplitude up to
    ``temperature_wave_amplitude`` (K), moving east at about ``wave_speed`` (m s-1); their
    states follow an Ornstein-Uhlenbeck process of coefficient ``upper_air_phi`` per step and
    stationary RMS ``upper_air_sigma`` (relative to the amplitudes); ``upper_air_phi=1`` (the
    default) is the deterministic limit, unit waves at fixed speeds.
    """

    n_lat: int = 32
    n_lon: int = 48
    lat_min: float = 30.0
    lat_max: float = 70.0
    lon_min: float = -30.0
    lon_max: float = 30.0
    start: pd.Timestamp = pd.Timestamp("2000-01-01")
    n_times: int = 40
    step: pd.Timedelta = pd.Timedelta(hours=6)
    levels: tuple[int, ...] = (500, 850)
    seed: int = 0
    rho: float = 0.8
    sigma: float = 3.0
    correlation_length_km: float = 500.0
    advection_u: float = 10.0
    advection_v: float = 3.0
    diurnal_amplitude: float = 3.0
    t2m_mean: float = 283.0
    temperature_gradient: float = 0.6
    zonal_wind: float = 8.0
    n_waves: int = 3
    wave_amplitude: float = 1000.0
    temperature_wave_amplitude: float = 2.0
    wave_speed: float = 8.0
    upper_air_phi: float = 1.0
    upper_air_sigma: float = 1.0

    def __post_init__(self) -> None:
        for name, hint in field_types(type(self)).items():
            value = coerce_field(hint, getattr(self, name), key=name, what="synthetic")
            object.__setattr__(self, name, value)
        object.__setattr__(self, "levels", tuple(sorted(self.levels)))
        for name, (ok, requirement) in _FIELD_RULES.items():
            if not ok(getattr(self, name)):
                raise InputError(
                    f"synthetic: {name}={getattr(self, name)!r} is invalid; "
                    f"it must be {requirement}"
                )
        for ok, problem in _CROSS_RULES:
            if not ok(self):
                raise InputError(f"synthetic: {problem(self)}")

    @classmethod
    def from_spec(cls, spec: str) -> SyntheticConfig:
        """Parse ``synthetic`` or ``synthetic:key=value,...`` (levels as ``500/850``)."""
        scheme, body = split_scheme(spec)
        if scheme != SCHEME:
            raise InputError(f"{spec!r} is not a synthetic spec; write 'synthetic:key=value,...'")
        return cls(**parse_fields(cls, body, what=f"synthetic spec {spec!r}"))

    def to_spec(self, *, changed_only: bool = False) -> str:
        """The full spec string; ``from_spec(to_spec())`` gives back an equal config. With
        ``changed_only``, the keys that differ from the defaults (``synthetic`` for none)."""
        body = format_spec(self, changed_only=changed_only)
        return f"{SCHEME}:{body}" if body else SCHEME

    @property
    def latitude(self) -> np.ndarray:
        """Grid latitudes, degrees north, ascending."""
        return np.linspace(self.lat_min, self.lat_max, self.n_lat)

    @property
    def longitude(self) -> np.ndarray:
        """Grid longitudes, degrees east, ascending and contiguous."""
        return np.linspace(self.lon_min, self.lon_max, self.n_lon)

    @property
    def central_latitude(self) -> float:
        return 0.5 * (self.lat_min + self.lat_max)

    @property
    def times(self) -> pd.DatetimeIndex:
        return pd.date_range(self.start, periods=self.n_times, freq=self.step)

    @property
    def cell_size_m(self) -> tuple[float, float]:
        """Grid spacing (north-south, east-west) in metres, the latter at the central latitude."""
        dy = EARTH_RADIUS * np.deg2rad(self.lat_max - self.lat_min) / (self.n_lat - 1)
        dx = (
            EARTH_RADIUS
            * np.cos(np.deg2rad(self.central_latitude))
            * np.deg2rad(self.lon_max - self.lon_min)
            / (self.n_lon - 1)
        )
        return float(dy), float(dx)

    @property
    def shift_per_step(self) -> tuple[float, float]:
        """Advection of one step in grid cells (north, east)."""
        dy, dx = self.cell_size_m
        seconds = self.step.total_seconds()
        return self.advection_v * seconds / dy, self.advection_u * seconds / dx


# --- validation -----------------------------------------------------------------------------


def _positive(v: float) -> bool:
    return v > 0


def _non_negative(v: float) -> bool:
    return v >= 0


_FIELD_RULES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "n_lat": (lambda v: v >= 4, "at least 4"),
    "n_lon": (lambda v: v >= 4, "at least 4"),
    "n_times": (lambda v: v >= 1, "at least 1"),
    "step": (lambda v: v > pd.Timedelta(0), "a positive duration"),
    "levels": (
        lambda v: len(set(v)) == len(v) >= 2 and all(10 <= p <= 1000 for p in v),
        "at least two distinct pressure levels between 10 and 1000 hPa, e.g. 500/850",
    ),
    "seed": (_non_negative, "a non-negative integer"),
    "rho": (lambda v: 0 <= v < 1, "in [0, 1): the AR(1) coefficient per step"),
    "sigma": (_positive, "positive (K)"),
    "correlation_length_km": (_positive, "positive (km)"),
    "diurnal_amplitude": (_non_negative, "non-negative (K)"),
    "t2m_mean": (lambda v: 200 <= v <= 320, "between 200 and 320 K"),
    "n_waves": (_non_negative, "a non-negative integer"),
    "wave_amplitude": (_non_negative, "non-negative (m2 s-2)"),
    "temperature_wave_amplitude": (_non_negative, "non-negative (K)"),
    "upper_air_phi": (
        lambda v: 0 <= v <= 1,
        "in [0, 1]: the waves' OU coefficient per step (1 = deterministic waves)",
    ),
    "upper_air_sigma": (_positive, "positive: the waves' stationary RMS amplitude factor"),
}
_CROSS_RULES: tuple[
    tuple[Callable[[SyntheticConfig], bool], Callable[[SyntheticConfig], str]], ...
] = (
    (
        lambda c: c.lat_min < c.lat_max,
        lambda c: f"lat_min={c.lat_min} must be below lat_max={c.lat_max}",
    ),
    (
        lambda c: (
            (_MIN_ABS_LATITUDE <= c.lat_min and c.lat_max <= _MAX_ABS_LATITUDE)
            or (-_MAX_ABS_LATITUDE <= c.lat_min and c.lat_max <= -_MIN_ABS_LATITUDE)
        ),
        lambda c: (
            f"latitudes {c.lat_min}..{c.lat_max} must lie in one hemisphere between "
            f"{_MIN_ABS_LATITUDE:g} and {_MAX_ABS_LATITUDE:g} degrees (geostrophic winds need "
            "f = 2 Omega sin(lat) away from 0 and cos(lat) away from 0), "
            "e.g. lat_min=30,lat_max=70"
        ),
    ),
    (
        lambda c: c.lon_min < c.lon_max and c.lon_max - c.lon_min < 360 and -180 <= c.lon_min,
        lambda c: (
            f"longitudes {c.lon_min}..{c.lon_max} must be increasing, span less than 360 "
            f"degrees and start at or after -180"
        ),
    ),
    (
        lambda c: c.n_lat * c.n_lon * c.n_times * 4 <= _MAX_EAGER_BYTES,
        lambda c: (
            f"{c.n_times} times of {c.n_lat}x{c.n_lon} t2m need "
            f"{c.n_lat * c.n_lon * c.n_times * 4 / 1024**3:.1f} GiB in memory (limit "
            f"{_MAX_EAGER_BYTES / 1024**3:g} GiB); lower n_times or the grid size"
        ),
    ),
)
