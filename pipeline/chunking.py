"""Chunk shapes of the wxens stores, analysis and forecast alike: the whole horizontal grid
in a chunk unless that is larger than :data:`MAX_CHUNK_BYTES`, then split along level
first, then latitude, then longitude, into even blocks (:func:`capped_chunks`).

A chunk is what a reader gets at the least: a plume at one point (``wxens plume``) reads,
for each lead, every chunk holding that point, and verification holds whole chunks in
memory; a 0.25-degree global forecast of 50 members on 13 levels held 2.7 GB in one."""

from __future__ import annotations

import math
from collections.abc import Mapping

import xarray as xr

from pipeline.schema import LAT, LEVEL, LON

#: The most bytes of a chunk (uncompressed) before it is split along level, then the grid.
MAX_CHUNK_BYTES = 64 * 2**20

#: The dims a chunk above :data:`MAX_CHUNK_BYTES` is split along, in this order.
SPLIT_ORDER = (LEVEL, LAT, LON)


def even_block(size: int, most: int) -> int:
    """The length of the fewest even blocks of a ``size``-long axis, each at most ``most``
    long (at least 1): 721 latitudes of at most 400 are two blocks of 361."""
    blocks = math.ceil(size / max(1, min(most, size)))
    return math.ceil(size / blocks)


def capped_chunks(
    da: xr.DataArray, fixed: Mapping[str, int], *, one_level: bool = False
) -> tuple[int, ...]:
    """The chunk shape of ``da``: the chunk lengths in ``fixed`` (time steps; one initial
    time and lead), every other dim whole (all members together, always), until the chunk
    exceeds :data:`MAX_CHUNK_BYTES`; then it is split along :data:`SPLIT_ORDER`, each dim
    only while the chunk is still too large: levels as many as fit (one a chunk with
    ``one_level``), then latitude and longitude in the fewest even blocks that fit."""
    shape = {dim: fixed.get(dim, size) for dim, size in da.sizes.items()}
    for dim in (d for d in SPLIT_ORDER if d in shape):
        rest = da.dtype.itemsize * math.prod(n for d, n in shape.items() if d != dim)
        if rest * shape[dim] <= MAX_CHUNK_BYTES:
            break
        fit = max(1, MAX_CHUNK_BYTES // rest)
        if dim == LEVEL:
            shape[dim] = 1 if one_level else min(shape[dim], fit)
        else:
            shape[dim] = even_block(da.sizes[dim], fit)
    return tuple(shape[d] for d in da.dims)
