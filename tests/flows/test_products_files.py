"""A products output named per initial time (``products_out`` with an ``{init:FORMAT}``
field): which file holds which initial times, and every time the forecast holds where the
products flow is given none."""

from __future__ import annotations

import pandas as pd
import pytest

from flows.products_files import check_products_out, products_files
from pipeline.errors import InputError
from pipeline.forecast_store import ForecastProvenance, write_forecast
from tests.verification.test_products import ensemble

INITS = ["2019-03-01T00", "2019-03-01T06"]


def test_a_path_without_a_field_is_one_file_of_all_the_initial_times():
    assert products_files("p.nc", INITS, "f.zarr") == {"p.nc": INITS}
    assert products_files("p.nc", None, "f.zarr") == {"p.nc": None}


def test_a_template_gives_each_initial_time_its_file():
    files = products_files("p/{init:%Y}/uk_{init:%m%dT%H}.nc", INITS, "f.zarr")
    assert files == {"p/2019/uk_0301T00.nc": INITS[:1], "p/2019/uk_0301T06.nc": INITS[1:]}


def test_a_template_without_initial_times_takes_those_the_forecast_holds(tmp_path):
    """The products flow's init_times None: every initial time of ``forecast``."""
    ds = ensemble("float32")
    store = tmp_path / "f.zarr"
    write_forecast(store, ds, ForecastProvenance("oracle", "none", "exact", 0, 1))
    files = products_files("uk_{init:%Y%m%d%H}.nc", None, str(store))
    held = pd.DatetimeIndex(ds["init_time"].values)
    assert list(files) == [f"uk_{t:%Y%m%d%H}.nc" for t in held]
    assert [pd.Timestamp(t) for [t] in files.values()] == list(held)


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("p_{}.nc", "unknown field {}; give {init:FORMAT}"),
        ("p_{init.year}.nc", "unknown field {init.year}"),
        ("p_{init}.nc", "{init} is not a file-name format"),
        ("p_{init:%Y%m%d%H%Q}.nc", "{init:%Y%m%d%H%Q} is not a file-name format"),
        ("p_{init:%Y/%m%d%H}.nc", "is not a file-name format"),
        ("p_{init:%m%d%H}.nc", "gives 2000-01-01T00:00 and 2001-01-01T00:00 one file"),
        ("p_{init:%Y%m%dT%H.nc", "'p_{init:%Y%m%dT%H.nc': unmatched '{' in format spec"),
    ],
)
def test_a_template_that_would_not_name_each_initial_time_is_refused(template, message):
    with pytest.raises(InputError) as err:
        check_products_out(template, "products_out")
    assert message in str(err.value)
    assert "e.g. products/uk_{init:%Y%m%dT%H}.nc" in str(err.value)


def test_a_template_within_the_spelling_passes():
    check_products_out("p/{init:%Y}/uk_{init:%m%dT%H}-{init:%M}.nc", "products_out")
    check_products_out("plain.nc", "products_out")
