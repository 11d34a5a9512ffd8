"""Which store positions a dataset of :mod:`generators.data.dataset` reads: the positions
of a time and its offsets (found by timestamp, a gap never bridged), the (initial time, lead)
pairs of its period its items enumerate, and the initial times a forecast starts from. Apart
from the reading and normalising of states, as a base class of
:class:`~generators.data.dataset.ResidualDataset`."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from generators.data.spec import SampleSpec
from pipeline.errors import InputError, time_text, times_text
from pipeline.schema import Period


class StoreTimes:
    """The time axis of a dataset's store and the positions on it that its items read:
    ``times`` (the store's), ``native_step``, ``period`` and ``exclude`` (the items'),
    ``spec`` (the history offsets and leads, in native steps), ``pairs`` (the items'
    (position, lead index) pairs, from :meth:`_valid_pairs`), ``name`` (for messages) and
    ``_present`` (False at a missing time), all set by the dataset."""

    times: pd.DatetimeIndex
    native_step: pd.Timedelta
    period: Period
    exclude: tuple[Period, ...]
    spec: SampleSpec
    pairs: np.ndarray
    name: str
    _present: np.ndarray

    def positions(self, positions: np.ndarray, offsets: Sequence[int]) -> np.ndarray:
        """(B, len(offsets)) store positions of ``times[positions] + offset * native_step``,
        found by timestamp (a gap in the time axis is never bridged); -1 where absent or
        missing."""
        positions = np.asarray(positions, dtype=np.int64)
        wanted = self.times[positions].to_numpy()[:, None] + np.asarray(offsets)[None, :] * (
            self.native_step.to_timedelta64()
        )
        index = self.times.get_indexer(wanted.ravel()).reshape(wanted.shape)
        index[index >= 0] = np.where(self._present[index[index >= 0]], index[index >= 0], -1)
        return index

    def positions_at(self, times: pd.DatetimeIndex, hours: Sequence[float]) -> np.ndarray:
        """(B, len(hours)) store positions of ``times[b] + hours[j]`` (hours on the native
        step, negative before the time), found by timestamp as :meth:`positions`; -1 where
        a time is not in the store or a state is absent or missing."""
        step = self.native_step / pd.Timedelta(hours=1)
        offsets = tuple(int(round(h / step)) for h in hours)
        positions = self.times.get_indexer(pd.DatetimeIndex(times))
        found = np.full((len(positions), len(offsets)), -1, dtype=np.int64)
        ok = positions >= 0
        if ok.any():
            found[ok] = self.positions(positions[ok], offsets)
        return found

    @property
    def span(self) -> str:
        """The store's first and last times, for messages."""
        return f"{time_text(self.times[0])} to {time_text(self.times[-1])}"

    def items_span(self) -> tuple[pd.Timestamp, pd.Timestamp]:
        """The first and last time the items read: the oldest state of an item's history and
        the latest valid time of a target (what a model trained on them has seen)."""
        positions, lead_index = self.pairs[:, 0], self.pairs[:, 1]
        inits = self.times[positions]
        valid = inits + np.asarray(self.spec.leads)[lead_index] * self.native_step
        return inits.min() + self.spec.history[0] * self.native_step, valid.max()

    def _valid_pairs(self) -> np.ndarray:
        window = self.period.indexer(self.times)
        positions = np.arange(len(self.times))[window]
        positions = positions[~self._excluded(self.times[positions])]
        pairs = []
        for j, lead in enumerate(self.spec.leads):
            if len(positions) == 0:
                break
            ok = (self.positions(positions, (*self.spec.history, lead)) >= 0).all(axis=1)
            valid = self.times[positions] + lead * self.native_step
            ok &= (valid <= self.times[window][-1]) & ~self._excluded(valid)
            if not ok.any():
                raise InputError(
                    f"{self.name}: no initial time in {self.period}{self._excluded_text()} has "
                    f"its history {self.spec.history} and lead {lead} (x {self.native_step}) "
                    "inside the store and the period; widen the period, exclude less or "
                    "shorten the history or lead"
                )
            pairs.extend((p, j) for p in positions[ok])
        if not pairs:
            raise InputError(
                f"{self.name}: the period {self.period}{self._excluded_text()} holds no time of "
                "the store "
                f"({self.span})"
            )
        return np.asarray(pairs, dtype=np.int64)

    def _excluded(self, times: pd.DatetimeIndex) -> np.ndarray:
        out = np.zeros(len(times), dtype=bool)
        for period in self.exclude:
            out |= period.contains(times)
        return out

    def _excluded_text(self) -> str:
        return f" (excluding {', '.join(map(str, self.exclude))})" if self.exclude else ""

    def init_positions(self, init_times: Sequence[pd.Timestamp]) -> np.ndarray:
        """Store positions of ``init_times``; InputError naming those lacking a full history."""
        wanted = pd.DatetimeIndex(init_times)
        positions = self.times.get_indexer(wanted)
        ok = positions >= 0
        ok[ok] = (self.positions(positions[ok], self.spec.history) >= 0).all(axis=1)
        if not ok.all():
            raise InputError(
                f"{self.name}: initial time(s) {times_text(wanted[~ok])} lack the history "
                f"{self.spec.history} x {self.native_step} in the store (it covers "
                f"{self.span}, missing times excluded); choose later "
                "initial times or ingest more data"
            )
        return positions
