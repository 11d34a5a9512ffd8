"""The physics table's verdict says how many members pass, not a bare count beside FAIL."""

from __future__ import annotations

import numpy as np
import xarray as xr

from verification.report_tables import physics_table


def one_check(passed: list[bool]) -> xr.DataTree:
    scores = np.where(passed, 0.001, 0.05)
    physics = xr.Dataset(
        {
            "member_score": (("check", "member"), scores[None]),
            "passed": (("check", "member"), np.array(passed)[None]),
            "truth_score": ("check", [0.001]),
            "tolerance": ("check", [0.002]),
            "tolerance_rule": ("check", ["max(2 × truth score, 0.002)"]),
            "description": ("check", ["layer thickness"]),
            "units": ("check", ["1"]),
        },
        coords={"check": ["hypsometric 850-700 hPa"], "member": np.arange(len(passed))},
    )
    return xr.DataTree.from_dict({"/physics": physics})


def test_the_verdict_of_one_failing_member_of_four_is_not_read_as_three_failing():
    # "FAIL (3/4 members)" reads as three members failing, where one did
    table = physics_table(one_check([True, True, True, False]))
    assert "FAIL (3/4 members pass)" in table
    assert "PASS (4/4 members pass)" in physics_table(one_check([True] * 4))
