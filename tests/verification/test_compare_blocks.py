"""``wxens compare`` of files whose intervals rest on fewer day-blocks than
:data:`~verification.resampling.MIN_READABLE_BLOCKS` (a researcher's walk of 6 days): the
``~``/``*`` judgement stands, but the legend names the files and their blocks and says the
judgement rests on them, as ``wxens verify`` says of its own intervals; the CSV holds each
row's blocks and the paired interval the CRPS mark was judged by."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tests.verification.test_compare_paired import CONFIG, forecasts, without_per_init
from verification.compare import compare_scorecards
from verification.compare_table import comparison_frame, comparison_table
from verification.resampling import MIN_READABLE_BLOCKS
from verification.scorecard import verify


def walk(days: int, shared: bool = True):
    """Scores trees of the two forecasts of :func:`forecasts` on their first ``days`` days
    (4 initial times a day: a block each)."""
    truth, a, b = forecasts(shared)
    inits = a.init_time[: 4 * days]
    return [verify(f.sel(init_time=inits), truth, CONFIG) for f in (a, b)]


def legend(table) -> str:
    return comparison_table(table).split("\n\n")[-1]


def test_a_walk_of_six_days_says_its_marks_rest_on_six_blocks():
    table = compare_scorecards(walk(6), ["a", "b"])
    said = legend(table)
    assert "~" in comparison_table(table) or "*" in comparison_table(table)
    line = next(s for s in said.splitlines() if "blocks" in s and "a (" in s)
    assert "a (a scores tree): 6 blocks of 1 day" in line
    assert "b (a scores tree): 6 blocks of 1 day" in line
    assert f"fewer than {MIN_READABLE_BLOCKS}" in line and "rest on" in line
    frame = comparison_frame(table).set_index(["score", "lead_hours"])
    with_intervals = ["fair_crps", "fair_crps_low", "spread_skill_ratio_high"]
    assert (frame.loc[with_intervals, "blocks"] == 6).all()
    assert frame.loc["ensemble_mean_rmse", "blocks"].isna().all()  # no interval: no blocks


def test_ten_days_or_more_say_nothing_of_blocks_but_the_csv_counts_them():
    table = compare_scorecards(walk(10), ["a", "b"])
    assert "blocks of 1 day" not in legend(table)
    frame = comparison_frame(table)
    assert (frame.query("score == 'fair_crps'").blocks == 10).all()


def test_an_older_file_is_named_by_the_caution_it_records():
    """A file without ``/per_init`` records no blocks to count: its CSV rows say none (not
    another file's), and the legend quotes the caution ``wxens verify`` wrote in it."""
    a, b = walk(6)
    table = compare_scorecards([without_per_init(a), b], ["a", "b"])
    assert "a (a scores tree): intervals from 6 blocks of 1 day" in legend(table)
    assert comparison_frame(table).blocks.isna().all()


def test_the_csv_holds_the_paired_interval_of_the_best_against_its_nearest_rival():
    """On the fair CRPS row: the rival whose paired interval reaches highest (the one the
    paired rule reads nearest the best) and the interval's ends, as the table holds them:
    ``within_noise`` is there exactly where the high end reaches 0."""
    for shared in (True, False):
        table = compare_scorecards(walk(10, shared), ["a", "b"])
        rows = comparison_frame(table).query("score == 'fair_crps'")
        assert (rows.noise_rule == "paired").all()
        for _, row in rows.iterrows():
            at = {"variable": row.variable, "lead_time": np.timedelta64(int(row.lead_hours), "h")}
            pair = at | {"experiment": row.best, "rival": row.paired_rival}
            assert row.paired_rival == ("b" if row.best == "a" else "a")
            for side in ("low", "high"):
                kept = float(table[f"fair_crps_paired_{side}"].sel(pair))
                assert row[f"fair_crps_paired_{side}"] == pytest.approx(kept, rel=1e-12)
            assert (row.within_noise != "") == (row.fair_crps_paired_high >= 0)
        others = comparison_frame(table).query("score != 'fair_crps'")
        assert others.fair_crps_paired_low.isna().all() and (others.paired_rival == "").all()
    old = comparison_frame(compare_scorecards([without_per_init(walk(10)[0]), walk(10)[1]]))
    assert old.fair_crps_paired_high.isna().all()  # judged unpaired: no paired interval
    assert isinstance(old, pd.DataFrame)


def test_three_files_one_older_count_the_blocks_of_those_that_record_them():
    """An older file among three (not only beside one other) compares: its count is NaN,
    the others' their blocks (it raised on the older count's missing coordinates)."""
    a, b = walk(10)
    table = compare_scorecards([a, b, without_per_init(a)], ["a", "b", "c"])
    assert table.blocks.sel(experiment="c").isnull().all()
    assert (table.blocks.sel(experiment=["a", "b"]) == 10).all()
