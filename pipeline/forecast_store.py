"""Forecast stores: a generator's transactional Zarr v3 output, an ensemble per initial time.

Layout: dims ``init_time, member, lead_time, [level], latitude, longitude``; coordinate
``valid_time(init_time, lead_time)``; float32 CF variables; one chunk holds all members of
one (init_time, lead_time) so verification reads a whole ensemble at once; above
:data:`~pipeline.chunking.MAX_CHUNK_BYTES` one level of it, then even blocks of the grid
(:func:`_encoding`), all members still together. An existing store keeps its own chunks.

Writing (:func:`write_forecast`), one transaction (:mod:`pipeline.transaction`) a batch:

- a new initial time is appended along ``init_time``;
- an initial time already in the store is overwritten in its own region, nothing else;
- readers see a batch whole or not at all, so a forecast killed half-way never reads as
  complete. The boolean coordinate ``complete(init_time)`` is True for every committed
  initial time; plain Zarr stores of older wxens versions, written without transactions,
  may hold False entries, which :func:`open_forecast` leaves out (and says so).

Provenance (:class:`ForecastProvenance`: generator kind, checkpoint digest, sampler, NFE,
seed, calibration, bias correction) and the creating software's versions are in the store
attrs; writing another provenance into a store is a StoreError: it never mixes models. The
cycle recorded there (:func:`pipeline.forecast_times.record_cycle`) is kept by every write."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from pipeline.chunking import capped_chunks
from pipeline.errors import (
    InputError,
    StoreError,
    counted,
    refuse_dangling_link,
    shell_word,
    times_text,
)
from pipeline.forecast_checks import (
    check_compatible,
    check_coordinate,
    check_provenance,
    check_writable,
)
from pipeline.forecast_provenance import ForecastProvenance
from pipeline.forecast_rerun import batches, same_values
from pipeline.forecast_times import INIT_CHUNK, SECONDS, finest_cycle, repair_valid_time, span
from pipeline.schema import (
    FORECAST_DIMS,
    INIT_TIME,
    LEAD_TIME,
    LEVEL,
    MEMBER,
    SCHEMA_VERSION,
    VALID_TIME,
)
from pipeline.software import software_versions
from pipeline.transaction import (
    has_root_group,
    is_empty_repository,
    is_store,
    metadata_since,
    open_dataset,
    read_attrs,
    transaction,
)

log = logging.getLogger(__name__)

COMPLETE = "complete"

ANALYSIS_ATTR = "wxens_analysis_store"
"""The forecast store's attribute naming the analysis store its first forecast was drawn
from (outside the provenance check: the same analyses may move)."""
#: Every write: a lazy forecast (another store's, in its chunks) is rechunked to the store's
#: chunks, which an existing store keeps (those it was created with, before the chunk cap of
#: :func:`_encoding` or after), rather than refused as writing parts of one chunk at once.
WRITE_OPTIONS = {"consolidated": False, "align_chunks": True}
RUN_KEY, INIT_TIMES_KEY = "wxens_run", "init_times"
"""A forecast commit's metadata: the id of the run that wrote it and its initial times."""
TRAIN_PERIOD_ATTR = "wxens_train_period"
"""A baseline store's attribute: the training period (``START/END``) its members are drawn
from (also inside its provenance's sampler, which a store never mixes)."""
WINDOW_ATTR = "wxens_window"
"""A baseline store's attribute: its window of days of the year, in words, and whether it was
the default (the number alone is inside the sampler; the latest draw's words are kept)."""


def source_attrs(
    analysis: str | Path, train_period: tuple[str, str] | None = None, window: str | None = None
) -> dict[str, str]:
    """The attrs a forecast is written with that say what it was drawn from: the analysis
    store, resolved (so the record names it whichever directory reads it), and a baseline's
    training period (start, end) and window (in words)."""
    attrs = {ANALYSIS_ATTR: str(Path(analysis).resolve())}
    if train_period is not None:
        attrs[TRAIN_PERIOD_ATTR] = "/".join(train_period)
    if window is not None:
        attrs[WINDOW_ATTR] = window
    return attrs


def _check_layout(forecast: xr.Dataset) -> None:
    if not forecast.data_vars:
        raise InputError("the forecast to write holds no variable")
    for name, da in forecast.data_vars.items():
        expected = tuple(d for d in FORECAST_DIMS if d != LEVEL or LEVEL in da.dims)
        if da.dims != expected:
            raise InputError(
                f"forecast variable {name!r} has dims {da.dims}; a forecast store needs "
                f"{expected} (transpose it first)"
            )
    if forecast.indexes[INIT_TIME].has_duplicates:
        raise InputError("the forecast to write repeats an init_time")


def _prepare(forecast: xr.Dataset, provenance: ForecastProvenance) -> xr.Dataset:
    """Float32 variables, valid_time coordinate, a ``complete`` flag, provenance attrs."""
    ds = forecast.drop_vars([VALID_TIME, COMPLETE], errors="ignore")
    ds = ds.map(lambda da: da.astype(np.float32), keep_attrs=True)
    valid = ds[INIT_TIME] + ds[LEAD_TIME]
    ds = ds.assign_coords({VALID_TIME: valid.transpose(INIT_TIME, LEAD_TIME)})
    ds = ds.assign_coords({COMPLETE: (INIT_TIME, np.ones(ds.sizes[INIT_TIME], dtype=bool))})
    ds.attrs = {
        **forecast.attrs,
        "schema_version": SCHEMA_VERSION,
        "kind": "forecast",
        "wxens_software": software_versions(),
        **provenance.to_attrs(),
    }
    return ds


def _encoding(ds: xr.Dataset) -> dict[str, dict[str, Any]]:
    """One chunk per (init_time, lead_time) holding every member, level and grid point, or,
    above :data:`~pipeline.chunking.MAX_CHUNK_BYTES`, one level of it, then even blocks of
    latitude (then longitude): every member of a chunk's points always together."""
    encoding: dict[str, dict[str, Any]] = {}
    one = {INIT_TIME: 1, LEAD_TIME: 1}
    for name, da in ds.data_vars.items():
        encoding[name] = {"chunks": capped_chunks(da, one, one_level=True)}
    encoding[VALID_TIME] = {"chunks": (INIT_CHUNK, ds.sizes[LEAD_TIME]), "units": SECONDS}
    encoding[COMPLETE] = {"chunks": (INIT_CHUNK,)}
    encoding[INIT_TIME] = {"chunks": (INIT_CHUNK,), "units": SECONDS}
    encoding[LEAD_TIME] = {"units": "seconds"}
    return encoding


def check_extends(
    path: str | Path,
    provenance: ForecastProvenance | None,
    members: int,
    leads_hours: Sequence[float],
    *,
    writing: bool = True,
) -> None:
    """StoreError unless a forecast of ``members`` members at ``leads_hours`` with
    ``provenance`` (None: not checked) may go into the forecast store at ``path`` (absent or
    empty: it may). Checked before anything is drawn, so that a request the store's initial
    times already answer with other members or leads is not skipped silently as done, nor
    refused only by :func:`write_forecast` after the drawing. Not ``writing`` (the store
    holds every initial time asked): a store this user may not write passes."""
    path = Path(path)
    if writing:  # a plain store (an older wxens's) is refused before the drawing
        check_writable(path)
    if not is_store(path) or is_empty_repository(path) or not is_forecast_store(path):
        return  # nothing to extend; a store of another kind is refused where it is written
    existing = open_dataset(path, chunks=None)
    if provenance is not None:
        check_provenance(path, existing, provenance)
    check_coordinate(path, existing, MEMBER, np.arange(members))
    leads = pd.to_timedelta(list(leads_hours), unit="h").values
    check_coordinate(path, existing, LEAD_TIME, leads)


def write_forecast(
    path: str | Path,
    forecast: xr.Dataset,
    provenance: ForecastProvenance,
    *,
    replace: bool = True,
    skip_unchanged: bool = False,
    run: str | None = None,
) -> pd.DatetimeIndex:
    """Write ``forecast`` (dims ``init_time, member, lead_time, [level], latitude,
    longitude``) into the store at ``path`` in one transaction: create it, append new
    initial times, and overwrite the region of initial times it already holds (nothing
    else); the initial times written.

    ``replace=False`` keeps an initial time the store already holds completely (another
    run wrote it meanwhile) and writes only the others. ``skip_unchanged=True`` leaves an
    initial time the store holds with the same values as it is (no chunk written again, nor
    kept twice by the store's history). ``run``: the id of the run writing, kept with the
    initial times written in the commit's metadata (:func:`written_by_run`). Raises
    StoreError if the store holds another model, sampler, seed, member count, lead times,
    levels or grid."""
    path = Path(path)
    _check_layout(forecast)
    ds = _prepare(forecast, provenance)
    check_writable(path)
    times = pd.DatetimeIndex(ds[INIT_TIME].values)
    metadata = {RUN_KEY: run, INIT_TIMES_KEY: [t.isoformat() for t in times]} if run else None
    with transaction(path, f"forecast {span(times)}", metadata) as store:
        if not has_root_group(store):
            encoding = _encoding(ds)
            ds.to_zarr(store, mode="w-", encoding=encoding, **WRITE_OPTIONS, zarr_format=3)
            log.info("created forecast store %s with %s", path, span(times))
            return times
        existing = xr.open_zarr(
            store, zarr_format=3, consolidated=False, chunks=None, drop_variables=[VALID_TIME]
        )
        if existing.attrs.get("kind") != "forecast":
            raise StoreError(
                f"{path} is a Zarr store but not a wxens forecast store; wxens will not write "
                "forecasts into it: choose another store"
            )
        check_compatible(path, existing, ds)
        # an append replaces attrs: the first forecast's analysis store and the finest cycle stay
        first = {k: existing.attrs[k] for k in (ANALYSIS_ATTR,) if k in existing.attrs}
        ds.attrs.update({**first, **finest_cycle(existing.attrs, ds.attrs)})
        repair_valid_time(path, store, existing)
        stored = pd.DatetimeIndex(existing[INIT_TIME].values)
        done = stored[existing[COMPLETE].values.astype(bool)]
        if not replace and times.isin(done).any():
            log.info(
                "%s: initial time(s) %s were written by another run meanwhile; kept as they are",
                path,
                times_text(times[times.isin(done)]),
            )
            ds = ds.isel({INIT_TIME: np.flatnonzero(~times.isin(done))})
            times = pd.DatetimeIndex(ds[INIT_TIME].values)
        rerun = times.isin(stored)
        along = ds.drop_vars([v for v in ds.variables if INIT_TIME not in ds[v].dims])
        kept = []
        for batch in batches(along, times[rerun], load=skip_unchanged):
            for t in pd.DatetimeIndex(batch[INIT_TIME].values):
                index, one = int(stored.get_loc(t)), batch.sel({INIT_TIME: [t]})
                if skip_unchanged and t in done:
                    if same_values(existing.isel({INIT_TIME: [index]}), one):
                        kept.append(t)
                        continue
                region = {INIT_TIME: slice(index, index + 1)}
                one.to_zarr(store, region=region, mode="r+", **WRITE_OPTIONS)
        if (~rerun).any():  # only arrays along init_time: the others stay as they are
            appended = along.isel({INIT_TIME: np.flatnonzero(~rerun)})
            appended.to_zarr(store, append_dim=INIT_TIME, zarr_format=3, **WRITE_OPTIONS)
        if metadata:  # read as the block ends, when the commit is made
            metadata[INIT_TIMES_KEY] = [t.isoformat() for t in times.drop(kept)]
    written = f"overwrote {rerun.sum() - len(kept)} and appended {(~rerun).sum()} initial time(s)"
    written += f"; kept {len(kept)} as they were" * bool(kept)
    if times.size:  # none: another run wrote them all meanwhile, as logged above
        log.info("%s (%s): %s", path, span(times), written)  # which cycles: a run's log says so
    return times.drop(kept)


#: How another producer's ensemble (ECMWF, WeatherBench 2, CF) is read, for the error of
#: :func:`open_forecast`, which reads only what ``wxens forecast`` wrote.
ANOTHER_PRODUCERS = (
    "another producer's ensemble (ECMWF GRIB, WeatherBench 2 Zarr, CF NetCDF) is scored as it "
    "is by `wxens verify`; in Python, open it with xarray and put it in the wxens layout with "
    "pipeline.adapters.to_wxens_forecast"
)


def open_forecast(path: str | Path, *, complete_only: bool = True) -> xr.Dataset:
    """The forecast store at ``path`` (its last commit), lazily, sorted by ``init_time``.

    With ``complete_only`` (default) initial times whose write did not finish (in a plain
    Zarr store written by an older wxens) are left out with a warning; StoreError if the
    store is missing or holds no complete initial time.
    """
    path = Path(path)
    refuse_dangling_link(path)
    if not is_store(path):
        why = f"no forecast store at {path}; make it: `wxens forecast --out {shell_word(path)}`"
        if path.exists():  # e.g. another producer's GRIB, NetCDF or Zarr ensemble
            why = f"{path} is not a wxens forecast store (one `wxens forecast` wrote); "
            why += ANOTHER_PRODUCERS
        raise StoreError(why)
    ds = open_dataset(path)
    if ds.attrs.get("kind") != "forecast" or COMPLETE not in ds.coords:
        why = f"{path} is not a wxens forecast store (no {COMPLETE} record)"
        if ds.attrs.get("kind") != "forecast":
            why = f"{path} is not a wxens forecast store (no 'kind: forecast' record); "
            why += ANOTHER_PRODUCERS
        raise StoreError(why)
    complete = ds[COMPLETE].values.astype(bool)
    if complete_only and not complete.all():
        unfinished = times_text(ds[INIT_TIME].values[~complete])
        log.warning(
            "%s: initial time(s) %s were not completely written and are left out; rerun the "
            "forecast for them",
            path,
            unfinished,
        )
        if not complete.any():
            raise StoreError(f"{path} holds no completely written initial time; rerun the forecast")
        ds = ds.isel({INIT_TIME: np.flatnonzero(complete)})
    valid = (ds[INIT_TIME] + ds[LEAD_TIME]).transpose(INIT_TIME, LEAD_TIME)  # not as stored:
    ds = ds.assign_coords({VALID_TIME: valid})  # an older wxens stored some wrong (repair_...)
    return ds.drop_vars(COMPLETE).sortby(INIT_TIME)


def complete_init_times(forecast: str | Path) -> pd.DatetimeIndex:
    """The initial times completely written in the forecast store (none if it is absent)."""
    if not is_store(forecast) or is_empty_repository(forecast):  # absent, or being created
        return pd.DatetimeIndex([])
    ds = open_dataset(forecast, chunks=None)
    if COMPLETE not in ds:
        raise StoreError(
            f"{forecast} is a Zarr store but not a wxens forecast store (an analysis store, "
            "or another tool's); wxens will not write forecasts into it: choose another store"
        )
    done = ds[COMPLETE].values.astype(bool)
    return pd.DatetimeIndex(ds[INIT_TIME].values[done]).sort_values()


def pending_init_times(inits, out: str | Path, recompute: bool, redraw: str) -> pd.DatetimeIndex:
    """``inits`` less those the forecast store ``out`` already holds completely (none left
    out to ``recompute``), saying how many it skips and, in ``redraw``, how the user of the
    command that asked draws them again (an option it has, or another command by name)."""
    inits = pd.DatetimeIndex(inits)
    done = pd.DatetimeIndex([]) if recompute else inits.intersection(complete_init_times(out))
    if done.size:
        log.info(
            "%s already holds %d of the %s completely; they are skipped (to draw them again: %s)",
            out,
            done.size,
            counted(inits.size, "initial time"),
            redraw,
        )
    return inits.difference(done)


def written_by_run(out: str | Path, run: str, since: str | None) -> pd.DatetimeIndex:
    """The initial times the run ``run`` committed to the forecast store ``out`` after its
    commit ``since`` (the last when the run began; None: the run made the store), read
    from the commits' metadata (:func:`write_forecast`)."""
    times = [
        t
        for metadata in metadata_since(out, since)
        if metadata.get(RUN_KEY) == run
        for t in metadata.get(INIT_TIMES_KEY, [])
    ]
    return pd.DatetimeIndex(times).unique().sort_values()


def is_forecast_store(path: str | Path) -> bool:
    """Whether ``path`` is a Zarr store whose attrs say it is a wxens forecast store."""
    if not is_store(path):
        return False
    try:
        return read_attrs(path).get("kind") == "forecast"
    except Exception:  # not readable as a group: let the analysis-store path report it
        return False


def provenance(path: str | Path) -> ForecastProvenance:
    """The provenance recorded in a forecast store's attrs."""
    return ForecastProvenance.from_attrs(open_forecast(path, complete_only=False).attrs)
