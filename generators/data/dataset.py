"""Torch datasets of (condition, target) pairs drawn from an analysis store by time index.

One sample, for an initial time ``t``, a lead ``l`` and history offsets ``o_1 < ... < 0``
(all in native steps of the store):

- ``history``  (K, C, H, W): the states ``x[t + o_k]``, normalised ``(x - mean) / std``;
- ``static``   (S, H, W):    sin/cos latitude, sin/cos longitude, then every time-invariant
  variable of the store (standardised over the grid), then, under ``solar_forcing``, the
  TOA insolation at ``t``, at ``t + l`` and its mean between (:mod:`pipeline.solar`),
  then the validity (1 or 0) of the state at ``t`` of each masked channel;
- ``calendar`` (F,):         sin/cos hour of day and sin/cos day of year of ``t``;
- ``lead``     ():           the lead in hours;
- ``target``   (C, H, W):    the normalised residual ``(x[t + l] - x[t]) / tendency_std(l)``
  (divided further by the sample's recent-variability scale under ``variability_scaling``);
- ``valid``    (C, H, W):    where the target is finite.

A masked field (NaN over part of the grid, e.g. a land-only variable ingested with
``allow_nan``) is a *masked channel*: its history is given with NaN set to 0 (the mean) and
its validity as a static field (:func:`~generators.data.fields.masked_condition`); its target
is 0 where it is not valid, and the loss skips those points (``valid``).

``mean`` and ``std`` are the store statistics (with a given ``normalization``, its own: the
training store's, whatever store the states are read from); ``tendency_std(l)`` is the
standard deviation of the ``l``-step tendency over the training period
(:func:`generators.data.normalization.fit_normalization`), per channel or, under
``tendency_per_grid_point``, per channel and grid point; the store only records it per
channel at the native step. Channels are those of
:func:`pipeline.schema.to_channels` (``t2m``, ``z500``, ...). Initial times whose history or
target falls outside the store or on a missing time are skipped. A store smaller than
``max_memory_bytes`` is read into memory once; a larger one is read lazily, one batch of
states at a time, so memory stays bounded.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
import xarray as xr
from torch.utils.data import Dataset

from generators.data.fields import calendar_features, masked_condition, static_fields, valid_names
from generators.data.normalization import Normalization, channel_statistics, fit_normalization
from generators.data.positions import StoreTimes
from generators.data.spec import SampleSpec
from pipeline.analysis_store import STATE_ATTR
from pipeline.errors import InputError, StoreError
from pipeline.schema import CHANNEL, LAT, LON, TIME, Period, to_channels
from pipeline.solar import SOLAR_FORCINGS, solar_forcing
from pipeline.store import AnalysisStore
from pipeline.timeaxis import fixed_step
from pipeline.timeaxis import native_step as infer_native_step

log = logging.getLogger(__name__)


class ResidualDataset(StoreTimes, Dataset):
    """(condition, target) pairs of one store period; ``dataset[indices]`` is a dict batch.

    Items enumerate every valid (initial time, lead) pair of ``period``: the initial time
    and the target's valid time both lie in the period (no target leaks out of it) and in
    none of the ``exclude`` periods (held out), the history may reach back before it or
    into an excluded period, and none of the states needed is missing.
    ``dataset[i]`` or ``dataset[[i, j, ...]]`` gives a dict of batched tensors with the keys
    and shapes of :class:`generators.base.Condition` plus ``target``
    (:func:`generators.train.to_batch` wraps it).

    ``normalization`` is fitted on this period when not given (the training set); give the
    training one to a validation or forecast set. ``with_targets=False`` enumerates no item
    (a store that only holds the initial states of a forecast). ``masked_channels`` are
    those given their validity as a static field; None: the channels holding a NaN in the
    dataset (one pass over a store read lazily, leaving out the ``nan_free`` variables'
    channels: :meth:`from_store` names those its ingest counted no NaN in); give the
    training set's to the others. ``states_of``: a dataset of the same store whose states
    in memory this one indexes where it normalises them alike (one copy for all the parts
    of a training, not one each).
    """

    def __init__(
        self,
        dataset: xr.Dataset,
        statistics: xr.Dataset,
        spec: SampleSpec,
        *,
        period: Period = Period(),
        exclude: Sequence[Period] = (),
        native_step: pd.Timedelta | None = None,
        missing_times: Sequence[pd.Timestamp] = (),
        normalization: Normalization | None = None,
        channels: Sequence[str] | None = None,
        max_memory_bytes: int = 2**31,
        with_targets: bool = True,
        masked_channels: Sequence[str] | None = None,
        nan_free: Sequence[str] = (),
        name: str = "<dataset>",
        states_of: ResidualDataset | None = None,
    ) -> None:
        self.spec, self.period, self.name = spec, period, name
        self.exclude = tuple(exclude)
        self.times = pd.DatetimeIndex(dataset[TIME].values)
        if (
            len(self.times) < 2
            or not self.times.is_monotonic_increasing
            or self.times.has_duplicates
        ):
            raise StoreError(f"{name}: needs at least two strictly increasing times")
        step = native_step if native_step is not None else infer_native_step(self.times)
        self.native_step = fixed_step(step, name)
        dynamic = dataset[[v for v, da in dataset.data_vars.items() if TIME in da.dims]]
        states = to_channels(dynamic).transpose(TIME, CHANNEL, LAT, LON)
        available = tuple(str(c) for c in states[CHANNEL].values)
        self.channels = tuple(channels) if channels is not None else available
        absent = [c for c in self.channels if c not in available]
        if absent:
            held = ",".join(available)
            raise InputError(
                f"{name} has no channel(s) {absent}; it holds {list(available)}: give a store "
                "holding them, or train on channels it holds, data.channels= (--set "
                f"data.channels=[{held}])"
            )
        states = states.sel({CHANNEL: list(self.channels)})
        self.latitude = np.asarray(dataset[LAT].values)
        self.longitude = np.asarray(dataset[LON].values)
        self.static_names, self.static = static_fields(dataset)
        if spec.solar_forcing:
            self.static_names += SOLAR_FORCINGS
        if normalization is None:
            self.mean, self.std = channel_statistics(statistics, self.channels)
        elif tuple(normalization.channels) != self.channels:
            raise InputError(
                f"the normalisation is for channels {list(normalization.channels)} but {name} "
                f"gives {list(self.channels)}"
            )
        else:  # the training statistics: this store's own would shift every input
            self.mean, self.std = normalization.mean, normalization.std
        self._shift = self.mean.astype(np.float32)[:, None, None]
        self._scale = self.std.astype(np.float32)[:, None, None]
        self._states: np.ndarray | xr.DataArray = states
        if states_of is not None and states_of.in_memory and self._normalised_as(states_of):
            self._states = states_of._states  # read once: the parts index their own times
        elif states.nbytes <= max_memory_bytes:
            size = states.nbytes / 2**20
            log.info("%s: reading %.1f MiB of states into memory", name, size)
            self._states = self._normalise(states.values)
        if masked_channels is None:
            masked_channels = self._channels_with_nan(states, dynamic, nan_free)
        absent = [c for c in masked_channels if c not in self.channels]
        if absent:
            raise InputError(f"masked channel(s) {absent} are not among {list(self.channels)}")
        self.masked_channels = tuple(masked_channels)
        self.static_names += valid_names(self.masked_channels)
        self._masked_index = torch.tensor(
            [self.channels.index(c) for c in self.masked_channels], dtype=torch.int64
        )
        self._present = np.ones(len(self.times), dtype=bool)
        if len(missing_times):
            self._present &= ~self.times.isin(pd.DatetimeIndex(list(missing_times)))
        self.pairs = self._valid_pairs() if with_targets else np.empty((0, 2), dtype=np.int64)
        if normalization is None:
            if not with_targets:
                raise InputError(
                    f"{name}: a dataset without targets needs the training normalisation"
                )
            normalization = fit_normalization(self)
        elif (normalization.variability is not None) != spec.variability_scaling:
            raise InputError(
                f"{name}: the normalisation and the sample spec disagree on variability scaling"
            )
        elif normalization.per_grid_point != spec.tendency_per_grid_point or (
            normalization.per_grid_point
            and normalization.tendency_std.shape[-2:] != self.grid_shape
        ):
            raise InputError(
                f"{name}: the normalisation's tendency std has shape "
                f"{normalization.tendency_std.shape} but the sample spec asks "
                f"{'per grid point' if spec.tendency_per_grid_point else 'per channel'} on a "
                f"{self.grid_shape} grid; use the normalisation fitted with this spec and grid"
            )
        self.normalization = normalization
        self._target_scale = torch.from_numpy(  # (L, C, 1 or H, 1 or W)
            np.stack([normalization.state_to_residual(h) for h in self.leads_hours])
        )

    @classmethod
    def from_store(cls, store: AnalysisStore, spec: SampleSpec, **kwargs: Any) -> ResidualDataset:
        """The dataset of an :class:`~pipeline.store.AnalysisStore` (keywords as in
        ``__init__``, ``name`` the store's path unless given); its variables that the
        ingest counted no NaN in are ``nan_free``."""
        counts = store.dataset.attrs.get(STATE_ATTR, {}).get("nan_counts", {})
        kwargs.setdefault("nan_free", tuple(v for v, n in counts.items() if n == 0))
        kwargs.setdefault("name", str(store.path))
        return cls(
            store.dataset,
            store.statistics,
            spec,
            native_step=store.native_step,
            missing_times=store.missing_times,
            **kwargs,
        )

    def _channels_with_nan(
        self, states: xr.DataArray, dynamic: xr.Dataset, nan_free: Sequence[str]
    ) -> tuple[str, ...]:
        """The channels holding a NaN. A store read lazily is read for it, but not the
        channels of the ``nan_free`` variables (those its ingest counted no NaN in): a pass
        over years of global fields costs as much as their ingest."""
        if self.in_memory:
            has_nan = np.isnan(self._states).any(axis=(0, 2, 3))
        else:
            clean = [v for v in nan_free if v in dynamic.data_vars]
            known = set(map(str, to_channels(dynamic[clean])[CHANNEL].values)) if clean else set()
            scan = [c for c in self.channels if c not in known]
            found: set[str] = set()
            if scan:
                log.info("%s: looking for masked (NaN) points in the store", self.name)
                nan = states.sel({CHANNEL: scan}).isnull().any((TIME, LAT, LON)).values
                found = {c for c, n in zip(scan, nan, strict=True) if n}
            has_nan = [c in found for c in self.channels]
        masked = tuple(c for c, nan in zip(self.channels, has_nan, strict=True) if nan)
        if masked:
            log.info("%s: masked channel(s) %s: the loss skips their NaN points", self.name, masked)
        return masked

    def _normalised_as(self, other: ResidualDataset) -> bool:
        """Whether ``other`` holds this dataset's states normalised as this one would."""
        same = np.array_equal((self.mean, self.std), (other.mean, other.std))
        return same and self.channels == other.channels and self.times.equals(other.times)

    @property
    def in_memory(self) -> bool:
        """Whether the states were read into memory (else each item reads the store)."""
        return isinstance(self._states, np.ndarray)

    @property
    def masked_index(self) -> torch.Tensor:
        """(len(masked_channels),) indices of the masked channels among ``channels``."""
        return self._masked_index

    # -- which times (the positions read: StoreTimes) -----------------------------------

    @property
    def leads_hours(self) -> tuple[float, ...]:
        hours = self.native_step / pd.Timedelta(hours=1)
        return tuple(lead * hours for lead in self.spec.leads)

    @property
    def grid_shape(self) -> tuple[int, int]:
        return len(self.latitude), len(self.longitude)

    # -- reading ---------------------------------------------------------------------------

    def _normalise(self, values: np.ndarray) -> np.ndarray:
        normalised = values - self._shift  # divided in place: one array beside the states
        normalised /= self._scale
        return normalised.astype(np.float32, copy=False)

    def states(self, positions: np.ndarray) -> np.ndarray:
        """Normalised states at store positions: (*positions.shape, C, H, W)."""
        positions = np.asarray(positions, dtype=np.int64)
        if self.in_memory:
            return self._states[positions]
        unique, inverse = np.unique(positions, return_inverse=True)
        values = self._normalise(self._states.isel({TIME: unique}).values)
        return values[inverse.reshape(positions.shape)]

    def denormalise(self, states: np.ndarray) -> np.ndarray:
        """Normalised states (..., C, H, W) back to physical units."""
        return states * self._scale + self._shift

    def history_at(self, positions: np.ndarray) -> torch.Tensor:
        """(B, K, C, H, W) normalised history of the initial times at store ``positions``."""
        return torch.from_numpy(self.states(self.positions(positions, self.spec.history)))

    def known_fields(self, times: pd.DatetimeIndex, leads_hours: np.ndarray) -> torch.Tensor:
        """(B, S, H, W) fields known in advance of forecasts from ``times`` (B,) at
        ``leads_hours`` (B,): the static fields, then the solar forcing if the spec has it."""
        static = self.static.expand(len(times), *self.static.shape)
        if not self.spec.solar_forcing:
            return static
        forcing = solar_forcing(times, leads_hours, self.latitude, self.longitude)
        return torch.cat([static, torch.from_numpy(forcing)], dim=1)

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int | Sequence[int] | np.ndarray) -> dict[str, torch.Tensor]:
        """Batched tensors of the given item(s) (an int gives a batch of one):
        ``history, static, calendar, lead, target`` as documented in the module."""
        idx = np.atleast_1d(np.asarray(index, dtype=np.int64))
        positions, lead_index = self.pairs[idx, 0], self.pairs[idx, 1]
        history = self.history_at(positions)
        later = np.empty_like(positions)
        for j in np.unique(lead_index):
            chosen = lead_index == j
            later[chosen] = self.positions(positions[chosen], (self.spec.leads[j],))[:, 0]
        future = torch.from_numpy(self.states(later))
        leads = np.asarray(self.leads_hours, np.float64)[lead_index]
        scale = (
            self._target_scale[torch.from_numpy(lead_index)]
            / self.normalization.variability_scale(history, self.spec.history)[:, :, None, None]
        )
        target = (future - history[:, -1]) * scale
        valid = torch.isfinite(target)
        known = self.known_fields(self.times[positions], leads)
        filled, static = masked_condition(history, known, self._masked_index)
        return {
            "history": filled,
            "static": static,
            "calendar": calendar_features(self.times[positions]),
            "lead": torch.from_numpy(leads.astype(np.float32)),
            "target": target.nan_to_num_(nan=0.0, posinf=0.0, neginf=0.0),  # in place: ours
            "valid": valid,
        }
