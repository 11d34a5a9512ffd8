"""Normalisation of other producers' conventions onto the canonical schema."""

from __future__ import annotations

import logging
import re

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from pipeline.errors import InputError
from pipeline.grid import longitudes_canonical
from pipeline.normalize import canonical_units, normalize
from pipeline.schema import channel_name, channels, from_channels, split_channel, to_channels

TIMES = pd.date_range("2020-01-01", periods=3, freq="6h")


def field(shape, value=1.0):
    return np.full(shape, value, dtype="float64")


def test_weatherbench2_names_and_levels():
    ds = xr.Dataset(
        {
            "2m_temperature": (
                ("time", "latitude", "longitude"),
                field((3, 4, 8), 280.0),
                {"units": "K"},
            ),
            "geopotential": (
                ("time", "level", "latitude", "longitude"),
                field((3, 2, 4, 8), 5e4),
                {"units": "m**2 s**-2"},
            ),
        },
        coords={
            "time": TIMES,
            "level": [850, 500],
            "latitude": [-60.0, -20.0, 20.0, 60.0],
            "longitude": np.arange(0, 360, 45.0),
        },
    )
    out = normalize(ds, "wb2.zarr")
    assert set(out.data_vars) == {"t2m", "z"}
    assert out["z"].dims == ("time", "level", "latitude", "longitude")
    assert out["level"].values.tolist() == [500.0, 850.0]
    assert out["z"].dtype == np.float32 and out["z"].attrs["units"] == "m2 s-2"


def test_ncep_style_names_pascal_levels_and_celsius():
    air = np.arange(3 * 2 * 3 * 4, dtype="float64").reshape(3, 2, 3, 4)
    ds = xr.Dataset(
        {
            "air": (("time", "plev", "lat", "lon"), air, {"units": "degC"}),
            "hgt": (("time", "plev", "lat", "lon"), field((3, 2, 3, 4), 1500.0), {"units": "m"}),
        },
        coords={
            "time": TIMES,
            "plev": [85000.0, 50000.0],
            "lat": [70.0, 50.0, 30.0],
            "lon": [350.0, 355.0, 0.0, 5.0],
        },
    )
    out = normalize(ds, "ncep.nc")
    assert set(out.data_vars) == {"t", "gh"}, "hgt is geopotential height, not geopotential"
    assert out["level"].values.tolist() == [500.0, 850.0]
    assert out["latitude"].values.tolist() == [30.0, 50.0, 70.0]
    assert out["longitude"].values.tolist() == [-10.0, -5.0, 0.0, 5.0]
    # the value at plev=85000 Pa, lat=70, lon=350 moved to level=850, latitude=70, longitude=-10
    expected = air[0, 0, 0, 0] + 273.15
    got = float(out["t"].sel(level=850, latitude=70, longitude=-10).isel(time=0))
    assert got == pytest.approx(expected, abs=1e-4)


def test_geopotential_in_metres_is_kept_as_height():
    ds = xr.Dataset(
        {
            "z": (
                ("time", "level", "latitude", "longitude"),
                field((3, 1, 2, 2), 5500.0),
                {"units": "gpm"},
            )
        },
        coords={"time": TIMES, "level": [500], "latitude": [40.0, 50.0], "longitude": [0.0, 1.0]},
    )
    assert list(normalize(ds, "x.nc").data_vars) == ["gh"]


def test_unsorted_times_are_sorted_and_duplicates_refused():
    base = xr.Dataset(
        {
            "t2m": (
                ("time", "latitude", "longitude"),
                np.arange(12.0).reshape(3, 2, 2),
                {"units": "K"},
            )
        },
        coords={"latitude": [50.0, 51.0], "longitude": [0.0, 1.0]},
    )
    shuffled = base.assign_coords(time=TIMES[[2, 0, 1]])
    out = normalize(shuffled, "shuffled.nc")
    assert pd.DatetimeIndex(out.time.values).is_monotonic_increasing
    assert float(out.t2m.isel(time=0, latitude=0, longitude=0)) == 4.0  # was the 2nd field
    dup = base.assign_coords(time=TIMES[[0, 1, 1]])
    with pytest.raises(InputError, match=r"dup\.nc: 1 duplicate time"):
        normalize(dup, "dup.nc")


@pytest.mark.parametrize(
    ("lon", "expected_first", "expected_last"),
    [
        (np.arange(0, 360, 1.0), 0.0, 359.0),  # global stays [0, 360)
        (np.arange(-180, 180, 1.0), 0.0, 359.0),  # global from [-180, 180)
        (
            np.r_[np.arange(350, 360, 0.25), np.arange(0, 2.25, 0.25)],
            -10.0,
            2.0,
        ),  # UK box split at 0
        (np.arange(170, 200, 1.0), 170.0, 199.0),  # box across 180° stays in [0, 360)
    ],
)
def test_longitude_conventions(lon, expected_first, expected_last):
    out = np.sort(longitudes_canonical(lon))
    assert out[0] == expected_first and out[-1] == expected_last
    assert np.diff(out).max() <= 1.0 + 1e-9, "contiguous"


def test_longitudes_moved_by_a_turn_read_as_written():
    """A 0.1-degree box written 358..359.9, 0..2 was stored with -1.8999999999999773
    (``sel(longitude=-1.9)`` a KeyError), and the same box written -2..2 with -1.9000000000000057:
    two grids that did not combine. Both are now the longitudes as written."""
    written = np.arange(-20, 21) / 10  # -2.0, -1.9, ..., 2.0: each the float its text reads as
    as_360 = np.r_[np.arange(3580, 3600) / 10, written[20:]]  # 358.0 .. 359.9, 0.0 .. 2.0
    np.testing.assert_array_equal(longitudes_canonical(as_360), written)
    np.testing.assert_array_equal(longitudes_canonical(written), written)
    across = np.arange(1795, 1806) / 10  # 179.5 .. 180.5: across 180 it stays in [0, 360)
    as_180 = np.r_[across[:5], -np.arange(1800, 1794, -1) / 10]  # 179.5 .. 179.9, -180 .. -179.5
    np.testing.assert_array_equal(longitudes_canonical(as_180), across)
    ds = xr.Dataset(
        {"t2m": (("time", "lat", "lon"), field((3, 2, 41)), {"units": "K"})},
        coords={"time": TIMES, "lat": [50.0, 51.0], "lon": as_360},
    )
    assert normalize(ds, "box.nc").t2m.sel(longitude=-1.9).shape == (3, 2)


def test_unit_spellings():
    assert canonical_units("m**2 s**-2") == "m2 s-2"
    assert canonical_units("m s**-1") == "m s-1"
    assert canonical_units("deg_C") == "degC"


def test_unknown_units_and_missing_variables_name_the_fix():
    ds = xr.Dataset(
        {"t2m": (("time", "latitude", "longitude"), field((3, 2, 2)), {"units": "furlongs"})},
        coords={"time": TIMES, "latitude": [50.0, 51.0], "longitude": [0.0, 1.0]},
    )
    with pytest.raises(
        InputError, match=r"odd\.nc: variable 't2m' has units 'furlongs'.*convert it to K"
    ):
        normalize(ds, "odd.nc")
    with pytest.raises(
        InputError, match=r"odd\.nc: variable\(s\) \['msl'\] not found; it has \['t2m'\]"
    ):
        normalize(ds, "odd.nc", variables=["msl"])


def surface(name: str, attrs: dict, value: float = 1.0, **coords) -> xr.Dataset:
    return xr.Dataset(
        {name: (("time", "lat", "lon"), field((3, 2, 2), value), attrs)},
        coords={"time": TIMES, "lat": [50.0, 51.0], "lon": [0.0, 1.0], **coords},
    )


@pytest.mark.parametrize("expver", ["0001", ["0001", "0001", "0005"]], ids=["scalar", "by-time"])
def test_the_cds_experiment_version_is_not_kept(expver):
    """The CDS's NetCDF carries ERA5's ``expver`` (a string, scalar or along time); kept,
    it became a stray coordinate of the store and a Zarr warning about its string type."""
    dims = () if isinstance(expver, str) else ("time",)
    ds = surface("t2m", {"units": "K"}, 280.0).assign_coords(expver=(dims, np.array(expver)))
    assert "expver" not in normalize(ds, "era5.nc").coords


def test_standard_names_with_cfgrib_heights_and_without_coordinates():
    wind = surface("U", {"standard_name": "eastward_wind", "units": "m s-1"}, 5.0)
    out = normalize(wind.assign_coords(heightAboveGround=10.0), "x.grib")
    assert list(out.data_vars) == ["u10"]
    rain = surface("RAIN", {"standard_name": "precipitation_amount", "units": "kg m-2"}, 4.0)
    out = normalize(rain, "rain.nc")
    np.testing.assert_allclose(out["tp"].values, 0.004)  # 4 mm of water, in metres


def test_a_known_name_wins_over_a_standard_name_and_two_standard_names_clash():
    attrs = {"standard_name": "air_temperature", "units": "K"}
    t2m = surface("t2m", {"units": "K"}, 280.0)
    other = surface("T_screen", attrs, 290.0, height=2.0)
    out = normalize(xr.merge([t2m, other], compat="override"), "both.nc")
    assert list(out.data_vars) == ["t2m"] and float(out["t2m"].max()) == 280.0
    clash = xr.merge(
        [surface("Ta", attrs, height=2.0), surface("Tb", attrs, height=2.0)], compat="override"
    )
    with pytest.raises(InputError, match=r"\['Ta', 'Tb'\] would all be 't2m'.*--rename Ta=t2m"):
        normalize(clash, "clash.nc")
    # as it says (it said a name outside the vocabulary is left out: such a rename is refused)
    assert list(normalize(clash.rename(Ta="t2m"), "clash.nc").data_vars) == ["t2m"]


def test_a_long_name_alone_names_a_canonical_variable():
    """ERA5's and GRIB's long names (cfgrib's ``standard_name: unknown`` beside them): a
    variable known only by its long name was refused without ``--rename``."""
    t2m = surface(
        "VAR_2T", {"long_name": "2 metre temperature", "standard_name": "unknown", "units": "K"}
    )
    assert list(normalize(t2m, "era5.nc").data_vars) == ["t2m"]
    upper = surface("T_pl", {"long_name": "Temperature", "units": "K"}).expand_dims(level=[500])
    upper["G"] = upper["T_pl"].assign_attrs(long_name="Geopotential", units="m2 s-2")
    out = normalize(upper.assign_coords(level=("level", [500], {"units": "hPa"})), "pl.nc")
    assert sorted(out.data_vars) == ["t", "z"]
    flat = surface("tas_1", {"long_name": "Temperature", "units": "K"})  # no level: which?
    with pytest.raises(InputError, match="none of its variables"):
        normalize(flat, "flat.nc")


def test_a_name_or_standard_name_wins_over_a_long_name_and_two_long_names_clash():
    long = {"long_name": "2 metre temperature", "units": "K"}
    both = xr.merge([surface("t2m", {"units": "K"}, 280.0), surface("x", long, 290.0)])
    out = normalize(both, "both.nc")
    assert list(out.data_vars) == ["t2m"] and float(out["t2m"].max()) == 280.0
    clash = xr.merge([surface("A", long), surface("B", long)])
    with pytest.raises(InputError, match=r"\['A', 'B'\] would all be 't2m'.*--rename A=t2m"):
        normalize(clash, "clash.nc")


def test_a_standard_name_at_another_height_is_not_mapped():
    screen = surface("T15", {"standard_name": "air_temperature", "units": "K"}, height=1.5)
    with pytest.raises(InputError, match="none of its variables"):
        normalize(screen, "ukmo.nc")


def test_a_global_grid_with_both_ends_of_its_meridian_keeps_one():
    """-180 .. 180 (or 0 .. 360) holds the same meridian twice: the repeat is dropped, not
    refused as a duplicate longitude."""
    lon = np.arange(-180.0, 180.1, 45.0)  # 9 columns, -180 and 180 both
    ds = xr.Dataset(
        {"t2m": (("time", "lat", "lon"), np.arange(3 * 2 * 9.0).reshape(3, 2, 9), {"units": "K"})},
        coords={"time": TIMES, "lat": [10.0, 20.0], "lon": lon},
    )
    out = normalize(ds, "both_ends.nc")
    np.testing.assert_array_equal(out.longitude.values, np.arange(0.0, 360.0, 45.0))
    np.testing.assert_array_equal(out.t2m.sel(longitude=180.0).values, ds.t2m.isel(lon=0).values)
    twice = ds.isel(lon=[0, 1, 1, 2])  # a real duplicate is still refused, and named
    with pytest.raises(InputError, match=r"duplicate longitude values \['-135'\]"):
        normalize(twice, "twice.nc")


def upper(name: str, attrs: dict, level: tuple) -> xr.Dataset:
    """``name`` (in K) on the vertical coordinate ``level``: (its name, values, attributes)."""
    dim, values, level_attrs = level
    return xr.Dataset(
        {name: (("time", dim, "lat", "lon"), field((3, len(values), 2, 2), 250.0), attrs)},
        coords={
            "time": TIMES,
            dim: (dim, values, level_attrs),
            "lat": [50.0, 51.0],
            "lon": [0.0, 1.0],
        },
    )


@pytest.mark.parametrize(
    ("level", "said"),
    [
        (
            (
                "lev",
                [135, 136, 137],
                {"standard_name": "atmosphere_hybrid_sigma_pressure_coordinate", "units": "level"},
            ),
            "'lev' (standard_name 'atmosphere_hybrid_sigma_pressure_coordinate', units 'level')",
        ),
        (
            ("level", [10, 50, 100], {"standard_name": "height", "units": "m"}),
            "'level' (standard_name 'height', units 'm')",
        ),
        (("plev", [1, 2], {"units": "sigma"}), "'plev' (units 'sigma')"),
        (  # cfgrib's model levels: was "unexpected dimension ... one ensemble member, say"
            (
                "hybrid",
                [135, 136, 137],
                {
                    "standard_name": "atmosphere_hybrid_sigma_pressure_coordinate",
                    "units": "1",
                    "positive": "down",
                },
            ),
            "'hybrid' (standard_name 'atmosphere_hybrid_sigma_pressure_coordinate', units '1')",
        ),
        (
            ("heightAboveGround", [2, 10], {"standard_name": "height", "units": "m"}),
            "'heightAboveGround' (standard_name 'height', units 'm')",
        ),
        (("z_index", [1, 2], {"axis": "Z"}), "'z_index' ()"),
    ],
    ids=["hybrid", "height", "sigma", "cfgrib-hybrid", "cfgrib-height", "axis-z"],
)
def test_a_vertical_coordinate_that_is_not_pressure_is_refused(level, said):
    dim = level[0]
    with pytest.raises(
        InputError,
        match=rf"ml\.nc: its vertical coordinate {re.escape(said)} is not pressure.*"
        rf"interpolate.*--select {dim}=",
    ):
        normalize(upper("t", {"units": "K"}, level), "ml.nc")  # was: levels [135, ...] hPa


def test_pressure_levels_in_millibars_are_hpa():
    """The CDS's NetCDF gives ERA5's pressure_level in 'millibars'."""
    millibars = (
        "pressure_level",
        [850.0, 500.0],
        {"standard_name": "air_pressure", "units": "millibars"},
    )
    out = normalize(upper("t", {"units": "K"}, millibars), "era5.nc")
    assert out.level.values.tolist() == [500.0, 850.0] and out.level.attrs["units"] == "hPa"


@pytest.mark.parametrize(
    ("name", "value", "attrs", "hpa"),
    [
        ("isobaricInhPa", 500, {"units": "hPa", "standard_name": "air_pressure"}, 500.0),
        ("level", 500, {}, 500.0),
        ("plev", 85000.0, {"units": "Pa"}, 850.0),
        ("pressure_level", 850.0, {"units": "millibars"}, 850.0),
    ],
)
def test_a_field_of_one_pressure_level_keeps_it(name, value, attrs, hpa):
    """The CDS gives z(time, lat, lon) at 500 hPa with a scalar coordinate of its level."""
    ds = surface("z", {"units": "m2 s-2"}, 5e4).assign_coords({name: ((), value, attrs)})
    out = normalize(ds, "z500.nc")
    assert out["z"].dims == ("time", "level", "latitude", "longitude")  # was: a surface z
    assert out.level.values.tolist() == [hpa] and channels(out) == [f"z{hpa:g}"]


def test_one_level_tells_apart_names_that_are_surface_or_upper_air_by_it():
    """NCEP's air is t on a level and t2m without; t2m stays a surface field beside it."""
    air = surface("air", {"units": "K"}, 250.0)
    t2m = surface("t2m", {"units": "K"}, 280.0)
    ds = xr.merge([air, t2m]).assign_coords(level=((), 500.0, {"units": "millibar"}))
    out = normalize(ds, "ncep.nc")
    assert channels(out) == ["t500", "t2m"] and out["t2m"].dims == ("time", "latitude", "longitude")


def test_u_at_10_hpa_is_channel_u10hpa_beside_the_10_m_wind():
    """u at 10 hPa would be channel 'u10', the 10 m wind's name (`info` showed two u10 rows,
    split_channel('u10') read it as the 10 m wind); then it was refused. Now its channel
    names the unit, and the channels stack and split back into the same variables."""
    pressure = ("level", [10, 500], {"units": "hPa"})
    ds = xr.merge([upper("u", {"units": "m s-1"}, pressure), surface("u10", {"units": "m s-1"})])
    out = normalize(ds, "wind.nc")
    assert channels(out) == ["u10hPa", "u500", "u10"]
    assert split_channel("u10hPa") == ("u", 10) and split_channel("u10") == ("u10", None)
    assert channel_name("v", 10) == "v10hPa" and channel_name("z", 10) == "z10"
    xr.testing.assert_allclose(from_channels(to_channels(out)), out)


def test_variables_outside_the_vocabulary_are_named_so_with_their_canonical_names():
    """``--variables air`` (the file's own name, read as t2m) and ``--variables Tair`` (a
    variable the file has but wxens cannot map) were reported as "not found" or with no fix,
    though the file holds them; they are told to be file names and what to ask for."""
    ds = surface("air", {"units": "K"}, 280.0)
    with pytest.raises(InputError) as err:
        normalize(ds, "air.2m.nc", variables=["air"])
    assert "not found" not in str(err.value)
    assert "air.2m.nc: variables= (--variables) ['air']" in str(err.value)
    assert "'air' is read as t or t2m" in str(err.value)
    assert "it has ['t2m']" in str(err.value)
    odd = xr.merge([ds, surface("Tair", {"units": "K"}, 281.0)])
    with pytest.raises(InputError, match=r"--rename Tair=NAME") as err:
        normalize(odd, "forcing.nc", variables=["Tair"])
    assert "not found" not in str(err.value)
    forcing = surface("Tair", {"units": "K"}, 281.0)  # of no known variable: it said "it has []"
    with pytest.raises(InputError, match=r"--rename Tair=NAME") as err:
        normalize(forcing, "forcing.nc", variables=["Tair"])
    assert "it has []" not in str(err.value)
    assert "it has none of them (its own: ['Tair'])" in str(err.value)


def grid_records(caplog, ds: xr.Dataset, origin: str) -> list[str]:
    """The INFO lines of ``pipeline.normalize`` while ``ds`` is normalised."""
    logger = logging.getLogger("pipeline.normalize")
    logger.addHandler(caplog.handler)
    caplog.set_level(logging.INFO, logger=logger.name)
    caplog.clear()
    try:
        normalize(ds, origin)
    finally:
        logger.removeHandler(caplog.handler)
    records = dict.fromkeys(caplog.records)  # the root's handler may pass them on too
    return [r.getMessage() for r in records if r.levelno == logging.INFO]


def test_a_reordered_grid_is_said_once_per_file_naming_what_moved(caplog):
    """Longitudes -179..179 became 1..359 and latitudes 89..-89 ascending without a word
    (a user comparing with the file found the values at other indices)."""
    lat, lon = np.arange(89.0, -90.0, -2.0), np.arange(-179.0, 180.0, 2.0)
    ds = xr.Dataset(
        {"t2m": (("time", "lat", "lon"), field((3, lat.size, lon.size)), {"units": "K"})},
        coords={"time": TIMES, "lat": lat, "lon": lon},
    )
    said = grid_records(caplog, ds, "era.nc")
    assert said == [
        "era.nc: grid reordered to wxens's: longitudes -179..179 shifted to 1..359; "
        "latitudes 89..-89 reversed to ascending"
    ]
    box = ds.isel(lon=slice(0, 10)).sortby("lat")  # -179..-161, in [-180, 180): stays
    assert grid_records(caplog, box, "box.nc") == []
    assert grid_records(caplog, box.isel(lon=slice(None, None, -1)), "west.nc") == [
        "west.nc: grid reordered to wxens's: longitudes -161..-179 reversed to ascending"
    ]
