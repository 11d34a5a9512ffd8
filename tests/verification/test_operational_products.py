"""``wxens products`` and ``wxens plume`` of every operational layout ``wxens verify`` reads
(the files of test_operational_ensembles.py), checked against numpy on the raw file's
members at the nearest point: each layout orders members, latitudes (a GRIB's run north to
south) and longitudes (WeatherBench 2's 0..360) its own way, and the products come out on
the canonical grid (ascending latitudes, a regional box in -180..180) whatever the file's.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from test_operational_ensembles import (
    CONFIG,
    INITS_H,
    STEPS_H,
    cds_netcdf,
    cfgrib_netcdf_with_realization,
    iris_netcdf,
    start_file,
    weatherbench2_netcdf,
    write_ens_grib,
    wxens_store,
)

from flows.cli import main
from pipeline.errors import InputError
from pipeline.forecast_store import open_forecast
from pipeline.sources.synthetic import synthetic_dataset
from verification.plume import point_series
from verification.product_output import PRODUCTS_ATTR

PLACE = (44.0, -6.0)  # nearest grid point 45N, 5W (355E in a 0..360 file)
RAW_DIMS = ("m", "init", "lead", "latitude", "longitude")
QUANTILES = (0.1, 0.5, 0.9)


@pytest.fixture(scope="module")
def fields():
    return synthetic_dataset(CONFIG).load()


def raw(da, **names):
    """``da`` as read from the file by xarray alone, its dims renamed to :data:`RAW_DIMS`
    (a missing init or lead a length-1 dim), loaded, in float64."""
    da = da.rename(names).reset_coords(drop=True)
    for dim in ("init", "lead"):
        da = da if dim in da.dims else da.expand_dims(dim)
    return da.transpose(*RAW_DIMS).astype("float64").load()


def by(kind):
    return {"filter_by_keys": {"dataType": kind}}


def ens_grib(fields, tmp_path):
    path = write_ens_grib(tmp_path / "ens.grib", fields, range(4))
    control, perturbed = (  # cfgrib opens a GRIB of both only one type at a time
        xr.open_dataset(path, engine="cfgrib", backend_kwargs={"indexpath": "", **by(kind)})["z"]
        for kind in ("cf", "pf")
    )
    z = xr.concat([control.expand_dims("number"), perturbed], "number")
    return str(path), [], "z500", raw(z, number="m", time="init", step="lead")


def cds(fields, tmp_path):
    cds_netcdf(fields).to_netcdf(tmp_path / "cds.nc")
    z = xr.open_dataset(tmp_path / "cds.nc")["z"].isel(pressure_level=0)
    named = dict(number="m", forecast_reference_time="init", forecast_period="lead")
    return str(tmp_path / "cds.nc"), [], "z500", raw(z, **named)


def iris(fields, tmp_path):
    iris_netcdf(fields).to_netcdf(tmp_path / "iris.nc")
    t2m = xr.open_dataset(tmp_path / "iris.nc")["t2m"]
    return str(tmp_path / "iris.nc"), [], "t2m", raw(t2m, realization="m", time="lead")


def weatherbench2_zarr(fields, tmp_path):
    """As WeatherBench 2's Zarr stores are: longitudes 0..360 (the box is 0..10, 350..355)."""
    wb2 = weatherbench2_netcdf(fields)
    wb2 = wb2.assign_coords(longitude=wb2.longitude % 360).sortby("longitude")
    wb2.to_zarr(tmp_path / "wb2.zarr", consolidated=False)
    t2m = xr.open_zarr(tmp_path / "wb2.zarr", consolidated=False)["2m_temperature"]
    named = dict(realization="m", time="init", prediction_timedelta="lead")
    return str(tmp_path / "wb2.zarr"), [], "t2m", raw(t2m, **named)


def cfgrib_netcdf(fields, tmp_path):
    cfgrib_netcdf_with_realization(fields).to_netcdf(tmp_path / "cfgrib.nc")
    t2m = xr.open_dataset(tmp_path / "cfgrib.nc")["t2m"]
    return (
        str(tmp_path / "cfgrib.nc"),
        [],
        "t2m",
        raw(t2m, realization="m", time="init", step="lead"),
    )


def graphcast(fields, tmp_path):
    """GenCast's rollout: members on sample, forecasts on batch, the lead as time."""
    wb2 = weatherbench2_netcdf(fields).rename(realization="sample", time="batch")
    leads = pd.to_timedelta(STEPS_H, unit="h")
    wb2 = wb2.assign_coords(prediction_timedelta=leads).rename(prediction_timedelta="time")
    out = wb2.assign_coords(datetime=wb2.batch + wb2.time).drop_vars("batch")
    out.to_netcdf(tmp_path / "gencast.nc")
    t2m = xr.open_dataset(tmp_path / "gencast.nc")["2m_temperature"]
    return str(tmp_path / "gencast.nc"), [], "t2m", raw(t2m, sample="m", batch="init", time="lead")


def files_of_one_start(fields, tmp_path):
    paths = []
    for hours in INITS_H:
        start = fields.time.values[0] + pd.Timedelta(hours=hours)
        paths.append(tmp_path / f"fc_{pd.Timestamp(start):%Y%m%d%H}_t2m.nc")
        start_file(fields, "t2m", start, len(STEPS_H), "6h", 3).to_netcdf(paths[-1])
    t2m = xr.concat([xr.open_dataset(p)["t2m"].drop_vars("time") for p in paths], "init")
    glob = str(tmp_path / "fc_*.nc")
    return (
        glob,
        ["--init-from-filename", "fc_%Y%m%d%H"],
        "t2m",
        raw(t2m, realization="m", time="lead"),
    )


def wxens(fields, tmp_path):
    path = wxens_store(fields, tmp_path / "f.zarr")
    z = open_forecast(path)["z"].sel(level=500)  # the store's own reader: it is icechunk
    return str(path), [], "z500", raw(z, member="m", init_time="init", lead_time="lead")


LAYOUTS = [
    ens_grib, cds, iris, weatherbench2_zarr, cfgrib_netcdf, graphcast, files_of_one_start, wxens
]  # fmt: skip


def nearest(values, wanted, turn=False):
    """The index in ``values`` nearest each of ``wanted``, longitudes modulo 360 if ``turn``."""
    away = np.asarray(values)[None, :] - np.asarray(wanted)[:, None]
    return np.abs((away + 180.0) % 360.0 - 180.0 if turn else away).argmin(axis=1)


def event(variable, members):
    """An event splitting the members, ``t2m<...degC`` (converted as a threshold), and its
    threshold in the file's units."""
    split = round(float(np.median(members)), 1)
    if variable == "t2m":
        return f"t2m<{split - 273.15:.2f}degC", split
    return f"{variable}<{split}m2 s-2", split


@pytest.mark.parametrize("build", LAYOUTS, ids=[b.__name__ for b in LAYOUTS])
def test_products_and_plume_are_numpys_on_the_raw_members_on_the_canonical_grid(
    fields, tmp_path, capsys, build
):
    forecast, flags, variable, members = build(fields, tmp_path)
    text, threshold = event(variable, members.values)
    out = tmp_path / "P.nc"
    asked = ["--mean", "--spread", "--quantiles", "10,50,90", "--probability", text]
    code = main(["products", forecast, "--out", str(out), *asked, "--no-progress", *flags])
    assert code == 0, capsys.readouterr().err
    products = xr.open_dataset(out)
    np.testing.assert_array_equal(products.latitude, fields.latitude)  # ascending, -10..10
    np.testing.assert_array_equal(products.longitude, fields.longitude)
    ilat = nearest(members.latitude, products.latitude)
    ilon = nearest(members.longitude, products.longitude, turn=True)
    on_grid = members.values[..., ilat, :][..., ilon]  # raw members on the products' grid
    name, level = ("z", {"level": 500}) if variable == "z500" else (variable, {})

    def got(suffix, *first):
        da = products[f"{name}_{suffix}"].sel(level)
        return da.transpose(*first, "init_time", "lead_time", "latitude", "longitude").values

    np.testing.assert_allclose(got("mean"), on_grid.mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(got("spread"), on_grid.std(axis=0, ddof=1), rtol=1e-5)
    expected = np.quantile(on_grid, QUANTILES, axis=0)
    np.testing.assert_allclose(got("quantiles", "quantile"), expected, rtol=1e-6)
    below = [n for n in products.data_vars if "_below_" in str(n)]
    assert len(below) == 1
    probability = products[below[0]].transpose("init_time", "lead_time", ...).values
    share = (on_grid < threshold).mean(axis=0)
    assert 0 < share.mean() < 1  # the event splits the members
    np.testing.assert_allclose(probability, share, atol=1e-6)

    png = tmp_path / "P.png"
    at = f"{PLACE[0]},{PLACE[1]}"
    code = main(["plume", forecast, "--at", at, "--out", str(png), *flags])
    assert code == 0, capsys.readouterr().err
    assert png.stat().st_size > 0 and "plume at 45.00°N, 5.00°W" in capsys.readouterr().out
    series = point_series(forecast, *PLACE, init_from_filename=(flags or [None, None])[1])
    assert (float(series.latitude), float(series.longitude)) == (45.0, -5.0)
    i = nearest(members.latitude, [PLACE[0]])[0]
    j = nearest(members.longitude, [PLACE[1]], turn=True)[0]
    latest = members.isel(init=-1, latitude=i, longitude=j).values
    np.testing.assert_allclose(series[variable].transpose("member", ...).values, latest)
    assert series.sizes["valid_time"] == len(STEPS_H)


def test_a_plume_of_calendar_month_starts_is_at_each_files_own_valid_times(tmp_path):
    """Files of monthly means from 1 November: the leads are labelled with the earliest
    start's (0, 30, 61, 92, 120 days), so init + lead put the last month of the start
    across a leap February on 29 February, not on 1 March where its file holds it."""
    months = pd.date_range("1993-01-01", "1996-12-01", freq="MS")
    t2m = 280.0 + np.arange(months.size * 4.0).reshape(-1, 2, 2)
    monthly = xr.Dataset(
        {"t2m": (("time", "latitude", "longitude"), t2m, {"units": "K"})},
        coords={"time": months, "latitude": [50.0, 51.0], "longitude": [0.0, 1.0]},
    )
    for year in (1993, 1995):
        start_file(monthly, "t2m", f"{year}-11-01", 5, "MS", 2).to_netcdf(
            tmp_path / f"hindcast_{year}11.nc"
        )
    glob = str(tmp_path / "hindcast_*.nc")
    series = point_series(glob, 50.0, 0.0, init="1995-11-01", init_from_filename="hindcast_%Y%m")
    held = xr.open_dataset(tmp_path / "hindcast_199511.nc")
    np.testing.assert_array_equal(series["valid_time"], held["time"])
    np.testing.assert_allclose(series["t2m"].isel(member=0), held["t2m"][0, :, 0, 0])


def test_members_perturbed_products_and_plume_leave_out_an_ens_files_control(
    fields, tmp_path, capsys
):
    """``--members perturbed``, as ``wxens verify`` takes it: an ENS file's products and
    plume are those of its perturbed members 1..N alone, the control (number 0) not mixed
    into their percentiles; the products file records it."""
    forecast, _, variable, members = ens_grib(fields, tmp_path)
    perturbed = members.sel(m=slice(1, None))
    assert perturbed.sizes["m"] == members.sizes["m"] - 1 == 3
    out = tmp_path / "P.nc"
    asked = ["--mean", "--quantiles", "10,50,90", "--members", "perturbed", "--no-progress"]
    assert main(["products", forecast, "--out", str(out), *asked]) == 0, capsys.readouterr().err
    products = xr.open_dataset(out)
    ilat = nearest(perturbed.latitude, products.latitude)
    ilon = nearest(perturbed.longitude, products.longitude, turn=True)
    on_grid = perturbed.values[..., ilat, :][..., ilon]
    order = ("init_time", "lead_time", "latitude", "longitude")
    mean = products["z_mean"].sel(level=500).transpose(*order).values
    np.testing.assert_allclose(mean, on_grid.mean(axis=0), rtol=1e-6)
    quantiles = products["z_quantiles"].sel(level=500).transpose("quantile", *order).values
    np.testing.assert_allclose(quantiles, np.quantile(on_grid, QUANTILES, axis=0), rtol=1e-6)
    assert json.loads(products.attrs[PRODUCTS_ATTR])["members"] == "perturbed"
    assert "--members perturbed" in products.attrs["history"].splitlines()[-1]

    png = tmp_path / "P.png"
    at = f"{PLACE[0]},{PLACE[1]}"
    code = main(["plume", forecast, "--at", at, "--out", str(png), "--members", "perturbed"])
    assert code == 0, capsys.readouterr().err
    series = point_series(forecast, *PLACE, members="perturbed")
    i = nearest(perturbed.latitude, [PLACE[0]])[0]
    j = nearest(perturbed.longitude, [PLACE[1]], turn=True)[0]
    latest = perturbed.isel(init=-1, latitude=i, longitude=j).values
    np.testing.assert_allclose(series[variable].transpose("member", ...).values, latest)


def test_members_perturbed_products_refuse_a_file_that_does_not_name_its_control(
    fields, tmp_path, capsys
):
    """A CDS NetCDF's numbers do not say which is the control: refused, naming the file and
    the fix, not guessed; and every member of it, as before, by default."""
    forecast, _, _, _ = cds(fields, tmp_path)
    argv = ["products", forecast, "--out", str(tmp_path / "P.nc"), "--mean", "--no-progress"]
    assert main([*argv, "--members", "perturbed"]) == 2
    said = capsys.readouterr().err
    assert f"{forecast}: does not say which member is the control" in said
    assert "(--members all)" in said and not (tmp_path / "P.nc").exists()
    with pytest.raises(InputError, match="members='control': expected one of all, perturbed"):
        point_series(forecast, *PLACE, members="control")


@pytest.mark.parametrize(
    ("build", "given"),
    [(ens_grib, ["--members", "perturbed"]), (files_of_one_start, [])],
    ids=["members", "init-from-filename"],
)
def test_info_asked_line_has_the_members_and_the_file_names_start_dates(
    fields, tmp_path, capsys, build, given
):
    """``wxens info P.nc`` showed the request's flags without ``--members perturbed`` (only
    in the history line): a forecaster read products of every member. Its ``asked`` line
    now remakes the file: the members and how the start dates were read, where asked."""
    forecast, flags, _, _ = build(fields, tmp_path)
    out = tmp_path / "P.nc"
    argv = ["products", forecast, "--out", str(out), "--mean", *flags, *given, "--no-progress"]
    assert main(argv) == 0, capsys.readouterr().err
    capsys.readouterr()
    assert main(["info", str(out)]) == 0
    shown = capsys.readouterr().out.splitlines()
    assert f"asked      --mean {' '.join([*flags, *given])}" in shown
