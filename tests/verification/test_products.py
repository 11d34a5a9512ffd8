"""The ensemble's products (:mod:`verification.products`) against numpy on a small ensemble
made here: probabilities are the member fraction exactly, quantiles numpy's, mean and
spread numpy's; a masked point stays NaN; dask-chunked input gives the eager answer lazily."""

from __future__ import annotations

import re

import dask.array
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from pipeline.errors import InputError
from verification.product_output import in_units, parse_event, products_dataset
from verification.products import (
    PRODUCTS,
    ensemble_mean,
    ensemble_spread,
    exceedance_probability,
    member_quantiles,
)

MEMBERS = 7


def ensemble(dtype: str = "float64", masked: bool = False) -> xr.Dataset:
    """t2m (K) of 7 members over 2 inits, 2 leads, 3 x 4 points; t2m around 273 K so some
    members freeze; ``masked``: the point (0, 0) NaN in every member, as a land-sea mask."""
    rng = np.random.default_rng(3)
    inits = pd.DatetimeIndex(["2019-03-04T00", "2019-03-05T00"])
    leads = pd.to_timedelta([6, 12], unit="h")
    t2m = (273.0 + 2.0 * rng.standard_normal((2, MEMBERS, 2, 3, 4))).astype(dtype)
    if masked:
        t2m[..., 0, 0] = np.nan
    valid = inits.values[:, None] + leads.values[None, :]
    return xr.Dataset(
        {
            "t2m": (
                ("init_time", "member", "lead_time", "latitude", "longitude"),
                t2m,
                {"units": "K"},
            )
        },
        coords={
            "init_time": inits,
            "member": np.arange(MEMBERS),
            "lead_time": leads,
            "valid_time": (("init_time", "lead_time"), valid),
            "latitude": [50.0, 51.0, 52.0],
            "longitude": [-2.0, -1.0, 0.0, 1.0],
        },
    )


def members_last(da: xr.DataArray) -> np.ndarray:
    return np.moveaxis(da.values, 1, -1)


def test_probability_is_the_member_fraction_exactly_and_labelled():
    t2m = ensemble()["t2m"]
    for below, expected in [
        (True, (members_last(t2m) < 273.15).sum(-1) / MEMBERS),
        (False, (members_last(t2m) > 273.15).sum(-1) / MEMBERS),
    ]:
        p = exceedance_probability(t2m, 273.15, below=below)
        np.testing.assert_array_equal(p.values, expected)  # exact, not approximately
        assert p.dims == ("init_time", "lead_time", "latitude", "longitude")
        assert p.attrs["units"] == "1"
    assert p.attrs["long_name"] == "probability of t2m > 273.15 K"
    assert 0 < float(p.mean()) < 1  # both outcomes occur: the comparison is not trivial
    xr.testing.assert_equal(p["valid_time"].variable, t2m["valid_time"].variable)


def test_mean_spread_and_quantiles_equal_numpys():
    t2m = ensemble()["t2m"]
    x = members_last(t2m)
    mean, spread = ensemble_mean(t2m), ensemble_spread(t2m)
    np.testing.assert_allclose(mean.values, x.mean(-1), rtol=1e-14)
    np.testing.assert_allclose(spread.values, x.std(-1, ddof=1), rtol=1e-12)
    assert spread.attrs["cell_methods"] == "realization: standard_deviation"
    assert mean.attrs["units"] == spread.attrs["units"] == "K"
    q = member_quantiles(t2m, [0.1, 0.5, 0.9])
    assert q.dims == ("init_time", "lead_time", "latitude", "longitude", "quantile")
    np.testing.assert_array_equal(q["quantile"], [0.1, 0.5, 0.9])
    np.testing.assert_allclose(
        q.values, np.moveaxis(np.quantile(x, [0.1, 0.5, 0.9], axis=-1), 0, -1), rtol=1e-14
    )
    np.testing.assert_array_equal(q.sel(quantile=0.5).values, np.median(x, -1))  # M odd
    # what a CF tool shows on the axis: a fraction, not a bare number of no known kind
    assert q["quantile"].attrs == {"long_name": "quantile of the ensemble members", "units": "1"}


def test_a_masked_point_stays_nan_in_every_product_and_only_there():
    ds = ensemble(masked=True)
    for da in [
        ensemble_mean(ds["t2m"]),
        ensemble_spread(ds["t2m"]),
        member_quantiles(ds["t2m"], [0.5]).isel(quantile=0),
        exceedance_probability(ds["t2m"], 273.15),
    ]:
        nan = np.isnan(da.values)
        assert nan[..., 0, 0].all() and nan.sum() == nan[..., 0, 0].size, da.attrs["long_name"]


def test_chunked_input_is_lazy_and_equals_eager_in_the_stores_float32():
    eager = ensemble("float32")
    lazy = eager.chunk({"init_time": 1, "lead_time": 1, "member": 3})
    products = [PRODUCTS["mean"](), PRODUCTS["spread"](), PRODUCTS["quantiles"]((0.25, 0.75))]
    events = [parse_event("t2m<0degC")]
    got = products_dataset(lazy, products, events)
    assert all(isinstance(da.data, dask.array.Array) for da in got.data_vars.values())
    assert set(got) == {"t2m_mean", "t2m_spread", "t2m_quantiles", "t2m_below_273p15"}
    assert all(da.dtype == np.float32 for da in got.data_vars.values())
    xr.testing.assert_identical(got.compute(), products_dataset(eager, products, events))


def test_units_convert_values_in_full_and_thresholds_into_them():
    ds = ensemble()
    in_c = in_units(ds, ["t2m=degC"])
    assert in_c["t2m"].attrs["units"] == "degC"
    mean = products_dataset(in_c, [PRODUCTS["mean"]()])["t2m_mean"]
    np.testing.assert_allclose(mean.values, members_last(ds["t2m"]).mean(-1) - 273.15)
    frost_k = products_dataset(ds, [], [parse_event("t2m<0degC")])["t2m_below_273p15"]
    frost_c = products_dataset(in_c, [], [parse_event("t2m < 273.15 K")])["t2m_below_0"]
    np.testing.assert_array_equal(frost_k.values, frost_c.values)


def test_a_spread_in_degc_is_labelled_k_as_a_difference():
    """A spread of degC members is a temperature difference: labelled ``degC``, a tool that
    converts the file to K (cf-units, Panoply, a GIS) added 273.15 to it. Same size: K."""
    spread = products_dataset(in_units(ensemble(), ["t2m=degC"]), [PRODUCTS["spread"]()])
    assert spread["t2m_spread"].attrs["units"] == "K"
    kelvin = products_dataset(ensemble(), [PRODUCTS["spread"]()])["t2m_spread"]
    np.testing.assert_allclose(spread["t2m_spread"].values, kelvin.values, rtol=1e-9)


def test_probability_names_are_cf_names_and_keep_the_threshold_exactly():
    """``t2m_below_273.15`` and ``t2m_below_-1`` broke cdo and NCO expressions on ``.`` and
    ``-``: CF 2.3 names use letters, digits and underscores. The name spells the threshold
    (``p`` for the point, ``m`` for minus); its attributes hold it exactly, with its units."""
    ds = ensemble()
    in_c = in_units(ds, ["t2m=degC"])
    kelvin = products_dataset(ds, [], [parse_event("t2m<0degC")])
    celsius = products_dataset(in_c, [], [parse_event("t2m<-1.5degC"), parse_event("t2m>2degC")])
    assert list(kelvin) == ["t2m_below_273p15"]
    assert list(celsius) == ["t2m_below_m1p5", "t2m_above_2"]
    for name, threshold, units, relation in [
        ("t2m_below_273p15", 273.15, "K", "less_than"),
        ("t2m_below_m1p5", -1.5, "degC", "less_than"),
        ("t2m_above_2", 2.0, "degC", "greater_than"),
    ]:
        attrs = {**kelvin, **celsius}[name].attrs
        assert re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", name)
        assert attrs["threshold"] == threshold and attrs["threshold_units"] == units
        assert attrs["relative_to_threshold"] == relation


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ("t2m<=0degC", "e.g. 't2m<0degC'"),
        ("frost", "not VARIABLE<VALUE"),
        ("t2m<0", "give the threshold's units, e.g. 't2m<0K'"),
        ("t2m<0hPa", "'hPa' does not convert to"),
        ("msl<1000hPa", "holds no variable (or channel) 'msl'; it holds ['t2m']"),
    ],
)
def test_bad_events_are_refused_naming_the_fix(spec, words):
    with pytest.raises(InputError) as err:
        products_dataset(ensemble(), [], [parse_event(spec)])
    assert words in str(err.value) and spec in str(err.value)


def test_bad_quantiles_and_no_product_are_refused():
    with pytest.raises(InputError, match=r"quantiles in \[0, 1\]"):
        member_quantiles(ensemble()["t2m"], [10, 50])
    with pytest.raises(InputError, match="ask for at least one product"):
        products_dataset(ensemble(), [])


@pytest.mark.parametrize(
    ("specs", "words"),
    [
        (["t2m<273.150001K", "t2m<273.15K"], "equal to 6 significant digits"),
        (["t2m<0degC", "t2m<273.15K"], "the same event asked twice"),
    ],
)
def test_events_of_one_name_are_refused_naming_both(specs, words):
    """``t2m<273.150001K`` and ``t2m<273.15K`` are both ``t2m_below_273p15``: the second
    replaced the first in the output, unsaid. Refused, the same event asked twice too (a
    name per event: a request that asks one twice was likely meant otherwise)."""
    with pytest.raises(InputError) as err:
        products_dataset(ensemble(), [], [parse_event(spec) for spec in specs])
    said = str(err.value)
    assert words in said and "t2m_below_273p15" in said
    assert all(f"--probability {spec!r}" in said for spec in specs)
    assert said.endswith("ask it once" if "same event" in words else "further apart")
