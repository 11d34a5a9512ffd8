"""The quality studies' own code is reading and rendering: correction specs parse as the
bias-correct flags, a scorecard is read by lead, and the tables show the scorecard's
figures (the rank floor beside the model's ratio, a tick where a row beats the better
baseline)."""

from __future__ import annotations

import pandas as pd
import pytest
import xarray as xr

from benchmarks.quality_tables import scorecard
from benchmarks.quality_uk import markdown, row_label, spec_of
from pipeline.errors import InputError


def test_correction_specs_parse_as_the_bias_correct_flags():
    chain = spec_of("0.2:0.7:0.1")
    assert (chain.bias_weight, chain.spread_weight, chain.rank_weight) == (0.2, 0.7, 0.1)
    assert spec_of("0.2::0.1").spread_weight is None
    assert row_label(spec_of("0.2::0.1")) == "bias-corrected (w 0.2), rank-recalibrated (w 0.1)"
    assert row_label(None) == "raw"
    for bad in ("0:0.7", "x", "0.2:0.7:0.1:1", ":0.7"):
        with pytest.raises(InputError, match=bad):
            spec_of(bad)


def test_a_scorecard_is_read_by_lead_hours():
    leads = pd.to_timedelta([1, 24], unit="h")
    card = xr.Dataset(
        {"fair_crps": (("variable", "lead_time"), [[0.1, 0.2], [1.0, 2.0]])},
        coords={"variable": ["t2m", "z500"], "lead_time": leads},
    )
    tree = xr.DataTree.from_dict({"/scorecard": card})
    assert scorecard(tree, "t2m") == {"1": {"fair_crps": 0.1}, "24": {"fair_crps": 0.2}}


def card(crps: float, **more: float) -> dict[str, float]:
    figures = dict(
        fair_crps=crps,
        spread_skill_ratio=1.0,
        rank_max_min=1.6,
        rank_max_min_perfect_model=1.2,
        spread_skill_ratio_low=0.9,
        spread_skill_ratio_high=1.1,
        reference_fair_crps=0.5,
        fair_crps_minus_reference_low=-0.2,
        fair_crps_minus_reference_high=-0.1,
    )
    return figures | more


def floor(median: float, at_least: float, above: float) -> dict[str, float]:
    return {
        "rank_max_min_error_surrogate": median,
        "floor_at_least_model": at_least,
        "floor_above_target": above,
    }


def test_the_tables_show_the_scorecards_figures():
    payload = {
        "sampler": "euler:nfe=2",
        "members": 4,
        "seed": 0,
        "train": "2019-03-01/2019-03-21",
        "test_inits": ["2019-03-22", "2019-03-23"],
        "better_baseline": {"1": "persistence"},
        "baselines": {"climatology": {"1": card(0.9)}, "persistence": {"1": card(0.5)}},
        "models": {
            "raw": {"1": card(0.6, **floor(1.6, 0.6, 0.6))},
            "chain": {"1": card(0.4, rank_max_min=3.0, **floor(1.4, 0.0, 0.2))},
        },
        "bias_by_init_hour": {"hours": [0, 12], "rows": {"raw": {"1": [1.0, -2.0]}}},
    }
    lines = markdown(payload, "m").splitlines()
    assert "| **best baseline** | 0.500 |" in lines
    assert "| raw | 0.600 |" in lines and "| chain | 0.400 ✓ |" in lines
    assert "| raw | 1.60 / 1.60 (0.60; 0.60) |" in lines
    assert "| chain | 3.00 / 1.40 (0.00; 0.20) |" in lines
    assert "| chain | 3.00 (1.20) |" in lines
    assert "| chain | -0.100 [-0.200, -0.100] |" in lines
    assert "| raw | +1.00 -2.00 |" in lines
