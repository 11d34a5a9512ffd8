"""``wxens products FORECAST --out P.zarr|P.nc``: the products of a forecast store written
to Zarr and to CF NetCDF, read back equal to numpy's on the members; bad input refused."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import netCDF4
import numpy as np
import pytest
import xarray as xr

from flows.cli import main
from pipeline.forecast_store import ForecastProvenance, write_forecast
from pipeline.transaction import open_dataset
from tests.verification.test_products import MEMBERS, ensemble, members_last
from verification.product_output import PRODUCTS_ATTR

QUIET = ["--no-progress"]
ASKED = ["--mean", "--spread", "--quantiles", "10,50,90", "--probability", "t2m<0degC"]


@pytest.fixture(scope="module")
def forecast(tmp_path_factory) -> tuple[str, xr.Dataset]:
    """A wxens forecast store of :func:`ensemble` (float32, as stores hold) and its data."""
    ds = ensemble("float32")
    path = tmp_path_factory.mktemp("products") / "f.zarr"
    write_forecast(path, ds, ForecastProvenance("oracle", "none", "exact", 0, 1))
    return str(path), ds


@pytest.mark.parametrize("suffix", [".zarr", ".nc"])
def test_products_round_trip_to_zarr_and_cf_netcdf(forecast, tmp_path, suffix, capsys):
    store, ds = forecast
    out = tmp_path / f"p{suffix}"
    assert main(["products", store, "--out", str(out), *ASKED, *QUIET]) == 0
    printed = capsys.readouterr().out
    assert f"{out}: ensemble products of {store}: t2m_mean, t2m_spread, t2m_quantiles" in printed
    x = members_last(ds["t2m"]).astype(np.float64)
    with xr.open_dataset(out, engine="zarr" if suffix == ".zarr" else None) as back:
        np.testing.assert_allclose(back["t2m_mean"], x.mean(-1), rtol=1e-6)
        np.testing.assert_allclose(back["t2m_spread"], x.std(-1, ddof=1), rtol=1e-5)
        np.testing.assert_allclose(
            back["t2m_quantiles"],
            np.moveaxis(np.quantile(x, [0.1, 0.5, 0.9], -1), 0, -1),
            rtol=1e-6,
        )
        frost = back["t2m_below_273p15"]
        np.testing.assert_array_equal(frost, ((x < 273.15).sum(-1) / MEMBERS).astype("f4"))
        assert frost.attrs["long_name"] == "probability of t2m < 273.15 K"
        assert frost.attrs["units"] == "1" and "member" not in back.dims
        assert (frost.attrs["threshold"], frost.attrs["threshold_units"]) == (273.15, "K")
        xr.testing.assert_equal(
            back["valid_time"].reset_coords(drop=True), ds["valid_time"].reset_coords(drop=True)
        )
        assert PRODUCTS_ATTR in back.attrs
    if suffix == ".nc":
        with netCDF4.Dataset(out) as nc:
            assert nc.Conventions.startswith("CF-1.")
            assert nc["init_time"].standard_name == "forecast_reference_time"
            assert "valid_time" in nc["t2m_mean"].coordinates
            # one calendar for the file's times, the store's (valid_time said "standard")
            calendar = open_dataset(store)["init_time"].encoding["calendar"]
            assert {nc[t].calendar for t in ("init_time", "valid_time")} == {calendar}


def test_existing_out_is_refused_and_overwrite_replaces_only_products(forecast, tmp_path, capsys):
    store, _ = forecast
    out = tmp_path / "p.zarr"
    assert main(["products", store, "--out", str(out), "--mean", *QUIET]) == 0
    assert main(["products", store, "--out", str(out), "--spread", *QUIET]) == 2
    assert "exists; products to a new path" in capsys.readouterr().err
    args = ["--spread", "--overwrite", *QUIET]
    assert main(["products", store, "--out", str(out), *args]) == 0
    with xr.open_zarr(out) as back:
        assert list(back.data_vars) == ["t2m_spread"]
    assert main(["products", store, "--out", store, *args]) == 2  # the forecast itself
    refusal = capsys.readouterr().err
    # the parenthesis describes the output it would replace, not the forecast store refused
    # (it said "(plain Zarr v3 copy)", as if of the store)
    assert (
        f"{store} exists and is not an earlier wxens products output (one that xarray's "
        "'zarr' engine opens, with the root attribute 'wxens_products'); "
        "overwrite=True (--overwrite) replaces only such an output" in refusal
    )
    assert "copy" not in refusal


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--probability", "t2m=0"], "e.g. 't2m<0degC'"),
        (["--probability", "t2m<0"], "give the threshold's units, e.g. 't2m<0K'"),
        (["--probability", "msl<990hPa"], "no variable (or channel) 'msl'; it holds ['t2m']"),
        (["--units", "msl=hPa", "--mean"], "the forecast holds no variable 'msl'"),
        (["--quantiles", "10;90"], "percents in [0, 100] separated by commas, e.g. 10,50,90"),
        (["--quantiles", "150"], "percents in [0, 100]"),
        ([], "ask for at least one product"),
    ],
)
def test_bad_inputs_are_refused_naming_the_fix(forecast, tmp_path, capsys, args, words):
    out = tmp_path / "p.zarr"
    assert main(["products", forecast[0], "--out", str(out), *args, *QUIET]) == 2
    assert words in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.parametrize("suffix", [".zarr", ".nc"])
def test_info_says_what_a_products_output_or_an_export_holds(forecast, tmp_path, suffix, capsys):
    """``wxens info`` told a forecaster to ingest a products .nc as analyses, and called a
    products Zarr "not a wxens analysis store": it names what made it and the fields."""
    store, _ = forecast
    products, copy = tmp_path / f"p{suffix}", tmp_path / f"copy{suffix}"
    args = ["--quantiles", "10,90", "--probability", "t2m<0degC", *QUIET]
    assert main(["products", store, "--out", str(products), *args]) == 0
    assert main(["export", store, "--out", str(copy), *QUIET]) == 0
    capsys.readouterr()
    assert main(["info", str(products)]) == 0
    shown = capsys.readouterr().out
    assert f"{products}: wxens products of {Path(store).resolve()}" in shown
    assert re.search(
        r"t2m_quantiles +\(init_time, lead_time, latitude, longitude, quantile\) K", shown
    )
    assert "t2m_below_273p15  (init_time, lead_time, latitude, longitude) 1  probability" in shown
    assert "init_time 2" in shown and "quantile 2" in shown and "ingest" not in shown
    assert main(["info", str(copy)]) == 0
    shown = capsys.readouterr().out
    assert f"{copy}: wxens export of {Path(store).resolve()}" in shown
    assert f"`wxens info {store}`" in shown
    # a plain Zarr copy of a forecast store is described as one (its inits, complete or not)
    assert re.search(r"members +7" if suffix == ".zarr" else r"member 7", shown)


@pytest.mark.parametrize("suffix", [".zarr", ".nc"])
def test_info_says_the_request_the_initial_times_and_the_history(
    forecast, tmp_path, suffix, capsys
):
    """``wxens info`` named a products file's forecast and fields, not what was asked of it:
    it shows the request as the flags that remake it, the initial times asked as a span
    (all where none were asked), the CF title and the history's last line."""
    store, _ = forecast
    some, every = tmp_path / f"some{suffix}", tmp_path / f"every{suffix}"
    args = ["--quantiles", "10,90", "--probability", "t2m<0degC", *QUIET]
    assert main(["products", store, "--out", str(some), *args, "--init", "2019-03-05T00"]) == 0
    assert main(["products", store, "--out", str(every), "--mean", *QUIET]) == 0
    capsys.readouterr()
    assert main(["info", str(some)]) == 0
    shown = capsys.readouterr().out.splitlines()
    assert "asked      --quantiles 10,90 --probability 't2m<0degC'" in shown
    assert "inits      initial time 2019-03-05T00:00" in shown
    assert "title      wxens ensemble products of t2m, initialised 2019-03-05 00 UTC" in "\n".join(
        shown
    )
    made = next(line for line in shown if line.startswith("made       "))
    assert made.endswith(f"wxens products {store} --out {some} {shlex.join(args[:-1])} "
                         "--init 2019-03-05T00:00:00")  # fmt: skip
    assert main(["info", str(every)]) == 0
    shown = capsys.readouterr().out.splitlines()
    assert "asked      --mean" in shown
    assert "inits      all the forecast's initial times" in shown


def test_info_describes_a_products_file_an_older_wxens_wrote(forecast, tmp_path, capsys):
    """A products file recording only its forecast (no request, times, title or history),
    or a request this wxens does not read, is still described, its record as it is."""
    store, _ = forecast
    out = tmp_path / "old.nc"
    assert main(["products", store, "--out", str(out), "--mean", *QUIET]) == 0
    with netCDF4.Dataset(out, "a") as nc:
        nc.setncattr(PRODUCTS_ATTR, json.dumps({"forecast": store}))
        nc.delncattr("title")
        nc.delncattr("history")
    capsys.readouterr()
    assert main(["info", str(out)]) == 0
    shown = capsys.readouterr().out.splitlines()
    assert shown[0] == f"{out}: wxens products of {store}"
    assert not [line for line in shown if line.split(" ")[0] in ("asked", "inits", "made")]
    assert "t2m_mean" in "\n".join(shown)
    newer = {"forecast": store, "request": {"mean": True, "members": 3}, "init_times": None}
    with netCDF4.Dataset(out, "a") as nc:
        nc.setncattr(PRODUCTS_ATTR, json.dumps(newer))
    assert main(["info", str(out)]) == 0
    shown = capsys.readouterr().out.splitlines()
    assert "asked      {'mean': True, 'members': 3} (as recorded)" in shown


def test_init_writes_the_products_of_those_initial_times_only(forecast, tmp_path, capsys):
    """``--init`` (a time or START/END/EVERY, as ``wxens verify --init``) selects initial
    times, so a scheduled run writes its own cycle's products, not the whole store's; one
    the forecast lacks is refused naming the store's first and last, and a bad ``--init``
    before the forecast is opened."""
    store, ds = forecast
    out = tmp_path / "p.zarr"
    argv = ["products", store, "--out", str(out), "--mean", *QUIET]
    assert main([*argv, "--init", "2019-03-05T00"]) == 0
    with xr.open_zarr(out) as back:
        np.testing.assert_array_equal(back["init_time"], ds["init_time"][1:])
        expected = members_last(ds["t2m"].isel(init_time=[1])).astype(np.float64).mean(-1)
        np.testing.assert_allclose(back["t2m_mean"], expected, rtol=1e-6)
    lacking = tmp_path / "lacking.zarr"
    argv = ["products", store, "--out", str(lacking), "--mean", *QUIET]
    assert main([*argv, "--init", "2019-03-04T00/2019-03-06T00/24h"]) == 2
    refusal = capsys.readouterr().err
    assert (
        f"{store} has no initial time(s) 2019-03-06T00:00; it holds 2 initial times "
        "2019-03-04T00:00..2019-03-05T00:00: give initial times from those, "
        "init_times= (--init)" in refusal
    )
    assert not lacking.exists()
    absent = str(tmp_path / "absent.zarr")
    assert main(["products", absent, "--out", str(lacking), "--mean", "--init", "2019-03-32"]) == 2
    refusal = capsys.readouterr().err
    assert "--init '2019-03-32' is neither a time" in refusal and "absent" not in refusal
