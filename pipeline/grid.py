"""The horizontal grid of canonical datasets: longitudes as their producer wrote them.

Longitudes are taken into [0, 360) or [-180, 180) (:func:`longitudes_canonical`). A value
moved there by whole turns is rounded to :data:`TURN_DECIMALS`: the move adds the float
error of the larger number (358.1 - 360 is -1.8999999999999773), so that ``sel`` of the
value as written (-1.9) failed, and the same box written in either convention gave two
grids. A value already there is kept as it is.
"""

from __future__ import annotations

import numpy as np

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
