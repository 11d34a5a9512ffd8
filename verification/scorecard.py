"""The whole verification of one forecast against one analysis, as an ``xr.DataTree``.

:func:`verify` aligns the forecast with the truth on valid time, stacks variables and
levels into channels (``z500``, ``t2m``), builds every score lazily and computes them in
one pass over the data (each forecast chunk is read once), then runs the physics checks
and spectra on a few init times. The tree it returns (and :func:`write_scores` saves as
NetCDF groups, reopened with ``xr.open_datatree``):

``/scorecard``       (variable, lead_time): every registered score, rank-histogram
                     flatness (χ², δ, max/min ratio and its perfect-model noise floor),
                     Brier scores, points verified and truth missing;
                     ``tree["scorecard"].to_dataset().to_dataframe()`` is the tidy
                     table (one row per variable and lead, one column per score).
``/rank_histogram``  (variable, lead_time, rank) counts.
``/reliability``     (variable, lead_time, event, forecast_probability) tables.
``/multivariate``    (lead_time) energy score across channels.
``/spectra``         (variable, lead_time, wavenumber) member and truth power.
``/physics``         (check, member) scores and pass/fail; tolerances per check.
``/maps``            (variable, member, latitude, longitude) a few members and the
                     truth of the first init time at the longest lead, for plots.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import dask
import numpy as np
import pandas as pd
import xarray as xr

from pipeline.adapters import AlignedForecast, align_with_truth
from pipeline.errors import InputError
from pipeline.schema import CHANNEL, INIT_TIME, LAT, LEAD_TIME, LON, MEMBER, to_channels
from verification import events as ve
from verification import physics as _physics_checks  # noqa: F401  (registers the checks)
from verification import ranks as vr
from verification import scores as vs
from verification.aggregation import count_valid
from verification.base import CHECKS, SCORES
from verification.resampling import score_intervals, score_parts
from verification.spectra import power_spectrum

log = logging.getLogger(__name__)

VARIABLE = "variable"
EVENT = "event"

SCORE_CHUNK_BYTES = 16 * 2**20
"""Target size of the forecast chunks the scores run on. A forecast store holds one chunk
per (init_time, lead_time); on a small grid a task per such chunk and score costs more to
schedule than to compute, so :func:`verify` groups leads, then initial times, up to this
size (:func:`score_chunks`). The demo's forecast (36 initial times x 50 members x 5 leads
on 33 x 49), beside its persistence baseline, verified on a 2-worker LocalCluster in 153 s
with a chunk per (init, lead) and in 24 s grouped (with threads: 27 s and 13 s)."""


@dataclass(frozen=True)
class VerifyConfig:
    """What :func:`verify` computes.

    scores:           registered score names (default: all of :data:`verification.base.SCORES`).
    mean_over:        dims every score is averaged over (cos-latitude weighted); the
                      scorecard keeps the others (lead time, variable).
    seed:             tie-breaking seed of the rank histograms.
    event_quantiles:  Brier/reliability events ``value > threshold``, the threshold the
                      given quantile of the truth per variable (pooled over the physics
                      init times, lead times and the grid).
    checks:           physics checks to run (default: all registered that apply).
    physics_init_times: how many init times (evenly spaced) the physics checks, spectra,
                      thresholds and energy-score scaling use; 0 turns physics off.
    energy_score:     compute the multivariate energy score (O(M²) per point).
    map_members:      members kept in ``/maps`` for the member-map figure.
    interval_level:   coverage of the intervals of fair CRPS and spread-skill ratio
                      (``*_low``, ``*_high`` in the scorecard; 0 turns them off), from the
                      block bootstrap of init times (:mod:`verification.resampling`).
    interval_block:   the blocks resampled whole: init times that share this floor
                      (a pandas frequency; ``1D``: the init times of one day).
    interval_draws:   bootstrap resamples.
    perfect_model_stand_ins: members that in turn stand in for the truth against the
                      others (:func:`verification.ranks.perfect_model_rank_histogram`)
                      for ``rank_max_min_perfect_model``, the noise floor of the rank
                      max/min ratio; 0 skips it (needs at least 3 members).
    error_surrogate_replicas: replicas of the rank histogram of a reliable ensemble whose
                      fields correlate in space as the ensemble-mean errors do
                      (:func:`verification.ranks.error_surrogate_rank_histogram`), for
                      ``rank_max_min_error_surrogate``, the floor of the rank max/min
                      ratio where errors are coherent over the domain; 0 skips it (the
                      default: it holds the error fields in memory and costs
                      replicas · N² · M · points for N init times).
    """

    scores: tuple[str, ...] = ()
    mean_over: tuple[str, ...] = (INIT_TIME, LAT, LON)
    seed: int = 0
    event_quantiles: tuple[float, ...] = (0.1, 0.9)
    checks: tuple[str, ...] = ()
    physics_init_times: int = 8
    energy_score: bool = True
    map_members: int = 3
    interval_level: float = 0.9
    interval_block: str = "1D"
    interval_draws: int = 1000
    perfect_model_stand_ins: int = 5
    error_surrogate_replicas: int = 0
    progress: bool = field(default=True, compare=False)

    def __post_init__(self) -> None:
        for name in self.scores:
            SCORES[name]  # an unknown name is an InputError listing the known ones
        for name in self.checks:
            CHECKS[name]
        if any(not 0 < q < 1 for q in self.event_quantiles):
            raise InputError(
                f"event_quantiles {self.event_quantiles} must lie strictly between 0 and 1"
            )
        if LEAD_TIME in self.mean_over or MEMBER in self.mean_over:
            raise InputError(
                f"mean_over={self.mean_over}: the scorecard is by lead time and scores reduce "
                f"members themselves; average over init_time and the grid only"
            )
        if self.physics_init_times < 0:
            raise InputError(f"physics_init_times={self.physics_init_times} must be >= 0")
        if not 0 <= self.interval_level < 1:
            raise InputError(
                f"interval_level={self.interval_level}: give a coverage in (0, 1), or 0 for "
                "no intervals"
            )
        try:
            pd.tseries.frequencies.to_offset(self.interval_block)
        except ValueError as error:
            raise InputError(
                f"interval_block={self.interval_block!r} is not a pandas frequency ({error}); "
                "use e.g. '1D' (init times of one day) or '6h'"
            ) from None
        if self.interval_draws < 1:
            raise InputError(f"interval_draws={self.interval_draws} must be >= 1")
        if self.perfect_model_stand_ins < 0:
            raise InputError(
                f"perfect_model_stand_ins={self.perfect_model_stand_ins} must be >= 0 "
                "(0 skips the perfect-model floor of the rank max/min ratio)"
            )
        if self.error_surrogate_replicas < 0:
            raise InputError(
                f"error_surrogate_replicas={self.error_surrogate_replicas} must be >= 0 "
                "(0 skips the error-surrogate floor of the rank max/min ratio)"
            )


def verify(
    forecast: xr.Dataset,
    truth: xr.Dataset,
    config: VerifyConfig | None = None,
    reference: xr.Dataset | None = None,
) -> xr.DataTree:
    """Score ``forecast`` (any registered layout) against the analysis ``truth``.

    ``reference``: another ensemble (a baseline, the operational model) holding at least
    the forecast's initial times, leads, variables and grid; the scorecard then adds its
    fair CRPS on them, the skill score 1 − CRPS/CRPS_ref and the block-bootstrap
    interval of the paired difference CRPS − CRPS_ref (:func:`_against_reference`).

    Returns the tree described in the module docstring. Lazy inputs are computed chunk
    by chunk in a single pass; memory stays at a few forecast chunks per worker.
    """
    config = config or VerifyConfig()
    aligned = align_with_truth(forecast, truth)
    f = to_channels(aligned.forecast).rename({CHANNEL: VARIABLE})
    t = to_channels(aligned.truth).rename({CHANNEL: VARIABLE})
    if f.chunks is not None:
        chunks = score_chunks(f)
        f, t = f.chunk(chunks), t.chunk(chunks)
    grid = tuple(d for d in config.mean_over if d != INIT_TIME)
    sample = _physics_sample(aligned, config.physics_init_times)
    thresholds = _event_thresholds(t, sample, config.event_quantiles)

    lazy: dict[str, Any] = {}
    for name in config.scores or tuple(SCORES):
        lazy[name] = SCORES[name].function(f, t, mean_over=config.mean_over)
    lazy["rank_histogram"] = vr.rank_histogram(f, t, over=config.mean_over, seed=config.seed)
    if config.perfect_model_stand_ins and f.sizes[MEMBER] >= 3:
        lazy["perfect_model_rank_histogram"] = vr.perfect_model_rank_histogram(
            f, t, over=config.mean_over, stand_ins=config.perfect_model_stand_ins, seed=config.seed
        )
    surrogate = config.error_surrogate_replicas and INIT_TIME in config.mean_over and grid
    if surrogate:
        lazy["error_fields"] = f.mean(MEMBER) - t
    lazy["brier_score"] = ve.brier_score(f, t, thresholds, mean_over=config.mean_over)
    lazy["reliability"] = ve.reliability(f, t, thresholds, over=config.mean_over)
    lazy["n_verified"] = count_valid(t, config.mean_over)
    if config.energy_score:
        scale = (
            t.isel({INIT_TIME: sample}).std([d for d in t.dims if d != VARIABLE]) if sample else 1.0
        )
        lazy["energy_score"] = vs.energy_score(
            f / scale, t / scale, component_dim=VARIABLE, mean_over=config.mean_over
        )
    intervals = config.interval_level > 0 and INIT_TIME in config.mean_over
    if intervals:
        lazy["per_init"] = score_parts(f, t, mean_over=grid)
    if reference is not None:
        r = _reference_channels(reference, truth, f, config)
        lazy["paired_crps"] = xr.Dataset(
            {
                "forecast": lazy["per_init"]["fair_crps"]
                if intervals
                else vs.fair_crps(f, t, mean_over=grid),
                "reference": vs.fair_crps(r, t, mean_over=grid),
            }
        )
    (computed,) = _compute(lazy, progress=config.progress)
    if surrogate:
        computed["error_surrogate_rank_histogram"] = vr.error_surrogate_rank_histogram(
            computed.pop("error_fields"),
            f.sizes[MEMBER],
            field_dims=grid,
            replicas=config.error_surrogate_replicas,
            seed=config.seed,
        )

    card = _scorecard(computed, t, config)
    if intervals:
        card = card.merge(_intervals(computed["per_init"], f.sizes[MEMBER], config))
    if reference is not None:
        per_init = computed["per_init"] if intervals else None
        card = card.merge(
            _against_reference(computed["paired_crps"], per_init, f.sizes[MEMBER], config)
        )
    tree = {
        "/scorecard": card,
        "/rank_histogram": _variable_first(computed["rank_histogram"].to_dataset()),
        "/reliability": _variable_first(computed["reliability"].rename({ve.THRESHOLD: EVENT})),
    }
    if config.energy_score:
        tree["/multivariate"] = computed["energy_score"].to_dataset()
    if sample:
        subset = {INIT_TIME: sample}
        tree["/spectra"] = _spectra(f.isel(subset), t.isel(subset))
        tree["/physics"] = _physics(aligned, subset, config.checks)
        tree["/maps"] = _maps(f, t, config.map_members)
    root = xr.Dataset(
        attrs={
            "n_members": f.sizes[MEMBER],
            "n_init_times": f.sizes[INIT_TIME],
            "missing_valid_times": [str(v) for v in aligned.missing_valid_times],
            "config": repr(asdict(config)),
            "mean_over": list(config.mean_over),
            "spread_skill_ratio": "with the finite-ensemble factor sqrt((M+1)/M)",
            "crps": "fair_crps: unbiased (WeatherBench 2); ecdf_crps: empirical (xskillscore)",
            # what made the forecast (a wxens store's provenance: model, sampler,
            # calibration, bias correction)
            **{k: v for k, v in forecast.attrs.items() if str(k).startswith("wxens_")},
            **(
                {}
                if reference is None
                else {
                    f"reference_{k}": v
                    for k, v in reference.attrs.items()
                    if str(k).startswith("wxens_")
                }
            ),
        }
    )
    return xr.DataTree.from_dict({"/": root, **tree})


def score_chunks(forecast: xr.DataArray) -> dict[str, int]:
    """Dask chunks of ``init_time`` and ``lead_time`` for scoring ``forecast`` (dims
    ``init_time, member, lead_time, variable, latitude, longitude``): all leads of as many
    initial times as fit in :data:`SCORE_CHUNK_BYTES` (at least one), or, where one initial
    time's leads exceed it, as many leads as fit (at least one)."""
    n_init, n_lead = forecast.sizes[INIT_TIME], forecast.sizes[LEAD_TIME]
    cell = forecast.nbytes / (n_init * n_lead * forecast.sizes[VARIABLE])
    leads = int(min(n_lead, max(1, SCORE_CHUNK_BYTES // cell)))
    inits = int(max(1, SCORE_CHUNK_BYTES // (cell * n_lead))) if leads == n_lead else 1
    return {INIT_TIME: min(inits, n_init), LEAD_TIME: leads}


def _compute(lazy: dict[str, Any], *, progress: bool) -> tuple[dict[str, Any]]:
    """Compute every lazy result together (shared input chunks are read once)."""
    if progress and _distributed_client() is None:
        from dask.diagnostics import ProgressBar

        with ProgressBar(dt=1.0):
            return dask.compute(lazy)
    return dask.compute(lazy)


def _distributed_client() -> Any:
    try:
        from distributed import get_client

        return get_client()
    except (ImportError, ValueError):
        return None


def _physics_sample(aligned: AlignedForecast, n: int) -> list[int]:
    """Indices of up to ``n`` evenly spaced init times."""
    total = aligned.forecast.sizes[INIT_TIME]
    if n == 0:
        return []
    return sorted(set(np.linspace(0, total - 1, min(n, total)).round().astype(int).tolist()))


def _event_thresholds(
    t: xr.DataArray, sample: list[int], quantiles: Iterable[float]
) -> xr.DataArray:
    """Per-variable thresholds: quantiles of the truth over the sample (all if no sample)."""
    part = t.isel({INIT_TIME: sample}) if sample else t
    values = part.quantile(
        list(quantiles), dim=[d for d in part.dims if d != VARIABLE], skipna=True
    )
    values = values.compute().rename({"quantile": ve.THRESHOLD})
    return values.assign_coords({ve.THRESHOLD: [f"q{round(100 * q):02d}" for q in quantiles]})


RANK_FLOORS = {  # card entry: (the histograms it reads, the dim of their draws, long_name)
    "rank_max_min_perfect_model": (
        "perfect_model_rank_histogram",
        "stand_in",
        "rank max/min ratio of a perfectly reliable ensemble of this size, sample and "
        "dependence (median over members standing in for the truth): the noise floor of "
        "rank_max_min",
    ),
    "rank_max_min_error_surrogate": (
        "error_surrogate_rank_histogram",
        "replica",
        "rank max/min ratio of a reliable ensemble of this size and sample whose fields "
        "correlate in space as the ensemble-mean errors do (median over replicas): the floor "
        "of rank_max_min where errors are coherent over the domain",
    ),
}


def _scorecard(computed: dict[str, Any], t: xr.DataArray, config: VerifyConfig) -> xr.Dataset:
    card = xr.Dataset()
    for name in config.scores or tuple(SCORES):
        spec = SCORES[name]
        card[name] = computed[name].assign_attrs(
            long_name=spec.long_name, units=spec.units, best=spec.best
        )
    flatness = vr.rank_flatness(computed["rank_histogram"])
    card["rank_chi_square"] = flatness["chi_square"].assign_attrs(long_name="rank histogram χ²")
    card["rank_p_value"] = flatness["p_value"].assign_attrs(
        long_name="rank histogram flatness p-value (independent ranks assumed)"
    )
    card["rank_delta"] = flatness["delta"].assign_attrs(long_name="Candille-Talagrand δ", best=1.0)
    card["rank_max_min"] = vr.rank_max_min_ratio(computed["rank_histogram"]).assign_attrs(
        long_name="rank histogram max/min bin ratio", best=1.0
    )
    for name, (histograms, dim, long_name) in RANK_FLOORS.items():
        if histograms in computed:
            floor = vr.rank_max_min_ratio(computed[histograms]).median(dim)
            card[name] = floor.assign_attrs(long_name=long_name, best=1.0)
    brier = computed["brier_score"]
    for event in brier[ve.THRESHOLD].values:
        card[f"brier_score_{event}"] = brier.sel({ve.THRESHOLD: event}, drop=True).assign_attrs(
            long_name=f"Brier score of value > the truth's {event} quantile", best=0.0
        )
    total = np.prod([t.sizes[d] for d in config.mean_over])
    card["n_verified"] = computed["n_verified"].assign_attrs(long_name="points verified")
    card["n_missing_truth"] = (total - computed["n_verified"]).assign_attrs(
        long_name="points skipped: truth missing"
    )
    return _variable_first(card)


def _intervals(per_init: xr.Dataset, members: int, config: VerifyConfig) -> xr.Dataset:
    """``fair_crps_low/high`` and ``spread_skill_ratio_low/high``: the block-bootstrap
    interval of each over the init times (:func:`verification.resampling.score_intervals`)."""
    blocks = pd.DatetimeIndex(per_init[INIT_TIME].values).floor(config.interval_block)
    bounds = score_intervals(
        per_init,
        members,
        blocks,
        dim=INIT_TIME,
        level=config.interval_level,
        draws=config.interval_draws,
        seed=config.seed,
    )
    what = (
        f"{config.interval_level:.0%} block-bootstrap interval, init times resampled in "
        f"{config.interval_block} blocks ({blocks.nunique()} of them), {config.interval_draws} draws"
    )
    out = xr.Dataset()
    for name in bounds.data_vars:
        for i, side in enumerate(("low", "high")):
            out[f"{name}_{side}"] = (
                bounds[name]
                .isel(quantile=i, drop=True)
                .assign_attrs(long_name=f"{SCORES[name].long_name}: {side} end of the {what}")
            )
    return _variable_first(out)


def _reference_channels(
    reference: xr.Dataset, truth: xr.Dataset, f: xr.DataArray, config: VerifyConfig
) -> xr.DataArray:
    """The reference ensemble as channels on the forecast's initial times, leads and
    variables (both aligned with the truth's grid); an InputError naming what it lacks
    otherwise."""
    if INIT_TIME not in config.mean_over:
        raise InputError(
            f"mean_over={config.mean_over}: a comparison with a reference pairs the two "
            "forecasts initial time by initial time; average over init_time too"
        )
    try:
        aligned = align_with_truth(reference, truth)
    except InputError as err:
        raise InputError(f"the reference ensemble: {err}") from None
    r = to_channels(aligned.forecast).rename({CHANNEL: VARIABLE})
    for dim in (INIT_TIME, LEAD_TIME, VARIABLE):
        lacking = np.setdiff1d(f[dim].values, r[dim].values)
        if lacking.size:
            shown = ", ".join(map(str, lacking[:3])) + (" ..." if lacking.size > 3 else "")
            raise InputError(
                f"the reference lacks {lacking.size} {dim} value(s) of the forecast ({shown}); "
                "draw it for the same initial times, leads and variables (wxens baseline)"
            )
    r = r.sel({INIT_TIME: f[INIT_TIME], LEAD_TIME: f[LEAD_TIME], VARIABLE: f[VARIABLE]})
    if r.chunks is not None:
        r = r.chunk(score_chunks(f))  # as the forecast and truth are
    return r.drop_vars([c for c in r.coords if c not in r.dims]).assign_coords(
        {LAT: f[LAT], LON: f[LON]}
    )


def _against_reference(
    paired: xr.Dataset, per_init: xr.Dataset | None, members: int, config: VerifyConfig
) -> xr.Dataset:
    """From the per-init grid-mean fair CRPS of the forecast and the reference:
    ``reference_fair_crps`` (its mean over init times), ``fair_crps_skill_score``
    1 − mean(CRPS)/mean(CRPS_ref) (> 0: better than the reference), and with the
    forecast's ``per_init`` parts (intervals on) ``fair_crps_minus_reference_low/high``:
    :func:`_intervals` with the per-init difference in place of the CRPS, whose resampled
    mean is the paired difference (both forecasts share each resample)."""
    means = paired.mean(INIT_TIME, skipna=True)
    out = xr.Dataset(
        {
            "reference_fair_crps": means["reference"].assign_attrs(
                long_name="fair CRPS of the reference on the same init times", best=0.0
            ),
            "fair_crps_skill_score": xr.DataArray(
                1 - means["forecast"] / means["reference"],
                attrs={
                    "long_name": "fair CRPS skill score against the reference, 1 − CRPS/CRPS_ref",
                    "units": "1",
                    "best": 1.0,
                },
            ),
        }
    )
    if per_init is not None:
        difference = per_init.assign(fair_crps=paired["forecast"] - paired["reference"])
        bounds = _intervals(difference, members, config)
        for side in ("low", "high"):
            out[f"fair_crps_minus_reference_{side}"] = bounds[f"fair_crps_{side}"].assign_attrs(
                long_name=f"fair CRPS minus the reference's: {side} end of the interval of "
                f"fair_crps_{side} (same blocks, draws and level)"
            )
    return _variable_first(out)


def _variable_first(ds: xr.Dataset) -> xr.Dataset:
    return ds.transpose(*[d for d in (VARIABLE, LEAD_TIME) if d in ds.dims], ...)


def _spectra(f: xr.DataArray, t: xr.DataArray) -> xr.Dataset:
    """Power spectra of members (averaged over members and init times) and of the truth."""
    forecast_power = power_spectrum(f).mean([MEMBER, INIT_TIME])
    truth_power = power_spectrum(t).mean(INIT_TIME)
    ds = xr.Dataset({"forecast_power": forecast_power, "truth_power": truth_power}).compute()
    return _variable_first(ds.assign(spectral_ratio=ds.forecast_power / ds.truth_power))


def _physics(
    aligned: AlignedForecast, subset: dict[str, list[int]], names: tuple[str, ...]
) -> xr.Dataset:
    forecast, truth, initial = (
        aligned.forecast.isel(subset),
        aligned.truth.isel(subset),
        aligned.initial.isel(subset),
    )
    results, skipped = [], []
    for name in names or tuple(CHECKS):
        check = CHECKS[name]()
        if not check.applies(forecast):
            skipped.append(name)
            continue
        log.info("physics check %s", name)
        results.append(check(forecast, truth, initial))
    if not results:
        return xr.Dataset(attrs={"not_applicable": skipped})
    return xr.Dataset(
        {
            "member_score": xr.concat([r.member_score for r in results], dim="check"),
            "passed": xr.concat([r.passed for r in results], dim="check"),
            "truth_score": ("check", [r.truth_score for r in results]),
            "tolerance": ("check", [r.tolerance for r in results]),
            "tolerance_rule": ("check", [r.tolerance_rule for r in results]),
            "description": ("check", [r.description for r in results]),
            "units": ("check", [r.units for r in results]),
        },
        coords={"check": [r.name for r in results]},
        attrs={"not_applicable": skipped},
    )


def _maps(f: xr.DataArray, t: xr.DataArray, n_members: int) -> xr.Dataset:
    pick = {INIT_TIME: 0, LEAD_TIME: -1}
    members = f.isel(pick).isel({MEMBER: slice(0, n_members)})
    return xr.Dataset({"forecast": members, "truth": t.isel(pick)}).compute()


@contextlib.contextmanager
def atomic_output(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it to ``path``.

    A failure (or an interrupt) removes the temporary file, so ``path`` is either the
    previous file or the complete new one, never half-written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=path.suffix, dir=path.parent, prefix=f".{path.name}.")
    os.close(fd)
    try:
        yield Path(tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def write_scores(tree: xr.DataTree, path: str | Path) -> Path:
    """Write the tree as NetCDF groups (reopen with ``xr.open_datatree``), atomically."""
    with atomic_output(path) as tmp:
        _encodable(tree).to_netcdf(tmp, engine="netcdf4")
    return Path(path)


def _encodable(tree: xr.DataTree) -> xr.DataTree:
    """Attributes NetCDF can store: lists of strings joined, booleans as ints."""

    def clean(ds: xr.Dataset) -> xr.Dataset:
        ds = ds.copy()
        for obj in (ds, *ds.variables.values()):
            obj.attrs = {k: _attr(v) for k, v in obj.attrs.items()}
        return ds

    return tree.map_over_datasets(clean)


def _attr(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return "; ".join(map(str, value)) if value else ""
    if isinstance(value, bool | np.bool_):
        return int(value)
    return value
