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
    """Count, mean, variance, min and max per row, accumulated one ``(times, rows, m)``
    block at a time (a row is a level; a surface field is one row).

    Sums of ``d = x - K`` and ``d**2`` in float64 about a fixed shift ``K`` per row (the
    first time's mean): ``mean = K + S1/n``, ``var = S2/n - (S1/n)**2``. The shift keeps
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

    def add(self, block: np.ndarray) -> None:
        """Fold in ``block`` (times, rows, m), float32: pieces of whole times where a time
        is smaller than a piece, else of one time's columns (the per-call cost of numpy
        stays small against the data either way)."""
        times, rows, m = block.shape
        if times == 0:
            return
        if self.shift is None:
            first = block[0]
            finite = ~np.isnan(first)
            total = np.where(finite, first, 0).sum(axis=1, dtype=np.float64)
            self.shift = total / np.maximum(finite.sum(axis=1), 1)
        has_nan = False
        width = self.piece.shape[1]
        per_piece = max(1, width // m)  # whole times in one piece
        for t in range(0, times, per_piece):
            part = block[t : t + per_piece]
            for c in range(0, m, width):
                cols = part[:, :, c : c + width]
                k, n = cols.shape[0], cols.shape[2]
                d = self.piece[:, : k * n].reshape(rows, k, n)
                np.copyto(d, cols.transpose(1, 0, 2))
                has_nan |= self._fold(d)
        reduce_min, reduce_max = (np.fmin, np.fmax) if has_nan else (np.minimum, np.maximum)
        self.min = reduce_min(self.min, reduce_min.reduce(block, axis=(0, 2)))
        self.max = reduce_max(self.max, reduce_max.reduce(block, axis=(0, 2)))

    def _fold(self, d: np.ndarray) -> bool:
        """Add the piece ``d`` (rows, k, n), float64, to the shifted sums, one time after
        another (so the sums do not depend on how the times came in blocks); whether it
        held a NaN."""
        d -= self.shift[:, None, None]
        totals = d.sum(axis=2)
        has_nan = bool(np.isnan(totals).any())
        if has_nan:
            nan = np.isnan(d)
            d[nan] = 0.0
            totals = d.sum(axis=2)
            self.count += d.shape[1] * d.shape[2] - nan.sum(axis=(1, 2))
        else:
            self.count += d.shape[1] * d.shape[2]
        np.multiply(d, d, out=d)
        self.sum = _accumulate(self.sum, totals)
        self.sum_of_squares = _accumulate(self.sum_of_squares, d.sum(axis=2))
        return has_nan

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
        self.times = times
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
        follows = self.pair_follows[start : start + block.sizes[TIME]]
        for name, da in block.data_vars.items():
            name = str(name)
            rows = len(self.levels.get(name, [0]))
            slabs = da.transpose(TIME, ...).values.reshape(da.sizes[TIME], rows, -1)
            self.values[name].add(slabs)
            previous = self.last.get(name)
            if previous is not None and follows[0]:
                self.tendency[name].add((slabs[0] - previous)[None])
            inner = slabs[1:] - slabs[:-1]  # [k]: times k+1 and k of the block
            self.tendency[name].add(inner if follows[1:].all() else inner[follows[1:]])
            self.last[name] = slabs[-1]
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


def _accumulate(start: np.ndarray, terms: np.ndarray) -> np.ndarray:
    """``start + terms[:, 0] + terms[:, 1] + ...`` per row, added in that order."""
    return np.cumsum(np.concatenate([start[:, None], terms], axis=1), axis=1)[:, -1]
