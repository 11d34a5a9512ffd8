"""``wxens verify``'s printed table as a researcher reads it: a long one says how to print
a few leads, and intervals from too few blocks of days say they are no uncertainty (in the
report too, and per lead where a lead verified fewer blocks than the whole)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from verification_cases import at_leads, ensemble, verify_command

from flows.cli import main as wxens
from flows.commands.verify import few_leads
from pipeline.forecast_store import ForecastProvenance, write_forecast
from pipeline.schema import INIT_TIME
from pipeline.store import ingest
from verification.comparison import interval_card
from verification.config import VerifyConfig
from verification.resampling import score_parts

LEADS_H = tuple(range(1, 65))  # 64 leads of one variable: 64 rows


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    """Hourly t2m truth (3 x 4) and members = truth + noise at 4 init times over 2 days
    (00 and 12 UTC), leads 1..64 h."""
    root = tmp_path_factory.mktemp("table")
    rng = np.random.default_rng(0)
    times = pd.date_range("2020-01-01", periods=24 * 5, freq="1h")
    dims = ("time", "latitude", "longitude")
    truth = xr.Dataset(
        {"t2m": (dims, 280 + rng.standard_normal((times.size, 3, 4)), {"units": "K"})},
        coords={"time": times, "latitude": [50.0, 51.0, 52.0], "longitude": np.arange(4.0)},
    ).astype("float32")
    truth.to_netcdf(root / "truth.nc")
    ingest(root / "truth.nc", root / "truth.zarr", progress=False)
    inits = pd.DatetimeIndex(["2020-01-01T00", "2020-01-01T12", "2020-01-02T00", "2020-01-02T12"])
    noise_forecast(truth, inits, LEADS_H, root / "forecast.zarr", rng)
    return root


def noise_forecast(truth: xr.Dataset, inits, leads_h, store, rng) -> None:
    """A forecast store of 5 members = ``truth`` at init + lead + N(0, 1) noise."""
    at = at_leads(truth, inits, leads_h).expand_dims(member=5)
    members = (at + rng.standard_normal(at.t2m.shape)).transpose(
        INIT_TIME, "member", "lead_time", ...
    )
    provenance = ForecastProvenance(
        generator="noise", checkpoint_digest="none", sampler="exact", nfe=0, seed=0
    )
    write_forecast(store, members.astype("float32"), provenance)


@pytest.fixture(scope="module")
def six_hourly(stores):
    """11 init times 6 h apart (2020-01-01T00 to 01-03T12), leads 12 and 48 h, verified
    against the module's truth cut at 2020-01-04T06: lead 12 h verifies all 11, lead 48 h
    the first 6 (the rest fall past the truth's end); the root of ``forecast.zarr`` and
    ``truth.zarr`` as :func:`wxens_verify` reads them."""
    root = stores / "six_hourly"
    root.mkdir()
    truth = xr.open_dataset(stores / "truth.nc").load()
    inits = pd.date_range("2020-01-01", periods=11, freq="6h")
    noise_forecast(truth, inits, (12, 48), root / "forecast.zarr", np.random.default_rng(1))
    truth.sel(time=slice(None, "2020-01-04T06")).to_netcdf(root / "truth.nc")
    ingest(root / "truth.nc", root / "truth.zarr", progress=False)
    return root


def wxens_verify(capsys, root, *extra: str) -> str:
    """Stdout of a real ``wxens verify`` (in this process: the table is under test, not the
    process) of the stores under ``root``."""
    files = (root / "forecast.zarr", root / "truth.zarr", root / "scores.nc")
    capsys.readouterr()
    assert wxens(verify_command(*files, *extra)) == 0, capsys.readouterr().err
    return capsys.readouterr().out


def test_a_long_table_ends_saying_its_rows_and_how_to_print_a_few_leads(stores, capsys):
    lines = wxens_verify(capsys, stores).splitlines()
    assert "64 rows" in lines[-1], lines[-3:]
    assert "--lead 1h,33h,64h" in lines[-1]  # leads it holds: first, middle, last
    assert str(stores / "scores.nc") in lines[-1]  # where every row is kept

    short = wxens_verify(capsys, stores, "--lead", "24h,48h")
    assert "rows" not in short.splitlines()[-1]  # two rows: nothing to shorten


def test_the_leads_suggested_are_24_72_and_240_h_where_held():
    leads = pd.to_timedelta(range(6, 241, 6), unit="h").values
    assert few_leads(leads) == "24h,72h,240h"


def test_intervals_from_two_days_say_they_are_too_few_beside_the_table_and_in_the_file(
    stores, capsys
):
    out = wxens_verify(capsys, stores, "--lead", "24h,48h", "--interval-level", "0.9")
    caution = "intervals from 2 blocks of 1 day: too few to read as uncertainty"
    assert out.count(caution) == 1, out
    with xr.open_datatree(stores / "scores.nc") as tree:
        card = tree["scorecard"].to_dataset()
        for name in ("fair_crps_low", "fair_crps_high", "spread_skill_ratio_low"):
            assert caution in card[name].attrs["caution"], name
        assert np.isfinite(card["fair_crps_low"]).all()  # still computed as before


def test_intervals_from_ten_days_or_more_carry_no_caution():
    config = VerifyConfig(interval_level=0.9)
    forecast, truth = ensemble(np.random.default_rng(1), n_init=20)  # 12-hourly: 10 days
    parts = score_parts(forecast, truth, mean_over=("latitude", "longitude"))
    card = interval_card(parts.rename(init_time=INIT_TIME), forecast.sizes["member"], config)
    assert "caution" not in card["fair_crps_low"].attrs
    few = interval_card(parts.isel(init_time=slice(0, 8)), forecast.sizes["member"], config)
    assert "4 blocks" in few["fair_crps_low"].attrs["caution"]


def test_the_report_says_the_caution_beside_the_intervals_once(stores, six_hourly, capsys):
    """2 days printed [0.1972, 0.1976] in the report's skill table, without a word."""
    report = stores / "report.html"
    intervals = ("--lead", "24h,48h", "--interval-level", "0.9")
    wxens_verify(capsys, stores, *intervals, "--report", str(report))
    text = report.read_text(encoding="utf-8")
    assert text.count("intervals from 2 blocks of 1 day: too few to read as uncertainty") == 1
    assert text.index("too few to read") < text.index("<table")  # above the skill table

    enough = six_hourly / "report.html"
    wxens_verify(
        capsys,
        six_hourly,
        "--lead",
        "12h",
        "--interval-block",
        "6h",
        "--interval-level",
        "0.9",
        "--report",
        str(enough),
    )
    assert "too few to read" not in enough.read_text(encoding="utf-8")  # 11 blocks


def test_the_caution_names_a_lead_whose_intervals_rest_on_fewer_blocks(six_hourly, capsys):
    """11 blocks of 6 h in all, but lead 48 h verified in 6 (its later valid times past the
    truth's end): its interval was printed without a caution."""
    out = wxens_verify(capsys, six_hourly, "--interval-block", "6h", "--interval-level", "0.9")
    caution = "intervals at lead 48 h from 6 blocks of 6 h: too few to read as uncertainty"
    assert out.count(caution) == 1, out
    with xr.open_datatree(six_hourly / "scores.nc") as tree:
        card = tree["scorecard"].to_dataset()
        assert caution in card["spread_skill_ratio_high"].attrs["caution"]
        assert np.isfinite(card["fair_crps_low"]).all()  # both leads: an interval as before
