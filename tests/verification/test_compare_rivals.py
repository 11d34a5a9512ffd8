"""``wxens compare`` judges a fair-CRPS best against the noise rival by rival: against a
rival whose file pairs with the best's (both hold ``/per_init`` of the same initial times)
the paired interval of (best - rival) decides, against one that does not (an older file)
the unpaired intervals side by side do. One older file among three used to send the whole
mark back to the unpaired rule, even against the rivals that pair, so a difference every
day shows was marked ``~``."""

from __future__ import annotations

import xarray as xr

from tests.verification.test_compare_paired import (
    CONFIG,
    crps_block,
    forecasts,
    without_per_init,
)
from verification.compare import compare_scorecards
from verification.compare_table import comparison_frame, comparison_table
from verification.scorecard import verify


def three(c_bias: float) -> list[xr.DataTree]:
    """Scores trees of a, b (a's errors 8 % larger: a difference every day shows, which
    the unpaired intervals of a and b hide by overlapping) and c (a's forecast off by
    ``c_bias`` K), c's as an older wxens wrote it (no ``/per_init``)."""
    truth, a, b = forecasts(shared=True)
    trees = [verify(f, truth, CONFIG) for f in (a, b, biased(a, c_bias))]
    return [*trees[:2], without_per_init(trees[2])]


def biased(forecast: xr.Dataset, bias: float) -> xr.Dataset:
    """``forecast`` off by ``bias`` K, its units kept."""
    return forecast.map(lambda field: field + bias, keep_attrs=True)


def crps_rows(trees: list[xr.DataTree]):
    return comparison_frame(compare_scorecards(trees, ["a", "b", "c"])).query(
        "score == 'fair_crps'"
    )


def test_the_best_is_judged_paired_against_the_rivals_that_pair_and_unpaired_against_the_old():
    """c far off: a is beaten by nothing. Against b the paired interval keeps off 0, against
    c the unpaired intervals do not overlap: ``*``. The rule judged the whole mark
    unpaired before, and a's and b's unpaired intervals overlap: ``~``."""
    trees = three(c_bias=5.0)
    table = compare_scorecards(trees, ["a", "b", "c"])
    text = comparison_table(table)
    assert all(row.split()[4].endswith("]*") for row in crps_block(text))
    rows = crps_rows(trees)
    assert rows.best.tolist() == ["a", "a"] and rows.within_noise.tolist() == ["", ""]
    assert rows.noise_rule.tolist() == ["mixed"] * 2
    assert rows.paired_rival.tolist() == ["b", "b"] and (rows.fair_crps_paired_high < 0).all()
    legend = text.split("\n\n")[-1]
    assert "judged paired (rival by rival: a paired against b, unpaired against c)" in legend
    assert "fair CRPS not paired: c (" in legend
    # the old rule's verdict on the same numbers: the unpaired intervals of a and b overlap
    a_high = table.fair_crps_high.sel(experiment="a")
    assert bool((a_high > table.fair_crps_low.sel(experiment="b")).all())


def test_a_rival_within_the_unpaired_noise_marks_the_best_as_noise_though_the_paired_keep_off():
    """c is b, as an older wxens wrote it: paired against b, a keeps off 0; unpaired
    against c (the same numbers), the intervals overlap: ``~``, by the unpaired rival."""
    truth, a, b = forecasts(shared=True)
    trees = [verify(f, truth, CONFIG) for f in (a, b)]
    trees.append(without_per_init(trees[1]))
    rows = crps_rows(trees)
    assert rows.best.tolist() == ["a", "a"] and rows.within_noise.tolist() == ["a", "a"]
    assert rows.noise_rule.tolist() == ["mixed"] * 2 and (rows.fair_crps_paired_high < 0).all()


def test_three_files_that_all_pair_are_judged_paired_at_every_row():
    truth, a, b = forecasts(shared=True)
    trees = [verify(f, truth, CONFIG) for f in (a, b, biased(a, 5.0))]
    rows = crps_rows(trees)
    assert rows.noise_rule.tolist() == ["paired"] * 2 and rows.within_noise.tolist() == ["", ""]
    legend = comparison_table(compare_scorecards(trees, ["a", "b", "c"])).split("\n\n")[-1]
    assert "fair CRPS judged paired (at every row)" in legend
