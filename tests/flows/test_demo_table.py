"""The table ``wxens demo`` prints reads the rank max/min as ``wxens verify`` does: against
the error-correlation floor where the scores hold it, with the pass rule's yes/no per lead
(:func:`verification.ranks.with_rank_pass`); against the perfect-model floor, no pass, where
they do not. It read the perfect-model floor alone, which a reliable ensemble of errors
coherent over the domain lies far above (``rank max/min 3.1 (1.3)`` read as a failure)."""

from __future__ import annotations

import numpy as np
import xarray as xr

from flows.commands.demo_table import scores_by_lead
from verification.ranks import PASS_FACTOR

LEADS = np.array([6, 24], dtype="timedelta64[h]").astype("timedelta64[ns]")


def scores(path, error_floor: bool):
    """A scores file of t2m at two leads: the first within 1.1 x its error floor, the second
    above it, both far above the perfect-model floor."""
    values = {
        "fair_crps": [0.4, 0.9],
        "reference_fair_crps": [0.5, 0.8],
        "fair_crps_skill_score": [0.2, -0.125],
        "spread_skill_ratio": [0.95, 0.9],
        "rank_max_min": [3.1, 4.0],
        "rank_max_min_perfect_model": [1.3, 1.3],
    }
    if error_floor:
        values["rank_max_min_error_surrogate"] = [3.0, 3.5]
    card = xr.Dataset(
        {k: (("variable", "lead_time"), [v]) for k, v in values.items()},
        coords={"variable": ["t2m"], "lead_time": LEADS},
    )
    xr.DataTree.from_dict({"/scorecard": card}).to_netcdf(path)
    return path


def rows(table: str) -> list[list[str]]:
    return [line.split() for line in table.splitlines() if line.startswith("t2m ")]


def test_the_demo_table_reads_the_rank_ratio_against_the_error_floor(tmp_path):
    table = scores_by_lead(scores(tmp_path / "s.nc", error_floor=True))
    assert "rank max/min (error floor)" in table
    assert f"at most {PASS_FACTOR:g} x the error floor" in table
    first, second = rows(table)
    assert first[-3:] == ["3.10", "(3.00)", "yes"]
    assert second[-3:] == ["4.00", "(3.50)", "no"]


def test_without_the_error_floor_it_reads_the_perfect_model_one_and_says_no_pass(tmp_path):
    table = scores_by_lead(scores(tmp_path / "s.nc", error_floor=False))
    assert "rank max/min (perfect-model floor)" in table and "passes" not in table
    first, second = rows(table)
    assert first[-2:] == ["3.10", "(1.30)"] and second[-2:] == ["4.00", "(1.30)"]
