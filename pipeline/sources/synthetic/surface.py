"""The surface process of the synthetic source: a field whose conditional law is known exactly.

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
:mod:`pipeline.sources.synthetic.oracle` gives that mean and std and draws members
from that law: the best any generator can do, to compare one against.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from pipeline.schema import LAT, LON, TIME, variable_attrs
from pipeline.sources.synthetic.config import SyntheticConfig

_T2M_STREAM = 1  # numpy SeedSequence stream of the t2m process (the waves use 2)
_BLOCK_STEPS = 256  # time steps per batched FFT when generating t2m


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


def correlated_noise(
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


def advect(field: np.ndarray, steps: int, config: SyntheticConfig) -> np.ndarray:
    """S^k(field) for fields (..., lat, lon)."""
    shape = (config.n_lat, config.n_lon)
    return np.fft.irfft2(np.fft.rfft2(field) * _advection_phase(config, steps), s=shape)


def climatology(config: SyntheticConfig, times: pd.DatetimeIndex) -> np.ndarray:
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
        climatology(config, index),
        dims=(TIME, LAT, LON),
        coords=grid_coords(config) | {TIME: index},
        name="t2m_climatology",
        attrs=variable_attrs("t2m"),
    )


def t2m_series(config: SyntheticConfig) -> np.ndarray:
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
        out[start:stop] = climatology(config, config.times[start:stop]) + anomaly
    return out


def grid_coords(config: SyntheticConfig) -> dict[str, xr.DataArray]:
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
