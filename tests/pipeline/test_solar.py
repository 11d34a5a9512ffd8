"""TOA insolation against limit cases with closed forms: the equator's daily mean at an
equinox (E0 / pi), the pole's constant sun at a solstice (E0 sin 23.44 deg), polar night,
the solar noon at Greenwich and 90 E, and the interval mean of the forcing against a direct
average."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipeline.solar import (
    SOLAR_FORCINGS,
    equation_of_time_minutes,
    solar_declination,
    solar_forcing,
    toa_insolation,
)

OBLIQUITY = np.deg2rad(23.44)
LAT = np.array([-90.0, 0.0, 51.5, 80.0, 90.0])
LON = np.array([0.0, 90.0])


def one_day(day: str) -> pd.DatetimeIndex:
    """Every minute of a day, on the half minute."""
    return pd.date_range(f"{day}T00:00:30", periods=24 * 60, freq="min")


def test_declination_reaches_the_obliquity_at_the_solstices_and_zero_at_the_equinox():
    june, december, march = solar_declination(
        pd.DatetimeIndex(["2019-06-21T12", "2019-12-22T12", "2019-03-20T22"])
    )
    assert june == pytest.approx(OBLIQUITY, abs=2e-3)
    assert december == pytest.approx(-OBLIQUITY, abs=2e-3)
    assert march == pytest.approx(0.0, abs=2e-3)


def test_equator_at_the_equinox_gets_a_daily_mean_of_one_over_pi():
    insolation = toa_insolation(one_day("2019-03-20"), LAT, LON)
    e0 = insolation[:, 1, 0].max()  # the sun is overhead at noon: E0 * cos(0)
    assert e0 == pytest.approx(1.0 + 0.034 * np.cos(2 * np.pi * 78 / 365), abs=2e-3)
    np.testing.assert_allclose(insolation[:, 1].mean(0), e0 / np.pi, rtol=2e-3)


def test_the_summer_pole_has_constant_sun_and_the_winter_pole_none():
    insolation = toa_insolation(one_day("2019-06-21"), LAT, LON)
    north, south = insolation[:, -1], insolation[:, 0]
    e0 = 1.0 - 0.034  # near aphelion
    np.testing.assert_allclose(north, e0 * np.sin(OBLIQUITY), rtol=3e-3)
    assert (south == 0).all()
    assert (toa_insolation(one_day("2019-12-22"), LAT, LON)[:, 3] == 0).all()  # 80 N


def test_solar_noon_at_greenwich_follows_the_equation_of_time():
    """On 2019-02-11 the equation of time is near its minimum, about -14.2 min, so the sun
    is highest at Greenwich near 12:14 UTC and 90 deg east six hours earlier."""
    times = one_day("2019-02-11")
    insolation = toa_insolation(times, LAT, LON)
    eot = equation_of_time_minutes(pd.DatetimeIndex(["2019-02-11T12"]))[0]
    assert eot == pytest.approx(-14.2, abs=0.5)
    noon = times[insolation[:, 2].argmax(0)]
    expected = pd.Timestamp("2019-02-11T12:00") - pd.Timedelta(minutes=eot)
    assert abs(noon[0] - expected) <= pd.Timedelta(minutes=1)
    assert abs(noon[1] - (expected - pd.Timedelta(hours=6))) <= pd.Timedelta(minutes=1)


def test_forcing_holds_the_initial_valid_and_interval_mean_insolation():
    inits = pd.DatetimeIndex(["2019-03-21T00", "2019-03-21T06", "2019-03-21T18"])
    leads = np.array([24.0, 6.0, 1.0])
    forcing = solar_forcing(inits, leads, LAT, LON)
    assert forcing.shape == (3, len(SOLAR_FORCINGS), len(LAT), len(LON))
    assert forcing.dtype == np.float32
    valid = inits + pd.to_timedelta(leads, unit="h")
    np.testing.assert_allclose(forcing[:, 0], toa_insolation(inits, LAT, LON), rtol=1e-6)
    np.testing.assert_allclose(forcing[:, 1], toa_insolation(valid, LAT, LON), rtol=1e-6)
    for b, (init, lead) in enumerate(zip(inits, leads, strict=True)):
        minutes = pd.date_range(init, periods=int(lead * 60), freq="min") + pd.Timedelta("30s")
        direct = toa_insolation(minutes, LAT, LON).mean(0)
        np.testing.assert_allclose(forcing[b, 2], direct, atol=2e-3)
    e0 = toa_insolation(one_day("2019-03-21"), LAT, LON)[:, 1].max()
    np.testing.assert_allclose(forcing[0, 2, 1], e0 / np.pi, rtol=2e-3)  # a day at the equator
