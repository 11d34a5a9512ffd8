"""The physics part of :func:`verification.scorecard.verify`: which initial times it checks
(:func:`physics_sample`) and the ``/physics`` group of the registered checks' results on
them (:func:`physics_group`)."""

from __future__ import annotations

import logging
import reprlib

import dask
import numpy as np
import pandas as pd
import xarray as xr

from pipeline.alignment import AlignedForecast
from pipeline.errors import InputError
from pipeline.schema import INIT_TIME, LEAD_TIME, VALID_TIME
from verification.base import CHECKS, CheckResult, PhysicsCheck

log = logging.getLogger(__name__)


def physics_sample(aligned: AlignedForecast, n: int) -> list[int]:
    """Indices of up to ``n`` evenly spaced init times, among those with truth at some lead
    (the latest forecasts often have none yet)."""
    if n == 0:
        return []
    missing = pd.DatetimeIndex(list(aligned.missing_valid_times))
    valid = aligned.forecast[VALID_TIME].transpose(INIT_TIME, LEAD_TIME).values
    has_truth = ~np.isin(valid, missing.values).all(axis=1)
    candidates = np.flatnonzero(has_truth) if has_truth.any() else np.arange(len(has_truth))
    picks = np.linspace(0, candidates.size - 1, min(n, candidates.size)).round().astype(int)
    return sorted(set(candidates[picks].tolist()))


def physics_group(
    aligned: AlignedForecast, subset: dict[str, list[int]], names: tuple[str, ...]
) -> xr.Dataset:
    """The ``/physics`` group (of the sample ``subset`` of ``aligned``, read into memory in
    one pass): one row of ``check`` per computed result (``geostrophic
    500 hPa``), with its check's name (``family``) and ``part``; and, along
    ``not_computed``, the ``reason`` of every check or part that is "n/a"."""
    # read once: each check computes its parts by itself, a pass over a lazy sample each
    # (on a dask cluster a round of scheduling each, which took most of a verification)
    forecast, truth, initial = dask.compute(
        aligned.forecast.isel(subset),
        aligned.truth.isel(subset),
        aligned.initial.isel(subset),
    )
    results: list[CheckResult] = []
    reasons: dict[str, str] = {}
    for name in names or tuple(CHECKS):
        check = CHECKS[name]()
        if not check.applies(forecast):
            reasons[name] = f"needs {check.requires}"
            continue
        log.info("physics check %s", name)
        for result in _run(name, check, forecast, truth, initial):
            if result.computed:
                results.append(result)
            else:
                reasons[result.label] = result.reason
    out = xr.Dataset(
        {"reason": ("not_computed", list(reasons.values()))} if reasons else {},
        coords={"not_computed": list(reasons)} if reasons else {},
    )
    if not results:
        return out
    drop = {"dim": "check", "combine_attrs": "drop"}  # units: each row's, not the first's
    rows = xr.Dataset(
        {
            "member_score": xr.concat([r.member_score for r in results], **drop),
            "passed": xr.concat([r.passed for r in results], **drop),
            # which channel (lead) gave each member's score, where it is a largest of several
            "worst": xr.concat([_worst(r) for r in results], **drop),
            "truth_score": ("check", [r.truth_score for r in results]),
            "tolerance": ("check", [r.tolerance for r in results]),
            "tolerance_rule": ("check", [r.tolerance_rule for r in results]),
            "description": ("check", [r.description for r in results]),
            "units": ("check", [r.units for r in results]),
        },
        coords={
            "check": [r.label for r in results],
            "family": ("check", [r.name for r in results]),
            "part": ("check", [r.part for r in results]),
        },
    )
    return rows.merge(out)


def _run(
    name: str, check: PhysicsCheck, forecast: xr.Dataset, truth: xr.Dataset, initial: xr.Dataset
) -> list[CheckResult]:
    """The results of the check ``name``. An extension's check that raises, or returns
    other than a list of :class:`CheckResult`, is an :class:`InputError` naming the check
    and its extension (else a traceback named neither); wxens' own are called as they are,
    a failure of theirs being a bug of wxens, with its traceback."""
    extension = CHECKS.extension_of(name)
    if extension is None:
        return check(forecast, truth, initial)
    where = f"physics check {name!r} of {extension}"
    try:
        results = check(forecast, truth, initial)
    except Exception as error:
        raise InputError(
            f"{where} failed ({type(error).__name__}: {error}); fix the check, or uninstall "
            "its extension"
        ) from error
    if isinstance(results, list) and all(isinstance(r, CheckResult) for r in results):
        return results
    kind = type(results).__name__
    if isinstance(results, list):
        kind += " of " + ", ".join(sorted({type(r).__name__ for r in results} - {"CheckResult"}))
    raise InputError(
        f"{where} returned {reprlib.repr(results)} (a {kind}); a check returns a list of "
        "CheckResult (verification.base), one per part it judges"
    )


def _worst(result: CheckResult) -> xr.DataArray:
    """(member,) :attr:`CheckResult.worst`, ``""`` where the score is no largest of
    several (a level's, a layer's)."""
    if result.worst is not None:
        return result.worst.astype(str)
    return result.member_score.copy(data=np.full(result.member_score.shape, "")).astype(str)
