"""The forecast side of the xarray <-> torch boundary: an analysis store read for a
checkpoint (:class:`ForecastData`: initial windows, known fields and truths by time, as
normalised tensors or physical arrays) and drawn members back to a canonical forecast
dataset (:func:`to_dataset`)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import torch
import xarray as xr

from generators.checkpoint import FORECAST_FIX, Checkpoint
from generators.data.dataset import ResidualDataset
from generators.data.fields import GEOMETRY_STATICS, masked_channels_of, valid_names
from generators.data.normalization import channel_statistics
from generators.rollout_plan import RolloutPlan, plan_rollout
from pipeline.errors import InputError, shell_word, time_text, times_text
from pipeline.schema import (
    CHANNEL,
    GRID_TOLERANCE_DEG,
    INIT_TIME,
    LAT,
    LEAD_TIME,
    LEVEL,
    LON,
    MEMBER,
    TIME,
    VARIABLES,
    from_channels,
    split_channel,
    to_channels,
)
from pipeline.solar import SOLAR_FORCINGS
from pipeline.store import AnalysisStore, open_store
from pipeline.timeaxis import calendar_months, refuse_off_step

log = logging.getLogger(__name__)
OWN_SHARD_LOGGER = f"{__name__}.shard"
"""The logger of warnings about some initial times, which a torchrun rank other than 0 says
of its own shard while it keeps the errors of its others (quiet_other_ranks)."""
shard_log = logging.getLogger(OWN_SHARD_LOGGER)


class ForecastData:
    """A store read for a checkpoint: its grid, channels and normalisation checked, initial
    windows and truths by time."""

    def __init__(self, checkpoint: Checkpoint, dataset: ResidualDataset):
        checkpoint.check_matches(dataset)
        self.checkpoint = checkpoint
        self.dataset = dataset
        hours = checkpoint.native_step / pd.Timedelta(hours=1)
        self.history_hours = tuple(o * hours for o in checkpoint.spec.history)

    @classmethod
    def from_store(cls, checkpoint: Checkpoint, store: AnalysisStore | str | Path) -> ForecastData:
        """The forecast data of an analysis store (or its path) for ``checkpoint``."""
        store = store if isinstance(store, AnalysisStore) else open_store(store)
        check_grid_and_step(checkpoint, store)
        dataset = ResidualDataset.from_store(
            store,
            checkpoint.spec,
            channels=checkpoint.channels,
            normalization=checkpoint.normalization,
            max_memory_bytes=checkpoint.train_config.data.max_memory_bytes,
            with_targets=False,
            masked_channels=masked_channels_of(checkpoint.static_names),
        )
        check_statistics(checkpoint, store)  # once the store is known to hold the channels
        return cls(checkpoint, dataset)

    @property
    def times(self) -> pd.DatetimeIndex:
        """Every time of the store."""
        return self.dataset.times

    def windows(
        self, inits: pd.DatetimeIndex, plan: RolloutPlan, warn: bool = True
    ) -> torch.Tensor:
        """(B, W, C, H, W) normalised states of the plan's window before each initial time;
        ``warn``: of initial states without values (:meth:`_warn_missing_values`)."""
        found = self.dataset.positions_at(inits, plan.window_hours)
        missing = (found < 0).any(axis=1)
        if missing.any():
            step, lacking = self.checkpoint.native_step, inits[missing]
            refuse_off_step(self.dataset.name, lacking, self.times, step)
            offsets = [round(h * pd.Timedelta(hours=1) / step) for h in plan.window_hours]
            wanted = pd.DatetimeIndex(
                sorted({_shifted(t, k, step) for t in lacking for k in offsets})
            )
            absent = wanted[self.dataset.positions_at(wanted, [0.0])[:, 0] < 0]
            more = f" and {len(absent) - 8} more" if len(absent) > 8 else ""
            early = (absent < self.times[0]).any()
            earliest = self._earliest(plan.window_hours) if early else ""
            raise InputError(
                f"{self.dataset.name}: initial time(s) {times_text(lacking)} lack the "
                f"states at {times_text(absent[:8])}{more} "
                f"of their window ({window_text(plan.window_hours)}; the store covers "
                f"{self.dataset.span}, missing times excluded); {earliest}choose other "
                "initial times"
            )
        states = self.dataset.states(found)
        self._check_windows(inits, states)
        if warn:
            self._warn_missing_values(inits, states)
        return torch.from_numpy(states)

    def _earliest(self, window_hours: Sequence[float]) -> str:
        """``the earliest initial time with its whole window is ...; ``: of the store's
        times, the first whose window it holds (for initial times before it)."""
        whole = (self.dataset.positions_at(self.times, window_hours) >= 0).all(axis=1)
        if not whole.any():
            return "no time of the store has its whole window; "
        first = time_text(self.times[whole.argmax()])
        return f"the earliest initial time with its whole window is {first}; "

    def _warn_missing_values(self, inits: pd.DatetimeIndex, states: np.ndarray) -> None:
        """Warn of initial states that hold no value of a channel (a time the analysis
        holds as all NaN, kept by ``--allow-nan``): their members are NaN everywhere; and of
        windows with NaN points in a channel trained without any, which the network reads
        as the channel's mean and whose members are NaN there."""
        empty = np.isnan(states[:, -1]).all(axis=(2, 3))  # (B, C)
        holes = np.isnan(states).any(axis=(1, 3, 4)) & ~empty  # (B, C)
        holes[:, self.masked_index.numpy()] = False
        for flagged, what, fix in (
            (
                empty,
                "the initial state of %d initial time(s) has no value of a channel",
                "their members of that channel are NaN everywhere",
            ),
            (
                holes,
                "the history of %d initial time(s) has NaN points in a channel trained without any",
                "the network reads them as the channel's mean and the members are NaN there",
            ),
        ):
            if flagged.any():
                shard_log.warning(
                    "%s: " + what + ": %s; %s: ingest those times again from files that hold "
                    "values, or choose other initial times",
                    self.dataset.name,
                    np.count_nonzero(flagged.any(axis=1)),
                    self._by_init(inits, flagged),
                    fix,
                )

    def _by_init(self, inits: pd.DatetimeIndex, flagged: np.ndarray) -> str:
        """``2000-02-22T18:00 (t2m), ...``: the first 8 initial times of ``flagged`` (B, C)
        with their channels."""
        rows = np.flatnonzero(flagged.any(axis=1))
        channels = np.array(self.checkpoint.channels)
        shown = ", ".join(
            f"{time_text(inits[b])} ({', '.join(channels[flagged[b]])})" for b in rows[:8]
        )
        return shown + (f" and {rows.size - 8} more" if rows.size > 8 else "")

    def _check_windows(self, inits: pd.DatetimeIndex, states: np.ndarray) -> None:
        """InputError if an initial window's channel mean lies :data:`STATISTICS_LIMIT`
        training stds from the training mean: the store's statistics pass (a day in other
        units appended to a long store moves them little), its window does not. Variables
        bounded below at zero (a downpour after a dry training month) are left out."""
        apart = np.zeros((states.shape[0], states.shape[2]))  # (B, C), a window at a time
        for b, window in enumerate(states):
            finite = np.isfinite(window)
            count = np.maximum(finite.sum(axis=(0, 2, 3)), 1)
            apart[b] = np.where(finite, window, 0).sum(axis=(0, 2, 3), dtype="float64") / count
        checked = [_lower_bound(c) != 0.0 for c in self.checkpoint.channels]
        far = (np.abs(apart) > STATISTICS_LIMIT) & np.array(checked)
        if not far.any():
            return
        b, c = (int(k[0]) for k in np.nonzero(far))
        channel, norm = self.checkpoint.channels[c], self.checkpoint.normalization
        raise InputError(
            f"{self.dataset.name}: the initial window of {time_text(inits[b])} holds {channel} "
            f"with mean {norm.mean[c] + apart[b, c] * norm.std[c]:.4g} {_units(channel)}, "
            f"{abs(apart[b, c]):.3g} training stds from the training mean {norm.mean[c]:.4g} "
            f"({int(far.sum())} window/channel pair(s) so far off): values in other units in "
            "that part of the store? Check the files of those times, ingest them again with "
            "overwrite=True (--overwrite), declaring their true units, units= (--units "
            "VAR=UNITS), or choose other initial times"
        )

    def usable_inits(
        self, inits: pd.DatetimeIndex, leads_hours: Sequence[float]
    ) -> pd.DatetimeIndex:
        """The initial times with a full window and a truth at every lead (for scoring)."""
        checkpoint = self.checkpoint
        plan = plan_rollout(leads_hours, checkpoint.leads_hours, self.history_hours)
        found = self.dataset.positions_at(inits, (*plan.window_hours, *leads_hours))
        ok = (found >= 0).all(axis=1)
        if not ok.any():
            raise InputError(
                f"no initial time among {len(inits)} has its history and a truth at leads "
                f"{list(leads_hours)} h in {self.dataset.name}"
            )
        if not ok.all():
            log.info(
                "%d of %d initial times lack history or truth and are skipped",
                (~ok).sum(),
                len(inits),
            )
        return inits[ok]

    def truth(self, inits: pd.DatetimeIndex, lead_hours: float) -> np.ndarray:
        """(N, C, H, W) truth in physical units at ``init + lead``."""
        found = self.dataset.positions_at(inits, (lead_hours,))[:, 0]
        if (found < 0).any():
            raise InputError(
                f"no truth at lead {lead_hours:g} h for {times_text(inits[found < 0])}"
            )
        return self.dataset.denormalise(self.dataset.states(found))

    def known_fields(self, times: pd.DatetimeIndex, leads_hours: np.ndarray) -> torch.Tensor:
        """(B, S, H, W) static fields (and solar forcing) of forecasts from ``times`` at
        ``leads_hours`` (:meth:`ResidualDataset.known_fields`)."""
        return self.dataset.known_fields(times, leads_hours)

    @property
    def masked_index(self) -> torch.Tensor:
        """Indices of the masked channels (:func:`~generators.data.fields.masked_condition`)."""
        return self.dataset.masked_index

    def denormalise(self, states: np.ndarray) -> np.ndarray:
        """Normalised states (..., C, H, W) back to physical units."""
        return self.dataset.denormalise(states)


def check_grid_and_step(
    checkpoint: Checkpoint, store: AnalysisStore, fix: str = FORECAST_FIX
) -> None:
    """A store on another grid or native step than the checkpoint's is refused naming both
    (:meth:`Checkpoint.check_matches`, ``fix``: what to do instead) before a dataset is
    built with the checkpoint's normalisation, which would otherwise fail first on a lead it
    has no tendency std for."""
    ds = store.dataset
    latitude, longitude = np.asarray(ds[LAT].values), np.asarray(ds[LON].values)
    same = (
        latitude.shape == checkpoint.latitude.shape
        and longitude.shape == checkpoint.longitude.shape
        and bool(np.allclose(latitude, checkpoint.latitude, atol=GRID_TOLERANCE_DEG))
        and bool(np.allclose(longitude, checkpoint.longitude, atol=GRID_TOLERANCE_DEG))
        and store.native_step == checkpoint.native_step
    )
    if same:
        return
    dynamic = ds[[v for v, da in ds.data_vars.items() if TIME in da.dims]]
    available = tuple(str(c) for c in to_channels(dynamic)[CHANNEL].values)
    statics = tuple(str(v) for v, da in ds.data_vars.items() if TIME not in da.dims)
    checkpoint.check_matches(
        SimpleNamespace(  # what the store's dataset would hold, for the message
            name=str(store.path),
            latitude=latitude,
            longitude=longitude,
            native_step=store.native_step,
            channels=(
                checkpoint.channels if set(checkpoint.channels) <= set(available) else available
            ),
            static_names=GEOMETRY_STATICS
            + statics
            + (SOLAR_FORCINGS if checkpoint.spec.solar_forcing else ())
            + valid_names(masked_channels_of(checkpoint.static_names)),
        ),
        fix,
    )


STATISTICS_LIMIT = 10.0
"""A store channel whose mean lies this many training stds from the training mean, or whose
std is this many times larger or smaller, is not the variable the model learnt; a smaller
std of a variable that sits at its lower bound of zero (no rain) is a dry spell, told."""


def check_statistics(
    checkpoint: Checkpoint, store: AnalysisStore, fix: str = "train a model on this store"
) -> None:
    """InputError if a channel of ``store`` is far from what ``checkpoint`` was trained on
    (:data:`STATISTICS_LIMIT`): other units under the canonical ones, or another variable
    under the channel's name, which would otherwise be forecast (or trained on, resuming,
    ``fix``: the last thing to do instead) as if it were the same. A
    variable bounded below at zero that reaches zero and barely varies there (a dry day's
    tp, std 0) is what a forecaster sees in any dry spell, and the same as other units by
    its statistics: a warning, not a refusal."""
    norm = checkpoint.normalization
    mean, std = channel_statistics(store.statistics, checkpoint.channels, constant_ok=True)
    apart = np.abs(mean - norm.mean) / norm.std
    ratio = std / norm.std
    variables = [split_channel(c)[0] for c in checkpoint.channels]
    dry = np.array([_at_zero_bound(store.statistics, c) for c in checkpoint.channels])
    small = ratio < 1 / STATISTICS_LIMIT
    bad = (apart > STATISTICS_LIMIT) | (ratio > STATISTICS_LIMIT) | (small & ~dry)
    for i in np.flatnonzero(small & dry & ~bad):
        log.warning(
            "%s: %s has a std %s there than in training (%.4g against %.4g %s): a dry spell, "
            "or values in other units? Check `wxens info %s`",
            store.path,
            checkpoint.channels[i],
            _times(ratio[i]),
            std[i],
            norm.std[i],
            store.dataset[variables[i]].attrs.get("units", ""),
            store.path,
        )
    if not bad.any():
        return
    told = []
    for i in np.flatnonzero(bad):
        units = store.dataset[variables[i]].attrs.get("units", "")
        off = [f"{apart[i]:.3g} training stds apart"] if apart[i] > STATISTICS_LIMIT else []
        if not 1 / STATISTICS_LIMIT <= ratio[i] <= STATISTICS_LIMIT:
            off.append(f"a std {_times(ratio[i])}")
        told.append(
            f"{checkpoint.channels[i]} has mean {mean[i]:.4g} and std {std[i]:.4g} {units} "
            f"there, against mean {norm.mean[i]:.4g} and std {norm.std[i]:.4g} in training "
            f"({', '.join(off)})"
        )
    raise InputError(
        f"{store.path} is not what checkpoint {checkpoint.path} was trained on: "
        f"{'; '.join(told)}. Other units, or another variable under that name? Check "
        f"`wxens info {shell_word(store.path)}`, ingest the file again with overwrite=True "
        "(--overwrite), as the times a store holds are otherwise kept, declaring its true "
        f"units, units= (--units VAR=UNITS), or names, rename= (--rename OLD=NEW); or {fix}"
    )


def _lower_bound(channel: str) -> float | None:
    """The physical lower bound of ``channel``'s variable (None: unbounded or unknown)."""
    return getattr(VARIABLES.get(split_channel(channel)[0]), "lower_bound", None)


def _units(channel: str) -> str:
    """The canonical units of ``channel``'s variable ('' if unknown)."""
    return getattr(VARIABLES.get(split_channel(channel)[0]), "units", "")


def _at_zero_bound(statistics: xr.Dataset, channel: str) -> bool:
    """Whether ``channel``'s variable is bounded below at zero and reaches that bound in
    the store (no rain somewhere): a dry spell, which a fraction under '%' never is."""
    var, level = split_channel(channel)
    if _lower_bound(channel) != 0.0:
        return False
    da = statistics[var] if level is None else statistics[var].sel({LEVEL: level})
    return float(da.sel(statistic="min")) <= 0.0


def _times(ratio: float) -> str:
    """A std ratio in words: '100 times larger', '3.2 times smaller', 'infinitely smaller'
    (a constant field)."""
    if ratio == 0:
        return "infinitely smaller (a constant field)"
    return f"{ratio:.3g} times larger" if ratio >= 1 else f"{1 / ratio:.3g} times smaller"


def to_dataset(
    data: ForecastData, inits: pd.DatetimeIndex, leads_hours: Sequence[float], members: np.ndarray
) -> xr.Dataset:
    """Members (B, M, L, C, H, W) as a canonical forecast dataset (dims ``init_time, member,
    lead_time, [level], latitude, longitude``)."""
    d = data.dataset
    da = xr.DataArray(
        members,
        dims=(INIT_TIME, MEMBER, LEAD_TIME, CHANNEL, LAT, LON),
        coords={
            INIT_TIME: pd.DatetimeIndex(inits),
            MEMBER: np.arange(members.shape[1]),
            LEAD_TIME: pd.to_timedelta(list(leads_hours), unit="h"),
            CHANNEL: list(d.channels),
            LAT: d.latitude,
            LON: d.longitude,
        },
    )
    return from_channels(da)


def window_text(hours: Sequence[float]) -> str:
    """The offsets ``hours`` of a history window in words: its ends and step when evenly
    spaced and more than a few ("-23 to 0 h, every 1 h"), else each ("-6, 0 h")."""
    steps = set(np.diff(hours).round(6).tolist())
    if len(hours) > 4 and len(steps) == 1:
        return f"{hours[0]:g} to {hours[-1]:g} h, every {steps.pop():g} h"
    return ", ".join(f"{h:g}" for h in hours) + " h"


def _shifted(time: pd.Timestamp, steps: int, step: pd.Timedelta) -> pd.Timestamp:
    """``time`` moved by ``steps`` native steps (calendar months on a monthly store)."""
    months = calendar_months(step)
    return time + (pd.DateOffset(months=steps * months) if months else steps * step)
