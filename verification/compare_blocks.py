"""How many blocks the compared files' intervals rest on (``wxens compare``): fewer than
:data:`~verification.resampling.MIN_READABLE_BLOCKS` give intervals not to read as
uncertainty, as ``wxens verify`` says of its own (:func:`~verification.comparison.
few_blocks_caution`), so the ``~``/``*`` judged from them rests on few blocks: the legend
says so (:func:`few_blocks_line`) and the CSV counts each row's (:data:`BLOCKS`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import xarray as xr

from pipeline.schema import INIT_TIME
from pipeline.timeaxis import describe_step
from verification.compare_paired import EXPERIMENT
from verification.resampling import MIN_READABLE_BLOCKS, blocks_with_values

if TYPE_CHECKING:
    from verification.compare import Scores

#: The table's entry of the blocks each file's intervals rest on (experiment, variable,
#: lead), and the CSV's column of a row's fewest.
BLOCKS = "blocks"


def interval_blocks(experiments: list[Scores], at: dict[str, list]) -> xr.DataArray:
    """The blocks holding a value of each file's CRPS at ``at``'s variables and leads, as its
    intervals were drawn (its ``/per_init`` init times in its ``interval_block``:
    :func:`~verification.resampling.blocks_with_values`); NaN for a file without
    ``/per_init``, which records no count (an older wxens)."""
    counts = []
    for e in experiments:
        if e.per_init is None:
            counts.append(xr.DataArray(np.nan, coords=at, dims=list(at)))
            continue
        crps = e.per_init["fair_crps"].sel(at)
        blocks = pd.DatetimeIndex(crps[INIT_TIME].values).floor(e.per_init.attrs["interval_block"])
        held = blocks_with_values(crps, blocks, dim=INIT_TIME).astype(float)
        counts.append(held.reset_coords(drop=True))  # an older file's count has no coords
    names = pd.Index([e.name for e in experiments], name=EXPERIMENT)
    counts = xr.concat(counts, names).transpose(EXPERIMENT, *at)
    return counts.rename(BLOCKS)


def few_blocks_line(experiments: list[Scores], blocks: xr.DataArray) -> str:
    """The legend's line naming the files whose intervals rest on 2 to
    :data:`MIN_READABLE_BLOCKS` - 1 blocks somewhere (``a (a.nc): 6 blocks of 1 day``; a file
    without a count: the caution its scorecard records), and that the marks rest on them;
    "" where none."""
    named = []
    for e in experiments:
        if e.per_init is None:
            caution = e.card.get("fair_crps_low", xr.DataArray()).attrs.get("caution")
            named += [f"{e.name} ({e.source}): {caution}"] if caution else []
            continue
        held = blocks.sel({EXPERIMENT: e.name})
        few = held.where((held >= 2) & (held < MIN_READABLE_BLOCKS))
        if bool(few.notnull().any()):
            low, high = int(few.min()), int(few.max())
            count = f"{low}" if low == high else f"{low} to {high}"
            step = describe_step(pd.Timedelta(e.per_init.attrs["interval_block"]))
            named.append(f"{e.name} ({e.source}): {count} blocks of {step}")
    if not named:
        return ""
    return (
        f"intervals on fewer than {MIN_READABLE_BLOCKS} blocks, too few to read as uncertainty "
        f"(a rule of thumb): {'; '.join(named)}; the ~ and * of the scores with intervals rest "
        f"on them, a hint, not a verdict (the CSV's {BLOCKS} column: each row's fewest); "
        "verify the initial times of more blocks"
    )


def row_blocks(table: xr.Dataset, score: str, at: dict) -> float:
    """The fewest blocks the intervals of ``score`` (or of the score whose interval end it
    is) rest on in the row ``at``, over the files with a value there; NaN where the score
    holds no interval or a file records no count."""
    name = score.removesuffix("_low").removesuffix("_high")
    if BLOCKS not in table or f"{name}_low" not in table:
        return np.nan
    held = table[BLOCKS].sel(at).values[table[name].sel(at).notnull().values]
    return float(held.min()) if held.size else np.nan  # NaN where one file has no count
