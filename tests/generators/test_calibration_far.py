"""A spread calibration far from 1 is said: factors of 4.7-6.0 (a 27-step model whose raw
spread-skill was 0.17) were fitted and applied in silence, though such a factor means the
members barely differ and the calibration inflates their noise."""

from __future__ import annotations

import logging

import numpy as np
from test_calibration import ar1_trained_to_4th, ar1_truth_store
from test_rollout import stub_for

from flows.commands.info_provenance import calibration_text
from generators.calibration import fit_calibration
from generators.config import CalibrationConfig
from generators.correction.spread import far_factors
from pipeline.schema import Period

CHANNELS = ("t2m", "msl")


def test_factors_outside_a_third_to_three_are_named_by_lead_and_channel_with_the_fix():
    factors = np.array([[5.9, 1.0], [1.2, 0.9], [2.9, 0.25]])  # leads 1, 6, 24 h
    said = far_factors((1.0, 6.0, 24.0), factors, CHANNELS)
    assert "1 h t2m 5.9" in said and "24 h msl 0.25" in said
    assert "6 h" not in said and "2.9" not in said
    assert "train longer" in said and "check the sampler" in said
    assert far_factors((1.0, 6.0), factors[1:] * [1, 3], CHANNELS) == ""  # 2.7 and 0.75: near


def test_a_fit_of_members_that_barely_differ_warns_once_and_info_says_so(caplog):
    """The AR(1) stub drawing a fifth of the true noise: a factor of about 5 per lead."""
    store = ar1_truth_store()
    checkpoint = ar1_trained_to_4th(store)
    config = CalibrationConfig(
        period=Period("2019-03-05", "2019-03-29"), members=8, sampler="euler:nfe=1"
    )
    logger = logging.getLogger("generators.calibration")
    logger.addHandler(caplog.handler)
    try:
        calibration = fit_calibration(
            checkpoint, store, config, model=stub_for(checkpoint, scale=0.2), progress=False
        )
    finally:
        logger.removeHandler(caplog.handler)
    assert (calibration.factors[:, 0] > 3).all()
    said = [r.getMessage() for r in dict.fromkeys(caplog.records)]  # once, if root has it too
    far = [m for m in said if "train longer" in m]
    assert len(far) == 1 and "6 h" in far[0] and "12 h" in far[0]
    shown = calibration_text(calibration.to_dict())  # the line of wxens info
    assert "train longer" in shown
    near = calibration.to_dict() | {"factors": (calibration.factors / 4).tolist()}
    assert "train longer" not in calibration_text(near)


def test_a_factor_just_below_a_third_is_not_shown_as_the_bound_it_is_outside():
    """A synthetic store's deterministic upper air fitted 0.332: the warning said "z500 0.33;
    outside 0.33 to 3", a factor that read as equal to the bound it was said to be outside."""
    said = far_factors((6.0,), np.array([[0.332, 1.0]]), CHANNELS)
    assert "6 h t2m 0.332" in said and "outside 1/3 to 3" in said
    assert far_factors((6.0,), np.array([[0.334, 3.0]]), CHANNELS) == ""
