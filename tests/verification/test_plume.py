"""A forecaster's plume at a place (:mod:`verification.plume`) on grids made here: the nearest
grid point is numpy's argmin in either longitude convention, a far place is refused, the
series holds the store's members at init + lead, the band and median are numpy's quantiles,
and the truth is drawn only at the valid times it holds."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from pipeline.errors import InputError
from tests.verification.test_products import MEMBERS, ensemble
from verification.plume import nearest_point, plot_plume, point_series, truth_series

GLOBAL_0_360 = np.arange(0.0, 360.0, 2.5)
GLOBAL_180 = np.arange(-180.0, 180.0, 2.5)
LATITUDES = np.linspace(90.0, -90.0, 73)  # north to south, as ERA5 and WeatherBench 2


def artist(ax, gid: str):
    """The one line or collection of ``ax`` with the id ``gid``."""
    found = [a for a in [*ax.lines, *ax.collections] if a.get_gid() == gid]
    assert len(found) == 1, [a.get_gid() for a in [*ax.lines, *ax.collections]]
    return found[0]


@pytest.mark.parametrize("longitudes", [GLOBAL_0_360, GLOBAL_180], ids=["0-360", "-180-180"])
@pytest.mark.parametrize(
    "place", [(51.5, -0.12), (51.5, 359.9), (-33.9, 151.2), (64.1, -21.9), (0.0, 181.2)]
)
def test_nearest_point_is_numpys_argmin_in_either_longitude_convention(longitudes, place):
    latitude, longitude = place
    i, j = nearest_point(LATITUDES, longitudes, latitude, longitude, "the grid")
    east = longitude % 360.0
    assert i == np.argmin(np.abs(LATITUDES - latitude))
    assert j == np.argmin(
        np.minimum(np.abs(longitudes % 360 - east), 360 - np.abs(longitudes % 360 - east))
    )


def test_a_place_beyond_one_grid_cell_is_refused_naming_it_the_bounds_and_the_fix():
    lats, lons = np.array([50.0, 51.0, 52.0]), np.array([-2.0, -1.0, 0.0, 1.0])
    assert nearest_point(lats, lons, 52.9, 1.9, "f.zarr") == (2, 3)  # within a cell: kept
    with pytest.raises(InputError) as refused:
        nearest_point(lats, lons, 40.4, -3.7, "f.zarr")
    message = str(refused.value)
    for said in ("40.4", "-3.7", "f.zarr", "50", "52", "-2", "1", "--at"):
        assert said in message
    with pytest.raises(InputError, match="latitude 50 to 52"):
        nearest_point(lats, lons, 51.0, 3.5, "f.zarr")  # east of the grid by 2.5 cells
    with pytest.raises(InputError, match="not a number"):
        nearest_point(lats, lons, float("nan"), 0.0, "f.zarr")


def test_series_holds_the_stores_members_at_init_plus_lead():
    ds = ensemble()
    series = point_series(ds, 51.4, 359.2)  # the point (51, -1), in 0..360 east
    latest = ds["init_time"].values[-1]
    assert float(series["latitude"]) == 51.0 and float(series["longitude"]) == -1.0
    assert series["init_time"].values == latest
    np.testing.assert_array_equal(series["valid_time"].values, latest + ds["lead_time"].values)
    np.testing.assert_array_equal(
        series["t2m"].transpose("member", "valid_time").values,
        ds["t2m"].sel(latitude=51.0, longitude=-1.0).isel(init_time=-1).values,
    )
    first = point_series(ds, 51.4, -0.9, init="2019-03-04T00", units=["t2m=degC"])
    np.testing.assert_allclose(
        first["t2m"].transpose("member", "valid_time").values,
        ds["t2m"].sel(latitude=51.0, longitude=-1.0).isel(init_time=0).values - 273.15,
    )
    assert first["t2m"].attrs["units"] == "degC"
    with pytest.raises(InputError, match="2019-03-06.*2019-03-04"):
        point_series(ds, 51.0, -1.0, init="2019-03-06T00")


def test_band_and_median_are_numpys_quantiles_and_members_are_drawn_thin():
    series = point_series(ensemble(), 51.0, 0.0)
    fig = plot_plume(series, quantiles=(0.1, 0.5, 0.9))
    ax = fig.axes[0]
    members = series["t2m"].transpose("member", "valid_time").values
    lo, median, hi = np.quantile(members, [0.1, 0.5, 0.9], axis=0)
    np.testing.assert_allclose(artist(ax, "quantile 0.5").get_ydata(), median)
    band = artist(ax, "band").get_paths()[0].vertices[:, 1]
    np.testing.assert_allclose(np.sort(np.unique(band)), np.sort(np.unique([*lo, *hi])))
    thin = [line for line in ax.lines if line.get_gid() == "member"]
    assert len(thin) == MEMBERS
    assert all(line.get_linewidth() < artist(ax, "quantile 0.5").get_linewidth() for line in thin)
    assert ax.get_ylabel() == "t2m (K)" and "valid time" in ax.get_xlabel()
    assert "51.00°N, 0.00°E" in fig.texts[0].get_text()  # the grid point's coordinates


def test_truth_is_drawn_only_at_the_valid_times_it_holds():
    ds = ensemble()
    series = point_series(ds, 51.0, 1.0)
    held = pd.DatetimeIndex([series["valid_time"].values[1], "2019-03-09T00"])
    truth = xr.Dataset(
        {"t2m": (("time", "latitude", "longitude"), np.full((2, 3, 4), 5.0), {"units": "degC"})},
        coords={"time": held, "latitude": [50.0, 51.0, 52.0], "longitude": [358, 359, 0, 1]},
    )
    ax = plot_plume(series, truth_series(truth, series)).axes[0]
    markers = artist(ax, "truth")
    # one of the two valid times; 9 March is none
    np.testing.assert_array_equal(markers.get_xdata(), series["valid_time"].values[1:])
    np.testing.assert_allclose(markers.get_ydata(), [278.15])  # 5 degC in the series' K


def test_a_variable_the_truth_lacks_is_drawn_without_markers_and_said(caplog):
    series = point_series(ensemble(), 51.0, 1.0)
    truth = xr.Dataset(
        {"msl": (("time", "latitude", "longitude"), np.ones((1, 1, 1)), {"units": "Pa"})},
        coords={"time": series["valid_time"].values[:1], "latitude": [51.0], "longitude": [1]},
    )
    logger = logging.getLogger("verification.plume")
    logger.addHandler(caplog.handler)
    try:
        ax = plot_plume(series, truth_series(truth, series)).axes[0]
    finally:
        logger.removeHandler(caplog.handler)
    assert not [line for line in ax.lines if line.get_gid() == "truth"]
    assert "the truth holds no t2m" in caplog.text


def test_a_forecast_of_more_channels_than_panels_draws_the_first_and_names_the_rest(caplog):
    """A store of nine channels (t2m and z on eight levels) asked for a plume without
    --variable was refused (at most 8 panels): a new user's first plume failed. The first 8
    are drawn, the one left out named with the flag; asked for by name, 9 are refused."""
    ds = ensemble()
    levels = [1000, 925, 850, 700, 500, 300, 250, 200]
    z = ds.t2m.expand_dims(level=levels, axis=2).transpose(..., "latitude", "longitude")
    ds = ds.assign(z=z.assign_attrs(units="m2 s-2")).assign_coords(level=levels)
    logger = logging.getLogger("verification.plume")
    logger.addHandler(caplog.handler)
    try:
        series = point_series(ds, 51.0, 1.0)
    finally:
        logger.removeHandler(caplog.handler)
    expected = ["t2m", *(f"z{level}" for level in levels[:-1])]
    assert list(series.data_vars) == expected
    assert "9 channels" in caplog.text and "left out z200" in caplog.text
    assert "(--variable z200)" in caplog.text
    assert len(plot_plume(series).axes) == 8
    every = point_series(ds, 51.0, 1.0, variables=[*expected, "z200"])
    with pytest.raises(InputError, match="9 panels; a plume draws at most 8"):
        plot_plume(every)
