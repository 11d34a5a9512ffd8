"""Torch datasets of (condition, target) pairs drawn from an analysis store by time index.

One sample, for an initial time ``t``, a lead ``l`` and history offsets ``o_1 < ... < 0``
(all in native steps of the store):

- ``history``  (K, C, H, W): the states ``x[t + o_k]``, normalised ``(x - mean) / std``;
- ``static``   (S, H, W):    sin/cos latitude, sin/cos longitude, then every time-invariant
  variable of the store (standardised over the grid), then, under ``solar_forcing``, the
  TOA insolation at ``t``, at ``t + l`` and its mean between (:mod:`pipeline.solar`);
- ``calendar`` (F,):         sin/cos hour of day and sin/cos day of year of ``t``;
- ``lead``     ():           the lead in hours;
- ``target``   (C, H, W):    the normalised residual ``(x[t + l] - x[t]) / tendency_std(l)``
  (divided further by the sample's recent-variability scale under ``variability_scaling``).

``mean`` and ``std`` are the store statistics; ``tendency_std(l)`` is the standard deviation
of the ``l``-step tendency over the training period (:meth:`Normalization.fit`), per channel
or, under ``tendency_per_grid_point``, per channel and grid point; the store only records it
per channel at the native step. Channels are those of
:func:`pipeline.schema.to_channels` (``t2m``, ``z500``, ...). Initial times whose history or
target falls outside the store or on a missing time are skipped. A store smaller than
``max_memory_bytes`` is read into memory once; a larger one is read lazily, one batch of
states at a time, so memory stays bounded.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch
import xarray as xr
from torch.utils.data import Dataset

from pipeline.errors import InputError, StoreError
from pipeline.schema import CHANNEL, LAT, LEVEL, LON, TIME, Period, split_channel, to_channels
from pipeline.solar import SOLAR_FORCINGS, solar_forcing

if TYPE_CHECKING:
    from pipeline.store import AnalysisStore

log = logging.getLogger(__name__)

CALENDAR_FEATURES = ("sin_hour_of_day", "cos_hour_of_day", "sin_day_of_year", "cos_day_of_year")
GEOMETRY_STATICS = ("sin_latitude", "cos_latitude", "sin_longitude", "cos_longitude")
TENDENCY_SAMPLES = 256  # initial times used to estimate a tendency std, evenly spaced
TENDENCY_FLOOR = 0.05  # a grid point's tendency std is at least this share of the grid median


@dataclass(frozen=True)
class SampleSpec:
    """What a sample holds, in native time steps of the store.

    history: offsets of the conditioning states, oldest first, ending with 0 (now); at least
             two. An integer ``n`` means the last ``n`` states, e.g. ``24`` on an hourly store
             is every state of the last day.
    leads:   lead times of the target. Several leads make a lead-conditioned, direct model.
    variability_scaling: divide each sample's target by ``s``, the recent variability of its
             own history relative to the training period's (:func:`variability_scale`), so
             that a generator's unit-variance residuals carry a flow-dependent spread.
    tendency_per_grid_point: normalise residuals by each grid point's own tendency std
             rather than the channel's: a unit-variance residual then fits calm places (sea)
             and lively ones (land) alike, and so does any noise inflation of a sampler.
    solar_forcing: add the TOA insolation at the initial and valid times and its mean over
             the interval to the static fields (:func:`pipeline.solar.solar_forcing`): the
             sun's strength and timing on days outside the training period, which sin/cos
             of the day of year cannot extrapolate to.
    """

    history: tuple[int, ...] = (-1, 0)
    leads: tuple[int, ...] = (1,)
    variability_scaling: bool = False
    tendency_per_grid_point: bool = False
    solar_forcing: bool = False

    def __post_init__(self) -> None:
        history = self.history
        if isinstance(history, int):
            history = tuple(range(1 - history, 1))
        history = tuple(int(o) for o in history)
        leads = (self.leads,) if isinstance(self.leads, int) else self.leads
        leads = tuple(sorted({int(lead) for lead in leads}))
        if len(history) < 2 or history[-1] != 0 or list(history) != sorted(set(history)):
            raise InputError(
                f"history offsets {history} must be at least two distinct native steps, "
                "ascending and ending with 0 (now), e.g. [-1, 0] or 24 for the last 24 states"
            )
        if not leads or leads[0] < 1:
            raise InputError(f"leads {leads} must be positive numbers of native steps, e.g. [1]")
        object.__setattr__(self, "history", history)
        object.__setattr__(self, "leads", leads)


def recent_variability(history: torch.Tensor, offsets: Sequence[int]) -> torch.Tensor:
    """(B, C) mean squared increment per native step of a normalised history
    (B, K, C, H, W) with offsets ``o_1 < ... < o_K``:
    v = mean over k and the grid of (z[o_k+1] - z[o_k])^2 / (o_k+1 - o_k)
    (a random walk's increments scale with the square root of the gap)."""
    gaps = torch.as_tensor(np.diff(np.asarray(offsets)), dtype=history.dtype, device=history.device)
    increments = history[:, 1:] - history[:, :-1]
    return (increments.square().mean(dim=(-2, -1)) / gaps[None, :, None]).mean(dim=1)


@dataclass(frozen=True, eq=False)
class Normalization:
    """States ``(x - mean) / std`` per channel; residuals at a lead
    ``(x[t+l] - x[t]) / (tendency_std[l] * s)``, with ``s = 1`` or, under variability
    scaling, ``s = sqrt(v / variability)`` clipped to [1/4, 4] (:func:`recent_variability`
    of the sample's history against its training-period mean ``variability``).

    mean, std:    (C,) from the store statistics.
    tendency_std: (L, C) per channel, or (L, C, H, W) per channel and grid point; one row
                  per entry of ``leads_hours``.
    variability:  (C,) or None (no variability scaling).
    """

    channels: tuple[str, ...]
    mean: np.ndarray
    std: np.ndarray
    leads_hours: tuple[float, ...]
    tendency_std: np.ndarray
    variability: np.ndarray | None = None

    def variability_scale(self, history: torch.Tensor, offsets: Sequence[int]) -> torch.Tensor:
        """(B, C) residual scale ``s`` of normalised histories (B, K, C, H, W); ones
        without variability scaling."""
        if self.variability is None:
            return history.new_ones(history.shape[0], history.shape[2])
        reference = torch.as_tensor(self.variability, dtype=history.dtype, device=history.device)
        return (recent_variability(history, offsets) / reference).sqrt().clamp(0.25, 4.0)

    def lead_index(self, lead_hours: float) -> int:
        for i, lead in enumerate(self.leads_hours):
            if abs(lead - lead_hours) < 1e-6:
                return i
        raise InputError(
            f"lead {lead_hours:g} h has no tendency std: the model was trained for leads "
            f"{[f'{h:g}' for h in self.leads_hours]} h; ask for one of them or a multiple of "
            "a rollout step"
        )

    @property
    def per_grid_point(self) -> bool:
        return self.tendency_std.ndim == 4

    def residual_to_state(self, lead_hours: float) -> np.ndarray:
        """(C, 1, 1), or (C, H, W) per grid point: the factor turning a normalised residual
        into a normalised-state increment, ``tendency_std[l] / std``."""
        return (self._tendency(lead_hours) / self.std[:, None, None]).astype(np.float32)

    def state_to_residual(self, lead_hours: float) -> np.ndarray:
        """The inverse factor, ``std / tendency_std[l]`` (computed in float64)."""
        return (self.std[:, None, None] / self._tendency(lead_hours)).astype(np.float32)

    def _tendency(self, lead_hours: float) -> np.ndarray:
        tendency = self.tendency_std[self.lead_index(lead_hours)]
        return tendency if self.per_grid_point else tendency[:, None, None]

    @classmethod
    def fit(cls, data: ResidualDataset) -> Normalization:
        """Store mean/std of ``data``, and the std of each lead's tendency over its items
        (at most ``TENDENCY_SAMPLES`` evenly spaced initial times per lead, NaNs ignored):
        over the grid as well, or per grid point under ``tendency_per_grid_point`` (floored
        at ``TENDENCY_FLOOR`` times the grid median; the channel's value where a point has
        no data)."""
        spec = data.spec
        variability = None
        if spec.variability_scaling:
            inits = np.unique(data.pairs[:, 0])
            pick = inits[
                np.linspace(0, len(inits) - 1, min(TENDENCY_SAMPLES, len(inits)))
                .round()
                .astype(np.int64)
            ]
            variability = (
                recent_variability(data.history_at(pick), spec.history).mean(dim=0).double().numpy()
            )
        unscaled = cls(
            data.channels, data.mean, data.std, (), np.zeros((0, len(data.channels))), variability
        )
        rows = []
        for j, lead in enumerate(spec.leads):
            positions = data.pairs[data.pairs[:, 1] == j, 0]
            n = min(TENDENCY_SAMPLES, len(positions))
            pick = positions[np.linspace(0, len(positions) - 1, n).round().astype(np.int64)]
            scale = unscaled.variability_scale(data.history_at(pick), spec.history).numpy()
            states = data.states(data.positions(pick, (0, lead)))
            tendency = (states[:, 1] - states[:, 0]) / scale[:, :, None, None]
            channel_std = np.nanstd(tendency, axis=(0, 2, 3)) * data.std
            if not np.all(np.isfinite(channel_std)) or np.any(channel_std <= 0):
                raise InputError(
                    f"{data.name}: the {lead}-step tendency std over {data.period} is not "
                    f"positive for every channel ({dict(zip(data.channels, channel_std.tolist(), strict=True))}); "
                    "a constant channel cannot be modelled — drop it"
                )
            if spec.tendency_per_grid_point:
                rows.append(_per_grid_point(tendency, data.std, channel_std))
            else:
                rows.append(channel_std)
        tendency_std = np.stack(rows).astype(np.float64)
        return cls(data.channels, data.mean, data.std, data.leads_hours, tendency_std, variability)

    def to_dict(self) -> dict[str, Any]:
        return {
            "channels": list(self.channels),
            "mean": self.mean.tolist(),
            "std": self.std.tolist(),
            "leads_hours": list(self.leads_hours),
            "tendency_std": self.tendency_std.tolist(),
            "variability": None if self.variability is None else self.variability.tolist(),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Normalization:
        return cls(
            channels=tuple(d["channels"]),
            mean=np.asarray(d["mean"], dtype=np.float64),
            std=np.asarray(d["std"], dtype=np.float64),
            leads_hours=tuple(float(h) for h in d["leads_hours"]),
            tendency_std=np.asarray(d["tendency_std"], dtype=np.float64),
            variability=None
            if d.get("variability") is None
            else np.asarray(d["variability"], dtype=np.float64),
        )


def _per_grid_point(tendency: np.ndarray, std: np.ndarray, channel_std: np.ndarray) -> np.ndarray:
    """(C, H, W) std over the samples of normalised tendencies (N, C, H, W), in physical
    units (times ``std``), floored at ``TENDENCY_FLOOR`` times each channel's grid median;
    ``channel_std`` where a point has no finite sample."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN points: filled below
        point = np.nanstd(tendency, axis=0) * std[:, None, None]
    point = np.where(np.isfinite(point), point, channel_std[:, None, None])
    floor = TENDENCY_FLOOR * np.median(point, axis=(1, 2))
    return np.maximum(point, floor[:, None, None])


def calendar_features(times: Sequence[pd.Timestamp] | pd.DatetimeIndex) -> torch.Tensor:
    """(B, F) sin/cos of the hour of day and of the day of year (year of 365.25 days)."""
    times = pd.DatetimeIndex(times)
    hour = (times.hour + times.minute / 60.0).to_numpy(dtype=np.float64)
    day = (times.day_of_year - 1).to_numpy(dtype=np.float64) + hour / 24.0
    a, b = 2 * np.pi * hour / 24.0, 2 * np.pi * day / 365.25
    return torch.from_numpy(np.stack([np.sin(a), np.cos(a), np.sin(b), np.cos(b)], -1)).float()


def static_fields(dataset: xr.Dataset) -> tuple[tuple[str, ...], torch.Tensor]:
    """Names and (S, H, W) values of the static fields of a canonical dataset: the geometry
    (sin/cos latitude and longitude), then every data variable without a time dimension,
    standardised over the grid."""
    lat = np.deg2rad(dataset[LAT].values.astype(np.float64))
    lon = np.deg2rad(dataset[LON].values.astype(np.float64))
    lat2, lon2 = np.meshgrid(lat, lon, indexing="ij")
    fields = [np.sin(lat2), np.cos(lat2), np.sin(lon2), np.cos(lon2)]
    names = list(GEOMETRY_STATICS)
    for name, da in dataset.data_vars.items():
        if TIME in da.dims:
            continue
        if set(da.dims) != {LAT, LON}:
            raise StoreError(
                f"time-invariant variable {name!r} has dims {da.dims}; a static field must "
                f"have exactly ({LAT}, {LON}). Drop it from the store or give it those dims."
            )
        values = da.transpose(LAT, LON).values.astype(np.float64)
        fields.append((values - np.nanmean(values)) / (np.nanstd(values) or 1.0))
        names.append(str(name))
    return tuple(names), torch.from_numpy(np.stack(fields)).float()


def _channel_statistics(
    statistics: xr.Dataset, channels: Sequence[str]
) -> tuple[np.ndarray, np.ndarray]:
    """(C,) mean and std per channel from a store's statistics (dims statistic[, level])."""
    out: dict[str, list[float]] = {"mean": [], "std": []}
    for ch in channels:
        var, level = split_channel(ch)
        if var not in statistics:
            raise StoreError(
                f"the store statistics have no entry for {var!r} (channel {ch}); the store "
                "was not finalised — rerun `wxens ingest` on it"
            )
        da = statistics[var] if level is None else statistics[var].sel({LEVEL: level})
        for stat in out:
            out[stat].append(float(da.sel(statistic=stat)))
    std = np.asarray(out["std"])
    if not np.all(np.isfinite(std)) or np.any(std <= 0):
        raise StoreError(
            f"the store statistics give a non-positive std for channels {list(channels)}: {std}"
        )
    return np.asarray(out["mean"]), std


class ResidualDataset(Dataset):
    """(condition, target) pairs of one store period; ``dataset[indices]`` is a dict batch.

    Items enumerate every valid (initial time, lead) pair of ``period``: the initial time
    and the target's valid time both lie in the period (no target leaks out of it) and in
    none of the ``exclude`` periods (held out), the history may reach back before it or
    into an excluded period, and none of the states needed is missing.
    ``dataset[i]`` or ``dataset[[i, j, ...]]`` gives a dict of batched tensors with the keys
    and shapes of :class:`generators.base.Condition` plus ``target`` (pipeline does not
    import generators; ``generators.train.to_batch`` wraps it).

    ``normalization`` is fitted on this period when not given (the training set); give the
    training one to a validation or forecast set. ``with_targets=False`` enumerates no item
    (a store that only holds the initial states of a forecast).
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
        name: str = "<dataset>",
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
        self.native_step = native_step if native_step is not None else _infer_step(self.times)
        dynamic = dataset[[v for v, da in dataset.data_vars.items() if TIME in da.dims]]
        states = to_channels(dynamic).transpose(TIME, CHANNEL, LAT, LON)
        available = tuple(str(c) for c in states[CHANNEL].values)
        self.channels = tuple(channels) if channels is not None else available
        absent = [c for c in self.channels if c not in available]
        if absent:
            raise InputError(f"{name} has no channel(s) {absent}; it holds {list(available)}")
        states = states.sel({CHANNEL: list(self.channels)})
        self.latitude = np.asarray(dataset[LAT].values)
        self.longitude = np.asarray(dataset[LON].values)
        self.static_names, self.static = static_fields(dataset)
        if spec.solar_forcing:
            self.static_names += SOLAR_FORCINGS
        self.mean, self.std = _channel_statistics(statistics, self.channels)
        self._shift = self.mean.astype(np.float32)[:, None, None]
        self._scale = self.std.astype(np.float32)[:, None, None]
        self._states: np.ndarray | xr.DataArray = states
        if states.nbytes <= max_memory_bytes:
            log.info("%s: reading %.1f MB of states into memory", name, states.nbytes / 2**20)
            self._states = self._normalise(states.values)
        self._present = np.ones(len(self.times), dtype=bool)
        if len(missing_times):
            self._present &= ~self.times.isin(pd.DatetimeIndex(list(missing_times)))
        self.pairs = self._valid_pairs() if with_targets else np.empty((0, 2), dtype=np.int64)
        if normalization is None:
            if not with_targets:
                raise InputError(
                    f"{name}: a dataset without targets needs the training normalisation"
                )
            normalization = Normalization.fit(self)
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
        elif tuple(normalization.channels) != self.channels:
            raise InputError(
                f"the normalisation is for channels {list(normalization.channels)} but {name} "
                f"gives {list(self.channels)}"
            )
        self.normalization = normalization
        self._target_scale = torch.from_numpy(  # (L, C, 1 or H, 1 or W)
            np.stack([normalization.state_to_residual(h) for h in self.leads_hours])
        )

    @classmethod
    def from_store(cls, store: AnalysisStore, spec: SampleSpec, **kwargs: Any) -> ResidualDataset:
        """The dataset of an :class:`~pipeline.store.AnalysisStore` (keywords as in ``__init__``)."""
        return cls(
            store.dataset,
            store.statistics,
            spec,
            native_step=store.native_step,
            missing_times=store.missing_times,
            name=str(store.path),
            **kwargs,
        )

    # -- which times -----------------------------------------------------------------------

    @property
    def leads_hours(self) -> tuple[float, ...]:
        hours = self.native_step / pd.Timedelta(hours=1)
        return tuple(lead * hours for lead in self.spec.leads)

    @property
    def grid_shape(self) -> tuple[int, int]:
        return len(self.latitude), len(self.longitude)

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
                f"({self.times[0]} to {self.times[-1]})"
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
                f"{self.name}: initial time(s) {[str(t) for t in wanted[~ok]]} lack the history "
                f"{self.spec.history} x {self.native_step} in the store (it covers "
                f"{self.times[0]} to {self.times[-1]}, missing times excluded); choose later "
                "initial times or ingest more data"
            )
        return positions

    # -- reading ---------------------------------------------------------------------------

    def _normalise(self, values: np.ndarray) -> np.ndarray:
        return ((values - self._shift) / self._scale).astype(np.float32)

    def states(self, positions: np.ndarray) -> np.ndarray:
        """Normalised states at store positions: (*positions.shape, C, H, W)."""
        positions = np.asarray(positions, dtype=np.int64)
        if isinstance(self._states, np.ndarray):
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
        return {
            "history": history,
            "static": self.known_fields(self.times[positions], leads),
            "calendar": calendar_features(self.times[positions]),
            "lead": torch.from_numpy(leads.astype(np.float32)),
            "target": (future - history[:, -1]) * scale,
        }


def _infer_step(times: pd.DatetimeIndex) -> pd.Timedelta:
    """The most common spacing of ``times`` (the native step of a store without metadata)."""
    diffs = pd.Series(np.diff(times.to_numpy()))
    return pd.Timedelta(diffs.mode().iloc[0])
