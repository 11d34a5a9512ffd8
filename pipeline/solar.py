"""Top-of-atmosphere (TOA) insolation: the known-in-advance forcing of the diurnal and
seasonal cycles, as GraphCast and GenCast give their models (TOA incident solar radiation).

In units of the solar constant ``S0`` (about 1361 W m-2)::

    I(t, phi, lambda) = (1 AU / R)^2 * max(0, cos theta_z),
    cos theta_z = sin(phi) sin(delta) + cos(phi) cos(delta) cos(h),

with ``phi`` the latitude, ``delta`` the solar declination, ``R`` the Sun-Earth distance
and ``h`` the hour angle of the true solar time ``UTC + lambda / (15 deg/h) + EoT``.
The sun's position is the Astronomical Almanac's low-precision formula (Michalsky 1988,
*Solar Energy* 40, 227-235), within 0.01 deg of declination over 1950-2050: from
``n = JD - 2451545``, the mean longitude ``L = 280.460 + 0.9856474 n``, the mean anomaly
``g = 357.528 + 0.9856003 n``, the ecliptic longitude ``l = L + 1.915 sin g + 0.020 sin 2g``
and the obliquity ``e = 23.439 - 4e-7 n`` (degrees): ``sin delta = sin e sin l``, the right
ascension ``alpha = atan2(cos e sin l, cos l)``, ``EoT = L - alpha`` and
``R = 1.00014 - 0.01671 cos g - 0.00014 cos 2g``. Refraction and the solar disc are
ignored (they move sunrise by minutes).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

SOLAR_FORCINGS = ("toa_insolation_now", "toa_insolation_valid", "toa_insolation_mean")
MEAN_STEP_MINUTES = 10  # resolution of the interval mean of SOLAR_FORCINGS[2]
J2000 = pd.Timestamp("2000-01-01T12:00")
MAX_BLOCK = 2**22  # values of an interval mean's block of times (bounds memory on big grids)


def _days(times: Sequence[pd.Timestamp] | pd.DatetimeIndex) -> np.ndarray:
    """(T,) days since J2000.0 (2000-01-01 12:00 UTC), float64."""
    return ((pd.DatetimeIndex(times) - J2000) / pd.Timedelta(days=1)).to_numpy(np.float64)


def _sun(n: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(declination rad, equation of time min, Sun-Earth distance AU), each (T,), at ``n``
    days since J2000.0."""
    mean_longitude = np.deg2rad(280.460 + 0.9856474 * n)
    g = np.deg2rad(357.528 + 0.9856003 * n)
    ecliptic = mean_longitude + np.deg2rad(1.915 * np.sin(g) + 0.020 * np.sin(2 * g))
    obliquity = np.deg2rad(23.439 - 4e-7 * n)
    declination = np.arcsin(np.sin(obliquity) * np.sin(ecliptic))
    right_ascension = np.arctan2(np.cos(obliquity) * np.sin(ecliptic), np.cos(ecliptic))
    eot = np.angle(np.exp(1j * (mean_longitude - right_ascension)))  # wrapped to (-pi, pi]
    distance = 1.00014 - 0.01671 * np.cos(g) - 0.00014 * np.cos(2 * g)
    return declination, np.rad2deg(eot) * 4.0, distance


def solar_declination(times: Sequence[pd.Timestamp] | pd.DatetimeIndex) -> np.ndarray:
    """(T,) solar declination in radians."""
    return _sun(_days(times))[0]


def equation_of_time_minutes(times: Sequence[pd.Timestamp] | pd.DatetimeIndex) -> np.ndarray:
    """(T,) true minus mean solar time in minutes."""
    return _sun(_days(times))[1]


def _insolation(n: np.ndarray, latitude: np.ndarray, longitude: np.ndarray) -> np.ndarray:
    """(T, H, W) insolation at ``n`` (T,) days since J2000.0 (see :func:`toa_insolation`)."""
    delta, eot, distance = _sun(n)
    utc_minutes = np.mod(n + 0.5, 1.0) * 1440.0  # J2000.0 is at noon
    h0 = np.deg2rad((utc_minutes + eot) / 4.0 - 180.0)  # hour angle at longitude 0
    lam = np.deg2rad(np.asarray(longitude, np.float64))
    phi = np.deg2rad(np.asarray(latitude, np.float64))[None, :, None]
    # cos(h0 + lam) expanded, so that no trigonometry runs on the (T, H, W) array
    east = (np.cos(delta) * np.cos(h0))[:, None, None] * np.cos(lam)
    east -= (np.cos(delta) * np.sin(h0))[:, None, None] * np.sin(lam)
    cos_zenith = np.sin(phi) * np.sin(delta)[:, None, None] + np.cos(phi) * east
    return np.maximum(cos_zenith, 0.0) / distance[:, None, None] ** 2


def toa_insolation(
    times: Sequence[pd.Timestamp] | pd.DatetimeIndex,
    latitude: np.ndarray,
    longitude: np.ndarray,
) -> np.ndarray:
    """(T, H, W) TOA insolation ``I`` in units of ``S0`` at ``times`` (UTC, naive) on the
    grid of ``latitude`` (H,) and ``longitude`` (W,), both in degrees."""
    return _insolation(_days(times), latitude, longitude)


def solar_forcing(
    times: Sequence[pd.Timestamp] | pd.DatetimeIndex,
    leads_hours: np.ndarray,
    latitude: np.ndarray,
    longitude: np.ndarray,
) -> np.ndarray:
    """(B, 3, H, W) float32 forcing of forecasts from ``times`` (B,) at ``leads_hours`` (B,):
    the TOA insolation at the initial time, at the valid time, and its mean over the
    forecast interval (midpoint rule, one point every ``MEAN_STEP_MINUTES``), named
    :data:`SOLAR_FORCINGS`."""
    start = _days(times)
    leads = np.broadcast_to(np.asarray(leads_hours, np.float64), start.shape)
    grid = (len(latitude), len(longitude))
    out = np.empty((len(start), len(SOLAR_FORCINGS), *grid), np.float32)
    out[:, 0] = _insolation(start, latitude, longitude)
    out[:, 1] = _insolation(start + leads / 24.0, latitude, longitude)
    for lead in np.unique(leads):
        chosen = leads == lead
        n = max(1, int(round(lead * 60 / MEAN_STEP_MINUTES)))
        offsets = (np.arange(n) + 0.5) * lead / n / 24.0
        block = max(1, MAX_BLOCK // (chosen.sum() * grid[0] * grid[1]))
        total = np.zeros((chosen.sum(), *grid))
        for k in range(0, n, block):
            points = (start[chosen][:, None] + offsets[None, k : k + block]).ravel()
            values = _insolation(points, latitude, longitude)
            total += values.reshape(chosen.sum(), -1, *grid).sum(1)
        out[chosen, 2] = total / n
    return out
