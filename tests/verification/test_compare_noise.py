"""``wxens compare`` stars a best only where the noise cannot explain it: a best whose
block-bootstrap interval overlaps another's (.159 [.14, .18] beside .169 [.15, .19]) was
starred as if the gap were real; it is marked ``~`` now, and the legend says what each mark
means. Files without intervals are marked as before, and the legend says so."""

from __future__ import annotations

import numpy as np
import xarray as xr

from verification.compare import compare_scorecards
from verification.compare_table import comparison_frame, comparison_table

LEADS = np.array([1, 6], dtype="timedelta64[h]").astype("timedelta64[ns]")


def scores_tree(crps, ratio=(1.0, 1.0), crps_ends=None, ratio_ends=None) -> xr.DataTree:
    """A scores tree of one variable at two leads (1 h, 6 h): its fair CRPS and spread/skill
    per lead, with their intervals' (low, high) per lead where given."""
    dims, coords = ("variable", "lead_time"), {"variable": ["t2m"], "lead_time": LEADS}
    card = xr.Dataset(
        {"fair_crps": (dims, [crps]), "spread_skill_ratio": (dims, [ratio])}, coords=coords
    )
    for name, ends in (("fair_crps", crps_ends), ("spread_skill_ratio", ratio_ends)):
        if ends is not None:
            lows, highs = zip(*ends, strict=True)
            card[f"{name}_low"] = (dims, [list(lows)])
            card[f"{name}_high"] = (dims, [list(highs)])
    attrs = {"init_times": "2020-03-15T00:00:00; 2020-03-16T00:00:00"}
    return xr.DataTree.from_dict({"/": xr.Dataset(attrs=attrs), "/scorecard": card})


def printed(*trees: xr.DataTree) -> str:
    return comparison_table(compare_scorecards(list(trees), ["fm", "dm"]))


def test_a_best_within_the_runner_ups_interval_is_marked_as_noise_not_starred():
    fm = scores_tree([0.159, 0.30], crps_ends=[(0.14, 0.18), (0.28, 0.32)])
    dm = scores_tree([0.169, 0.40], crps_ends=[(0.15, 0.19), (0.38, 0.42)])
    text = printed(fm, dm)
    assert "0.159 [0.14, 0.18]~" in text  # the intervals overlap: within the noise
    assert "0.3 [0.28, 0.32]*" in text  # they do not: starred
    assert "0.169 [0.15, 0.19] " in text and "0.4 [0.38, 0.42] " in text  # dm unmarked
    assert "~ best, but within the noise (fair CRPS)" in text.split("\n\n")[-1]
    rows = comparison_frame(compare_scorecards([fm, dm], ["fm", "dm"]))
    crps = rows[rows.score == "fair_crps"].set_index("lead_hours")
    assert crps.best.tolist() == ["fm", "fm"]  # the point estimates' best, as before
    assert crps.within_noise.tolist() == ["fm", ""]


def test_a_ratio_is_within_the_noise_where_its_rivals_interval_holds_1():
    """The runner-up's interval [0.95, 1.6] holds 1: it may be as near 1 as the best (its
    ends, 0.05 and 0.6 from 1, do not say so); one whose interval keeps off 1 is beaten."""
    ratios = {"fm": (0.99, 0.99), "dm": (1.3, 1.3)}
    fm = scores_tree([0.2, 0.2], ratios["fm"], ratio_ends=[(0.98, 1.01)] * 2)
    dm = scores_tree([0.2, 0.2], ratios["dm"], ratio_ends=[(0.95, 1.6), (1.2, 1.4)])
    block = next(b for b in printed(fm, dm).split("\n\n") if b.startswith("spread/skill"))
    one, six = block.splitlines()[2:4]
    assert "0.99 [0.98, 1.01]~" in one and "0.99 [0.98, 1.01]*" in six


def test_files_without_intervals_star_the_best_point_estimate_and_say_so():
    fm, dm = scores_tree([0.159, 0.30]), scores_tree([0.169, 0.40])
    text = printed(fm, dm)
    assert "0.159*" in text and "0.3*" in text and "~" not in text.split("\n\n")[0]
    assert "no intervals" in text.split("\n\n")[-1]
