"""``wxens export STORE --out F.nc``: a CF NetCDF-4 copy that a forecaster's own tools read
(Panoply, ncview, cdo, netCDF4 scripts), where ``export`` wrote only plain Zarr v3."""

from __future__ import annotations

import json
import re

import netCDF4
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from flows.cli import main
from pipeline.forecast_store import write_forecast
from pipeline.sources.synthetic import SyntheticConfig
from pipeline.store import ingest
from pipeline.store_export import EXPORT_ATTR, export
from pipeline.transaction import open_dataset
from tests.pipeline.test_forecast_store import PROVENANCE, ensemble

QUIET = ["--no-progress"]
#: The scalar height coordinates an export adds (tests/pipeline/test_export_cf_names.py).
HEIGHTS = ["height"]


def _attrs_kept(store: xr.Dataset, back: xr.Dataset) -> None:
    """Every attribute of the store, of the dataset and of each variable, is in ``back``:
    as it was, or as JSON text where NetCDF cannot hold it (a dict); but its history is
    continued by the export's line, and ``Conventions`` is the file's, CF-1.9."""
    assert back.attrs["history"].startswith(store.attrs.get("history", ""))
    assert back.attrs["Conventions"] == "CF-1.9"
    for name, var in [(None, store), *store.variables.items()]:
        got = back.attrs if name is None else back[name].attrs
        for key, value in var.attrs.items():
            if name is None and key in ("history", "Conventions"):
                continue
            assert (json.loads(got[key]) if isinstance(value, dict) else got[key]) == value


def test_a_forecast_exports_to_cf_netcdf_that_xarray_and_netcdf4_read_back(tmp_path, capsys):
    path = tmp_path / "f.zarr"
    write_forecast(path, ensemble(["2019-03-23T00"], 2.0), PROVENANCE)
    write_forecast(path, ensemble(["2019-03-22T00", "2019-03-22T12"], 1.0), PROVENANCE)
    out = tmp_path / "f.nc"
    assert main(["export", str(path), "--out", str(out), *QUIET]) == 0
    assert f"{out}: CF NetCDF-4 copy of {path}" in capsys.readouterr().out

    store = open_dataset(path).sortby("init_time").load()
    with xr.open_dataset(out) as back:  # plain xarray: no engine, no decode options
        xr.testing.assert_equal(back.load().drop_vars(HEIGHTS), store)
        _attrs_kept(store, back)
        assert json.loads(back.attrs[EXPORT_ATTR]) == {"store": str(path.resolve())}
    with netCDF4.Dataset(out) as nc:  # what a CF tool reads
        assert nc.Conventions.startswith("CF-1.") and nc.wxens_generator == "flow_matching"
        version = store.attrs["wxens_software"].split(", ")[0]  # the store's, not this one's
        assert nc.source == (
            f"{version} flow_matching generator, checkpoint sha256 0123456789abcdef, sampler "
            "euler:nfe=10 (NFE 10), seed 0, spread-calibrated, not bias-corrected"
        )
        assert nc["init_time"].units.startswith("hours since 1970-01-01")
        assert nc["init_time"].standard_name == "forecast_reference_time"
        lead = nc["lead_time"]
        assert (lead.units, lead.standard_name, lead[:].tolist()) == (
            "hours",
            "forecast_period",
            [1, 6],
        )
        assert nc["valid_time"].dimensions == ("init_time", "lead_time")
        assert nc["valid_time"].standard_name == "time" and "valid_time" in nc["t2m"].coordinates
        assert nc["member"].standard_name == "realization" and nc.dimensions["member"].size == 3
        assert (nc["t2m"].units, nc["t2m"].long_name) == ("K", "2 metre temperature")
        assert nc["z"].filters()["zlib"] and nc["z"].chunking() == [1, 3, 1, 2, 4, 5]
        assert nc["t2m"][:].shape == (3, 3, 2, 4, 5)


def test_the_complete_flag_says_what_it_means_to_cf_tools_and_reads_back_as_bool(tmp_path):
    """``complete`` was int8 with only xarray's ``dtype: bool``: a CF tool showed bare 0/1.
    CF 3.5 flags name each value; xarray's ``dtype`` attributes stay, as without them it
    reads ``complete`` back as int8 and ``lead_time`` as plain integers."""
    path = tmp_path / "f.zarr"
    write_forecast(path, ensemble(["2019-03-22T00"], 1.0), PROVENANCE)
    out = export(path, tmp_path / "f.nc", progress=False)
    with netCDF4.Dataset(out) as nc:
        flag = nc["complete"]
        assert flag.dtype == np.int8 and flag.long_name
        assert flag.flag_values.dtype == np.int8 and flag.flag_values.tolist() == [0, 1]
        assert flag.flag_meanings == "incomplete complete"
    with xr.open_dataset(out) as back:
        assert back["complete"].dtype == bool and back["complete"].values.all()
        assert back["lead_time"].dtype.kind == "m"


def test_an_analysis_store_exports_to_cf_netcdf_with_its_provenance(tmp_path):
    path = tmp_path / "a.zarr"
    ingest(SyntheticConfig(n_lat=8, n_lon=12, n_times=12).to_spec(), path, progress=False)
    out = export(path, tmp_path / "a.nc", progress=False)
    store = open_dataset(path).load()
    with xr.open_dataset(out) as back:
        xr.testing.assert_equal(back.load().drop_vars(HEIGHTS), store)
        _attrs_kept(store, back)
        assert back.time.encoding["units"].startswith("hours since")
    with netCDF4.Dataset(out) as nc:
        assert nc.Conventions.startswith("CF-1.") and "wxens ingest" in nc.history
        assert nc.source == store.attrs["source"]  # the analysis's own: not a generator's
        assert nc["time"][:].dtype.kind == "i"  # whole hours
        assert all(nc[name].filters()["zlib"] for name in store.data_vars)


def test_the_write_streams_through_dask_with_a_progress_bar(tmp_path, capsys):
    """Each chunk of the store is a task of its own: the bar counts at least as many tasks
    as the store has chunks (12: 2 variables x 3 initial times x 2 leads)."""
    path = tmp_path / "f.zarr"
    inits = ["2019-03-22T00", "2019-03-22T12", "2019-03-23"]
    write_forecast(path, ensemble(inits, 1.0), PROVENANCE)
    capsys.readouterr()
    export(path, tmp_path / "f.nc", progress=True)
    out, err = capsys.readouterr()
    done = re.search(r"export f.nc: 100%.*\| (\d+)/\1 \[", err)
    assert out == "" and done and int(done[1]) >= 12, err


def test_a_failed_write_leaves_no_file_and_an_existing_one_is_replaced_only_if_asked(
    tmp_path, capsys
):
    path = tmp_path / "f.zarr"
    rng = np.random.default_rng(0)  # noise: chunks too large for icechunk to inline
    fields = ensemble(["2019-03-22T00"], 1.0).interp(
        latitude=np.linspace(50, 58, 40), longitude=np.linspace(-10, 2, 50)
    )
    write_forecast(path, fields + rng.normal(size=fields.t2m.shape[-2:]), PROVENANCE)
    out = tmp_path / "f.nc"
    assert main(["export", str(path), "--out", str(out), *QUIET]) == 0
    assert main(["export", str(path), "--out", str(out), *QUIET]) == 2
    refusal = "exists; export to a new path, or replace it: overwrite=True (--overwrite)"
    assert refusal in capsys.readouterr().err
    assert main(["export", str(path), "--out", str(out), "--overwrite", *QUIET]) == 0

    notes = tmp_path / "notes.nc"  # a forecaster's own file of that name
    notes.write_text("mine")
    assert main(["export", str(path), "--out", str(notes), "--overwrite", *QUIET]) == 2
    refusal = capsys.readouterr().err
    assert "is not an earlier wxens export output (one that xarray's 'netcdf4' engine" in refusal
    assert notes.read_text() == "mine"

    for chunk in (path / "chunks").iterdir():  # the store's data lost mid-export
        chunk.unlink()
    out.unlink()
    with pytest.raises(Exception):  # noqa: B017,PT011 (icechunk's own error, whichever)
        export(path, out, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("f.nc")) == []


def test_times_not_on_the_hour_are_kept(tmp_path):
    """Minutes CF hours cannot hold as integers are written in a finer unit, not rounded."""
    path = tmp_path / "f.zarr"
    write_forecast(path, ensemble(["2019-03-22T00:30"], 1.0, leads=(1.5, 6)), PROVENANCE)
    out = export(path, tmp_path / "f.nc", progress=False)
    with xr.open_dataset(out) as back:
        assert back.init_time.values[0] == pd.Timestamp("2019-03-22T00:30").to_datetime64()
        assert back.lead_time.values[0] == np.timedelta64(90, "m")


def test_a_forecast_s_latitude_and_longitude_say_what_they_are_to_cf_tools(tmp_path):
    """A forecast store's grid coordinates carry no attributes; without CF's units
    (degrees_north, degrees_east) Panoply, cdo and a GIS cannot place the fields on a map."""
    path = tmp_path / "f.zarr"
    write_forecast(path, ensemble(["2019-03-22T00"], 1.0), PROVENANCE)
    assert not open_dataset(path).latitude.attrs  # as the store holds them
    with netCDF4.Dataset(export(path, tmp_path / "f.nc", progress=False)) as nc:
        for name, units in (("latitude", "degrees_north"), ("longitude", "degrees_east")):
            assert (nc[name].standard_name, nc[name].units) == (name, units)
