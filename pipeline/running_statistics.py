"""A store's statistics accumulated block by block while it is ingested, so finalising a
store written in one run needs no second pass over it.

:class:`RunningStatistics` gives what :func:`pipeline.analysis_store.compute_statistics`
gives for the same data (mean, std, min, max and the std of the tendency at the native
step, over time and the grid, per level), to float64 rounding: it is fed the blocks of
a store in time order, from the first time to the last.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from pipeline.schema import LEVEL, TIME
from pipeline.timeaxis import consecutive_pairs, native_step

#: Elements folded at a time: the float64 temporaries of a piece stay in the CPU cache
#: (a whole 0.25° field in float64 is 8 MB; in cache pieces the fold runs ~30 % faster).
PIECE_ELEMENTS = 2**16


class ShiftedMoments:
    """Count, mean, variance, min and max per row, accumulated one ``(rows, m)`` slab at
    a time (a row is a level; a surface field is one row).

    Sums of ``d = x - K`` and ``d**2`` in float64 about a fixed shift ``K`` per row (the
    first slab's mean): ``mean = K + S1/n``, ``var = S2/n - (S1/n)**2``. The shift keeps
    the cancellation in the variance small (Chan, Golub & LeVeque 1983, "Algorithms for
    computing the sample variance", Am. Stat. 37, 242). NaNs are skipped, as xarray's
    ``skipna`` does; a row without a value gives NaN. Cost: two passes over each piece
    of :data:`PIECE_ELEMENTS` in float64 (a NaN, seen in the sum, costs a third).
    """

    def __init__(self, rows: int) -> None:
        self.shift: np.ndarray | None = None
        self.count = np.zeros(rows, np.int64)
        self.sum = np.zeros(rows)
        self.sum_of_squares = np.zeros(rows)
        self.min = np.full(rows, np.inf, np.float32)
        self.max = np.full(rows, -np.inf, np.float32)
        self.piece = np.empty((rows, max(1, PIECE_ELEMENTS // rows)))

    def add(self, slab: np.ndarray) -> None:
        """Fold in ``slab`` (rows, m), float32."""
        if self.shift is None:
            finite = ~np.isnan(slab)
            total = np.where(finite, slab, 0).sum(axis=1, dtype=np.float64)
            self.shift = total / np.maximum(finite.sum(axis=1), 1)
        has_nan = False
        width = self.piece.shape[1]
        for start in range(0, slab.shape[1], width):
            part = slab[:, start : start + width]
            d = self.piece[:, : part.shape[1]]
            np.copyto(d, part)
            d -= self.shift[:, None]
            total = d.sum(axis=1)
            if np.isnan(total).any():
                has_nan = True
                nan = np.isnan(d)
                d[nan] = 0.0
                total = d.sum(axis=1)
                self.count += part.shape[1] - nan.sum(axis=1)
            else:
                self.count += part.shape[1]
            self.sum += total
            self.sum_of_squares += np.einsum("ij,ij->i", d, d)
        if has_nan:
            self.min = np.fmin(self.min, np.fmin.reduce(slab, axis=1))
            self.max = np.fmax(self.max, np.fmax.reduce(slab, axis=1))
        else:
            self.min = np.minimum(self.min, slab.min(axis=1))
            self.max = np.maximum(self.max, slab.max(axis=1))

    def mean_std(self) -> tuple[np.ndarray, np.ndarray]:
        with np.errstate(invalid="ignore", divide="ignore"):
            mean_d = self.sum / self.count
            var = np.maximum(self.sum_of_squares / self.count - mean_d**2, 0.0)
        shift = self.shift if self.shift is not None else np.zeros_like(mean_d)
        return shift + mean_d, np.sqrt(var)

    def extremes(self) -> tuple[np.ndarray, np.ndarray]:
        seen, nan = self.count > 0, np.float32("nan")
        return np.where(seen, self.min, nan), np.where(seen, self.max, nan)


class RunningStatistics:
    """The statistics of a store of ``times`` with the variables (and levels) of
    ``template``, fed its blocks in time order by :meth:`add`.

    The tendency is the float32 difference of consecutive times exactly one native step
    apart (:func:`pipeline.timeaxis.consecutive_pairs`), across block boundaries too: the
    last time of a block is kept for the next one.
    """

    def __init__(self, template: xr.Dataset, times: pd.DatetimeIndex) -> None:
        self.n_times = len(times)
        self.step = native_step(times)
        self.pair_follows = np.zeros(self.n_times, bool)  # [i]: times i-1 and i are a pair
        self.pair_follows[consecutive_pairs(times, self.step) + 1] = True
        self.levels = {
            str(n): da[LEVEL].values.tolist()
            for n, da in template.data_vars.items()
            if LEVEL in da.dims
        }
        rows = {str(n): len(self.levels.get(str(n), [0])) for n in template.data_vars}
        self.values = {n: ShiftedMoments(r) for n, r in rows.items()}
        self.tendency = {n: ShiftedMoments(r) for n, r in rows.items()}
        self.added = 0
        self.last: dict[str, np.ndarray] = {}

    def add(self, block: xr.Dataset, start: int) -> None:
        """Fold in ``block``, the store's times ``start`` onwards (the next ones to add)."""
        if start != self.added:
            raise ValueError(f"block starts at time {start}, but {self.added} were added")
        for name, da in block.data_vars.items():
            name = str(name)
            rows = len(self.levels.get(name, [0]))
            slabs = da.transpose(TIME, ...).values.reshape(da.sizes[TIME], rows, -1)
            previous = self.last.get(name)
            for k, slab in enumerate(slabs):
                self.values[name].add(slab)
                if previous is not None and self.pair_follows[start + k]:
                    self.tendency[name].add(slab - previous)
                previous = slab
            self.last[name] = previous
        self.added += block.sizes[TIME]

    def result(self) -> dict:
        """The statistics in :func:`~pipeline.analysis_store.compute_statistics`'s form."""
        if self.added != self.n_times:
            raise ValueError(f"{self.added} of {self.n_times} times were added")
        out: dict[str, dict] = {}
        for name, moments in self.values.items():
            mean, std = moments.mean_std()
            low, high = moments.extremes()
            entry = {
                "mean": mean,
                "std": std,
                "min": low.astype("float64"),
                "max": high.astype("float64"),
                "tendency_std": self.tendency[name].mean_std()[1],
            }
            if name in self.levels:
                out[name] = {k: v.tolist() for k, v in entry.items()}
                out[name]["level"] = self.levels[name]
            else:
                out[name] = {k: v[0].item() for k, v in entry.items()}
        return out
