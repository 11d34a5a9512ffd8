"""A reference ensemble of :mod:`generators.correction.baselines` drawn into a forecast store
like a generator's (:func:`baseline_to_store`), so ``wxens verify`` scores it the same way and a
model's scorecard can be read beside it: its provenance, the member count its pools hold
without repeats, and the warnings of pools too small or inside the training period. Apart from
the drawing of the members, which knows no store."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import asdict, replace
from pathlib import Path

import pandas as pd
import xarray as xr

from generators.correction.baselines import BASELINES, Baseline, BaselineConfig
from pipeline.errors import InputError, counted, time_text, times_text
from pipeline.forecast_store import (
    ForecastProvenance,
    check_extends,
    pending_init_times,
    source_attrs,
    write_forecast,
)
from pipeline.progress import tqdm
from pipeline.schema import INIT_TIME, TIME
from pipeline.store import AnalysisStore, open_store
from pipeline.timeaxis import fixed_step, refuse_off_step

log = logging.getLogger(__name__)

#: Bytes of members written to the forecast store at once (whole initial times).
WRITE_BYTES = 256 * 2**20


def baseline_provenance(name: str, config: BaselineConfig) -> ForecastProvenance:
    """The forecast-store provenance of a baseline: its name, a digest of its config, and
    the config itself as the "sampler" (so one store never mixes two baselines, and a
    refused append names the setting that differs)."""
    # "draw": members were drawn with replacement from every pool before it was recorded
    # the window in force: a default one differs from the whole period an older wxens drew
    settings = {**asdict(config), "window_days": config.window}
    spec = json.dumps({"baseline": name, **settings, "draw": "distinct"}, sort_keys=True)
    return ForecastProvenance(
        generator=f"baseline:{name}",
        checkpoint_digest=hashlib.sha256(spec.encode()).hexdigest()[:16],
        sampler=f"{name}:train={config.train_start}/{config.train_end},"
        f"window_days={config.window},members={config.members}",
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
        "flatters a model held up beside it; draw %s or fewer, members= (--members), or from "
        "a longer training period, train_start=/train_end= (--train), or a wider window, "
        "window_days= (--window-days)",
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
    on the time of day and lead only: one count for every initial time, run after run; with
    a window, the pools around the period's first day stand for the others, which hold
    about as many: the same days of the year, give or take part of one year's)."""
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
    step = fixed_step(analysis.native_step, analysis.path)  # a lead is a duration, not a month
    dataset = analysis.dataset
    baseline = BASELINES[name](dataset, config)
    inits = pd.DatetimeIndex(sorted(set(pd.DatetimeIndex(inits))))
    leads = [pd.Timedelta(hours=h) for h in leads_hours]
    if inits.empty or not leads or min(leads) <= pd.Timedelta(0):
        raise InputError(f"give at least one initial time and positive leads, got {leads_hours}")
    refuse_off_step(analysis.path, inits, pd.DatetimeIndex(dataset[TIME].values), step)
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
    log.info(
        "%s: members drawn from %s to %s, %s",
        name, config.train_start, config.train_end, config.describe_window(),
    )  # fmt: skip
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
            period = (config.train_start, config.train_end)
            drawn.attrs.update(source_attrs(analysis.path, period, config.describe_window()))
            written = written.append(write_forecast(out, drawn, provenance, replace=recompute))
            bar.update(len(batch))
    return written
