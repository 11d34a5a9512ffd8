"""The embedded synthetic source: a surface field whose conditional law is known exactly,
and balanced upper-air fields (:mod:`pipeline.synthetic_upper`).

Surface temperature on a regular latitude/longitude grid::

    t2m(t) = clim(t) + a(t)
    clim(t) = t2m_mean - G (|lat| - |lat_c|) + A cos(2 pi (h_utc(t) + lon / 15 - 15) / 24)
    a(t+1) = rho S(a(t)) + sqrt(1 - rho^2) sigma eps(t+1),   a(0) = sigma eps(0)

a meridional gradient G, a diurnal cycle peaking at 15 local solar time, and an anomaly
that is a linear-Gaussian Markov (AR(1)) process advected by a constant wind. S is an
exact periodic translation done in Fourier space (a fractional shift by the advection
distance of one step, in grid cells at the central latitude); eps is white noise filtered
by a Gaussian spectrum of correlation length L and normalised to unit variance, with its
Nyquist modes removed so that S is unitary and commutes with the noise covariance C.
The anomaly is therefore stationary, N(0, sigma^2 C), and the law of the state k steps
ahead given the state now is exactly Gaussian::

    t2m(t+k) | t2m(t) ~ N( clim(t+k) + rho^k S^k(a(t)),  sigma^2 (1 - rho^(2k)) C )

with a pointwise standard deviation sigma sqrt(1 - rho^(2k)) (C has a unit diagonal).
:func:`conditional_moments` gives that mean and std, :func:`oracle_ensemble` draws
members from that law: the best any generator can do, to compare one against.

The source ``synthetic`` (or ``synthetic:key=value,...``, keys = the fields of
:class:`SyntheticConfig`, levels joined by ``/``) goes through the same ingest path as
files::

    wxens ingest synthetic:n_lat=16,n_lon=24,n_times=120,step=6h,seed=3 --store store.zarr
"""

from __future__ import annotations

import dataclasses
import functools
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import dask.array as da
import numpy as np
import pandas as pd
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
    SCHEMA_VERSION,
    TIME,
    variable_attrs,
)
from pipeline.sources.base import Source, register_source
from pipeline.synthetic_upper import UPPER_AIR_VARIABLES, balanced_upper_air

_T2M_STREAM = 1  # numpy SeedSequence stream of the t2m process (the waves use 2)
_BLOCK_STEPS = 256  # time steps per batched FFT when generating t2m
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

    Surface process (see the module docstring): AR coefficient per step ``rho``,
    stationary std ``sigma`` (K), Gaussian ``correlation_length_km``, advection
    ``advection_u``/``advection_v`` (m s-1, eastward/northward, at the central latitude),
    ``diurnal_amplitude`` (K), ``t2m_mean`` (K at the central latitude) and
    ``temperature_gradient`` (K per degree poleward, shared with the upper air).

    Upper air: ``zonal_wind`` (m s-1 at the bottom level and central latitude; the
    thermal wind adds to it above), ``n_waves`` planetary waves of geopotential amplitude
    up to ``wave_amplitude`` (m2 s-2), temperature amplitude up to
    ``temperature_wave_amplitude`` (K), moving east at about ``wave_speed`` (m s-1).
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

    def __post_init__(self) -> None:
        for name, coerce in _COERCE.items():
            try:
                object.__setattr__(self, name, coerce(getattr(self, name)))
            except (TypeError, ValueError) as err:
                raise InputError(
                    f"synthetic: {name}={getattr(self, name)!r} is not {_EXPECTED[name]} ({err})"
                ) from err
        for name, (ok, requirement) in _FIELD_RULES.items():
            if not ok(getattr(self, name)):
                raise InputError(
                    f"synthetic: {name}={getattr(self, name)!r} is invalid; it must be {requirement}"
                )
        for ok, problem in _CROSS_RULES:
            if not ok(self):
                raise InputError(f"synthetic: {problem(self)}")

    @classmethod
    def from_spec(cls, spec: str) -> SyntheticConfig:
        """Parse ``synthetic`` or ``synthetic:key=value,...`` (levels as ``500/850``)."""
        scheme, _, body = spec.partition(":")
        if scheme != SyntheticSource.name:
            raise InputError(f"{spec!r} is not a synthetic spec; write 'synthetic:key=value,...'")
        fields = {f.name for f in dataclasses.fields(cls)}
        values: dict[str, Any] = {}
        for item in filter(None, (part.strip() for part in body.split(","))):
            key, sep, text = (s.strip() for s in item.partition("="))
            if not sep or key not in fields:
                problem = f"unknown key {key!r}" if sep else f"{item!r} is not key=value"
                raise InputError(
                    f"synthetic spec {spec!r}: {problem}; "
                    f"valid keys: {', '.join(f.name for f in dataclasses.fields(cls))}"
                )
            if key in values:
                raise InputError(f"synthetic spec {spec!r}: {key!r} is given twice")
            try:
                values[key] = _PARSE[_HINTS[key]](text)
            except (TypeError, ValueError) as err:
                raise InputError(
                    f"synthetic spec {spec!r}: {key}={text!r} is not {_EXPECTED[key]}"
                ) from err
        return cls(**values)

    def to_spec(self) -> str:
        """The full spec string; ``from_spec(to_spec())`` gives back an equal config."""
        items = (
            f"{f.name}={_FORMAT[_HINTS[f.name]](getattr(self, f.name))}"
            for f in dataclasses.fields(self)
        )
        return f"{SyntheticSource.name}:" + ",".join(items)

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


# --- config parsing and validation tables --------------------------------------------------


def _levels(value: Any) -> tuple[int, ...]:
    items = value.split("/") if isinstance(value, str) else value
    return tuple(sorted(int(v) for v in items))


def _exact_int(value: Any) -> int:
    if isinstance(value, float | np.floating) and not float(value).is_integer():
        raise ValueError("not a whole number")
    return int(value)


_HINTS = typing.get_type_hints(SyntheticConfig)
_PARSE: dict[Any, Callable[[str], Any]] = {
    int: _exact_int,
    float: float,
    pd.Timestamp: pd.Timestamp,
    pd.Timedelta: pd.Timedelta,
    tuple[int, ...]: _levels,
}
_FORMAT: dict[Any, Callable[[Any], str]] = {
    int: str,
    float: repr,
    pd.Timestamp: lambda t: t.isoformat(),
    pd.Timedelta: lambda d: f"{int(d.total_seconds())}s",
    tuple[int, ...]: lambda levels: "/".join(map(str, levels)),
}
_DESCRIBE = {
    int: "an integer",
    float: "a number",
    pd.Timestamp: "a date-time such as 2000-01-01T00",
    pd.Timedelta: "a duration such as 6h",
    tuple[int, ...]: "pressure levels in hPa such as 500/850",
}
_EXPECTED = {name: _DESCRIBE[hint] for name, hint in _HINTS.items()}
_COERCE = {name: _PARSE[hint] for name, hint in _HINTS.items()}


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
            f"f = 2 Omega sin(lat) away from 0 and cos(lat) away from 0), e.g. lat_min=30,lat_max=70"
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


# --- the surface process --------------------------------------------------------------------


def _spectral_grid(config: SyntheticConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """rfft2 wavenumbers (cycles per cell) ky (lat, 1), kx (1, lon//2+1) and the Nyquist mask."""
    ky = np.fft.fftfreq(config.n_lat)[:, None]
    kx = np.fft.rfftfreq(config.n_lon)[None, :]
    nyquist = (np.abs(ky) == 0.5) | (kx == 0.5)
    return ky, kx, nyquist


@functools.lru_cache(maxsize=8)
def _noise_amplitude(config: SyntheticConfig) -> np.ndarray:
    """Spectral filter H (rfft2 layout) with mean |H|^2 = 1 over the full spectrum.

    Power exp(-2 pi^2 (ky^2 Ly^2 + kx^2 Lx^2)) is the spectrum of a Gaussian covariance
    exp(-r^2 / 2 L^2); L in cells on each axis (east-west at the central latitude). For
    white w ~ N(0, 1) the filtered field irfft2(H rfft2(w)) has variance mean |H|^2 = 1.
    """
    dy, dx = config.cell_size_m
    length = config.correlation_length_km * 1e3
    ly, lx = length / dy, length / dx

    def power(ky: np.ndarray, kx: np.ndarray) -> np.ndarray:
        p = np.exp(-2.0 * np.pi**2 * (ky**2 * ly**2 + kx**2 * lx**2))
        return np.where((np.abs(ky) == 0.5) | (np.abs(kx) == 0.5), 0.0, p)

    full = power(np.fft.fftfreq(config.n_lat)[:, None], np.fft.fftfreq(config.n_lon)[None, :])
    ky, kx, _ = _spectral_grid(config)
    return np.sqrt(power(ky, kx) / full.mean())


def _correlated_noise(
    rng: np.random.Generator, leading: tuple[int, ...], config: SyntheticConfig
) -> np.ndarray:
    """Unit-variance Gaussian fields of covariance C, shape (*leading, lat, lon)."""
    shape = (config.n_lat, config.n_lon)
    white = rng.standard_normal((*leading, *shape))
    return np.fft.irfft2(np.fft.rfft2(white) * _noise_amplitude(config), s=shape)


def _advection_phase(config: SyntheticConfig, steps: int) -> np.ndarray:
    """Fourier multiplier of S^k (rfft2 layout): exp(-2 pi i k (ky sy + kx sx)), Nyquist 0.

    S^k translates a periodic field by k advection steps (fractional cells allowed).
    Dropping the Nyquist modes keeps S unitary and the result real on the subspace the
    noise lives in (it has no Nyquist content).
    """
    ky, kx, nyquist = _spectral_grid(config)
    sy, sx = config.shift_per_step
    phase = np.exp(-2j * np.pi * steps * (ky * sy + kx * sx))
    phase[np.broadcast_to(nyquist, phase.shape)] = 0.0
    return phase


def _advect(field: np.ndarray, steps: int, config: SyntheticConfig) -> np.ndarray:
    """S^k(field) for fields (..., lat, lon)."""
    shape = (config.n_lat, config.n_lon)
    return np.fft.irfft2(np.fft.rfft2(field) * _advection_phase(config, steps), s=shape)


def _climatology(config: SyntheticConfig, times: pd.DatetimeIndex) -> np.ndarray:
    """clim(t) of the module docstring, (time, lat, lon) float64."""
    lat, lon = config.latitude, config.longitude
    meridional = config.t2m_mean - config.temperature_gradient * (
        np.abs(lat) - abs(config.central_latitude)
    )
    utc_hour = np.asarray((times - times.normalize()) / pd.Timedelta(hours=1), dtype=np.float64)
    local_hour = utc_hour[:, None] + lon[None, :] / 15.0
    diurnal = config.diurnal_amplitude * np.cos(2.0 * np.pi * (local_hour - 15.0) / 24.0)
    return meridional[None, :, None] + diurnal[:, None, :]


def t2m_climatology(config: SyntheticConfig, times: Any) -> xr.DataArray:
    """The deterministic part clim(t) of ``t2m`` at ``times``: (time, latitude, longitude), K."""
    index = pd.DatetimeIndex(np.atleast_1d(times))
    return xr.DataArray(
        _climatology(config, index),
        dims=(TIME, LAT, LON),
        coords=_grid_coords(config) | {TIME: index},
        name="t2m_climatology",
        attrs=variable_attrs("t2m"),
    )


def _t2m(config: SyntheticConfig) -> np.ndarray:
    """The whole t2m series, (time, lat, lon) float32.

    The recursion is run on the Fourier coefficients, where S and the noise filter are
    diagonal: A(t+1) = rho P A(t) + sqrt(1 - rho^2) sigma H W(t+1), W = rfft2(white noise);
    one batched FFT pair per block of steps keeps it cheap on any grid.
    """
    shape = (config.n_lat, config.n_lon)
    rng = np.random.default_rng([config.seed, _T2M_STREAM])
    amplitude = _noise_amplitude(config)
    phase = _advection_phase(config, 1)
    innovation = np.sqrt(1.0 - config.rho**2) * config.sigma
    out = np.empty((config.n_times, *shape), dtype=np.float32)
    spectrum = None  # Fourier coefficients of the anomaly at the previous step
    for start in range(0, config.n_times, _BLOCK_STEPS):
        stop = min(start + _BLOCK_STEPS, config.n_times)
        block = np.fft.rfft2(rng.standard_normal((stop - start, *shape))) * amplitude
        for i in range(stop - start):
            if spectrum is None:
                spectrum = config.sigma * block[i]
            else:
                spectrum = config.rho * phase * spectrum + innovation * block[i]
            block[i] = spectrum
        anomaly = np.fft.irfft2(block, s=shape)
        out[start:stop] = _climatology(config, config.times[start:stop]) + anomaly
    return out


# --- the dataset ----------------------------------------------------------------------------


def _grid_coords(config: SyntheticConfig) -> dict[str, xr.DataArray]:
    return {
        LAT: xr.DataArray(
            config.latitude,
            dims=LAT,
            attrs={"units": "degrees_north", "standard_name": "latitude", "long_name": "latitude"},
        ),
        LON: xr.DataArray(
            config.longitude,
            dims=LON,
            attrs={"units": "degrees_east", "standard_name": "longitude", "long_name": "longitude"},
        ),
    }


def _upper_air_block(seconds: np.ndarray, config: SyntheticConfig) -> np.ndarray:
    """dask block: (time,) seconds -> (time, variable, level, lat, lon) float32."""
    fields = balanced_upper_air(config, seconds)
    return np.stack([fields[name] for name in UPPER_AIR_VARIABLES], axis=1)


def synthetic_dataset(config: SyntheticConfig) -> xr.Dataset:
    """The canonical dataset: ``t2m`` (time, lat, lon) and ``z, t, u, v`` (time, level, lat, lon).

    float32, CF attributes, dask-backed with one time step per chunk; t2m is generated
    in memory up front (cheap: batched FFTs), the upper air lazily per chunk.
    """
    times = config.times
    shape = (config.n_lat, config.n_lon)
    t2m = da.from_array(_t2m(config), chunks=(1, *shape))
    seconds = da.from_array(
        np.asarray((times - times[0]).total_seconds(), dtype=np.float64), chunks=1
    )
    nlev = len(config.levels)
    upper = da.map_blocks(
        _upper_air_block,
        seconds,
        config=config,
        new_axis=[1, 2, 3, 4],
        chunks=(seconds.chunks[0], (len(UPPER_AIR_VARIABLES),), (nlev,), *((n,) for n in shape)),
        dtype=np.float32,
        meta=np.empty((0, 0, 0, 0, 0), dtype=np.float32),
    )
    coords = _grid_coords(config) | {
        TIME: xr.DataArray(times, dims=TIME, attrs={"standard_name": "time"}),
        LEVEL: xr.DataArray(
            np.array(config.levels, dtype=np.int64),
            dims=LEVEL,
            attrs={"units": "hPa", "standard_name": "air_pressure", "long_name": "pressure level"},
        ),
    }
    data_vars = {"t2m": ((TIME, LAT, LON), t2m, variable_attrs("t2m"))} | {
        name: ((TIME, LEVEL, LAT, LON), upper[:, i], variable_attrs(name))
        for i, name in enumerate(UPPER_AIR_VARIABLES)
    }
    return xr.Dataset(
        data_vars,
        coords=coords,
        attrs={
            "title": "wxens synthetic fields",
            "source": "wxens synthetic: advected AR(1) t2m with an exact conditional law; "
            "balanced (hypsometric, geostrophic) z, t, u, v",
            "synthetic_spec": config.to_spec(),
            "schema_version": SCHEMA_VERSION,
            "Conventions": "CF-1.8",
        },
    )


@register_source
class SyntheticSource(Source):
    """The ``synthetic`` / ``synthetic:key=value,...`` source (see :class:`SyntheticConfig`)."""

    name: ClassVar[str] = "synthetic"

    def __init__(self, config: SyntheticConfig | None = None) -> None:
        self.config = config if config is not None else SyntheticConfig()

    @classmethod
    def claims(cls, spec: str) -> bool:
        return spec == cls.name or spec.startswith(f"{cls.name}:")

    @classmethod
    def from_spec(cls, spec: str) -> SyntheticSource:
        return cls(SyntheticConfig.from_spec(spec))

    def open(self) -> xr.Dataset:
        return synthetic_dataset(self.config)

    @property
    def description(self) -> str:
        return self.config.to_spec()


# --- the oracle -----------------------------------------------------------------------------


def lead_steps(lead: Any, config: SyntheticConfig) -> int:
    """The lead as a whole number k >= 0 of ``config.step``; InputError otherwise."""
    if isinstance(lead, int | float | np.number) and not isinstance(lead, np.timedelta64):
        raise InputError(
            f"lead={lead!r} has no unit; give a duration such as '24h' or pd.Timedelta(hours=24)"
        )
    try:
        duration = pd.Timedelta(lead)
    except (TypeError, ValueError) as err:
        raise InputError(f"lead={lead!r} is not a duration such as '24h'") from err
    steps, remainder = divmod(duration, config.step)
    if remainder != pd.Timedelta(0) or steps < 0:
        raise InputError(
            f"lead {duration} is not a non-negative whole multiple of the synthetic step "
            f"{config.step}; use e.g. {config.step * 4}"
        )
    return int(steps)


def conditional_moments(
    state: xr.DataArray | xr.Dataset, lead: Any, config: SyntheticConfig
) -> tuple[xr.DataArray, xr.DataArray]:
    """Exact mean and std of ``t2m`` at ``lead`` after ``state`` (Gaussian, see module doc).

    mean = clim(t + k) + rho^k S^k(t2m(t) - clim(t)),   std = sigma sqrt(1 - rho^(2k)).

    ``state``: ``t2m`` (or a dataset holding it) with dims ``([time,] latitude,
    longitude)`` on the config's grid and a ``time`` coordinate (the init time(s)).
    Returns two float64 DataArrays of that shape indexed by **valid** time, so they align
    with the truth: ``time`` = init + lead, with coords ``init_time(time)`` and
    ``lead_time``. For the closed-form CRPS of this Gaussian see
    /work/shared/reference/verification.md.
    """
    field, init, squeeze = _t2m_state(state, config)
    k = lead_steps(lead, config)
    valid = init + k * config.step
    anomaly = field - _climatology(config, init)
    mean = _climatology(config, valid) + config.rho**k * _advect(anomaly, k, config)
    std = np.full_like(mean, config.sigma * np.sqrt(1.0 - config.rho ** (2 * k)))
    return (
        _valid_time_array(mean, init, valid, config, squeeze, "t2m_conditional_mean"),
        _valid_time_array(std, init, valid, config, squeeze, "t2m_conditional_std"),
    )


def oracle_ensemble(
    state: xr.DataArray | xr.Dataset,
    lead: Any,
    n_members: int,
    seed: int,
    config: SyntheticConfig,
) -> xr.DataArray:
    """``n_members`` draws of ``t2m`` at ``lead`` from its exact conditional law.

    Members are mean + std * eps with eps ~ N(0, C) independent per member and init time
    (C the spatial correlation of the process), so they share the truth's spatial
    structure as well as its pointwise law. Dims ``(member, [time,] latitude, longitude)``,
    float32, ``time`` the valid time as in :func:`conditional_moments`. Same seed, same
    members.
    """
    if isinstance(n_members, bool) or not isinstance(n_members, int | np.integer) or n_members < 1:
        raise InputError(f"n_members={n_members!r} must be a positive integer")
    mean, std = conditional_moments(state, lead, config)
    rng = np.random.default_rng(seed)
    eps = _correlated_noise(rng, (n_members, *mean.shape[:-2]), config)
    members = (mean.values + std.values * eps).astype(np.float32)
    out = xr.DataArray(
        members,
        dims=(MEMBER, *mean.dims),
        coords=mean.coords,
        name="t2m",
        attrs=variable_attrs("t2m")
        | {"description": f"oracle ensemble of the synthetic t2m, seed {seed}"},
    )
    return out.assign_coords({MEMBER: np.arange(n_members)})


def _as_t2m(state: xr.DataArray | xr.Dataset) -> xr.DataArray:
    if isinstance(state, xr.Dataset):
        if "t2m" not in state:
            raise InputError(
                f"the state has no t2m variable (it has {sorted(map(str, state.data_vars))}); "
                f"pass the synthetic dataset or its t2m"
            )
        return state["t2m"]
    return state


def _t2m_state(
    state: xr.DataArray | xr.Dataset, config: SyntheticConfig
) -> tuple[np.ndarray, pd.DatetimeIndex, bool]:
    """The state as float64 (time, lat, lon), its init times, and whether time was scalar."""
    field = _as_t2m(state)
    if TIME not in field.coords:
        raise InputError("the t2m state has no 'time' coordinate; the oracle needs the init time")
    extra = set(field.dims) - {TIME, LAT, LON}
    if extra or not {LAT, LON} <= set(field.dims):
        raise InputError(
            f"the t2m state has dims {field.dims}; expected ([time,] latitude, longitude)"
        )
    for name, expected in ((LAT, config.latitude), (LON, config.longitude)):
        got = field[name].values
        if got.shape != expected.shape or not np.allclose(got, expected, atol=1e-6):
            raise InputError(
                f"the t2m state's {name} ({got.size} points, {got.min():g}..{got.max():g}) is not "
                f"the config's grid ({expected.size} points, {expected[0]:g}..{expected[-1]:g} "
                f"ascending); pass the config the data was made with"
            )
    scalar_time = TIME not in field.dims
    if scalar_time:
        field = field.expand_dims(TIME)
    values = field.transpose(TIME, LAT, LON).values.astype(np.float64)
    if not np.isfinite(values).all():
        raise InputError("the t2m state has NaN or infinite values; the oracle needs a full field")
    return values, pd.DatetimeIndex(field[TIME].values), scalar_time


def _valid_time_array(
    values: np.ndarray,
    init: pd.DatetimeIndex,
    valid: pd.DatetimeIndex,
    config: SyntheticConfig,
    squeeze: bool,
    name: str,
) -> xr.DataArray:
    out = xr.DataArray(
        values,
        dims=(TIME, LAT, LON),
        coords=_grid_coords(config)
        | {TIME: valid, INIT_TIME: (TIME, init), LEAD_TIME: valid[0] - init[0]},
        name=name,
        attrs=variable_attrs("t2m"),
    )
    return out.squeeze(TIME) if squeeze else out
