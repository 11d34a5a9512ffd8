"""The canonical dataset of an ingest's sources: each opened by the source that claims it,
normalised to the canonical schema (:func:`pipeline.normalize.normalize`) and combined
lazily, with a provenance string whose credentials are masked."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from pipeline.errors import InputError
from pipeline.normalize import normalize, sorted_along
from pipeline.redact import redact
from pipeline.schema import TIME
from pipeline.sources import Source, resolve_source
from pipeline.timeaxis import check_unique_times

log = logging.getLogger(__name__)


def open_canonical(
    sources: str | Path | Source | Sequence[str | Path | Source],
    variables: Sequence[str] | None = None,
    time: slice | None = None,
) -> tuple[xr.Dataset, str]:
    """All sources opened, normalised and combined lazily; with a provenance string."""
    if isinstance(sources, str | Path | Source):
        sources = [sources]
    resolved = [resolve_source(s if isinstance(s, Source) else str(s)) for s in sources]
    if not resolved:
        raise InputError("no source given: name at least one file, glob, URL or 'synthetic'")
    parts = [normalize(src.open(), src.description, variables) for src in resolved]
    origin = redact(", ".join(src.description for src in resolved))
    if len(parts) > 1:
        check_unique_times(
            [(src.description, p) for src, p in zip(resolved, parts, strict=True)], origin
        )
    ds = parts[0] if len(parts) == 1 else _combine(parts, origin)
    if time is not None:
        ds = ds.sel({TIME: time})
        if ds.sizes[TIME] == 0:
            raise InputError(f"{origin}: no time in {time.start}..{time.stop}; check --start/--end")
    return ds, origin


def _combine(parts: list[xr.Dataset], origin: str) -> xr.Dataset:
    """Inputs on one grid that differ in time or variables, as one dataset sorted by time."""
    times = pd.DatetimeIndex(np.concatenate([p[TIME].values for p in parts]))
    try:
        combined = xr.combine_by_coords(parts, combine_attrs="drop_conflicts", join="outer")
    except ValueError as err:
        raise InputError(
            f"{origin}: the inputs do not combine ({err}); give inputs on one grid that differ "
            "in time or variables"
        ) from err
    log.debug("combined %d inputs, %d times", len(parts), times.unique().size)
    return sorted_along(combined, TIME)
