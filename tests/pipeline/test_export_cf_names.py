"""What each exported data variable is, in CF's words: ``t2m`` had only units and a
long_name, so cdo, Iris, Panoply and the CF checker could not tell it is air temperature
at 2 m. Each known variable gets its ``standard_name`` and, near the surface, a scalar
``height`` coordinate (CF 5.7), which ingest reads back."""

from __future__ import annotations

import netCDF4
import numpy as np
import xarray as xr

from flows.cli import main
from pipeline.forecast_store import write_forecast
from pipeline.sources.synthetic import SyntheticConfig
from pipeline.store import ingest
from pipeline.store_export import export
from pipeline.transaction import open_dataset
from tests.pipeline.test_forecast_store import PROVENANCE, ensemble
from tests.verification.test_products_cf import cf_errors


def _forecast_with_winds(path):
    fields = ensemble(["2019-03-22T00"], 280.0)
    write_forecast(path, fields.assign(u10=fields.t2m * 0 + 3.0), PROVENANCE)


def test_known_variables_get_their_standard_name_and_height(tmp_path):
    _forecast_with_winds(tmp_path / "f.zarr")
    with netCDF4.Dataset(export(tmp_path / "f.zarr", tmp_path / "f.nc", progress=False)) as nc:
        assert nc["t2m"].standard_name == "air_temperature"
        assert nc["u10"].standard_name == "eastward_wind"
        assert nc["z"].standard_name == "geopotential"
        for name, height, metres in (("t2m", "height", 2.0), ("u10", "height_10m", 10.0)):
            assert height in nc[name].coordinates.split()
            coord = nc[height]
            assert coord.dimensions == () and float(coord[...]) == metres
            assert (coord.standard_name, coord.units, coord.positive, coord.axis) == (
                "height",
                "m",
                "up",
                "Z",
            )
        assert not {"height", "height_10m"} & set(nc["z"].coordinates.split())


def test_an_export_ingests_back_to_the_same_store_by_name_or_by_standard_name(tmp_path):
    """The plain export ingests to the store it came from; renamed to a producer's names
    (``tas``), ingest finds t2m from its standard_name and the exported 2 m height."""
    store = tmp_path / "a.zarr"
    ingest(SyntheticConfig(n_lat=8, n_lon=12, n_times=4).to_spec(), store, progress=False)
    exported = export(store, tmp_path / "a.nc", progress=False)
    original = open_dataset(store).load()
    assert "t2m" in original.data_vars
    again = tmp_path / "again.zarr"
    ingest(exported, again, progress=False)
    xr.testing.assert_allclose(open_dataset(again).load()[list(original.data_vars)], original)

    with xr.open_dataset(exported) as back:
        assert float(back["t2m"].coords["height"]) == 2.0
        back.load().rename(t2m="tas").to_netcdf(tmp_path / "tas.nc")
    assert main(["ingest", str(tmp_path / "tas.nc"), "--store", str(tmp_path / "tas.zarr")]) == 0
    np.testing.assert_allclose(open_dataset(tmp_path / "tas.zarr").t2m, original.t2m)


def test_the_cf_checker_finds_no_error_in_an_export(tmp_path):
    """The IOOS compliance checker, offline: no high-priority failure (the int64 times of
    a CF-1.8 file and the member's missing units ``1`` were two)."""
    _forecast_with_winds(tmp_path / "f.zarr")
    assert cf_errors(export(tmp_path / "f.zarr", tmp_path / "f.nc", progress=False)) == []


def test_an_export_says_what_it_holds_and_how_it_was_made(tmp_path):
    """CF 2.6.2's ``title`` and ``history``: a forecast's variables and initial times, and
    the export command appended to the store's own history (ingest's lines) where it has
    one; no medium-priority message of the checker about either."""
    _forecast_with_winds(tmp_path / "f.zarr")
    out = export(tmp_path / "f.zarr", tmp_path / "f.nc", progress=False)
    with netCDF4.Dataset(out) as nc:
        assert nc.title == (
            "wxens forecast of t2m, u10, z, initialised 2019-03-22 00 UTC"
        )
        assert nc.history.endswith(f"Z wxens export {tmp_path / 'f.zarr'} --out {out}")
    assert not [m for m in cf_errors(out, "medium") if "title" in m or "history" in m]

    store = tmp_path / "a.zarr"
    ingest(SyntheticConfig(n_lat=8, n_lon=12, n_times=4).to_spec(), store, progress=False)
    out = export(store, tmp_path / "a.nc", progress=False)
    with netCDF4.Dataset(out) as nc:
        lines = nc.history.splitlines()
        assert [line.split(" ", 1)[1] for line in lines] == [
            *(line.split(" ", 1)[1] for line in open_dataset(store).attrs["history"].splitlines()),
            f"wxens export {store} --out {out}",
        ]
        span = "2000-01-01 00 UTC to 2000-01-01 18 UTC"
        assert nc.title == f"wxens analysis of t, t2m, u, v, z, {span}"
        assert nc.source == "synthetic:n_lat=8,n_lon=12,n_times=4"
    assert cf_errors(out) == []  # the store's CF-1.8 said no int64 time: the file is CF-1.9
    assert not [m for m in cf_errors(out, "medium") if "title" in m or "history" in m]
