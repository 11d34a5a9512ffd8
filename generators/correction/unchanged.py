"""The corrected store of a forecast that ``wxens tune`` chose not to correct: the forecast's
members as they are, its attributes saying why (``wxens bias-correct`` without weights, for
a checkpoint whose tuned choice is no correction). A script's chain (tune, bias-correct,
verify the corrected store) goes on as with any other choice, where bias-correct refused
with exit 2 and verify found no store."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from pipeline.errors import InputError
from pipeline.forecast_store import (
    ForecastProvenance,
    check_extends,
    open_forecast,
    write_forecast,
)
from pipeline.schema import INIT_TIME, LEAD_TIME, MEMBER

NONE_CHOSEN = "none chosen by wxens tune"
"""The ``method`` of the correction a store written here records."""


def write_uncorrected(forecast: str | Path, out: str | Path, chosen: str | Path) -> int:
    """Write the complete initial times of the forecast store ``forecast`` unchanged into
    ``out``, recording a correction of weight 0 that the tuned choice in ``chosen`` made
    (created, new initial times appended; refused as :func:`~generators.correction.bias.
    bias_correct_store` refuses); the number of initial times in ``out``."""
    if Path(out).resolve() == Path(forecast).resolve():
        raise InputError(
            f"--out {out} is the forecast store itself; write the corrected forecast to "
            "another store (the raw one is what later corrections learn from)"
        )
    raw = open_forecast(forecast)
    if ForecastProvenance.from_attrs(raw.attrs).bias_correction:
        raise InputError(
            f"{forecast} is already bias-corrected (`wxens info` tells how): correct the "
            "generator's own forecast store instead"
        )
    record = {"method": NONE_CHOSEN, "weight": 0.0, "chosen_in": str(chosen)}
    attrs = {**raw.attrs, "wxens_bias_correction": json.dumps(record, sort_keys=True)}
    made = ForecastProvenance.from_attrs(attrs)
    hours = raw[LEAD_TIME].values / np.timedelta64(1, "h")
    check_extends(out, made, raw.sizes[MEMBER], hours)
    write_forecast(out, raw.assign_attrs(attrs), made, skip_unchanged=True)
    return raw.sizes[INIT_TIME]
