"""The horizontal grid of canonical datasets: longitudes as their producer wrote them,
and one grid for every input of an ingest and every append to a store.

Longitudes are taken into [0, 360) or [-180, 180) (:func:`longitudes_canonical`). A value
moved there by whole turns is rounded to :data:`TURN_DECIMALS`: the move adds the float
error of the larger number (358.1 - 360 is -1.8999999999999773), so that ``sel`` of the
value as written (-1.9) failed, and the same box written in either convention gave two
grids. A value already there is kept as it is.

Points within :data:`~pipeline.schema.GRID_TOLERANCE_DEG` of each other are one point (a
grid stored in float32 is the grid its float64 spelling gives): :func:`onto_one_grid` puts
the inputs of one ingest on the first one's points, or refuses one on another grid naming
both, since xarray's outer join would make a grid of both, NaN wherever one lacks a point.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import xarray as xr

from pipeline.errors import InputError
from pipeline.schema import GRID_TOLERANCE_DEG

#: Decimals (of a degree) of a longitude moved by whole turns: 1e-9 degrees, 0.1 mm, far
#: below any grid's spacing and far above the float error of the move (about 6e-14).
TURN_DECIMALS = 9


def longitudes_canonical(lon: np.ndarray) -> np.ndarray:
    """Global grids in [0, 360); regional grids contiguous, in [-180, 180) when they
    are contiguous there (a UK box is -10..2), else in [0, 360) (a box across 180°)."""
    lon360 = _into_turn(lon, 0.0)
    unique = np.unique(lon360)
    if unique.size < 2:
        return lon360
    step = float(np.median(np.diff(unique)))
    if abs(unique.size * step - 360.0) < step / 2:
        return lon360
    lon180 = _into_turn(lon, -180.0)
    if np.diff(np.sort(lon180)).max() <= 1.5 * step:
        return lon180
    return lon360


def _into_turn(lon: np.ndarray, low: float) -> np.ndarray:
    """``lon`` in [``low``, ``low`` + 360): as it is where it lies there, else moved by
    whole turns and rounded to :data:`TURN_DECIMALS` (within that of a whole turn from
    ``low``: ``low``)."""
    lon = np.asarray(lon, dtype="float64")
    moved = np.round(np.mod(lon - low, 360.0) + low, TURN_DECIMALS)
    moved[moved == low + 360.0] = low
    return np.where((lon >= low) & (lon < low + 360.0), lon, moved)


def same_points(reference: np.ndarray, values: np.ndarray) -> np.ndarray | None:
    """The points of ``reference`` that ``values`` stand for, in the order of ``values``:
    the nearest each, within :data:`~pipeline.schema.GRID_TOLERANCE_DEG`, one for one.
    None when they are not the same points (another count, or one farther)."""
    reference, values = np.asarray(reference), np.asarray(values)
    if reference.size != values.size:
        return None
    ascending = np.sort(reference)
    index = pd.Index(ascending)
    if not index.is_unique:  # repeated points (refused by normalize): only the same ones
        return reference if np.array_equal(reference, values) else None
    at = index.get_indexer(values, method="nearest", tolerance=GRID_TOLERANCE_DEG)
    if (at < 0).any() or np.unique(at).size != at.size:
        return None
    return ascending[at]


def describe_grid(ds: xr.Dataset, dims: Sequence[str]) -> str:
    """``11x4 grid (latitude 40..60 step 2, longitude -2..1 step 1)``: each of ``dims``
    by its range and spacing (``steps 1..1.5`` where that varies)."""
    shape = "x".join(str(ds.sizes[dim]) for dim in dims)
    return f"{shape} grid ({', '.join(_describe_axis(ds[dim].values, dim) for dim in dims)})"


def _describe_axis(values: np.ndarray, dim: str) -> str:
    values = np.sort(np.asarray(values, dtype="float64"))
    if values.size < 2:
        return f"{dim} {', '.join(f'{v:g}' for v in values) or 'empty'}"
    steps = np.diff(values)
    spacing = (
        f"step {np.median(steps):g}"
        if np.ptp(steps) <= GRID_TOLERANCE_DEG
        else f"steps {steps.min():g}..{steps.max():g}"
    )
    return f"{dim} {values[0]:g}..{values[-1]:g} {spacing}"


def onto_one_grid(
    parts: Sequence[tuple[str, xr.Dataset]], dims: Sequence[str], origin: str
) -> list[xr.Dataset]:
    """The datasets of ``parts`` (label, dataset: the inputs of ``origin``), each later
    one on the points of the first along ``dims`` (its coordinate values taken where they
    are :func:`same_points`), so that combining them cannot grow the grid.

    An input on another grid is an :class:`InputError` naming it, the first and both grids.
    """
    (first_label, first), *later = parts
    out = [first]
    for label, ds in later:
        snapped = {dim: same_points(first[dim].values, ds[dim].values) for dim in dims}
        if any(values is None for values in snapped.values()):
            raise InputError(
                f"{origin}: {label} is on the {describe_grid(ds, dims)}, {first_label} on "
                f"the {describe_grid(first, dims)} (points within {GRID_TOLERANCE_DEG:g} "
                "degrees are one); regrid one onto the other's grid (xarray's interp, CDO's "
                "remapbil), or ingest them into separate stores"
            )
        out.append(ds.assign_coords({d: ds[d].copy(data=v) for d, v in snapped.items()}))
    return out


def combine_on_one_grid(
    parts: Sequence[tuple[str, xr.Dataset]], dims: Sequence[str], origin: str
) -> xr.Dataset:
    """The datasets of ``parts`` (label, dataset: the inputs of ``origin``) put on one grid
    along ``dims`` (:func:`onto_one_grid`) and combined by their coordinates, with an outer
    join (a variable an input lacks is NaN there) and the keywords xarray is changing
    pinned to the behaviour wxens is tested with: conflicting values refused
    (``compat="no_conflicts"``; the new default keeps the first silently), coordinates
    that differ between inputs (a one-message GRIB file's scalar ``valid_time``) combined
    (``coords="different"``). Inputs whose times interleave are split into runs first
    (:func:`runs_apart`). An :class:`InputError` where they do not combine."""
    try:
        return xr.combine_by_coords(
            runs_apart(onto_one_grid(parts, dims, origin)),
            compat="no_conflicts",
            coords="different",
            data_vars="all",
            combine_attrs="drop_conflicts",
            join="outer",
        )
    except InputError:
        raise
    except ValueError as err:
        raise InputError(
            f"{origin}: the inputs do not combine into one dataset ({err}); give inputs on "
            "one grid that differ only in time, level or variables"
        ) from err


#: |latitude| below which ``f = 2Ω sin φ`` is too small to derive geostrophic winds from
#: (``generators.balance``): ``1/f`` grows without bound towards the equator.
BALANCE_MIN_ABS_LATITUDE = 10.0


def balance_grid_problem(latitude: Sequence[float] | np.ndarray) -> str | None:
    """Why ``wxens forecast --balance`` cannot make winds geostrophic on these latitudes, or
    None where it can: they must lie in one hemisphere, all beyond 10° (a global grid, whose
    equator has f = 0, cannot). Shared by the balance operator, which refuses such a grid,
    and by ``wxens verify``, which suggests ``--balance`` only where it would work."""
    lat = np.asarray(latitude, dtype=np.float64)
    if (np.abs(lat) >= BALANCE_MIN_ABS_LATITUDE).all() and lat.min() * lat.max() > 0:
        return None
    return (
        f"geostrophic winds need latitudes in one hemisphere beyond "
        f"{BALANCE_MIN_ABS_LATITUDE:g} degrees; the grid spans {lat.min():g}..{lat.max():g}"
    )


def runs_apart(datasets: Sequence[xr.Dataset]) -> list[xr.Dataset]:
    """``datasets``, each split along its time dims (those of datetime values) where
    another gives times between two of its own, into runs no other's time falls within.

    ``combine_by_coords`` puts blocks in the order of their first times and refuses a
    result whose times are not monotonic, so inputs whose times interleave without
    overlapping (a store with a gap and the file of its gap, two files of alternate days)
    did not combine. Runs are lazy slices; a dataset no other's time falls within is kept
    whole."""
    out = list(datasets)
    for dim in {str(d) for ds in out for d in ds.dims if ds[d].dtype.kind == "M"}:
        holders = [ds for ds in out if dim in ds.dims]
        if len(holders) < 2:
            continue
        every = pd.Index(np.unique(np.concatenate([ds[dim].values for ds in holders])))
        out = [run for ds in out for run in _runs(ds, dim, every)]
    return out


def _runs(ds: xr.Dataset, dim: str, every: pd.Index) -> list[xr.Dataset]:
    """``ds`` cut along ``dim`` where its next time is not the next of ``every``."""
    if dim not in ds.dims:
        return [ds]
    at = every.get_indexer(ds[dim].values)
    cuts = [0, *(np.flatnonzero(np.diff(at) != 1) + 1).tolist(), at.size]
    if len(cuts) == 2:
        return [ds]
    return [ds.isel({dim: slice(a, b)}) for a, b in zip(cuts[:-1], cuts[1:], strict=True)]
