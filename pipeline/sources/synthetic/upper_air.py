"""Balanced upper-air fields for the synthetic source: ``z``, ``t``, ``u``, ``v`` on levels.

Every field is a linear combination of a few analytic basis functions of latitude phi and
longitude lambda (radians)::

    b_0 = 1,   b_1 = phi - phi_c,
    b_(2+2w) = E(phi) cos(m_w lambda),   b_(3+2w) = E(phi) sin(m_w lambda),
    E(phi) = exp(-(phi - phi_c)^2 / (2 s^2)),

a zonal-mean part and W planetary waves of zonal wavenumber m_w under a Gaussian envelope
of width s, one third of the latitude span. The state of wave w at step n is one complex
coefficient c_w(n) = a_w + i b_w; a field's wave w is Re(K_w c_w e^(i m_w lambda)) E(phi)
with a fixed complex vertical structure K_w per variable and level (below). Wavenumbers,
phases, amplitudes, speeds and the phase shift of the temperature wave are drawn from the
config seed.

Time evolution, per model step (``upper_air_phi`` = phi, ``upper_air_sigma`` = sigma)::

    c_w(n+1) = phi P_w c_w(n) + sqrt(1 - phi^2) (sigma / sqrt 2) (eps_a + i eps_b),
    P_w = exp(-i m_w c_w dt / (R cos phi_c)),   eps ~ N(0, 1) iid,

an Ornstein-Uhlenbeck process sampled at the step, propagating east at speed c_w (P_w a
rotation of the phase), stationary with a_w, b_w ~ N(0, sigma^2 / 2). P_w commutes with
the isotropic noise, so the law ``steps`` ahead is exact and Gaussian
(:func:`conditional_wave_law`)::

    c_w(n+k) | c_w(n) ~ N(phi^k P_w^k c_w(n), sigma^2 (1 - phi^(2k)) / 2 per real part).

phi = 1 (the default) is the deterministic limit: unit waves c_w(n) = exp(i(theta_w -
m_w c_w n dt / (R cos phi_c))) moving at fixed speeds.

Balance holds by construction (levels ordered bottom p_0 > p_1 > ... up):

- temperature ``T_l = T_isa(p_l) - G (phi - phi_c) + waves``, wave structure
  K^T_w = A^T_w exp(-i delta_w) (G the poleward gradient, delta_w the phase shift);
- geopotential of the bottom level ``Phi_0 = g0 Z_isa(p_0) - u_0 f_c R (phi - phi_c) +
  waves`` (a zonal wind u_0 at phi_c), K^Phi_w = A_w, and above it the hypsometric
  relation with the mean of the two levels' temperatures, exactly, term by term::

    Phi_(l+1) = Phi_l + R_d (T_l + T_(l+1)) / 2 * ln(p_l / p_(l+1));

- geostrophic winds from the analytic derivatives of Phi (no finite differences)::

    u = -1 / (f R) dPhi/dphi,   v = 1 / (f R cos phi) dPhi/dlambda,   f = 2 Omega sin phi.

A centred finite-difference check on the grid therefore shows only its own
discretisation error, O(dx^2). Every field is affine in the state, so the state of a
field is recovered exactly by least squares on the known basis (:func:`project_states`).
Reference: Holton & Hakim, *An Introduction to Dynamic Meteorology* (5th ed.), sections
1.6.2 (hypsometric equation) and 3.2 (geostrophic wind); ISA profile from ICAO Doc 7488;
Gardiner, *Stochastic Methods* (4th ed.), section 3.8.4 (Ornstein-Uhlenbeck process).
"""

from __future__ import annotations

import numpy as np

from pipeline.errors import InputError
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
_STATE_STREAM = 3  # stream of the stochastic wave states


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


def wave_states(config: SyntheticConfig) -> np.ndarray:
    """The wave states c_w(n) of every time step, complex (time, wave); seeded.

    phi = 1: the deterministic unit waves; phi < 1: the OU recursion of the module
    docstring from a stationary draw c_w(0) ~ N(0, sigma^2 / 2 per real part).
    """
    waves = _wave_parameters(config)
    steps = np.arange(config.n_times)
    if config.upper_air_phi == 1.0:
        return (
            np.exp(1j * waves["phase"][None, :]) * _step_rotation(config, waves) ** steps[:, None]
        )
    rng = np.random.default_rng([config.seed, _STATE_STREAM])
    noise = _complex_normal(rng, (config.n_times, config.n_waves), config.upper_air_sigma)
    innovation = np.sqrt(1.0 - config.upper_air_phi**2)
    rotation = config.upper_air_phi * _step_rotation(config, waves)
    states = np.empty_like(noise)
    states[0] = noise[0]
    for n in range(1, config.n_times):
        states[n] = rotation * states[n - 1] + innovation * noise[n]
    return states


def conditional_wave_law(
    config: SyntheticConfig, states: np.ndarray, steps: int
) -> tuple[np.ndarray, float]:
    """Exact law of the wave states ``steps`` after ``states`` (complex (..., wave)).

    Returns the mean phi^k P^k c (complex, same shape) and the std of each real part,
    sigma sqrt((1 - phi^(2k)) / 2), the same for every wave (0 when phi = 1).
    """
    rotation = (config.upper_air_phi * _step_rotation(config, _wave_parameters(config))) ** steps
    std = config.upper_air_sigma * np.sqrt(0.5 * (1.0 - config.upper_air_phi ** (2 * steps)))
    return rotation * states, float(std)


def draw_wave_states(
    rng: np.random.Generator, config: SyntheticConfig, states: np.ndarray, steps: int,
    n_draws: int,
) -> np.ndarray:  # fmt: skip
    """``n_draws`` samples of the states ``steps`` ahead: complex (n_draws, ..., wave)."""
    mean, std = conditional_wave_law(config, states, steps)
    return mean + _complex_normal(rng, (n_draws, *mean.shape), np.sqrt(2.0) * std)


def balanced_upper_air(
    config: SyntheticConfig, states: np.ndarray, dtype: type = np.float32
) -> dict[str, np.ndarray]:
    """The balanced fields of wave states ``states`` (complex (..., wave)).

    Returns ``{"z", "t", "u", "v"}`` -> arrays (..., level, latitude, longitude) of
    ``dtype``, levels in ``config.levels`` order (ascending hPa).
    """
    states = np.asarray(states, dtype=np.complex128)
    waves = _wave_parameters(config)
    values, d_dphi, d_dlambda = _basis(config, waves)  # (basis, lat, lon)
    bottom_up = sorted(config.levels, reverse=True)
    t_coef, z_coef = _level_coefficients(config, waves, bottom_up, states)  # (..., level, basis)

    lat = config.latitude[:, None]
    f = coriolis_parameter(lat)
    fields = {
        "z": np.einsum("...lb,byx->...lyx", z_coef, values),
        "t": np.einsum("...lb,byx->...lyx", t_coef, values),
        "u": -np.einsum("...lb,byx->...lyx", z_coef, d_dphi) / (f * EARTH_RADIUS),
        "v": np.einsum("...lb,byx->...lyx", z_coef, d_dlambda)
        / (f * EARTH_RADIUS * np.cos(np.deg2rad(lat))),
    }
    order = [bottom_up.index(p) for p in config.levels]
    return {name: arr[..., order, :, :].astype(dtype) for name, arr in fields.items()}


def project_states(config: SyntheticConfig, z: np.ndarray, t: np.ndarray) -> np.ndarray:
    """The wave states of balanced fields: least squares of ``z`` and ``t`` on the basis.

    ``z``, ``t``: (..., level, latitude, longitude), levels in ``config.levels`` order.
    Every field is affine in the state, so the fit is exact up to the fields' rounding
    when the design (the response of z and t to each real part of each wave, each
    variable scaled by its response's RMS) has full rank. Returns complex (..., wave).
    """
    n = config.n_waves
    unit = np.concatenate([np.eye(n), 1j * np.eye(n)]).astype(np.complex128)  # (2n, wave)
    zero = balanced_upper_air(config, np.zeros((1, n)), np.float64)
    response = balanced_upper_air(config, unit, np.float64)
    columns, targets = [], []
    for name, field in (("z", z), ("t", t)):
        delta = (response[name] - zero[name]).reshape(2 * n, -1)
        scale = np.sqrt(np.mean(delta**2)) or 1.0
        columns.append(delta.T / scale)
        anomaly = np.asarray(field, dtype=np.float64) - zero[name][0]
        targets.append(anomaly.reshape(*anomaly.shape[:-3], -1) / scale)
    design = np.concatenate(columns)  # (points, 2n)
    if n and np.linalg.matrix_rank(design) < 2 * n:
        raise InputError(
            f"the {n} waves of {config.to_spec()!r} are not separable on this grid (two waves "
            f"with the same wavenumber and vertical structure); use another seed"
        )
    target = np.concatenate(targets, axis=-1)
    parts = np.linalg.lstsq(design, target.reshape(-1, design.shape[0]).T, rcond=None)[0]
    parts = parts.T.reshape(*target.shape[:-1], 2 * n)
    return parts[..., :n] + 1j * parts[..., n:]


def _complex_normal(rng: np.random.Generator, shape: tuple[int, ...], rms: float) -> np.ndarray:
    """Complex Gaussian draws of E|c|^2 = rms^2: real and imaginary parts N(0, rms^2 / 2)."""
    parts = rng.standard_normal((2, *shape))
    return rms / np.sqrt(2.0) * (parts[0] + 1j * parts[1])


def _step_rotation(config: SyntheticConfig, waves: dict[str, np.ndarray]) -> np.ndarray:
    """P_w = exp(-i m_w c_w dt / (R cos phi_c)): one step's eastward propagation per wave."""
    phi_c = np.deg2rad(config.central_latitude)
    angular_speed = waves["speed"] / (EARTH_RADIUS * np.cos(phi_c))  # rad of longitude s-1
    return np.exp(-1j * waves["wavenumber"] * angular_speed * config.step.total_seconds())


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
    config: SyntheticConfig, waves: dict[str, np.ndarray]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Basis functions and their d/dphi, d/dlambda: three arrays (basis, lat, lon)."""
    phi = np.deg2rad(config.latitude)[:, None]  # (lat, 1)
    lam = np.deg2rad(config.longitude)[None, :]  # (1, lon)
    phi_c = np.deg2rad(config.central_latitude)
    width = np.deg2rad(config.lat_max - config.lat_min) / 3.0
    envelope = np.exp(-0.5 * ((phi - phi_c) / width) ** 2)
    d_envelope = -(phi - phi_c) / width**2 * envelope

    shape = (2 + 2 * config.n_waves, config.n_lat, config.n_lon)
    values, d_dphi, d_dlambda = np.zeros(shape), np.zeros(shape), np.zeros(shape)
    values[0] = 1.0
    values[1] = phi - phi_c
    d_dphi[1] = 1.0
    for w, m in enumerate(waves["wavenumber"]):
        cos, sin = np.cos(m * lam), np.sin(m * lam)  # (1, lon)
        values[2 + 2 * w], values[3 + 2 * w] = envelope * cos, envelope * sin
        d_dphi[2 + 2 * w], d_dphi[3 + 2 * w] = d_envelope * cos, d_envelope * sin
        d_dlambda[2 + 2 * w], d_dlambda[3 + 2 * w] = -m * envelope * sin, m * envelope * cos
    return values, d_dphi, d_dlambda


def _level_coefficients(
    config: SyntheticConfig,
    waves: dict[str, np.ndarray],
    bottom_up: list[int],
    states: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Basis coefficients of T and Phi (..., level, basis), levels bottom first.

    The wave terms Re(K c e^(i m lambda)) = Re(K c) cos(m lambda) - Im(K c) sin(m lambda);
    Phi of each level above the bottom is the hypsometric sum of the layers below,
    term by term (every term is linear in the basis).
    """
    hemisphere = np.sign(config.central_latitude)
    gradient = config.temperature_gradient * 180.0 / np.pi  # K per radian poleward
    n_lev = len(bottom_up)
    shift = waves["temperature_shift"]
    t_structure = np.broadcast_to(
        waves["temperature_amplitude"] * np.exp(-1j * shift), (n_lev, config.n_waves)
    )
    t_mean = np.zeros((n_lev, 2))
    t_mean[:, 0] = isa_temperature(np.array(bottom_up, dtype=np.float64))
    t_mean[:, 1] = -hemisphere * gradient

    z_structure = np.zeros((n_lev, config.n_waves), dtype=np.complex128)
    z_mean = np.zeros((n_lev, 2))
    z_structure[0] = waves["amplitude"]
    z_mean[0] = (
        isa_geopotential(bottom_up[0]),
        -config.zonal_wind * coriolis_parameter(config.central_latitude) * EARTH_RADIUS,
    )
    for lev in range(1, n_lev):
        log_ratio = R_DRY * np.log(bottom_up[lev - 1] / bottom_up[lev])
        z_mean[lev] = z_mean[lev - 1] + log_ratio * 0.5 * (t_mean[lev - 1] + t_mean[lev])
        z_structure[lev] = z_structure[lev - 1] + log_ratio * 0.5 * (
            t_structure[lev - 1] + t_structure[lev]
        )
    return _coefficients(t_mean, t_structure, states), _coefficients(z_mean, z_structure, states)


def _coefficients(mean: np.ndarray, structure: np.ndarray, states: np.ndarray) -> np.ndarray:
    """(..., level, basis) real coefficients: the mean terms, then Re(K c), -Im(K c) per wave."""
    waves = structure * states[..., None, :]  # (..., level, wave)
    out = np.empty((*waves.shape[:-1], 2 + 2 * waves.shape[-1]))
    out[..., :2] = mean
    out[..., 2::2] = waves.real
    out[..., 3::2] = -waves.imag
    return out
