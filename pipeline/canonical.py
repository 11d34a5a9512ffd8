"""The canonical dataset of an ingest's sources: each opened by the source that claims it,
normalised to the canonical schema (:func:`pipeline.normalize.normalize`) and combined
lazily on one grid (:func:`pipeline.grid.onto_one_grid`), with a provenance string whose
credentials are masked."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from pipeline.errors import InputError
from pipeline.grid import onto_one_grid
from pipeline.normalize import normalize, sorted_along
from pipeline.redact import redact
from pipeline.schema import HORIZONTAL, TIME
from pipeline.sources import Source, resolve_source
from pipeline.timeaxis import check_one_axis, check_unique_times

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
    parts = [
        (src.description, normalize(src.open(), src.description, variables)) for src in resolved
    ]
    origin = redact(", ".join(src.description for src in resolved))
    ds = parts[0][1] if len(parts) == 1 else _combine(parts, origin)
    if time is not None:
        ds = ds.sel({TIME: time})
        if ds.sizes[TIME] == 0:
            raise InputError(f"{origin}: no time in {time.start}..{time.stop}; check --start/--end")
    return ds, origin


def _combine(parts: list[tuple[str, xr.Dataset]], origin: str) -> xr.Dataset:
    """Inputs (label, dataset) that differ in time or variables, as one dataset sorted by
    time: refused when they give a variable one time twice, leave one time axis or lie on
    two grids; on the first one's points otherwise, so that the outer join fills with NaN
    only what an input lacks (another level or time), never a grid point."""
    check_unique_times(parts, origin)
    check_one_axis(parts, origin)
    on_grid = onto_one_grid(parts, HORIZONTAL, origin)
    times = pd.DatetimeIndex(np.concatenate([p[TIME].values for p in on_grid]))
    try:
        combined = xr.combine_by_coords(on_grid, combine_attrs="drop_conflicts", join="outer")
    except ValueError as err:
        raise InputError(
            f"{origin}: the inputs do not combine ({err}); give inputs on one grid that differ "
            "in time or variables"
        ) from err
    log.debug("combined %d inputs, %d times", len(parts), times.unique().size)
    return sorted_along(combined, TIME)
