"""Forecasts delivered as one file per start date, with no initial time or lead in them
(a seasonal hindcast, say): the start date is read from each file's name.

Each file holds the valid times of one forecast as its time dimension, and optionally a
member dimension (``realization``, ``number``, ``member``, ``ensemble_member``). Its start
date comes from the file name through a ``strptime`` pattern (:func:`start_date`); its
leads are its valid times minus the start date. :func:`open_start_files` stacks the files
on ``init_time`` in the wxens forecast layout.

When the files' leads differ in length (calendar months: November to December is 30 days,
December to January 31), the k-th valid time of every file is its k-th lead: the leads are
labelled with the earliest start date's, and each field keeps its own valid time (the
``valid_time`` coordinate, marked :data:`pipeline.adapters.VALID_TIME_AS_GIVEN`), which is
what it is paired with the truth on.
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from pipeline.adapters import VALID_TIME_AS_GIVEN, to_wxens_forecast
from pipeline.errors import InputError, time_text
from pipeline.schema import INIT_TIME, LEAD_TIME, MEMBER, MEMBER_ALIASES, VALID_TIME
from pipeline.sources import resolve_source
from pipeline.sources.files import FileSource

#: strptime directives a start date may use -> the text each matches.
_DIRECTIVES = {
    "Y": r"\d{4}",
    "y": r"\d{2}",
    "m": r"\d{2}",
    "d": r"\d{2}",
    "H": r"\d{2}",
    "M": r"\d{2}",
    "j": r"\d{3}",
    "b": r"[A-Za-z]{3}",
    "%": "%",
}


def check_start_pattern(pattern: str) -> list[str]:
    """Refuse a start-date pattern (``init_from_filename``, ``--init-from-filename``) that
    holds no date directive or one a file name's date cannot be read with: what
    :func:`start_date` reads each file with, and ``wxens serve`` checks as a schedule file
    loads. Returns the pattern split at its directives (the odd items)."""
    parts = re.split(r"(%.)", pattern)
    unknown = [p for p in parts[1::2] if p[1] not in _DIRECTIVES]
    if unknown or len(parts) < 3:
        raise InputError(
            f"init_from_filename={pattern!r} (--init-from-filename): "
            + (f"cannot use {unknown}" if unknown else "holds no date directive")
            + f"; use {', '.join('%' + d for d in _DIRECTIVES if d != '%')}, e.g. '%Y%m%d'"
        )
    return parts


def start_date(path: str | Path, pattern: str) -> pd.Timestamp:
    """The start date in the name of the file ``path``: the first text that ``pattern`` (a
    ``strptime`` format, e.g. ``%Y%m%d`` or ``start_%Y-%m``) matches, anywhere in it."""
    parts = check_start_pattern(pattern)
    regex = "".join(
        re.escape(p) if i % 2 == 0 else f"({_DIRECTIVES[p[1]]})" for i, p in enumerate(parts)
    )
    found = re.search(regex, Path(path).name)
    if found is not None:
        try:
            return pd.Timestamp(datetime.strptime(found.group(0), pattern))
        except ValueError:  # digits that are no date (a month 13): refused below
            pass
    raise InputError(
        f"{path}: its name holds no start date of the form {pattern!r}; rename the file or "
        "give the pattern its name follows (e.g. '%Y%m%d' for hindcast_19931101.nc)"
    )


def open_start_files(spec: str, pattern: str) -> xr.Dataset:
    """The files ``spec`` names (a glob or one path), one per start date read from its
    name with ``pattern``, as one forecast in the wxens layout (lazy)."""
    source = resolve_source(spec)
    if not isinstance(source, FileSource):
        raise InputError(
            f"{spec}: a start date from the file name needs files (GRIB or NetCDF, a path or "
            "a glob), not a store"
        )
    forecasts = sorted(
        (_one_start(resolve_source(str(path)).open(), path, pattern) for path in source.paths),
        key=lambda ds: ds[INIT_TIME].values[0],
    )
    inits = pd.DatetimeIndex([ds[INIT_TIME].values[0] for ds in forecasts])
    if inits.has_duplicates:
        twice = inits[inits.duplicated()][0]
        raise InputError(
            f"{spec}: several files have the start date {twice} by the pattern {pattern!r}; "
            "give one file per start date"
        )
    counts = {ds.sizes[LEAD_TIME] for ds in forecasts}
    if len(counts) > 1:
        raise InputError(
            f"{spec}: the files hold {sorted(counts)} valid times each; give files of the same "
            "number of leads (select them first)"
        )
    leads = forecasts[0][LEAD_TIME].values
    valid = [ds[INIT_TIME] + ds[LEAD_TIME] for ds in forecasts]
    try:
        stacked = xr.concat(
            [ds.assign_coords({LEAD_TIME: leads}) for ds in forecasts],
            dim=INIT_TIME,
            join="exact",
            coords="minimal",
            compat="override",
        )
    except ValueError as err:
        raise InputError(
            f"{spec}: the files do not stack into one forecast ({err}); give files of the "
            "same variables, members and grid"
        ) from err
    valid_time = xr.concat([v.assign_coords({LEAD_TIME: leads}) for v in valid], dim=INIT_TIME)
    valid_time.attrs = {"long_name": "valid time", VALID_TIME_AS_GIVEN: 1}
    return to_wxens_forecast(stacked.assign_coords({VALID_TIME: valid_time}))


def _one_start(ds: xr.Dataset, path: Path, pattern: str) -> xr.Dataset:
    """One file's forecast: its time dimension as leads from the start date in its name."""
    init = start_date(path, pattern)
    times = [d for d in ds.dims if d in ds.coords and np.issubdtype(ds[d].dtype, np.datetime64)]
    if len(times) != 1:
        raise InputError(
            f"{path}: needs one time dimension of valid times to take leads from, found "
            f"{times or 'none'} among its dims {dict(ds.sizes)}"
        )
    lead = pd.DatetimeIndex(ds[times[0]].values) - init
    if (lead < pd.Timedelta(0)).any():
        raise InputError(
            f"{path}: valid times from {time_text(ds[times[0]].values[0])} are before its start "
            f"date {time_text(init)} (read with {pattern!r}); check the pattern"
        )
    bounds = [ds[c].attrs.get("bounds") for c in ds.coords]  # e.g. time_bnds of means
    ds = ds.drop_vars([c for c in ds.coords if c != times[0] and times[0] in ds[c].dims])
    ds = ds.drop_vars([b for b in bounds if b in ds.data_vars])
    ds = ds.assign_coords({times[0]: lead}).rename({times[0]: LEAD_TIME})
    members = [d for d in (MEMBER, *MEMBER_ALIASES) if d in ds.dims]
    ds = ds.rename({members[0]: MEMBER}) if members else ds.expand_dims(MEMBER)
    return ds.expand_dims({INIT_TIME: [init]})
