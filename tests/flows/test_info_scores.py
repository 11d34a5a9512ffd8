"""`wxens info SCORES.nc` says what made the scores' forecast and reference, calibration and
correction included: two scores files of one checkpoint, calibrated and not (`wxens forecast
--no-calibration`), or raw and bias-corrected, read the same otherwise."""

from __future__ import annotations

import numpy as np
import xarray as xr

from flows.cli import main
from pipeline.forecast_provenance import ForecastProvenance
from verification.output import write_scores

CALIBRATION = {
    "channels": ["t2m"],
    "leads_hours": [1.0, 24.0],
    "factors": [[1.376], [1.449]],
    "period": "2019-03-11T00:00 to 2019-03-14T23:00",
    "seed": 1,
}


def scores_file(path, calibration: dict, bias: dict) -> str:
    """A scores file as `wxens verify --reference` writes it: the forecast store's provenance
    under ``wxens_``, the reference's under ``reference_wxens_``."""
    made = ForecastProvenance("edm", "62c77e6a725afff6", "edm_euler:num_steps=2", 2, 0,
                              calibration=calibration, bias_correction=bias)  # fmt: skip
    reference = ForecastProvenance("baseline:persistence", "d943b5ae74b68a35", "persistence", 0, 0)
    scorecard = xr.Dataset({"fair_crps": (("lead_time",), np.array([0.17, 1.09]))})
    tree = xr.DataTree.from_dict({"/": xr.Dataset(), "/scorecard": scorecard})
    tree.attrs.update(n_members=16, n_init_times=24, **made.to_attrs())
    tree.attrs.update({f"reference_{k}": v for k, v in reference.to_attrs().items()})
    return str(write_scores(tree, path))


def info(path, capsys) -> list[str]:
    assert main(["info", path]) == 0
    return capsys.readouterr().out.splitlines()


def test_info_of_scores_tells_a_calibrated_forecast_from_an_uncalibrated_one(tmp_path, capsys):
    calibrated = info(scores_file(tmp_path / "cal.nc", CALIBRATION, {}), capsys)
    raw = info(scores_file(tmp_path / "raw.nc", {}, {}), capsys)
    assert "calibration spread factors (t2m) fitted on 2019-03-11T00:00 to " in "\n".join(
        calibrated
    )
    assert "1 h 1.38, 24 h 1.45, fit seed 1" in "\n".join(calibrated)
    assert "calibration none (members as drawn)" in raw
    assert calibrated[1:] != raw[1:]  # not only the path differs
    # the reference's own record, under its own name
    assert "reference calibration none (members as drawn)" in calibrated


def test_info_of_scores_says_the_forecasts_bias_correction(tmp_path, capsys):
    bias = {"weight": 0.2, "by": "lead, time of day and grid point"}
    out = info(scores_file(tmp_path / "bc.nc", {}, bias), capsys)
    assert "bias       decaying average, weight 0.2, by lead, time of day and grid point" in out
    assert "reference bias none (the generator's own members)" in out
