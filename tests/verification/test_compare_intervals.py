"""``wxens compare`` keeps the block-bootstrap intervals a scorecard carries: they are in
the joined table, printed beside each score as verify prints them and rows of the CSV."""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from verification.compare import compare_scorecards
from verification.compare_table import comparison_frame, comparison_table
from verification.config import VerifyConfig
from verification.scorecard import verify


def scored_trees() -> list[xr.DataTree]:
    """Scores trees of two 3-member forecasts (the second 0.5 K warmer) of 20 init times over
    10 days, verified with 90 % intervals in day blocks."""
    rng = np.random.default_rng(0)
    times = pd.date_range("2020-01-01", periods=60, freq="6h")
    grid = {"latitude": np.linspace(50, 60, 4), "longitude": np.linspace(-10, 2, 5)}
    truth = xr.Dataset(
        {"t2m": (("time", *grid), 280 + rng.normal(size=(60, 4, 5)), {"units": "K"})},
        coords={"time": times, **grid},
    )
    dims = ("init_time", "member", "lead_time", *grid)
    forecast = xr.Dataset(
        {"t2m": (dims, 280 + rng.normal(size=(20, 3, 2, 4, 5)), {"units": "K"})},
        coords={"init_time": times[:40:2], "lead_time": pd.to_timedelta([6, 12], "h"), **grid},
    )
    config = VerifyConfig(progress=False, physics_init_times=0, energy_score=False)
    return [verify(f, truth, config) for f in (forecast, forecast + 0.5)]


def test_compared_scores_keep_their_intervals_in_the_table_the_print_and_the_csv():
    trees = scored_trees()
    table = compare_scorecards(trees, ["a", "b"])
    cards = [t["scorecard"].to_dataset() for t in trees]
    for name in ("fair_crps", "spread_skill_ratio"):
        for side in ("low", "high"):
            kept = table[f"{name}_{side}"].sel(experiment="b")
            xr.testing.assert_equal(
                kept.drop_vars(["experiment", "source", "n_members"]), cards[1][f"{name}_{side}"]
            )
    printed = comparison_table(table)
    one = {"variable": "t2m", "lead_time": np.timedelta64(6, "h"), "experiment": "a"}
    value, low, high = (
        float(table[n].sel(one)) for n in ("fair_crps", "fair_crps_low", "fair_crps_high")
    )
    assert np.isfinite(low) and low < high
    assert f"{value:.4g} [{low:.4g}, {high:.4g}]" in printed  # as verify's table shows it
    rows = comparison_frame(table).set_index(["score", "lead_hours"])
    assert rows.loc[("fair_crps_low", 6.0), "a"] == low
    assert rows.loc[("fair_crps_high", 6.0), "a"] == high
    assert rows.loc[("fair_crps_low", 6.0), "unit"] == "K"
