"""The time axis of a producer's dataset: one ``time`` dimension of valid times, sorted.

cfgrib writes a forecast's valid times as ``time`` (the initial time) and ``step`` (or
``valid_time``, their sum); an analysis store is indexed by valid time alone. A (time,
step) cell that no message fills (ERA5's accumulations start at step 7 of their first
forecast) is no time: the source marks the cells it has (:data:`HAS_MESSAGE`).

Times are standard (proleptic Gregorian) dates: a model calendar's dates (``noleap``,
``360_day``, ``julian``) are read as the standard dates of the same label when each one has
such a date, and refused otherwise; a step in numbers with CF units (``hours``) is a
duration; a time in numbers (no CF units) is refused. Times are rounded to whole seconds,
as the store keeps them (float32 days come a few milliseconds off). Part of
:func:`pipeline.normalize.normalize`; nothing here reads the data values.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import xarray as xr

from pipeline.errors import InputError, time_text, times_text
from pipeline.schema import TIME, VALID_TIME

log = logging.getLogger(__name__)

STEP = "step"
#: A boolean coordinate over the (time, step) cells of a GRIB file: whether a message
#: holds the cell (cfgrib fills the others with NaN).
HAS_MESSAGE = "wxens_has_message"
#: The initial time of each valid time of a file of several starts, while it is read.
_START = "wxens_start"

_DROP_COORDS = (
    "number",
    "step",
    "surface",
    "heightAboveGround",
    "valid_time",
    "height",
    "realization",
    "expver",  # ERA5's experiment version (final or ERA5T) in the CDS's NetCDF
)


#: CF's (NetCDF of the Copernicus data stores, Iris) names of cfgrib's ``time`` and ``step``.
_CF_FORECAST = {"forecast_reference_time": TIME, "forecast_period": STEP}
#: WeatherBench 2's name of cfgrib's ``step`` (its ``time`` is the initial time).
_WB2_LEAD = "prediction_timedelta"


def to_time_axis(ds: xr.Dataset, origin: str) -> xr.Dataset:
    """Analyses are indexed by valid time: cfgrib's (time, step), CF's
    (forecast_reference_time, forecast_period) or WeatherBench 2's (time,
    prediction_timedelta), become one ``time``, and so does a start with one lead; a
    file of one time (a scalar ``valid_time``, or ``time`` and maybe ``step``) has a
    ``time`` of size one."""
    lead = STEP  # the file's name of it, for --select
    if {TIME, STEP}.isdisjoint(ds.variables) and set(_CF_FORECAST) <= set(ds.variables):
        lead = "forecast_period"  # CF's names of (time, step): both, or a start is no time
        ds = ds.rename(_CF_FORECAST)
    if STEP not in ds.variables and _WB2_LEAD in ds.variables:
        ds = ds.rename({_WB2_LEAD: STEP})
        lead = _WB2_LEAD
    if STEP in ds.coords and ds[STEP].dtype.kind != "m":
        ds = ds.assign_coords({STEP: _durations(ds[STEP], origin)})
    for name in (TIME, VALID_TIME):
        if name in ds.coords and ds[name].dtype.kind != "M":
            ds = ds.assign_coords({name: _standard_dates(ds[name], origin)})
    if {TIME, STEP, VALID_TIME}.isdisjoint(ds.dims):
        scalar = [name for name in (VALID_TIME, TIME) if name in ds.coords]
        ds = ds.expand_dims(scalar[0]) if scalar else ds
    if STEP in ds.dims and TIME in ds.dims:  # forecasts from several initial times
        ds = ds.stack(_cell=(TIME, STEP))
        starts, valid = ds[TIME].values, ds[TIME].values + ds[STEP].values
        ds = ds.drop_vars(["_cell", TIME, STEP, VALID_TIME], errors="ignore")
        ds = ds.rename({"_cell": TIME}).assign_coords({TIME: valid, _START: (TIME, starts)})
    elif STEP in ds.dims and TIME in ds.coords:  # one initial time and its steps
        ds = ds.assign_coords({VALID_TIME: ds[TIME] + ds[STEP]}).swap_dims({STEP: VALID_TIME})
    if TIME not in ds.dims and VALID_TIME in ds.dims:
        ds = ds.drop_vars(TIME, errors="ignore").rename({VALID_TIME: TIME})
    elif VALID_TIME in ds.coords and ds[VALID_TIME].dims == (TIME,):  # one step of cfgrib's
        ds = ds.assign_coords({TIME: ds[VALID_TIME].values})
    elif STEP in ds.coords and ds[STEP].ndim == 0 and TIME in ds.dims:
        ds = ds.assign_coords({TIME: ds[TIME].values + ds[STEP].values})  # = valid_time
    if TIME not in ds.dims:
        raise InputError(
            f"{origin}: no time dimension (dims are {dict(ds.sizes)}); "
            "an analysis needs 'time' or cfgrib's 'time'/'step'/'valid_time'"
        )
    if HAS_MESSAGE in ds.coords:
        ds = _cells_with_a_message(ds, origin)
    if _START in ds.coords:
        _refuse_overlapping_starts(ds, origin, lead)
        ds = ds.drop_vars(_START)
    ds = _whole_seconds(ds, origin)
    ds = ds.drop_vars([c for c in _DROP_COORDS if c in ds.coords and c not in ds.dims])
    ds[TIME].attrs = {"standard_name": "time", "long_name": "time"}  # whichever way it came
    return ds


def _refuse_overlapping_starts(ds: xr.Dataset, origin: str, lead: str) -> None:
    """InputError where forecasts of several starts (``ds``'s :data:`_START` along its
    valid times) reach one valid time: an ensemble or forecast file, not analyses; ``lead``
    is the file's name of the steps."""
    times = pd.DatetimeIndex(ds[TIME].values)
    if not times.has_duplicates:
        return
    first = times[times.duplicated()][0]
    starts = times_text(sorted(set(ds[_START].values[times == first]))[:3])
    raise InputError(
        f"{origin}: its forecasts of {len(np.unique(ds[_START].values))} initial times overlap "
        f"({time_text(first)} is a valid time of the starts {starts}), and an analysis "
        f"holds each time once: ingest one step of every start (select= (--select {lead}=0): "
        "the states the forecasts start from) or score the file as a forecast (wxens verify)"
    )


def _durations(step: xr.DataArray, origin: str) -> xr.Variable:
    """A step in numbers with CF units of time (``hours``, ``minutes``, ``days``) as
    durations."""
    units = str(step.attrs.get("units", "")).strip()
    try:
        durations = pd.to_timedelta(step.values.ravel(), unit=units)
    except (TypeError, ValueError) as err:
        said = f"in {units!r}" if units else "without units"
        raise InputError(
            f"{origin}: its {step.name!r} holds numbers {said}, which wxens cannot read as "
            f"durations ({err}); give it CF units of time: hours, minutes, seconds or days "
            "(months and years are no fixed duration)"
        ) from err
    return xr.Variable(step.dims, durations.to_numpy().reshape(step.shape))


def _standard_dates(coord: xr.DataArray, origin: str) -> xr.Variable:
    """The dates of a model calendar (cftime's, as xarray decodes them) as the standard
    calendar's of the same label, when each has one; anything else that is no time (numbers
    without CF units) an :class:`InputError` naming the fix."""
    values = coord.values
    calendar = getattr(values.flat[0], "calendar", None) if values.size else None
    if calendar is None and coord.dtype.kind in "OUS" and values.size:
        raise InputError(
            f"{origin}: its {coord.name!r} holds text ({str(values.flat[0])!r}, ...), not "
            f"times; write it as times (xarray: ds[{coord.name!r}] = "
            f"pd.to_datetime(ds[{coord.name!r}].values) before writing the file)"
        )
    if calendar is None:
        what = f"numbers ({coord.dtype})" if coord.dtype.kind in "iuf" else f"{coord.dtype} values"
        raise InputError(
            f"{origin}: its {coord.name!r} holds {what}, not times (no CF 'units' "
            "attribute?); give it units such as 'hours since 2000-01-01' in the file (xarray: "
            f"ds[{coord.name!r}].attrs['units'] = 'hours since 2000-01-01' before writing it)"
        )
    labels = [t.isoformat() for t in values.flat]
    dates = pd.to_datetime(labels, format="ISO8601", errors="coerce")
    held = dates.notna() & (dates >= pd.Timestamp.min) & (dates <= pd.Timestamp.max)
    bad = [label for label, ok in zip(labels, held, strict=True) if not ok]
    if bad and _all_standard_dates(labels):  # real dates, but years a store cannot hold
        raise InputError(
            f"{origin}: {len(bad)} of its {coord.name!r} values lie outside the years "
            f"{pd.Timestamp.min.year + 1} to {pd.Timestamp.max.year - 1} that a store's "
            f"times can hold, first {bad[:3]}; relabel them into that range first (a model "
            "year 0001 as 2001, say: xarray's ds.assign_coords(time=...) with the shifted "
            "dates); converting the calendar does not move them"
        )
    if bad:
        raise InputError(
            f"{origin}: {len(bad)} of its {coord.name!r} values in the {calendar!r} calendar "
            f"have no date in the standard calendar between {pd.Timestamp.min.year + 1} and "
            f"{pd.Timestamp.max.year - 1}, first {bad[:3]}; convert them first, e.g. with "
            "xarray's ds.convert_calendar('standard', align_on='year') (each day moved to its "
            "place in the standard year) or align_on='date' (those dates dropped)"
        )
    if calendar not in ("standard", "gregorian", "proleptic_gregorian"):
        log.info(
            "%s: its times in the %r calendar are read as the standard calendar's of the same "
            "date and hour; a standard day that calendar lacks (29 February in 'noleap', the "
            "31st in '360_day') is a missing time",
            origin,
            calendar,
        )
    return xr.Variable(coord.dims, dates.as_unit("ns").to_numpy().reshape(values.shape))


def _all_standard_dates(labels: list[str]) -> bool:
    """Whether every ISO label is a date of the standard calendar, whatever its year."""
    moved = pd.to_datetime([_label_only(x) for x in labels], format="ISO8601", errors="coerce")
    return bool(moved.notna().all())


def _label_only(label: str) -> str:
    """An ISO date label moved by whole 400-year cycles (leap years stay leap years) into
    1800 to 2199, which a store's times hold, to ask whether the label is a standard date."""
    year, _, rest = label.partition("-")
    return f"{int(year) % 400 + 1800:04d}-{rest}" if year.lstrip("-").isdigit() else label


def _whole_seconds(ds: xr.Dataset, origin: str) -> xr.Dataset:
    """``ds`` with its times rounded to whole seconds, as the store keeps them: times in
    float days or hours (float32 above all) come a few ms off; logged past 1 ms."""
    times = pd.DatetimeIndex(ds[TIME].values)
    rounded = times.round("s")
    if rounded.equals(times):
        return ds
    off = abs(rounded - times).max()
    if off > pd.Timedelta(milliseconds=1):
        log.info(
            "%s: its times are rounded to whole seconds, by up to %.1f ms (the rounding noise "
            "of times in floating point; the store keeps whole seconds)",
            origin,
            off.total_seconds() * 1e3,
        )
    return ds.assign_coords({TIME: rounded})


def _cells_with_a_message(ds: xr.Dataset, origin: str) -> xr.Dataset:
    """``ds`` at the times that a message holds (:data:`HAS_MESSAGE`), the others logged."""
    present = np.broadcast_to(ds[HAS_MESSAGE].fillna(False).astype(bool).values, ds[TIME].shape)
    if not present.all():
        absent = pd.DatetimeIndex(ds[TIME].values[~present])
        log.info(
            "%s: no message holds %d of its (time, step) cells (valid at %s%s); they are no times",
            origin,
            absent.size,
            times_text(absent[:3]),
            ", ..." if absent.size > 3 else "",
        )
    return ds.isel({TIME: present}).drop_vars(HAS_MESSAGE)


def sort_time(ds: xr.Dataset, origin: str) -> xr.Dataset:
    """``ds`` with ascending times; a time given twice is an :class:`InputError`."""
    times = pd.DatetimeIndex(ds[TIME].values)
    if times.has_duplicates:
        dup = times[times.duplicated()].unique()
        raise InputError(
            f"{origin}: {dup.size} duplicate time(s), first {times_text(dup[:3])}; "
            "give each time once (are two input files covering the same period?)"
        )
    if not times.is_monotonic_increasing:
        log.info("%s: times were not in order; sorted", origin)
        ds = ds.sortby(TIME)
    return ds
