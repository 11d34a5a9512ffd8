"""The raw forecast store a correction reads (:func:`open_raw`, its refusals), and the
corrected store of a forecast that ``wxens tune`` chose not to correct
(:func:`write_uncorrected`: the forecast's members as they are, its attributes saying why;
``wxens bias-correct`` and the served bias-correct task without weights, for a checkpoint
whose tuned choice is no correction). A script's chain (tune, bias-correct, verify the
corrected store) goes on as with any other choice, where bias-correct refused with exit 2
and verify found no store."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import xarray as xr

from generators.correction.tuned import CorrectionNames
from pipeline.errors import InputError
from pipeline.forecast_store import (
    ForecastProvenance,
    check_extends,
    open_forecast,
    write_forecast,
)
from pipeline.schema import INIT_TIME, LEAD_TIME, MEMBER

log = logging.getLogger(__name__)

NONE_CHOSEN = "none chosen by wxens tune"
"""The ``method`` of the correction a store written here records."""


def open_raw(forecast: str | Path, out: str | Path) -> xr.Dataset:
    """The forecast store ``forecast`` to correct into ``out``; an
    InputError, nothing written, where ``out`` is ``forecast`` itself (later corrections learn
    from the raw store) or ``forecast`` is already corrected."""
    if Path(out).resolve() == Path(forecast).resolve():
        raise InputError(
            f"out={str(out)!r} (--out) is the forecast store itself; write the corrected "
            "forecast to another store (the raw one is what later corrections learn from)"
        )
    raw = open_forecast(forecast)
    provenance = ForecastProvenance.from_attrs(raw.attrs)
    if provenance.bias_correction:
        raise InputError(
            f"{forecast} is already bias-corrected ({weights_text(provenance.bias_correction)}; "
            "`wxens info` tells the rest): correct the generator's own forecast store instead"
        )
    return raw


def weights_text(record: dict) -> str:
    """The weights a forecast store's correction record (``wxens_bias_correction``) holds, in
    words: ``bias weight W, spread weight S, rank weight R`` (``none`` for weight 0), or,
    where each variable has its own (``by_variable``), ``by variable: NAME ...; ...``."""
    if "by_variable" in record:
        return "by variable: " + "; ".join(
            f"{name} {weights_text(one)}" for name, one in record["by_variable"].items()
        )
    weights = [
        ("bias", record.get("weight")),
        ("spread", record.get("spread", {}).get("weight")),
        ("rank", record.get("ranks", {}).get("weight")),
    ]
    return ", ".join(f"{k} weight {w:g}" for k, w in weights if w) or "none"


def write_uncorrected(
    forecast: str | Path,
    out: str | Path,
    chosen: str | Path,
    names: CorrectionNames = CorrectionNames(),
) -> int:
    """Write the complete initial times of the forecast store ``forecast`` unchanged into
    ``out``, recording a correction of weight 0 that the tuned choice in ``chosen`` made
    (created, new initial times appended; refused as :func:`~generators.correction.bias.
    bias_correct_store` refuses), with a warning that says so and how to correct all the same
    (``names``: the command's flags or a flow's parameters); the number of initial times in
    ``out``."""
    raw = open_raw(forecast, out)
    log.warning(
        "`wxens tune` chose no correction for the checkpoint that made %s (%s: none lowered "
        "its cross-validated fair CRPS): %s holds the forecast as it is; give %s to correct "
        "all the same", forecast, chosen, out, names.bias_weight,
    )  # fmt: skip
    record = {"method": NONE_CHOSEN, "weight": 0.0, "chosen_in": str(chosen)}
    attrs = {**raw.attrs, "wxens_bias_correction": json.dumps(record, sort_keys=True)}
    made = ForecastProvenance.from_attrs(attrs)
    hours = raw[LEAD_TIME].values / np.timedelta64(1, "h")
    check_extends(out, made, raw.sizes[MEMBER], hours)
    write_forecast(out, raw.assign_attrs(attrs), made, skip_unchanged=True)
    return raw.sizes[INIT_TIME]
