"""What each product is, in CF's words: mean, spread and quantiles of t2m are still air
temperature at 2 m (its ``standard_name`` and ``height``, with ``cell_methods`` for the
statistic); a probability, which has no CF standard name, names its threshold with a
scalar coordinate of the variable's standard name and units (as CF's ``X_below_threshold``
names and IMPROVER do). The IOOS compliance checker finds no error in the written file."""

from __future__ import annotations

import json
import warnings

import netCDF4
import pytest
from compliance_checker import runner

from pipeline.forecast_store import write_forecast
from tests.pipeline.test_forecast_store import PROVENANCE
from tests.pipeline.test_forecast_store import ensemble as store_ensemble
from tests.verification.test_products import ensemble
from verification.product_output import (
    ProductRequest,
    parse_event,
    products_dataset,
    write_products,
)
from verification.products import PRODUCTS


def _with_wind(ds):
    return ds.assign(u10=(ds.t2m * 0 + 3.0).assign_attrs(units="m s-1"))


def _products(ds):
    asked = [PRODUCTS["mean"](), PRODUCTS["spread"](), PRODUCTS["quantiles"]((0.1, 0.9))]
    events = [parse_event("t2m<0degC"), parse_event("t2m>2degC")]
    return products_dataset(_with_wind(ds), asked, events)


def test_statistics_keep_the_standard_name_and_height_with_cell_methods():
    out = _products(ensemble())
    for name, method in (("t2m_mean", "mean"), ("t2m_spread", "standard_deviation")):
        assert out[name].attrs["standard_name"] == "air_temperature"
        assert out[name].attrs["cell_methods"] == f"realization: {method}"
    assert out["t2m_quantiles"].attrs["standard_name"] == "air_temperature"
    assert out["u10_mean"].attrs["standard_name"] == "eastward_wind"
    assert float(out["t2m_mean"].height) == 2.0 and float(out["u10_mean"].height_10m) == 10.0
    assert "height_10m" not in out["t2m_mean"].encoding["coordinates"].split()


def test_a_probability_names_its_threshold_as_a_coordinate_of_the_variable():
    out = _products(ensemble())
    below, above = out["t2m_below_273p15"], out["t2m_above_275p15"]
    assert "standard_name" not in below.attrs and below.attrs["units"] == "1"
    assert below.attrs["threshold"] == 273.15 and below.attrs["relative_to_threshold"]
    for da, value, relation in ((below, 273.15, "less_than"), (above, 275.15, "greater_than")):
        threshold = da.coords[f"{da.name}_threshold"]
        assert float(threshold) == pytest.approx(value)
        assert threshold.attrs["standard_name"] == "air_temperature"
        assert threshold.attrs["units"] == "K"
        assert threshold.attrs["spp__relative_to_threshold"] == relation
        assert f"{da.name}_threshold" in da.encoding["coordinates"].split()


def test_the_cf_checker_finds_no_error_in_a_products_file(tmp_path):
    """The IOOS compliance checker (offline: its packaged standard name table) at the
    file's own CF version: no high-priority failure (CF's musts)."""
    forecast = tmp_path / "f.zarr"
    _with_wind(ensemble()).to_zarr(forecast, consolidated=False)
    asked = ProductRequest(mean=True, spread=True, quantiles="10,90", probability=("t2m<0degC",))
    out, _ = write_products(forecast, tmp_path / "p.nc", asked, progress=False)
    assert cf_errors(out) == []
    assert not [m for m in cf_errors(out, "medium") if "title" in m or "history" in m]
    with netCDF4.Dataset(out) as nc:
        assert nc.title.startswith("wxens ensemble products of t2m, u10, initialised 2019-03-04")
        command = f"wxens products {forecast} --out {out} --mean --spread --quantiles 10,90"
        assert nc.history.endswith(f"{command} --probability 't2m<0degC'")


def test_a_probability_of_a_channel_says_its_pressure_level(tmp_path):
    """``z500<...`` is z at 500 hPa: the product keeps the level as a scalar coordinate of
    CF's air pressure (named by its value, as the mean of z on its level dim may share the
    file), so a tool reads z at 500 hPa, not z at no level."""
    fields = ensemble()
    z = (fields.t2m.expand_dims(level=[500, 850], axis=3) * 200).assign_attrs(units="m2 s-2")
    forecast = tmp_path / "f.zarr"
    fields.assign(z=z).to_zarr(forecast, consolidated=False)
    asked = ProductRequest(mean=True, probability=("z500<54600m2 s-2",))
    out, names = write_products(forecast, tmp_path / "p.nc", asked, progress=False)
    assert "z500_below_54600" in names
    with netCDF4.Dataset(out) as nc:
        level = nc["level_500hPa"]
        assert "level_500hPa" in nc["z500_below_54600"].coordinates.split()
        assert "level_500hPa" not in nc["z_mean"].coordinates.split()
        assert level.dimensions == () and float(level[...]) == 500.0
        assert (level.standard_name, level.units, level.positive) == ("air_pressure", "hPa", "down")
    assert cf_errors(out) == []


def cf_errors(path, priority: str = "high") -> list[str]:
    """The compliance checker's messages of ``priority`` (``high``: CF's musts; ``medium``:
    its shoulds) on ``path`` at the CF version its ``Conventions`` names."""
    with netCDF4.Dataset(path) as nc:
        checker = "cf:" + nc.Conventions.removeprefix("CF-")
    with warnings.catch_warnings():  # its deprecated IOOS SOS checker says so as it loads
        warnings.simplefilter("ignore", DeprecationWarning)
        runner.CheckSuite.load_all_available_checkers()
    report = path.with_suffix(".json")
    runner.ComplianceChecker.run_checker(
        str(path), [checker], 0, "strict", output_filename=str(report), output_format="json"
    )
    results = json.loads(report.read_text())[checker][f"{priority}_priorities"]
    return [msg for check in results for msg in check["msgs"]]


def test_a_forecast_store_s_products_say_the_method_that_produced_them(tmp_path):
    """CF's ``source`` (2.6.2, the method of production of the original data): the
    generator, checkpoint, sampler, seed and calibration the forecast store records, and the
    wxens that drew it; a Zarr that records no generator gets none (nothing invented)."""
    forecast = tmp_path / "f.zarr"
    write_forecast(forecast, store_ensemble(["2019-03-22T00"], 1.0), PROVENANCE)
    asked = ProductRequest(mean=True, probability=("t2m<0degC",))
    out, _ = write_products(forecast, tmp_path / "p.nc", asked, progress=False)
    assert cf_errors(out) == []
    assert not [m for m in cf_errors(out, "medium") if "source" in m]
    with netCDF4.Dataset(out) as nc:
        assert nc.source.startswith("wxens ") and nc.source.endswith(
            " flow_matching generator, checkpoint sha256 0123456789abcdef, sampler "
            "euler:nfe=10 (NFE 10), seed 0, spread-calibrated, not bias-corrected"
        )
    plain = tmp_path / "plain.zarr"
    ensemble().to_zarr(plain, consolidated=False)
    out, _ = write_products(plain, tmp_path / "q.nc", asked, progress=False)
    with netCDF4.Dataset(out) as nc:
        assert "source" not in nc.ncattrs()


def test_a_products_file_s_history_continues_the_forecast_file_s(tmp_path):
    """The forecast's attributes were dropped as it was mapped to the wxens layout, so a
    products file's history began with its own command, the producer's lines (cfgrib's
    conversion, a model's run) lost; CF's history lists every step that made the file."""
    made = "2019-03-04T06:00:00Z GRIB to CDM+CF via cfgrib-0.9.14 (ecmwf/cfgrib)"
    forecast = tmp_path / "f.nc"
    ensemble().assign_attrs(history=made).to_netcdf(forecast)
    out, _ = write_products(forecast, tmp_path / "p.nc", ProductRequest(mean=True), progress=False)
    with netCDF4.Dataset(out) as nc:
        lines = nc.history.splitlines()
    assert lines[0] == made and len(lines) == 2, lines
    assert lines[1].endswith(f"wxens products {forecast} --out {out} --mean"), lines
