"""What :func:`verification.scorecard.verify` says of the forecast and truth it is given:
the refusal of a truth without any of the forecast's valid times, and the warnings of a
small ensemble (one member; too few for the perfect-model floor) and of points that lack
members.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import xarray as xr

from pipeline.alignment import AlignedForecast
from pipeline.errors import InputError, time_text
from pipeline.schema import MEMBER, TIME, VALID_TIME
from verification.config import VerifyConfig

log = logging.getLogger("verification.scorecard")  # where these were said before


def require_some_truth(aligned: AlignedForecast, truth: xr.Dataset) -> None:
    """InputError when the truth holds none of the forecast's valid times."""
    valid = pd.DatetimeIndex(np.unique(aligned.forecast[VALID_TIME].values))
    if len(aligned.missing_valid_times) < valid.size:
        return
    times = pd.DatetimeIndex(truth[TIME].values)
    held = f"{time_text(times.min())} to {time_text(times.max())}" if times.size else "no times"
    raise InputError(
        f"the truth holds none of the forecast's {valid.size} valid times ({time_text(valid.min())}"
        f" to {time_text(valid.max())}); it covers {held}. Verify against an analysis "
        "store that covers the forecast's valid times (ingest the analyses of that period), "
        "or pick initial times whose leads it covers"
    )


def warn_ensemble_size(members: int, config: VerifyConfig) -> None:
    """A warning for an ensemble too small for some scores: one member (a deterministic
    forecast), or fewer than 3 where the perfect-model floor of the rank max/min ratio was
    asked for (a member stands in for the truth among at least 2 others), which the
    scorecard then leaves out."""
    if members == 1:
        log.warning(
            "the forecast has one member (a deterministic forecast): its CRPS is its absolute "
            "error, its spread-skill ratio undefined (NaN), and its rank histogram two bins "
            "(the truth below or above the member: a check of bias only)"
        )
    if config.perfect_model_stand_ins and members < 3:
        log.warning(
            "a perfect-model rank histogram needs at least 3 members (the forecast has %d): "
            "rank_max_min_perfect_model, the rank max/min ratio's noise floor, is left out; "
            "verify more members, or give perfect_model_stand_ins=0 "
            "(--perfect-model-stand-ins 0) to skip it",
            members,
        )


def members_without_values(f: xr.DataArray, incomplete: xr.DataArray) -> list:
    """The members of ``f`` that are NaN in every variable, lead and point (looked for, a
    pass over the forecast, only where some verified point lacks a member): left in, they
    would make every point incomplete, the rank histogram empty and M in the spread's
    finite-ensemble factor too large."""
    if not int(incomplete.sum()):
        return []
    held = f.notnull().any([d for d in f.dims if d != MEMBER]).compute()
    return f[MEMBER].values[~held.values].tolist()


def warn_incomplete(incomplete: xr.DataArray, verified: xr.DataArray) -> None:
    """A warning when some verified points lack some members (a member missing from a
    file): the rank histogram and reliability skip them, so they may be empty."""
    if int(incomplete.sum()):
        log.warning(
            "%d of %d verified points lack some members (one missing for some variables or "
            "times?): CRPS and spread use the members there, the rank histogram and "
            "reliability leave those points out",
            int(incomplete.sum()),
            int(verified.sum()),
        )
