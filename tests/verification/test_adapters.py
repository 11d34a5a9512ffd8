"""Forecast layouts (wxens, cfgrib/ECMWF, WeatherBench 2) and valid-time alignment."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from pipeline.adapters import detect_layout, from_wxens_forecast, to_wxens_forecast
from pipeline.alignment import align_with_truth
from pipeline.errors import InputError

LAT = np.array([50.0, 51.0, 52.0])
LON = np.array([-2.0, -1.0, 0.0, 1.0])
STEP = pd.Timedelta(hours=6)


def analysis(n_times=12):
    """A canonical analysis on a UK-like box with t2m and z on two levels."""
    rng = np.random.default_rng(0)
    time = pd.date_range("2020-01-01", periods=n_times, freq=STEP)
    coords = {"time": time, "latitude": LAT, "longitude": LON}
    t2m = xr.DataArray(
        280 + rng.normal(size=(n_times, 3, 4)),
        dims=("time", "latitude", "longitude"),
        coords=coords,
    )
    z = xr.DataArray(
        5e4 + rng.normal(size=(n_times, 2, 3, 4)),
        dims=("time", "level", "latitude", "longitude"),
        coords=coords | {"level": [500.0, 850.0]},
    )
    return xr.Dataset({"t2m": t2m.astype("float32"), "z": z.astype("float32")})


def wxens_forecast(n_init=3, n_member=4, leads=(0, 1, 2)):
    rng = np.random.default_rng(1)
    init = pd.date_range("2020-01-01", periods=n_init, freq=STEP)
    lead = pd.to_timedelta(np.array(leads) * 6, unit="h")
    dims = ("init_time", "member", "lead_time", "latitude", "longitude")
    coords = {
        "init_time": init,
        "member": np.arange(n_member),
        "lead_time": lead,
        "latitude": LAT,
        "longitude": LON,
    }
    shape = (n_init, n_member, len(leads), 3, 4)
    t2m = xr.DataArray(280 + rng.normal(size=shape), dims=dims, coords=coords, attrs={"units": "K"})
    z = xr.DataArray(
        5e4 + rng.normal(size=(n_init, n_member, len(leads), 2, 3, 4)),
        dims=(*dims[:3], "level", *dims[3:]),
        coords=coords | {"level": [500.0, 850.0]},
        attrs={"units": "m**2 s**-2"},
    )
    ds = xr.Dataset({"t2m": t2m, "z": z})
    return ds.assign_coords(valid_time=ds.init_time + ds.lead_time)


def as_cfgrib(ds):
    """What cfgrib gives for an ECMWF ENS GRIB: ERA5-style names, descending latitude, 0..360."""
    out = ds.rename(
        {"member": "number", "init_time": "time", "lead_time": "step", "level": "isobaricInhPa"}
    ).drop_vars("valid_time")
    out = out.assign_coords(longitude=np.mod(out.longitude, 360)).sortby("longitude")
    out = out.isel(latitude=slice(None, None, -1))
    out["t2m"] = (out.t2m - 273.15).assign_attrs(units="degC")
    return out.assign_coords(valid_time=out.time + out.step, surface=0.0)


def as_weatherbench2(ds):
    out = ds.rename(
        {"member": "realization", "init_time": "time", "lead_time": "prediction_timedelta"}
    ).drop_vars("valid_time")
    return out.rename({"t2m": "2m_temperature", "z": "geopotential"})


def as_graphcast(ds):
    """GenCast's rollout output: members on sample, forecasts on batch, the lead as
    ``time``, the valid time as ``datetime(batch, time)``, lat/lon, a leading dim order."""
    out = ds.rename({"member": "sample", "init_time": "batch", "lead_time": "time"}).drop_vars(
        ["valid_time", "batch"]
    )
    out = out.assign_coords(datetime=ds.valid_time.rename(init_time="batch", lead_time="time"))
    out = out.rename({"t2m": "2m_temperature", "z": "geopotential", "latitude": "lat"})
    return out.transpose("sample", "batch", "time", ...)


def assert_same_forecast(got, expected):
    got = got.sortby(["latitude", "longitude"])
    got = got.assign_coords(
        longitude=np.where(got.longitude > 180, got.longitude - 360, got.longitude)
    )
    got = got.sortby("longitude")
    for name in expected.data_vars:
        np.testing.assert_allclose(got[name].values, expected[name].values, rtol=1e-6)
        assert got[name].dims == expected[name].dims
    np.testing.assert_array_equal(got.valid_time.values, expected.valid_time.values)


@pytest.mark.parametrize(
    ("convert", "name"),
    [(as_cfgrib, "cfgrib"), (as_weatherbench2, "weatherbench2"), (as_graphcast, "graphcast")],
)
def test_producer_layouts_map_onto_wxens(convert, name):
    expected = wxens_forecast()
    theirs = convert(expected)
    assert detect_layout(theirs).name == name
    assert_same_forecast(to_wxens_forecast(theirs), expected)


@pytest.mark.parametrize("convert", [lambda ds: ds, as_cfgrib, as_weatherbench2, as_graphcast])
def test_the_global_attributes_of_every_layout_are_kept(convert):
    """A file's own attributes (its history, a wxens store's provenance) were dropped by the
    mapping: products could not continue the file's history, verify re-read them."""
    said = {"history": "made by a model", "institution": "ECMWF"}
    got = to_wxens_forecast(convert(wxens_forecast()).assign_attrs(said))
    assert got.attrs == said


def test_a_graphcast_forecast_whose_leads_do_not_match_its_valid_times_is_refused():
    theirs = as_graphcast(wxens_forecast())
    drift = xr.DataArray(pd.to_timedelta([0, 1, 2], unit="h"), dims="time")
    with pytest.raises(InputError, match="datetime - time differs along time"):
        to_wxens_forecast(theirs.assign_coords(datetime=theirs.datetime + drift))


@pytest.mark.parametrize("layout", ["cfgrib", "weatherbench2"])
def test_round_trip_through_producer_layout(layout):
    forecast = wxens_forecast()
    back = to_wxens_forecast(from_wxens_forecast(forecast, layout))
    xr.testing.assert_allclose(back.drop_attrs(), forecast.drop_attrs())


def test_single_member_single_step_grib_gets_length_one_dims():
    theirs = as_cfgrib(wxens_forecast(n_member=1, leads=(2,))).isel(number=0, step=0)
    assert "number" not in theirs.dims and "step" in theirs.coords
    got = to_wxens_forecast(theirs)
    assert got.sizes["member"] == 1 and got.sizes["lead_time"] == 1
    assert got.lead_time.values[0] == np.timedelta64(12, "h")


def test_unknown_layout_and_undecoded_leads_are_clear_errors():
    with pytest.raises(InputError, match="layout"):
        to_wxens_forecast(xr.Dataset({"t2m": (("x",), [1.0])}))
    wb2 = as_weatherbench2(wxens_forecast())
    wb2 = wb2.assign_coords(prediction_timedelta=np.array([0, 6, 12]))
    with pytest.raises(InputError, match="duration"):
        to_wxens_forecast(wb2)


def test_alignment_pairs_each_field_with_its_valid_time():
    truth = analysis()
    aligned = align_with_truth(as_cfgrib(wxens_forecast()), truth)
    assert aligned.missing_valid_times == ()
    assert aligned.truth.t2m.dims == ("init_time", "lead_time", "latitude", "longitude")
    for i, init in enumerate(aligned.truth.init_time.values):
        for j, lead in enumerate(aligned.truth.lead_time.values):
            expected = truth.sel(time=init + lead)
            np.testing.assert_array_equal(aligned.truth.t2m[i, j].values, expected.t2m.values)
            np.testing.assert_array_equal(aligned.truth.z[i, j].values, expected.z.values)
    np.testing.assert_array_equal(aligned.forecast.longitude.values, LON)


def test_missing_truth_times_become_nan_and_are_listed():
    truth = analysis(n_times=4)  # valid times up to init 2 + lead 2 = step 4 needed
    aligned = align_with_truth(wxens_forecast(), truth)
    assert [str(t) for t in aligned.missing_valid_times] == ["2020-01-02 00:00:00"]
    nan_pairs = aligned.truth.t2m.isnull().all(("latitude", "longitude"))
    assert int(nan_pairs.sum()) == 1 and bool(nan_pairs.isel(init_time=2, lead_time=2))


def test_forecast_not_covering_truth_grid_is_a_clear_error():
    forecast = wxens_forecast().assign_coords(longitude=LON + 0.5)
    with pytest.raises(InputError, match="regrid the forecast"):
        align_with_truth(forecast, analysis())


def test_a_forecast_on_part_of_the_truths_grid_is_scored_on_its_points():
    """A regional forecast (or every other point) on the truth's own grid was refused and
    told to 'regrid the forecast to the analysis grid', which cannot make the points it
    lacks: `wxens verify` of a UK forecast against a global ERA5 store could not run. The
    scores now cover the forecast's points, also across the truth's 0/360 seam."""
    truth = analysis()
    for part in ({"longitude": slice(0, 2)}, {"latitude": slice(None, None, 2)}):
        forecast = wxens_forecast().isel(part)
        aligned = align_with_truth(forecast, truth)
        for dim in ("latitude", "longitude"):
            assert aligned.truth[dim].values.tolist() == forecast[dim].values.tolist()
        init, lead = aligned.truth.init_time.values[1], aligned.truth.lead_time.values[2]
        want = truth.t2m.sel(time=init + lead, latitude=forecast.latitude)
        got = aligned.truth.t2m.sel(init_time=init, lead_time=lead)
        np.testing.assert_array_equal(got, want.sel(longitude=forecast.longitude))
    east = truth.assign_coords(longitude=np.mod(LON, 360.0)).sortby("longitude")
    wide = east.reindex(longitude=np.arange(360.0))  # global 0..359, the UK's points given
    aligned = align_with_truth(wxens_forecast(), wide)
    assert aligned.truth.longitude.values.tolist() == LON.tolist()
    np.testing.assert_array_equal(aligned.initial.t2m.values, truth.t2m.values[:3])
    shifted = wxens_forecast().isel(longitude=slice(0, 2))
    with pytest.raises(InputError, match="regrid the forecast"):  # a point the truth lacks
        align_with_truth(shifted.assign_coords(longitude=shifted.longitude + 0.5), truth)


def test_a_grid_stored_in_float32_is_the_same_grid():
    """0.1-degree latitudes ingested from float32 (50.09999847) against a forecast's exact
    float64 ones were refused as a grid lacking the truth's points."""
    lat = np.round(50 + 0.1 * np.arange(3), 1)  # float64: 50.1 exactly as Python spells it
    truth = analysis().assign_coords(latitude=lat.astype(np.float32).astype(np.float64))
    aligned = align_with_truth(wxens_forecast().assign_coords(latitude=lat), truth)
    assert aligned.forecast.latitude.values.tolist() == truth.latitude.values.tolist()
    shifted = wxens_forecast().assign_coords(latitude=lat + 0.01)  # another grid: refused
    with pytest.raises(InputError, match="the nearest up to 0.01 degrees away"):
        align_with_truth(shifted, truth)


def test_alignment_keeps_common_levels_and_variables():
    forecast = wxens_forecast().sel(level=[850.0])
    aligned = align_with_truth(forecast, analysis())
    assert aligned.truth.level.values.tolist() == [850.0]
    with pytest.raises(InputError, match="common variable"):
        align_with_truth(forecast[["t2m"]], analysis()[["z"]])


def test_alignment_is_lazy_on_dask():
    truth = analysis().chunk({"time": 1})
    forecast = wxens_forecast().chunk({"init_time": 1, "lead_time": 1})
    aligned = align_with_truth(forecast, truth)
    assert aligned.truth.t2m.chunks is not None and aligned.forecast.t2m.chunks is not None
    eager = align_with_truth(wxens_forecast(), analysis())
    xr.testing.assert_equal(aligned.truth.compute(), eager.truth)


@pytest.mark.parametrize("name", ["number", "realization", "ensemble_member", "sample", "ensemble"])
def test_a_member_dim_under_another_name_is_the_member_dim(name):
    """In the wxens layout too (was: 'beyond the forecast layout; select one index')."""
    given = wxens_forecast().rename({"member": name})
    converted = to_wxens_forecast(given)
    assert converted.t2m.dims[:3] == ("init_time", "member", "lead_time")
    xr.testing.assert_identical(converted, to_wxens_forecast(wxens_forecast()))


@pytest.mark.parametrize("name", ["sample", "ensemble"])
def test_a_weatherbench2_ensemble_with_a_sample_dim_reads(name):
    """GenCast's forecasts in WeatherBench 2 hold their members on 'sample': they were
    refused as 'dims ['sample'] beyond the forecast layout; select one index of them'."""
    expected = wxens_forecast()
    given = as_weatherbench2(expected).rename({"realization": name})
    assert_same_forecast(to_wxens_forecast(given), expected)


def test_a_truth_in_other_units_is_converted_like_a_forecast():
    """A truth in degC against a forecast in K scored a CRPS of 273 K without a word."""
    truth = analysis()[["t2m"]]
    celsius = truth.assign(t2m=(truth.t2m - 273.15).assign_attrs(units="degC"))
    forecast = wxens_forecast()[["t2m"]]
    xr.testing.assert_allclose(
        align_with_truth(forecast, celsius).truth, align_with_truth(forecast, truth).truth
    )
    odd = truth.assign(t2m=truth.t2m.assign_attrs(units="furlong"))
    with pytest.raises(InputError, match="truth variable 't2m' has units 'furlong'"):
        align_with_truth(forecast, odd)


def test_a_truth_under_other_coordinate_names_is_read_and_a_bad_one_named():
    """lat/lon and valid_time were a KeyError 'longitude'; repeated times a pandas error."""
    truth, forecast = analysis(), wxens_forecast()
    expected = align_with_truth(forecast, truth).truth
    renamed = truth.rename(latitude="lat", longitude="lon", time="valid_time")
    xr.testing.assert_identical(align_with_truth(forecast, renamed).truth, expected)
    with pytest.raises(InputError, match=r"the truth has no \['time'\] coordinate"):
        align_with_truth(forecast, truth.drop_vars("time"))
    twice = xr.concat([truth.isel(time=slice(0, 6)), truth.isel(time=slice(4, 12))], "time")
    with pytest.raises(InputError, match=r"holds times more than once.*drop_duplicates"):
        align_with_truth(forecast, twice)


def test_repeated_initial_times_or_leads_and_negative_leads_are_refused():
    """Both were scored: a repeated initial time counted twice."""
    forecast = wxens_forecast()
    twice = xr.concat([forecast, forecast.isel(init_time=[0])], "init_time")
    with pytest.raises(InputError, match=r"holds init_time 2020-01-01T00:00 more than"):
        align_with_truth(twice, analysis())
    backwards = forecast.assign_coords(lead_time=-forecast.lead_time)
    with pytest.raises(InputError, match="negative lead times"):
        align_with_truth(backwards, analysis())
    # named in hours as every other lead is (it read "-1 days +12:00:00" for -12 h)
    with pytest.raises(InputError, match=r"negative lead times \(-12, -6 h\)"):
        align_with_truth(backwards, analysis())


def test_a_box_across_greenwich_given_in_0_to_360_verifies_as_one_block():
    """Its spectra crashed ('need at least one array to stack'): 0..2 then 350..359."""
    from verification.config import VerifyConfig
    from verification.scorecard import verify

    west = analysis().assign_coords(longitude=[-2.0, -1.0, 0.0, 1.0])
    given = west.assign_coords(longitude=np.mod(west.longitude, 360.0)).sortby("longitude")
    assert given.longitude.values.tolist() == [0.0, 1.0, 358.0, 359.0]
    forecast = wxens_forecast().assign_coords(longitude=[-2.0, -1.0, 0.0, 1.0])
    aligned = align_with_truth(forecast, given)
    assert aligned.truth.longitude.values.tolist() == [-2.0, -1.0, 0.0, 1.0]
    xr.testing.assert_identical(aligned.truth, align_with_truth(forecast, west).truth)
    config = VerifyConfig(physics_init_times=2, energy_score=False, progress=False)
    assert "spectra" in verify(forecast, given, config).children
    # a box two or three points wide has one ring of the spectrum (none crashed: no ring)
    narrow = verify(forecast.isel(longitude=[0, 1, 2]), given, config)["spectra"]
    assert narrow.sizes["wavenumber"] == 1


@pytest.mark.parametrize("units", ["Pa", None])
def test_pressure_levels_in_pa_are_the_truths_levels_in_hpa(units):
    """CMIP's plev in Pa was refused: 'the forecast levels [50000, 85000] and the truth
    levels [500.0, 850.0] have none in common' (ingest converts them; verify did not)."""
    forecast = wxens_forecast().rename(level="plev")
    forecast = forecast.assign_coords(
        plev=("plev", [50000.0, 85000.0], {"units": units} if units else {})
    )
    aligned = align_with_truth(forecast, analysis())
    assert aligned.forecast.level.values.tolist() == [500.0, 850.0]
    xr.testing.assert_identical(aligned.truth, align_with_truth(wxens_forecast(), analysis()).truth)
    one = align_with_truth(forecast.isel(plev=1), analysis())  # a file of one level: a scalar
    assert one.forecast.z.level.values.tolist() == [850.0]


def test_a_float32_forecast_in_degc_is_converted_without_a_bias():
    """273.15 in float32 is 273.149994: every converted value was 6.1e-6 K low, and the
    ensemble-mean error of a degC forecast off by that much against a float64 conversion."""
    forecast = wxens_forecast(n_init=20, n_member=50)[["t2m"]]
    values = (forecast.t2m - 273.15).astype("float32")  # a field made in degC, stored in float32
    celsius = forecast.assign(t2m=values.assign_attrs(units="degC"))
    kelvin = to_wxens_forecast(celsius).t2m
    assert kelvin.dtype == np.float32
    exact = celsius.t2m.astype(np.float64) + 273.15
    assert abs(float((kelvin.astype(np.float64) - exact).mean())) < 3e-7


def test_geopotential_height_is_verified_against_a_truth_of_geopotential():
    """A forecast of gh in m (GFS, 'z' in gpm) against ERA5's z was refused as 'no common
    variable to pair: the forecast has ['gh'], the truth ['t2m', 'z']'."""
    forecast, truth = wxens_forecast(), analysis()
    height = forecast.rename(z="gh").assign(gh=(forecast.z / 9.80665).assign_attrs(units="m"))
    aligned = align_with_truth(height, truth)
    expected = align_with_truth(forecast, truth)
    xr.testing.assert_allclose(aligned.forecast.z, expected.forecast.z, rtol=1e-12)
    assert aligned.forecast.z.attrs["units"] == "m2 s-2"
    back = align_with_truth(forecast, truth.rename(z="gh").assign(gh=truth.z / 9.80665))
    xr.testing.assert_allclose(back.forecast.gh, height.gh.transpose(*back.forecast.gh.dims))


def test_a_grid_not_covered_is_named_in_the_forecasts_longitudes():
    """A forecast on -10..2 against a truth shifted by a quarter degree (-9.75..2.25) was
    said to span 'longitude -9.25..350', its -10 as the truth's convention writes it, the
    nearest point 0.5 degrees away (across the seam from 350, not 0.25 from -10)."""
    forecast = wxens_forecast().assign_coords(longitude=LON - 0.25)  # -2.25..0.75
    with pytest.raises(InputError) as refused:
        align_with_truth(forecast, analysis())
    assert "the nearest up to 0.25 degrees away" in str(refused.value)
    assert "forecast longitude -2.25..0.75, 4 points" in str(refused.value)


def test_a_forecast_variable_without_units_is_taken_as_the_truths_with_a_warning(caplog):
    # a degC file without units scored 272 K of CRPS against a K truth, unwarned
    forecast = wxens_forecast()
    bare = forecast.assign(t2m=forecast.t2m - 273.15)
    bare["t2m"].attrs = {}
    with caplog.at_level("WARNING", logger="pipeline.wxens_layout"):
        to_wxens_forecast(forecast)
        assert "units" not in caplog.text  # those with units: no word
        got = to_wxens_forecast(bare)
        to_wxens_forecast(got)  # verify_store maps it, then the alignment again: said once
    assert caplog.text.count("forecast variable 't2m' has no 'units' attribute: taken to be") == 1
    assert "taken to be in K" in caplog.text and "'z'" not in caplog.text
    # "if not, set its units" read as verify's --units, which only converts the scores shown
    assert "set its 'units' attribute where it is stored" in caplog.text
    assert "verify's units= (--units) only converts the scores shown" in caplog.text
    assert got.t2m.attrs["units"] == "K"  # labelled as it was taken
    xr.testing.assert_equal(got.t2m.drop_vars("valid_time"), bare.t2m.drop_vars("valid_time"))


def test_no_common_variable_or_level_says_how_to_verify_anyway():
    """'no common variable to pair: the forecast has ['t2m'], the truth ['z']' and 'the
    forecast levels [...] and the truth levels [...] have none in common' named the values
    but no fix (docs/verification.md gives one: --variables, or the truth's store)."""
    with pytest.raises(InputError, match="no common variable") as err:
        align_with_truth(wxens_forecast()[["t2m"]], analysis()[["z"]])
    assert "--variables" in str(err.value) and "wxens info" in str(err.value)
    other = wxens_forecast()[["z"]].assign_coords(level=[300.0, 700.0])
    with pytest.raises(InputError, match="none in common") as err:
        align_with_truth(other, analysis())
    assert "--variables" in str(err.value) and "ingest the truth" in str(err.value)
