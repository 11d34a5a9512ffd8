"""What the scores file and the report say about units, labels and leads, as a reader
opens them (the groups' attributes, the tables and captions)."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from verification_cases import balanced_members, oracle_forecast

from pipeline.sources.synthetic import SyntheticConfig, synthetic_dataset
from verification.config import VerifyConfig
from verification.scorecard import verify


@pytest.fixture(scope="module")
def mixed():
    """t2m (K) beside z (m2 s-2) and t on two levels: 3 members, 8 inits, 2 leads."""
    config = SyntheticConfig(n_lat=12, n_lon=16, n_times=16, levels=(500, 850))
    truth = synthetic_dataset(config).load()
    t2m = oracle_forecast(config, truth, 8, (6, 12), 3, seed=1)
    upper = balanced_members(config, truth, 8, (6, 12), seeds=(21, 22, 23))[["z", "t"]]
    forecast = xr.merge([t2m, upper.assign_coords(member=t2m.member)])
    return verify(forecast, truth, VerifyConfig(physics_init_times=4, progress=False))


def test_no_group_labels_every_variable_with_the_first_ones_name_and_units(mixed):
    """The stacked variables (t2m, z500, ...) once lent the first one's attributes to every
    result: rank counts, Brier scores and z500's maps read "2 metre temperature", "K"."""
    for group in mixed.children:
        ds = mixed[group].to_dataset()
        for name, da in ds.data_vars.items():
            where = f"/{group}/{name}"
            assert da.attrs.get("long_name") != "2 metre temperature", where
            assert "source_units" not in da.attrs, where
            assert da.attrs.get("units") not in ("K", "m2 s-2"), where


def test_a_lead_with_no_verified_point_has_no_rank_flatness():
    """A lead whose forecast is NaN everywhere has an empty rank histogram: its flatness is
    unknown (NaN, "–" in the report), not perfect (δ 0, p 1) beside the worst max/min (∞)."""
    from verification import ranks as vr

    counts = xr.DataArray([[5, 7, 6], [0, 0, 0]], dims=("lead_time", "rank"))
    flatness = vr.rank_flatness(counts)
    ratio = vr.rank_max_min_ratio(counts)
    assert float(flatness["delta"][0]) >= 0 and float(ratio[0]) == pytest.approx(7 / 5)
    for value in (flatness["chi_square"], flatness["p_value"], flatness["delta"], ratio):
        assert np.isnan(float(value[1])), value.name
    assert np.isinf(float(vr.rank_max_min_ratio(xr.DataArray([4, 0, 2], dims="rank"))))


def test_an_empty_rank_histogram_panel_says_why_instead_of_nan():
    from verification.plots import plot_rank_histograms

    counts = xr.DataArray(
        [[[5, 7, 6], [0, 0, 0]]],
        dims=("variable", "lead_time", "rank"),
        coords={"variable": ["t2m"], "lead_time": pd.to_timedelta([6, 12], unit="h")},
        name="rank_histogram",
    )
    card = xr.Dataset(
        {"rank_max_min": counts.max("rank") / counts.min("rank").where(counts.max("rank") > 0)}
    )
    axes = plot_rank_histograms(counts, card).axes
    texts = [[t.get_text() for t in ax.texts] for ax in axes]
    assert texts[0] == ["max/min 1.40"]
    assert texts[1] == ["n/a: no point verified"]


def test_the_skill_table_says_where_points_had_no_forecast():
    """A lead NaN in the forecast read "points 0, no truth 0" in the report, with nothing to
    say why; the printed table and the scores file count it as ``n_missing_forecast``."""
    from verification.report_tables import scorecard_tables

    leads = pd.to_timedelta([6, 12], unit="h")
    coords = {"variable": ["t2m"], "lead_time": leads}

    def field(values):
        return (("variable", "lead_time"), [values])

    card = xr.Dataset(
        {
            "fair_crps": field([1.0, np.nan]),
            "n_verified": field([100, 0]),
            "n_missing_truth": field([0, 0]),
            "n_missing_forecast": field([0, 100]),
        },
        coords=coords,
    )
    skill = scorecard_tables(card)["skill"]
    assert "<th title=''>no forecast</th>" in skill
    assert skill.endswith("<td>–</td><td>0</td><td>0</td><td>100</td></tr></table>")
    whole = scorecard_tables(card.assign(n_missing_forecast=field([0, 0])))["skill"]
    assert "no forecast" not in whole


@pytest.mark.parametrize("hours", [[6], [6, 12, 24]])
def test_lead_axes_tick_whole_hours_and_one_lead_keeps_its_interval(hours):
    """The lead axes read 7.5, 12.5 h for leads 6, 12, 24 h, and 5.7 ... 6.3 h around a
    single lead, whose spread-skill interval (a band of width 0) did not show at all."""
    from verification.plots import plot_scores_by_lead, plot_spread_skill_ratio

    coords = {"variable": ["t2m"], "lead_time": pd.to_timedelta(hours, unit="h")}
    ones = np.ones((1, len(hours)))
    dims = ("variable", "lead_time")
    card = xr.Dataset(
        {
            name: (dims, value * ones)
            for name, value in [
                ("fair_crps", 1.0),
                ("ensemble_mean_rmse", 2.0),
                ("ensemble_spread", 1.8),
                ("spread_skill_ratio", 0.9),
                ("spread_skill_ratio_low", 0.8),
                ("spread_skill_ratio_high", 1.0),
            ]
        },
        coords=coords,
    )
    for fig in (plot_scores_by_lead(card), plot_spread_skill_ratio(card)):
        ax = fig.axes[0]
        fig.canvas.draw()
        low, high = ax.get_xlim()
        ticks = [t for t in ax.get_xticks() if low <= t <= high]
        assert ticks and all(float(t).is_integer() for t in ticks), ticks
    band = plot_spread_skill_ratio(card).axes[0].collections[0].get_paths()[0].vertices
    assert np.ptp(band[:, 0]) > 0 and np.ptp(band[:, 1]) == pytest.approx(0.2)


@pytest.fixture(scope="module")
def with_reference():
    """A t2m forecast and a wider one as its reference, 8 inits (two days), 2 leads."""
    config = SyntheticConfig(n_lat=8, n_lon=12, n_times=16)
    truth = synthetic_dataset(config).load()
    forecast = oracle_forecast(config, truth, 8, (6, 12), 4, seed=1)
    reference = oracle_forecast(config, truth, 8, (6, 12), 4, seed=2, spread_factor=2.0)
    return truth, forecast, reference


@pytest.mark.parametrize("n_init", [8, 1])
def test_the_crps_difference_column_reads_as_what_it_is(with_reference, n_init):
    """Its tooltip said "low end of the interval of fair_crps_low"; with one day of inits
    (no interval) its cells were empty, where the printed table says [n/a]."""
    from verification.report_tables import scorecard_tables

    truth, forecast, reference = with_reference
    config = VerifyConfig(physics_init_times=0, energy_score=False, progress=False)
    tree = verify(forecast.isel(init_time=slice(n_init)), truth, config, reference=reference)
    card = tree["scorecard"].to_dataset()
    assert "interval of fair_crps" not in card["fair_crps_minus_reference_low"].long_name
    skill = scorecard_tables(card)["skill"]
    assert "block-bootstrap interval (the blocks, draws and level of fair_crps_low)" in skill
    cells = re.findall(r"<td>(.*?)</td>", skill.split("</tr>")[1])
    difference = cells[4]  # lead, fair CRPS, reference CRPS, skill, Δ CRPS
    if n_init == 1:
        assert difference == "<span class='interval'>[n/a]</span>"
    else:
        assert re.fullmatch(r"<span class='interval'>\[-?[\d.]+, -?[\d.]+\]</span>", difference)


def test_the_summary_counts_one_member_and_one_init_time_in_the_singular(with_reference):
    from verification.report import render_report

    truth, forecast, _ = with_reference
    config = VerifyConfig(physics_init_times=0, energy_score=False, progress=False)
    tree = verify(forecast.isel(init_time=[0], member=[0]), truth, config)
    assert "<p>1 member, 1 init time (" in render_report(tree)
