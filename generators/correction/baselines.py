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
``window_days`` keeps the pool within that many days of the year
of the valid (climatology) or initial (persistence) date, which a multi-year archive needs
so that March is not forecast from July. Each (initial time, lead) draws from its own stream of
``seed``, so a rerun or an append gives the same members.

:func:`baseline_to_store` writes them into a forecast store like a generator's, so
``wxens verify`` scores them the same way and a model's scorecard can be read beside them.
"""

from __future__ import annotations

import hashlib
import json
import logging
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import ClassVar

import numpy as np
import pandas as pd
import xarray as xr

from pipeline.config_fields import settle_fields
from pipeline.errors import InputError, counted, time_text, times_text
from pipeline.forecast_store import (
    FORECAST_DIMS,
    ForecastProvenance,
    check_extends,
    pending_init_times,
    source_attrs,
    write_forecast,
)
from pipeline.progress import tqdm
from pipeline.registry import Registry
from pipeline.schema import INIT_TIME, LEAD_TIME, MEMBER, TIME
from pipeline.store import AnalysisStore, open_store
from pipeline.timeaxis import days_from_date, fixed_step

log = logging.getLogger(__name__)

#: Bytes of members written to the forecast store at once (whole initial times).
WRITE_BYTES = 256 * 2**20

BASELINES: Registry[type[Baseline]] = Registry("baseline")
"""Reference ensembles by name (``"climatology"``, ``"persistence"``)."""


@dataclass(frozen=True)
class BaselineConfig:
    """train_start, train_end: the period (inclusive) the members are drawn from.
    members: ensemble size. seed: the base of every (initial time, lead) stream.
    window_days: keep only training times within this many days of the year of the
    reference date (None: the whole period)."""

    train_start: str
    train_end: str
    members: int = 50
    seed: int = 0
    window_days: float | None = None

    def __post_init__(self) -> None:
        settle_fields(self)
        if self.members < 1:
            raise InputError(f"members must be at least 1, got {self.members}")
        if self.window_days is not None and self.window_days < 0:
            raise InputError(f"window_days must be >= 0, got {self.window_days}")
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
        end = pd.Timestamp(config.train_end)
        if len(config.train_end) <= 10:  # a date-only end takes in that whole day
            end += pd.Timedelta(days=1) - pd.Timedelta(1)
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
                f"{_describe_window(self.config.window_days)}); widen the training period or the "
                "window"
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
        """Which ``times`` are within ``window_days`` of ``reference``'s day of the year."""
        if self.config.window_days is None:
            return np.ones(len(times), dtype=bool)
        return days_from_date(times, reference) <= self.config.window_days


def _describe_window(window_days: float | None) -> str:
    return "no window" if window_days is None else f"window {window_days:g} days"


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


def baseline_provenance(name: str, config: BaselineConfig) -> ForecastProvenance:
    """The forecast-store provenance of a baseline: its name, a digest of its config, and
    the config itself as the "sampler" (so one store never mixes two baselines, and a
    refused append names the setting that differs)."""
    # "draw": members were drawn with replacement from every pool before it was recorded
    spec = json.dumps({"baseline": name, **asdict(config), "draw": "distinct"}, sort_keys=True)
    return ForecastProvenance(
        generator=f"baseline:{name}",
        checkpoint_digest=hashlib.sha256(spec.encode()).hexdigest()[:16],
        sampler=f"{name}:train={config.train_start}/{config.train_end},"
        f"window_days={config.window_days},members={config.members}",
        nfe=0,
        seed=config.seed,
    )


def _warn_small_pools(
    baseline: Baseline, sizes: Mapping[tuple[pd.Timestamp, pd.Timedelta], int]
) -> None:
    """Warn once when some (initial time, lead) pool holds fewer training times than the
    members, which are then drawn with replacement and repeat."""
    members = baseline.config.members
    (init, lead), smallest = min(sizes.items(), key=lambda item: item[1])
    if smallest >= members:
        return
    log.warning(
        "%d of %d (initial time, lead) pools hold fewer training times than the %d members "
        "(the smallest, %s at lead %g h, %s), so their members repeat: "
        "that U-shapes the %s baseline's rank histogram and raises its fair CRPS, which "
        "flatters a model held up beside it; draw %s or fewer (--members), or "
        "from a longer training period or wider window (--train, --window-days)",
        sum(size < members for size in sizes.values()),
        len(sizes),
        members,
        time_text(init),
        lead / pd.Timedelta(hours=1),
        counted(smallest, "training time"),
        baseline.name,
        counted(smallest, "member"),
    )


def without_repeats(
    name: str, store: AnalysisStore, config: BaselineConfig, leads_hours: Sequence[float]
) -> BaselineConfig:
    """``config`` with no more members than the smallest pool of any time of day of its
    training period at ``leads_hours`` holds, so none repeats (with no window a pool depends
    on the time of day and lead only: one count for every initial time, run after run)."""
    baseline = BASELINES[name](store.dataset, config)
    times = baseline.train_times
    days = times[~pd.Index(times - times.normalize()).duplicated()]  # each time of day
    smallest = min(len(baseline.pool(t, pd.Timedelta(hours=h))) for t in days for h in leads_hours)
    if not 0 < smallest < config.members:  # an empty pool is refused when it is drawn
        return config
    log.info(
        "%s: %d members, not %d: the smallest pool of %s to %s holds %d distinct times, "
        "and repeated members would handicap the baseline",
        name, smallest, config.members, config.train_start, config.train_end, smallest,
    )  # fmt: skip
    return replace(config, members=smallest)


def baseline_to_store(
    name: str,
    store: str | Path | AnalysisStore,
    config: BaselineConfig,
    inits: Sequence[pd.Timestamp] | pd.DatetimeIndex,
    leads_hours: Sequence[float],
    out: str | Path,
    *,
    progress: bool = True,
    recompute: bool = False,
) -> pd.DatetimeIndex:
    """Draw the baseline ``name`` for ``inits`` and ``leads_hours`` from the analysis store
    ``store`` (or opened) into the forecast store ``out``, whole initial times at a time (up to
    :data:`WRITE_BYTES`). The initial times ``out`` holds completely are skipped, their members
    being those a draw repeats, unless ``recompute`` (drawn again in their own region: after
    the analyses were corrected, say); a store of another baseline, training period, member
    count, seed, window or leads is refused, not skipped. Every input is checked before any
    write; an initial or valid time inside the training period is logged as a warning (the
    baseline has then seen the weather it forecasts). Returns the initial times written."""
    analysis = store if isinstance(store, AnalysisStore) else open_store(store)  # opened once
    fixed_step(analysis.native_step, analysis.path)  # a lead is a duration, not a month
    dataset = analysis.dataset
    baseline = BASELINES[name](dataset, config)
    inits = pd.DatetimeIndex(sorted(set(pd.DatetimeIndex(inits))))
    leads = [pd.Timedelta(hours=h) for h in leads_hours]
    if inits.empty or not leads or min(leads) <= pd.Timedelta(0):
        raise InputError(f"give at least one initial time and positive leads, got {leads_hours}")
    provenance = baseline_provenance(name, config)
    check_extends(out, provenance, config.members, leads_hours)  # before any is skipped
    inits = pending_init_times(inits, out, recompute, "wxens baseline --recompute")
    if inits.empty:
        return inits
    missing = baseline.missing_states(inits)
    if len(missing):
        raise InputError(
            f"{analysis.path} holds no state at the initial time(s) {times_text(missing[:5])}; "
            f"{name} starts from it: ingest those times first"
        )
    # every draw (and so every pool's check) before anything is written
    draws: dict[pd.Timestamp, dict[pd.Timedelta, pd.DatetimeIndex]] = {t: {} for t in inits}
    sizes = {}  # of each pool: computed once, not kept (a pool may hold years of times)
    for t in inits:
        for lead in leads:
            pool = baseline.pool(t, lead)
            draws[t][lead], sizes[t, lead] = baseline.picks(t, lead, pool), len(pool)
    first, last = baseline.train_times[[0, -1]]
    seen = [t for t in inits if any(first <= t + lead <= last for lead in leads)]
    if seen:
        log.warning(
            "%s forecast weather of the training period %s to %s: the "
            "baseline has seen it, so its scores there are too good",
            counted(len(seen), "initial time"),
            config.train_start,
            config.train_end,
        )
    _warn_small_pools(baseline, sizes)
    field_bytes = sum(v.dtype.itemsize * v[{TIME: 0}].size for v in dataset.data_vars.values())
    per_write = max(1, WRITE_BYTES // (field_bytes * config.members * len(leads)))
    written = inits[:0]
    with tqdm(total=len(inits), desc=f"{name} baseline", unit="init", disable=not progress) as bar:
        for i in range(0, len(inits), per_write):
            batch = inits[i : i + per_write]
            reads = [baseline.reads(t, lead, draws[t][lead]) for t in batch for lead in leads]
            # one read of every field the batch draws (a few thousand lazy selections of
            # the store cost far more in dask overhead than the data)
            source = dataset.sel({TIME: reads[0].append(reads[1:]).unique().sort_values()}).load()
            ensembles = [baseline.assemble(t, draws[t], source) for t in batch]
            drawn = xr.concat(ensembles, pd.Index(batch, name=INIT_TIME)).compute()
            drawn.attrs.update(source_attrs(analysis.path, (config.train_start, config.train_end)))
            written = written.append(write_forecast(out, drawn, provenance, replace=recompute))
            bar.update(len(batch))
    return written
