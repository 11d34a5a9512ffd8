"""Reference ensembles a generator has to beat, drawn from an analysis store's past.

- **climatology** (:class:`ClimatologyEnsemble`): members are analysis fields of the
  training period valid at the same time of day as the forecast
  (x_m = y(s_m), s_m drawn from that pool);
- **persistence** (:class:`PersistenceEnsemble`), persistence + past tendencies: the state
  at the initial time plus the change over the same lead of a training-period
  initialisation at the same time of day (x_m = y(t0) + y(s_m + τ) − y(s_m)).

Both draw their members without replacement while the pool holds at least as many
training times as members, and with replacement (warned of) beyond: repeated members
U-shape the rank histogram of even a calibrated pool and raise its fair CRPS by about a
K-th of its spread term (a pool of K), which would flatter any model held up beside it.
The window (:attr:`BaselineConfig.window`) keeps the pool within that many days of the year
of the valid (climatology) or initial (persistence) date, so that March is not forecast from
July: :data:`WINDOW_DAYS` by default on a training period of a year or more, the whole period
on a shorter one. Each (initial time, lead) draws from its own stream of ``seed``, so a rerun
or an append gives the same members.

:func:`generators.correction.baseline_store.baseline_to_store` writes them into a forecast
store like a generator's, so ``wxens verify`` scores them the same way and a model's scorecard
can be read beside them.
"""

from __future__ import annotations

import logging
import math
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pandas as pd
import xarray as xr

from pipeline.config_fields import settle_fields
from pipeline.errors import InputError, time_text
from pipeline.forecast_store import (
    FORECAST_DIMS,
)
from pipeline.registry import Registry
from pipeline.schema import LEAD_TIME, MEMBER, TIME
from pipeline.timeaxis import days_from_date

log = logging.getLogger(__name__)

WINDOW_DAYS = 15.0
"""The window, in days of the year either side, of a training period of a year or more when
none is given. A 31-day window holds the change of the seasonal mean across it small against
the day-to-day variability (centre to edge, at most 2π x 15 / 365 ≈ a quarter of the annual
amplitude, near the equinoxes, and far less on average) while holding about 31 x years
candidates per time of day, enough for 50 distinct members from two years on. A choice, not a
measured optimum."""

A_YEAR = pd.Timedelta(days=365)
"""A training period at least this long (its last day counted whole) gets :data:`WINDOW_DAYS`
by default: a shorter one cannot hold a season the window would leave out."""

BASELINES: Registry[type[Baseline]] = Registry("baseline")
"""Reference ensembles by name (``"climatology"``, ``"persistence"``)."""


@dataclass(frozen=True)
class BaselineConfig:
    """train_start, train_end: the period (inclusive) the members are drawn from.
    members: ensemble size. seed: the base of every (initial time, lead) stream.
    window_days: keep only training times within this many days of the year of the
    reference date; ``math.inf``: the whole period; None: :attr:`window` follows the
    period (:data:`WINDOW_DAYS` on a year or more, else the whole period)."""

    train_start: str
    train_end: str
    members: int = 50
    seed: int = 0
    window_days: float | None = None

    def __post_init__(self) -> None:
        settle_fields(self)
        if self.members < 1:
            raise InputError(f"members must be at least 1, got {self.members}")
        if self.window_days is not None and not self.window_days >= 0:  # NaN too
            raise InputError(
                f"window_days must be a number of days >= 0, or inf for the whole period; "
                f"got {self.window_days}"
            )
        for value in (self.train_start, self.train_end):
            try:
                pd.Timestamp(value)
            except ValueError:
                raise InputError(
                    f"training period bound {value!r} is not a time (2019-03-01, 2019-03-21T18)"
                ) from None
        if pd.Timestamp(self.train_start) > pd.Timestamp(self.train_end):
            raise InputError(
                f"the training period starts ({self.train_start}) after it ends "
                f"({self.train_end}); give START/END in order"
            )

    @property
    def last(self) -> pd.Timestamp:
        """The period's last instant: a date-only end (2019-03-21) takes in that whole day."""
        end = pd.Timestamp(self.train_end)
        return end + pd.Timedelta(days=1) - pd.Timedelta(1) if len(self.train_end) <= 10 else end

    @property
    def window_by_default(self) -> bool:
        """Whether :data:`WINDOW_DAYS` applies: no window given, and a year or more."""
        span = self.last + pd.Timedelta(1) - pd.Timestamp(self.train_start)
        return self.window_days is None and span >= A_YEAR

    @property
    def window(self) -> float | None:
        """The window in force, in days of the year either side (None: the whole period)."""
        if self.window_by_default:
            return WINDOW_DAYS
        return None if self.window_days in (None, math.inf) else self.window_days

    def describe_window(self) -> str:
        """The window in force, in words, saying whether it was the default."""
        if self.window is None:
            given = " (--window-days inf)" if self.window_days == math.inf else ""
            return f"the whole period{given}"
        default = " (the default for a training period of a year or more)"
        return f"{self.window:g} days of the year" + (default if self.window_by_default else "")


class Baseline(ABC):
    """A reference ensemble over the analysis ``dataset`` (dims ``time, [level], latitude,
    longitude``) drawn from the training period of ``config``."""

    name: ClassVar[str]

    def __init__(self, dataset: xr.Dataset, config: BaselineConfig):
        times = pd.DatetimeIndex(dataset[TIME].values)
        self.dataset, self.config = dataset, config
        # label slicing: a date-only end (2019-03-21) takes in that whole day
        self.train_times = times[times.slice_indexer(config.train_start, config.train_end)]
        if self.train_times.empty:
            raise InputError(
                f"the store holds no time in the training period {config.train_start} to "
                f"{config.train_end} (it covers {time_text(times[0])} to {time_text(times[-1])}); "
                "choose a period inside it"
            )
        end = config.last
        # beyond by a step or more: a time the store could hold and does not
        step = pd.Series(times).diff().min() if len(times) > 1 else pd.Timedelta(1)
        if pd.Timestamp(config.train_start) <= times[0] - step or end >= times[-1] + step:
            log.warning(
                "%s: the training period %s to %s reaches beyond the store (it covers %s to "
                "%s): members are drawn from %s to %s only",
                self.name, config.train_start, config.train_end, time_text(times[0]),
                time_text(times[-1]), time_text(self.train_times[0]),
                time_text(self.train_times[-1]),
            )  # fmt: skip

    @abstractmethod
    def pool(self, init: pd.Timestamp, lead: pd.Timedelta) -> pd.DatetimeIndex:
        """The training times the members of (init, lead) are drawn from."""

    @abstractmethod
    def reads(
        self, init: pd.Timestamp, lead: pd.Timedelta, picks: pd.DatetimeIndex
    ) -> pd.DatetimeIndex:
        """The times :meth:`fields` reads for these picks."""

    @abstractmethod
    def fields(
        self, source: xr.Dataset, init: pd.Timestamp, lead: pd.Timedelta, picks: pd.DatetimeIndex
    ) -> xr.Dataset:
        """The members (dim ``time`` of length M, one per pick) of (init, lead), read from
        ``source`` (the dataset, or the part of it holding :meth:`reads`)."""

    def missing_states(self, inits: pd.DatetimeIndex) -> pd.DatetimeIndex:
        """The initial times whose state the baseline needs and the store lacks (none)."""
        return inits[:0]

    def picks(
        self, init: pd.Timestamp, lead: pd.Timedelta, pool: pd.DatetimeIndex | None = None
    ) -> pd.DatetimeIndex:
        """The M training times drawn from :meth:`pool` for (init, lead), from its own stream
        of the seed: distinct while the pool holds M or more, else with replacement; an
        InputError naming the time and the fix when the pool is empty. ``pool``: that of
        (init, lead) if already known."""
        pool = self.pool(init, lead) if pool is None else pool
        if pool.empty:
            raise InputError(
                f"{self.name}: no training time fits the initial time {time_text(init)} and lead "
                f"{lead / pd.Timedelta(hours=1):g} h "
                f"(time of day {(init + lead).strftime('%H:%M')}, training "
                f"{self.config.train_start} to {self.config.train_end}, "
                f"{self.config.describe_window()}); widen the training period or the window"
            )
        rng = np.random.default_rng(_stream(self.config.seed, init, lead))
        members = self.config.members
        return pool[rng.choice(len(pool), size=members, replace=members > len(pool))]

    def ensemble(
        self,
        init: pd.Timestamp,
        leads: Sequence[pd.Timedelta],
        source: xr.Dataset | None = None,
    ) -> xr.Dataset:
        """Dims ``member, lead_time, [level], latitude, longitude`` for one initial time,
        read from ``source`` (default: the whole dataset)."""
        return self.assemble(init, {lead: self.picks(init, lead) for lead in leads}, source)

    def assemble(
        self,
        init: pd.Timestamp,
        picks: Mapping[pd.Timedelta, pd.DatetimeIndex],
        source: xr.Dataset | None = None,
    ) -> xr.Dataset:
        """:meth:`ensemble` from the :meth:`picks` already drawn for each lead."""
        source = self.dataset if source is None else source
        by_lead = []
        for lead, drawn in picks.items():
            members = self.fields(source, init, lead, drawn).rename({TIME: MEMBER})
            by_lead.append(members.drop_vars(MEMBER).assign_coords({LEAD_TIME: lead}))
        ensemble = xr.concat(by_lead, dim=LEAD_TIME).assign_coords(
            {MEMBER: np.arange(self.config.members)}
        )
        ensemble.attrs = {}  # the store's ingest state is not the forecast's
        return ensemble.transpose(*(d for d in FORECAST_DIMS if d in ensemble.dims))

    def within_window(self, times: pd.DatetimeIndex, reference: pd.Timestamp) -> np.ndarray:
        """Which ``times`` are within the config's window of ``reference``'s day of the
        year."""
        if self.config.window is None:
            return np.ones(len(times), dtype=bool)
        return days_from_date(times, reference) <= self.config.window


def _stream(seed: int, init: pd.Timestamp, lead: pd.Timedelta) -> np.random.SeedSequence:
    return np.random.SeedSequence([seed, init.value % 2**64, lead.value % 2**64])


def _same_time_of_day(times: pd.DatetimeIndex, reference: pd.Timestamp) -> np.ndarray:
    return (times - times.normalize()) == (reference - reference.normalize())


@BASELINES.register("climatology")
class ClimatologyEnsemble(Baseline):
    """Training-period fields valid at the forecast's time of day: x_m = y(s_m)."""

    name = "climatology"

    def pool(self, init: pd.Timestamp, lead: pd.Timedelta) -> pd.DatetimeIndex:
        valid, times = init + lead, self.train_times
        return times[_same_time_of_day(times, valid) & self.within_window(times, valid)]

    def reads(
        self, init: pd.Timestamp, lead: pd.Timedelta, picks: pd.DatetimeIndex
    ) -> pd.DatetimeIndex:
        return picks

    def fields(
        self, source: xr.Dataset, init: pd.Timestamp, lead: pd.Timedelta, picks: pd.DatetimeIndex
    ) -> xr.Dataset:
        return source.sel({TIME: picks})


@BASELINES.register("persistence")
class PersistenceEnsemble(Baseline):
    """Persistence + past tendencies: x_m = y(t0) + y(s_m + τ) − y(s_m), s_m a training
    initialisation at t0's time of day whose lead τ also falls in the training period."""

    name = "persistence"

    def pool(self, init: pd.Timestamp, lead: pd.Timedelta) -> pd.DatetimeIndex:
        times = self.train_times
        ends = (times + lead).isin(self.train_times)
        return times[_same_time_of_day(times, init) & ends & self.within_window(times, init)]

    def missing_states(self, inits: pd.DatetimeIndex) -> pd.DatetimeIndex:
        return inits[~inits.isin(pd.DatetimeIndex(self.dataset[TIME].values))]

    def reads(
        self, init: pd.Timestamp, lead: pd.Timedelta, picks: pd.DatetimeIndex
    ) -> pd.DatetimeIndex:
        return picks.union(picks + lead).union([init])

    def fields(
        self, source: xr.Dataset, init: pd.Timestamp, lead: pd.Timedelta, picks: pd.DatetimeIndex
    ) -> xr.Dataset:
        start = source.sel({TIME: picks})
        end = source.sel({TIME: picks + lead}).assign_coords({TIME: start[TIME]})
        return source.sel({TIME: init}, drop=True) + (end - start)
