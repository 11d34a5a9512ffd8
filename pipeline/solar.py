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


def _sun(times: pd.DatetimeIndex) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(declination rad, equation of time min, Sun-Earth distance AU), each (T,)."""
    n = ((times - J2000) / pd.Timedelta(days=1)).to_numpy(np.float64)
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
    return _sun(pd.DatetimeIndex(times))[0]


def equation_of_time_minutes(times: Sequence[pd.Timestamp] | pd.DatetimeIndex) -> np.ndarray:
    """(T,) true minus mean solar time in minutes."""
    return _sun(pd.DatetimeIndex(times))[1]


def toa_insolation(
    times: Sequence[pd.Timestamp] | pd.DatetimeIndex,
    latitude: np.ndarray,
    longitude: np.ndarray,
) -> np.ndarray:
    """(T, H, W) TOA insolation ``I`` in units of ``S0`` at ``times`` (UTC, naive) on the
    grid of ``latitude`` (H,) and ``longitude`` (W,), both in degrees."""
    times = pd.DatetimeIndex(times)
    delta, eot, distance = _sun(times)
    delta = delta[:, None, None]
    utc_minutes = (times.hour * 60 + times.minute + times.second / 60.0).to_numpy(np.float64)
    solar_minutes = utc_minutes + eot  # at longitude 0
    hour_angle = np.deg2rad(
        (solar_minutes[:, None, None] + 4.0 * np.asarray(longitude, np.float64)[None, None, :])
        / 4.0
        - 180.0
    )
    phi = np.deg2rad(np.asarray(latitude, np.float64))[None, :, None]
    cos_zenith = np.sin(phi) * np.sin(delta) + np.cos(phi) * np.cos(delta) * np.cos(hour_angle)
    return np.maximum(cos_zenith, 0.0) / distance[:, None, None] ** 2


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
    times = pd.DatetimeIndex(times)
    leads = np.broadcast_to(np.asarray(leads_hours, np.float64), (len(times),))
    out = np.empty((len(times), len(SOLAR_FORCINGS), len(latitude), len(longitude)), np.float32)
    out[:, 0] = toa_insolation(times, latitude, longitude)
    out[:, 1] = toa_insolation(times + pd.to_timedelta(leads, unit="h"), latitude, longitude)
    for lead in np.unique(leads):
        chosen = leads == lead
        n = max(1, int(round(lead * 60 / MEAN_STEP_MINUTES)))
        offsets = pd.to_timedelta((np.arange(n) + 0.5) * lead / n, unit="h")
        points = (times.to_numpy()[chosen][:, None] + offsets.to_numpy()[None, :]).ravel()
        values = toa_insolation(pd.DatetimeIndex(points), latitude, longitude)
        out[chosen, 2] = values.reshape(chosen.sum(), n, *values.shape[1:]).mean(1)
    return out
