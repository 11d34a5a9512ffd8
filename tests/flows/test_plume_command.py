"""``wxens plume FORECAST --at LAT,LON --out P.png``: a PNG of a forecast store's plume, the
truth from an analysis store over it, in the units asked for; a bad place or init refused."""

from __future__ import annotations

import pandas as pd
import pytest

from flows.cli import main
from pipeline.sources.synthetic import SyntheticConfig
from pipeline.store import ingest
from tests.flows.test_products_command import forecast  # noqa: F401 (a fixture)

PNG = b"\x89PNG\r\n\x1a\n"


def test_plume_writes_a_png_of_the_forecast_at_the_place(forecast, tmp_path, capsys):  # noqa: F811
    store, _ = forecast
    out = tmp_path / "plume.png"
    args = ["plume", store, "--at", "51.5,-0.12", "--out", str(out), "--units", "t2m=degC"]
    assert main([*args, "--init", "2019-03-04T00", "--variable", "t2m"]) == 0
    assert out.read_bytes().startswith(PNG)
    printed = capsys.readouterr().out
    assert (
        f"{out}: {store}'s plume at 51.00°N, 0.00°E (nearest grid point to 51.50°N, 0.12°W)"
        in printed
    )
    assert "init 2019-03-04 00:00" in printed


def test_plume_draws_the_truth_where_the_analysis_store_holds_the_valid_time(
    forecast,  # noqa: F811
    tmp_path,
    capsys,
):
    """The latest init, 5 March 00 UTC, is valid at 06 and 12 UTC; the truth (a synthetic
    analysis on a coarser grid over the place) holds 12 and 18 UTC: one marker."""
    store, _ = forecast
    config = SyntheticConfig(n_lat=8, n_lon=12, n_times=2, start=pd.Timestamp("2019-03-05T12"))
    analysis = tmp_path / "analysis.zarr"
    ingest(config.to_spec(), analysis, progress=False)
    out = tmp_path / "plume.png"
    argv = ["plume", store, "--at", "51.5,-0.12", "--truth", str(analysis), "--out", str(out)]
    assert main(argv) == 0
    assert out.read_bytes().startswith(PNG)
    assert "init 2019-03-05 00:00 UTC; truth at 1 of 2 valid times" in capsys.readouterr().out


def test_a_place_not_lat_lon_is_a_usage_error(forecast, tmp_path, capsys):  # noqa: F811
    store, _ = forecast
    with pytest.raises(SystemExit) as usage:
        main(["plume", store, "--at", "51.5", "--out", str(tmp_path / "plume.png")])
    assert usage.value.code == 2
    assert "argument --at: '51.5': give LAT,LON" in capsys.readouterr().err


def test_a_place_off_the_grid_is_refused_before_anything_is_written(
    forecast,  # noqa: F811
    tmp_path,
    capsys,
):
    store, _ = forecast
    out = tmp_path / "plume.png"
    assert main(["plume", store, "--at", "10,-0.12", "--out", str(out)]) == 2
    refusal = capsys.readouterr().err
    assert f"{store}'s grid: latitude 50 to 52, longitude -2 to 1" in refusal
    assert not out.exists()
