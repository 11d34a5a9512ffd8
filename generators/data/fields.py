"""Fields known in advance of a forecast: the calendar features of a time and the static
fields of a grid (geometry, then the store's time-invariant variables), and the condition of
a masked field (:func:`masked_condition`)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch
import xarray as xr

from pipeline.errors import StoreError
from pipeline.schema import LAT, LON, TIME

CALENDAR_FEATURES = ("sin_hour_of_day", "cos_hour_of_day", "sin_day_of_year", "cos_day_of_year")
GEOMETRY_STATICS = ("sin_latitude", "cos_latitude", "sin_longitude", "cos_longitude")
VALID_PREFIX = "valid:"
"""Static-field name prefix of a masked channel's validity (``valid:t2m``)."""


def valid_names(channels: Sequence[str]) -> tuple[str, ...]:
    """The static-field names of the validity of ``channels`` (``valid:CHANNEL``)."""
    return tuple(f"{VALID_PREFIX}{c}" for c in channels)


def masked_channels_of(static_names: Sequence[str]) -> tuple[str, ...]:
    """The channels whose validity is among ``static_names`` (inverse of :func:`valid_names`)."""
    return tuple(n[len(VALID_PREFIX) :] for n in static_names if n.startswith(VALID_PREFIX))


def masked_condition(
    history: torch.Tensor, known: torch.Tensor, masked_index: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The network's view of a history (B, K, C, H, W) that may hold NaN (a masked field,
    e.g. a land-only variable): the history with every non-finite value set to 0 (the
    channel mean, states being normalised), and the known fields (B, S, H, W) followed by
    the validity (1 or 0) of the current state of the channels ``masked_index``. The history
    is filled **in place** (a copy of a batch's size costs as much as the fill: callers pass
    a tensor of their own, e.g. gathered by indexing) and returned."""
    valid = torch.isfinite(history[:, -1].index_select(1, masked_index)).to(known.dtype)
    filled = history.nan_to_num_(nan=0.0, posinf=0.0, neginf=0.0)
    return filled, torch.cat([known, valid], dim=1)


def calendar_features(times: Sequence[pd.Timestamp] | pd.DatetimeIndex) -> torch.Tensor:
    """(B, F) sin/cos of the hour of day and of the day of year (year of 365.25 days)."""
    times = pd.DatetimeIndex(times)
    hour = (times.hour + times.minute / 60.0).to_numpy(dtype=np.float64)
    day = (times.day_of_year - 1).to_numpy(dtype=np.float64) + hour / 24.0
    a, b = 2 * np.pi * hour / 24.0, 2 * np.pi * day / 365.25
    return torch.from_numpy(np.stack([np.sin(a), np.cos(a), np.sin(b), np.cos(b)], -1)).float()


def static_fields(dataset: xr.Dataset) -> tuple[tuple[str, ...], torch.Tensor]:
    """Names and (S, H, W) values of the static fields of a canonical dataset: the geometry
    (sin/cos latitude and longitude), then every data variable without a time dimension,
    standardised over the grid."""
    lat = np.deg2rad(dataset[LAT].values.astype(np.float64))
    lon = np.deg2rad(dataset[LON].values.astype(np.float64))
    lat2, lon2 = np.meshgrid(lat, lon, indexing="ij")
    fields = [np.sin(lat2), np.cos(lat2), np.sin(lon2), np.cos(lon2)]
    names = list(GEOMETRY_STATICS)
    for name, da in dataset.data_vars.items():
        if TIME in da.dims:
            continue
        if set(da.dims) != {LAT, LON}:
            raise StoreError(
                f"time-invariant variable {name!r} has dims {da.dims}; a static field must "
                f"have exactly ({LAT}, {LON}). Drop it from the store or give it those dims."
            )
        values = da.transpose(LAT, LON).values.astype(np.float64)
        fields.append((values - np.nanmean(values)) / (np.nanstd(values) or 1.0))
        names.append(str(name))
    return tuple(names), torch.from_numpy(np.stack(fields)).float()
