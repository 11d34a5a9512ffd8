"""Balanced upper-air fields for the synthetic source: ``z``, ``t``, ``u``, ``v`` on levels.

Every field is a linear combination of a few analytic basis functions of latitude
phi, longitude lambda (radians) and time t (seconds since the start)::

    b_0 = 1,   b_1 = phi - phi_c,
    b_(2+2w) = E(phi) cos psi_w,   b_(3+2w) = E(phi) sin psi_w,
    psi_w = m_w (lambda - c_w t / (R cos phi_c)) + theta_w,
    E(phi) = exp(-(phi - phi_c)^2 / (2 s^2)),

i.e. a zonal-mean part and W planetary waves of zonal wavenumber m_w moving east at
c_w m s-1 (at the central latitude phi_c) under a Gaussian envelope of width s, one third
of the latitude span. Wavenumbers, phases, amplitudes, speeds and the phase shift of the
temperature wave are drawn from the config seed.

Balance holds by construction (levels ordered bottom p_0 > p_1 > ... up):

- temperature ``T_l = T_isa(p_l) - G (phi - phi_c) + waves`` (G the poleward gradient);
- geopotential of the bottom level ``Phi_0 = g0 Z_isa(p_0) - u_0 f_c R (phi - phi_c) +
  waves`` (a zonal wind u_0 at phi_c), and above it the hypsometric relation with the mean
  of the two levels' temperatures, exactly::

    Phi_(l+1) = Phi_l + R_d (T_l + T_(l+1)) / 2 * ln(p_l / p_(l+1));

- geostrophic winds from the analytic derivatives of Phi (no finite differences)::

    u = -1 / (f R) dPhi/dphi,   v = 1 / (f R cos phi) dPhi/dlambda,   f = 2 Omega sin phi.

A centred finite-difference check on the grid therefore shows only its own
discretisation error, O(dx^2). Reference: Holton & Hakim, *An Introduction to Dynamic
Meteorology* (5th ed.), sections 1.6.2 (hypsometric equation) and 3.2 (geostrophic wind);
ISA profile from ICAO Doc 7488.
"""

from __future__ import annotations

import numpy as np

from pipeline.schema import EARTH_RADIUS, G0, OMEGA, R_DRY
from pipeline.sources.synthetic.config import SyntheticConfig

UPPER_AIR_VARIABLES = ("z", "t", "u", "v")

_ISA_SURFACE_PRESSURE = 1013.25  # hPa
_ISA_SURFACE_TEMPERATURE = 288.15  # K
_ISA_LAPSE_RATE = 0.0065  # K m-1
_ISA_TROPOPAUSE_PRESSURE = 226.32  # hPa, at 11 km
_ISA_TROPOPAUSE_TEMPERATURE = 216.65  # K
_WAVENUMBERS = (3, 9)  # zonal wavenumbers drawn from [3, 9)
_WAVE_STREAM = 2  # numpy SeedSequence stream of the wave draws (t2m uses 1)


def isa_temperature(pressure_hpa: np.ndarray | float) -> np.ndarray:
    """ISA temperature (K) at a pressure (hPa): T0 (p/p0)^(R_d G/g0) below 11 km, 216.65 above."""
    p = np.asarray(pressure_hpa, dtype=np.float64)
    exponent = R_DRY * _ISA_LAPSE_RATE / G0
    troposphere = _ISA_SURFACE_TEMPERATURE * (p / _ISA_SURFACE_PRESSURE) ** exponent
    return np.where(p >= _ISA_TROPOPAUSE_PRESSURE, troposphere, _ISA_TROPOPAUSE_TEMPERATURE)


def isa_geopotential(pressure_hpa: np.ndarray | float) -> np.ndarray:
    """ISA geopotential (m2 s-2) of a pressure level (hPa): g0 times the ISA height."""
    p = np.asarray(pressure_hpa, dtype=np.float64)
    exponent = R_DRY * _ISA_LAPSE_RATE / G0
    troposphere = (_ISA_SURFACE_TEMPERATURE / _ISA_LAPSE_RATE) * (
        1.0 - (p / _ISA_SURFACE_PRESSURE) ** exponent
    )
    stratosphere = 11_000.0 + (R_DRY * _ISA_TROPOPAUSE_TEMPERATURE / G0) * np.log(
        _ISA_TROPOPAUSE_PRESSURE / p
    )
    return G0 * np.where(p >= _ISA_TROPOPAUSE_PRESSURE, troposphere, stratosphere)


def coriolis_parameter(latitude_deg: np.ndarray | float) -> np.ndarray:
    """f = 2 Omega sin(phi), s-1."""
    return 2.0 * OMEGA * np.sin(np.deg2rad(latitude_deg))


def balanced_upper_air(config: SyntheticConfig, seconds: np.ndarray) -> dict[str, np.ndarray]:
    """The balanced fields at ``seconds`` since ``config.start``.

    Returns ``{"z", "t", "u", "v"}`` -> float32 arrays (time, level, latitude, longitude),
    levels in ``config.levels`` order (ascending hPa).
    """
    seconds = np.asarray(seconds, dtype=np.float64).reshape(-1)
    waves = _wave_parameters(config)
    values, d_dphi, d_dlambda = _basis(config, waves, seconds)  # (time, basis, lat, lon)
    bottom_up = sorted(config.levels, reverse=True)
    t_coef, z_coef = _level_coefficients(config, waves, bottom_up)  # (level, basis)

    temperature = np.einsum("lb,tbyx->tlyx", t_coef, values)
    geopotential = np.einsum("lb,tbyx->tlyx", z_coef, values)
    lat = config.latitude[:, None]
    f = coriolis_parameter(lat)
    u = -np.einsum("lb,tbyx->tlyx", z_coef, d_dphi) / (f * EARTH_RADIUS)
    v = np.einsum("lb,tbyx->tlyx", z_coef, d_dlambda) / (f * EARTH_RADIUS * np.cos(np.deg2rad(lat)))
    order = [bottom_up.index(p) for p in config.levels]
    fields = {"z": geopotential, "t": temperature, "u": u, "v": v}
    return {name: arr[:, order].astype(np.float32) for name, arr in fields.items()}


def _wave_parameters(config: SyntheticConfig) -> dict[str, np.ndarray]:
    """Seeded draws, one entry per wave: wavenumber, phase, amplitudes, speed, shift."""
    rng = np.random.default_rng([config.seed, _WAVE_STREAM])
    n = config.n_waves
    return {
        "wavenumber": rng.integers(*_WAVENUMBERS, size=n).astype(np.float64),
        "phase": rng.uniform(0.0, 2.0 * np.pi, size=n),
        "amplitude": config.wave_amplitude * rng.uniform(0.5, 1.0, size=n),
        "speed": config.wave_speed * rng.uniform(0.5, 1.5, size=n),
        "temperature_amplitude": config.temperature_wave_amplitude * rng.uniform(0.5, 1.0, size=n),
        "temperature_shift": rng.uniform(0.0, 0.5 * np.pi, size=n),
    }


def _basis(
    config: SyntheticConfig, waves: dict[str, np.ndarray], seconds: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Basis functions and their d/dphi, d/dlambda: three arrays (time, basis, lat, lon)."""
    phi = np.deg2rad(config.latitude)[:, None]  # (lat, 1)
    lam = np.deg2rad(config.longitude)[None, :]  # (1, lon)
    phi_c = np.deg2rad(config.central_latitude)
    width = np.deg2rad(config.lat_max - config.lat_min) / 3.0
    envelope = np.exp(-0.5 * ((phi - phi_c) / width) ** 2)
    d_envelope = -(phi - phi_c) / width**2 * envelope

    nt, ny, nx = seconds.size, config.n_lat, config.n_lon
    nb = 2 + 2 * config.n_waves
    values = np.zeros((nt, nb, ny, nx))
    d_dphi = np.zeros_like(values)
    d_dlambda = np.zeros_like(values)
    values[:, 0] = 1.0
    values[:, 1] = phi - phi_c
    d_dphi[:, 1] = 1.0

    angular_speed = waves["speed"] / (EARTH_RADIUS * np.cos(phi_c))  # rad of longitude s-1
    for w, m in enumerate(waves["wavenumber"]):
        psi = m * (lam[None] - angular_speed[w] * seconds[:, None, None]) + waves["phase"][w]
        cos, sin = np.cos(psi), np.sin(psi)  # (time, 1, lon)
        values[:, 2 + 2 * w] = envelope * cos
        values[:, 3 + 2 * w] = envelope * sin
        d_dphi[:, 2 + 2 * w] = d_envelope * cos
        d_dphi[:, 3 + 2 * w] = d_envelope * sin
        d_dlambda[:, 2 + 2 * w] = -m * envelope * sin
        d_dlambda[:, 3 + 2 * w] = m * envelope * cos
    return values, d_dphi, d_dlambda


def _level_coefficients(
    config: SyntheticConfig, waves: dict[str, np.ndarray], bottom_up: list[int]
) -> tuple[np.ndarray, np.ndarray]:
    """Basis coefficients of T and Phi per level (level, basis), levels bottom first.

    Phi of each level above the bottom is the hypsometric sum of the layers below,
    coefficient by coefficient (every term is linear in the basis).
    """
    nb = 2 + 2 * config.n_waves
    hemisphere = np.sign(config.central_latitude)
    gradient = config.temperature_gradient * 180.0 / np.pi  # K per radian poleward

    t_coef = np.zeros((len(bottom_up), nb))
    t_coef[:, 0] = isa_temperature(np.array(bottom_up, dtype=np.float64))
    t_coef[:, 1] = -hemisphere * gradient
    shift = waves["temperature_shift"]
    t_coef[:, 2::2] = waves["temperature_amplitude"] * np.cos(shift)
    t_coef[:, 3::2] = waves["temperature_amplitude"] * np.sin(shift)

    z_coef = np.zeros_like(t_coef)
    f_c = coriolis_parameter(config.central_latitude)
    z_coef[0, 0] = isa_geopotential(bottom_up[0])
    z_coef[0, 1] = -config.zonal_wind * f_c * EARTH_RADIUS
    z_coef[0, 2::2] = waves["amplitude"]
    for lev in range(1, len(bottom_up)):
        log_ratio = np.log(bottom_up[lev - 1] / bottom_up[lev])
        layer_mean = 0.5 * (t_coef[lev - 1] + t_coef[lev])
        z_coef[lev] = z_coef[lev - 1] + R_DRY * layer_mean * log_ratio
    return t_coef, z_coef
