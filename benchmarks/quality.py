"""Quality experiments of the generators issue: synthetic source against its oracle, the UK
t2m sample against the two baselines, flow matching against EDM, CRPS against NFE, and a
10-day synthetic rollout. Writes JSON and a markdown table per experiment into
``benchmarks/results/`` (``quality_synthetic.*``, ``quality_uk.*``).

Every score comes from :mod:`verification.scores` and :mod:`verification.ranks`: fair CRPS
(cos-latitude-weighted mean over initial times and grid), spread-skill ratio with the
finite-ensemble factor sqrt((M+1)/M), rank histogram (random tie-breaking) summarised by
its max/min bin ratio.

Training goes through :func:`generators.train.train` with the configs in ``configs/`` and
resumes, so an interrupted experiment restarts where it stopped; each evaluation row is
cached in the work directory, and the UK tables are rendered from the JSON payload by
:mod:`benchmarks.quality_markdown`. Run with ``OMP_NUM_THREADS=1 nice -n 10`` on a shared CPU.

    python -m benchmarks.quality synthetic --workdir /tmp/quality
    python -m benchmarks.quality uk --workdir /tmp/quality --run fm=/tmp/runs/uk_fm/last.pt ...
    python -m benchmarks.quality uk ... --select-noise fm=/tmp/runs/uk_fm_1_17/last.pt=1.0,1.3
    python -m benchmarks.quality uk ... --cv-noise fm=/tmp/runs/cv1/last.pt,/tmp/runs/cv2/last.pt=1.0,1.3
    python -m benchmarks.quality uk ... --cv-calibration fm=CV1,CV2,CV3=euler:nfe=2,noise_scale=1.2

(``-m`` from the repository root, so that ``benchmarks.quality_markdown`` imports.)
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import platform
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import xarray as xr

from benchmarks.quality_markdown import uk_markdown
from generators.calibration import calibration_init_times, held_out_period
from generators.checkpoint import Checkpoint, load_checkpoint
from generators.config import load_train_config, parse_sampler, sampler_spec
from generators.correction.baselines import BASELINES, BaselineConfig
from generators.correction.bias import DecayingAverageBias
from generators.correction.spread import fit_spread_factors, scale_spread
from generators.rollout import ForecastData, default_sampler, forecast_members
from generators.train import train
from pipeline.store import ingest, open_store
from verification.ranks import (
    error_surrogate_rank_histogram,
    perfect_model_rank_histogram,
    rank_histogram,
    rank_max_min_ratio,
)
from verification.resampling import score_parts
from verification.scores import (
    ensemble_mean_error,
    ensemble_mean_rmse,
    ensemble_spread,
    fair_crps,
    spread_skill_from_moments,
    spread_skill_ratio,
)

log = logging.getLogger("quality")
ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
DIMS = ("init", "member", "latitude", "longitude")

# ---------------------------------------------------------------------------------- scoring


PERFECT_MODEL_DRAWS = 5
ERROR_SURROGATE_REPLICAS = 100


def scores(
    members: np.ndarray,
    truth: np.ndarray,
    latitude: np.ndarray,
    seed: int = 0,
    error_surrogate_replicas: int = 0,
) -> dict[str, float]:
    """Fair CRPS, SSR and rank-histogram max/min ratio of one channel and lead:
    members (N, M, H, W), truth (N, H, W).

    ``rank_max_min_perfect_model``: the median ratio when member k (k < 5) stands in for the
    truth against the other members (:func:`verification.ranks.perfect_model_rank_histogram`):
    what a perfectly calibrated ensemble with the same spatial and temporal dependence shows
    on this many initial times (the sampling noise of the statistic; a pooled grid of
    correlated points is far from independent draws).
    ``rank_max_min_error_surrogate`` (with ``error_surrogate_replicas`` > 0; the model rows
    of the UK tables, the only ones that show it, use :data:`ERROR_SURROGATE_REPLICAS`):
    the ratios of that many replicas of a reliable ensemble whose fields correlate in space
    as this forecast's ensemble-mean errors do
    (:func:`verification.ranks.error_surrogate_rank_histogram`): the floor where the
    errors are coherent over the domain and the members are not.
    """
    f = xr.DataArray(members, dims=DIMS, coords={"latitude": latitude})
    y = xr.DataArray(truth, dims=DIMS[:1] + DIMS[2:], coords={"latitude": latitude})
    over, grid = ("init", "latitude", "longitude"), ("latitude", "longitude")
    counts = rank_histogram(f, y, member_dim="member", over=over, seed=seed)
    perfect = perfect_model_rank_histogram(
        f, y, member_dim="member", over=over, stand_ins=PERFECT_MODEL_DRAWS, seed=seed
    )
    out = {
        "fair_crps": float(fair_crps(f, y, mean_over=over)),
        "ssr": float(spread_skill_ratio(f, y, mean_over=over)),
        "spread": float(ensemble_spread(f, y, mean_over=over)),
        "rmse": float(ensemble_mean_rmse(f, y, mean_over=over)),
        "mean_error": float(ensemble_mean_error(f, y, mean_over=over)),
        "rank_max_min": float(rank_max_min_ratio(counts)),
        "rank_max_min_perfect_model": float(rank_max_min_ratio(perfect).median("stand_in")),
        "members": int(members.shape[1]),
        "inits": int(members.shape[0]),
        "per_init": {  # grid means of each initial time, for the intervals and the bias
            name: part.values.tolist()
            for name, part in score_parts(f, y, mean_over=grid)
            .assign(mean_error=ensemble_mean_error(f, y, mean_over=grid))
            .items()
        },
    }
    if error_surrogate_replicas:
        surrogate = error_surrogate_rank_histogram(
            f.mean("member") - y,
            members.shape[1],
            sample_dim="init",
            field_dims=grid,
            replicas=error_surrogate_replicas,
            seed=seed,
        )
        out["rank_max_min_error_surrogate"] = rank_max_min_ratio(surrogate).values.tolist()
    return out


def evaluate(
    checkpoint_path: Path,
    store,
    inits: pd.DatetimeIndex,
    leads: Sequence[float],
    members: int,
    sampler_text: str | None,
    seed: int = 0,
    calibrated: bool = False,
    correction: str = "0",
    error_surrogate_replicas: int = 0,
) -> dict:
    """Forecast ``inits`` with a checkpoint and score every lead (first channel, with the
    rank floor of ``error_surrogate_replicas`` replicas, :func:`scores`), after the
    decaying-average correction of :func:`parse_correction` ``correction`` (0: none)."""
    checkpoint = load_checkpoint(checkpoint_path)
    data = ForecastData.from_store(checkpoint, store)
    model = checkpoint.build_model()
    sampler = parse_sampler(sampler_text) if sampler_text else default_sampler(checkpoint, model)
    calibration = None
    if calibrated:
        from generators.correction.spread import SpreadCalibration

        calibration = SpreadCalibration.from_dict(checkpoint.calibration)
    start = time.perf_counter()
    ensemble = forecast_members(
        checkpoint,
        data,
        inits,
        leads,
        members,
        sampler=sampler,
        seed=seed,
        device="cpu",
        calibration=calibration,
        model=model,
        progress=False,
    )
    seconds = time.perf_counter() - start
    truth = np.stack([data.truth(inits, lead) for lead in leads], axis=1)
    ensemble = corrected(ensemble, truth, inits, leads, data.dataset.latitude, correction)
    return {
        "checkpoint": str(checkpoint_path),
        "digest": checkpoint.digest,
        "kind": checkpoint.kind,
        "step": checkpoint.step,
        "sampler": sampler_spec(sampler),
        "nfe": sampler.nfe,
        "calibrated": calibrated,
        "correction": correction,
        "seconds": round(seconds, 1),
        "leads": score_leads(
            ensemble, truth, data.dataset.latitude, leads, error_surrogate_replicas
        ),
    }


def parse_correction(text: str) -> DecayingAverageBias | None:
    """``W`` (bias weight), ``W:S`` (and spread weight), ``W:S:R`` or ``W::R`` (and
    rank-recalibration weight) or ``0`` (none), as ``wxens bias-correct --weight W
    --spread-weight S --rank-weight R``."""
    try:
        weights = [float(part) if part else None for part in text.split(":")]
    except ValueError:
        weights = []
    if not 1 <= len(weights) <= 3 or weights[0] is None or (len(weights) > 1 and not weights[0]):
        raise SystemExit(
            f"correction {text!r}: give W, W:S, W:S:R or W::R (bias, spread and "
            "rank-recalibration weights) or 0"
        )
    return DecayingAverageBias.with_weights(*weights) if weights[0] else None


def correction_label(text: str) -> str:
    """How a row corrected by :func:`parse_correction` ``text`` is named."""
    bias, *rest = text.split(":")
    label = f"bias-corrected (w {float(bias):g})"
    for name, weight in zip(("spread-scaled", "rank-recalibrated"), rest, strict=False):
        label += f", {name} (w {float(weight):g})" if weight else ""
    return label


def corrected(
    ensemble: np.ndarray,
    truth: np.ndarray,
    inits: pd.DatetimeIndex,
    leads: Sequence[float],
    latitude: np.ndarray,
    correction: str,
) -> np.ndarray:
    """Members (N, M, L, C, H, W) after the :func:`parse_correction` ``correction`` against
    truth (N, L, C, H, W), causal as ``wxens bias-correct``."""
    parsed = parse_correction(correction)
    if parsed is None:
        return ensemble
    return parsed.correct(ensemble, truth, inits, pd.to_timedelta(list(leads), unit="h"), latitude)


def score_leads(
    ensemble: np.ndarray,
    truth: np.ndarray,
    latitude: np.ndarray,
    leads: Sequence[float],
    error_surrogate_replicas: int = 0,
) -> dict:
    """:func:`scores` by lead of members (N, M, L, C, H, W) against truth (N, L, C, H, W),
    first channel."""
    return {
        f"{lead:g}": scores(
            ensemble[:, :, i, 0],
            truth[:, i, 0],
            latitude,
            error_surrogate_replicas=error_surrogate_replicas,
        )
        for i, lead in enumerate(leads)
    }


class Cache:
    """Evaluation rows in a JSON file of the work directory, keyed by what they depend on
    (checkpoint digest, sampler, members, initial times), not by their labels."""

    def __init__(self, path: Path):
        self.path = path
        self.rows = json.loads(path.read_text()) if path.exists() else {}

    def get(self, key: str, compute) -> dict:
        if key not in self.rows:
            log.info("evaluating %s", key)
            self.rows[key] = compute()
            self.path.write_text(json.dumps(self.rows, indent=1))
        return self.rows[key]


def environment() -> dict:
    return {
        "machine": platform.processor() or platform.machine(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "device": "cpu",
        "date": pd.Timestamp.now("UTC").isoformat(timespec="seconds"),
    }


def write(name: str, payload: dict, markdown: str) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(payload, indent=1))
    (RESULTS / f"{name}.md").write_text(markdown)
    log.info("wrote %s", RESULTS / f"{name}.md")


# -------------------------------------------------------------------------------- synthetic

SYNTHETIC = "synthetic:n_lat=16,n_lon=24,n_times=1700,step=6h,seed=7"


def synthetic(args: argparse.Namespace) -> None:
    """Flow matching against the oracle ensemble at 1 and 4 model steps, and a 10-day rollout."""
    from pipeline.sources.synthetic import SyntheticConfig, conditional_moments, oracle_ensemble

    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    store_path = work / "synthetic.zarr"
    store = (
        open_store(store_path)
        if store_path.exists()
        else ingest(SYNTHETIC, store_path, variables=["t2m"], progress=False)
    )
    config = load_train_config(ROOT / "configs" / "synthetic_flow_matching.yaml", args.set)
    run = work / "syn_fm"
    result = train(store, config, run, progress=not args.quiet)
    cache = Cache(work / "synthetic_cache.json")
    synthetic_config = SyntheticConfig.from_spec(SYNTHETIC)
    inits = pd.date_range("2001-02-01", "2001-02-19", freq="18h")
    t2m = store.dataset.t2m
    latitude = store.dataset.latitude.values
    members = args.members

    model_rows = {
        text or "default": cache.get(
            f"fm-{result.step}-{members}-{len(inits)}-{text}",
            lambda text=text: evaluate(run / "last.pt", store, inits, [6.0, 24.0], members, text),
        )
        for text in [None, *args.sampler]
    }

    def oracle() -> dict:
        rows = {}
        for lead in (6.0, 24.0):
            state = t2m.sel(time=inits).load()
            ens = oracle_ensemble(state, f"{lead:g}h", members, 0, synthetic_config).transpose(
                "time", "member", ...
            )
            truth = t2m.sel(time=inits + pd.Timedelta(hours=lead)).values
            rows[f"{lead:g}"] = scores(ens.values, truth, latitude)
        return {"leads": rows}

    oracle_rows = cache.get(f"oracle-{members}-{len(inits)}", oracle)

    def rollout() -> dict:
        leads = [24.0 * d for d in range(1, 11)]
        first = inits[:6]
        checkpoint = load_checkpoint(run / "last.pt")
        data = ForecastData.from_store(checkpoint, store)
        model = checkpoint.build_model()
        sampler = (
            parse_sampler(args.rollout_sampler)
            if args.rollout_sampler
            else default_sampler(checkpoint, model)
        )
        ens = forecast_members(
            checkpoint,
            data,
            first,
            leads,
            members,
            sampler=sampler,
            seed=1,
            device="cpu",
            model=model,
            progress=False,
        )[:, :, :, 0]
        rows = {}
        for i, lead in enumerate(leads):
            _, std = conditional_moments(t2m.sel(time=first).load(), f"{lead:g}h", synthetic_config)
            rows[f"{lead:g}"] = {
                "spread": float(np.sqrt(ens[:, :, i].var(axis=1, ddof=1).mean())),
                "oracle_spread": float(std.values.mean()),
                "min": float(ens[:, :, i].min()),
                "max": float(ens[:, :, i].max()),
                "finite": bool(np.isfinite(ens[:, :, i]).all()),
            }
        return {
            "inits": [str(t) for t in first],
            "members": members,
            "sampler": sampler_spec(sampler),
            "leads": rows,
        }

    rollout_rows = cache.get(
        f"rollout-{result.step}-{members}-{len(inits)}-{args.rollout_sampler}", rollout
    )
    truth_range = (float(t2m.min()), float(t2m.max()))
    payload = {
        "experiment": "synthetic",
        "source": SYNTHETIC,
        "config": "configs/synthetic_flow_matching.yaml",
        "overrides": args.set,
        "train": {
            "steps": result.step,
            "validation_loss": result.validation_loss,
            "seconds": round(result.seconds, 1),
        },
        "test_inits": [str(t) for t in inits],
        "flow_matching": model_rows,
        "oracle": oracle_rows,
        "rollout": rollout_rows,
        "truth_range": truth_range,
        "environment": environment(),
    }
    lines = [
        "# Synthetic source: flow matching against the oracle ensemble",
        "",
        f"Source `{SYNTHETIC}` (t2m, 6-hourly), model `configs/synthetic_flow_matching.yaml` "
        f"({result.step} steps), {len(inits)} test initial times 1-19 February 2001 (held out), "
        f"{members} members; 4 model steps = an autoregressive rollout. Fair CRPS in K; rank "
        "max/min over 51 bins (oracle's own for scale).",
        "",
        "| sampler (NFE) | model steps | oracle CRPS | model CRPS | ratio | model SSR | oracle SSR | rank max/min model / oracle |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for rows in model_rows.values():
        for steps, lead in ((1, "6"), (4, "24")):
            m, o = rows["leads"][lead], oracle_rows["leads"][lead]
            lines.append(
                f"| `{rows['sampler']}` ({rows['nfe']}) | {steps} ({lead} h) | {o['fair_crps']:.3f} | "
                f"{m['fair_crps']:.3f} | {m['fair_crps'] / o['fair_crps']:.3f} | {m['ssr']:.2f} | "
                f"{o['ssr']:.2f} | {m['rank_max_min']:.2f} / {o['rank_max_min']:.2f} |"
            )
    lines += [
        "",
        f"## 10-day rollout ({len(rollout_rows['inits'])} initial times, {members} members, one 6 h "
        f"step at a time, `{rollout_rows.get('sampler', 'euler:nfe=10,noise_scale=1.0')}`)",
        "",
        "| lead (days) | model spread (K) | oracle spread (K) | member min (K) | member max (K) |",
        "| --- | --- | --- | --- | --- |",
    ]
    for lead, row in rollout_rows["leads"].items():
        lines.append(
            f"| {float(lead) / 24:g} | {row['spread']:.2f} | {row['oracle_spread']:.2f} | {row['min']:.1f} | {row['max']:.1f} |"
        )
    lines.append(
        f"\nTruth range over the whole store: {truth_range[0]:.1f} to {truth_range[1]:.1f} K."
    )
    write("quality_synthetic", payload, "\n".join(lines) + "\n")


# --------------------------------------------------------------------------------------- UK

UK_LEADS = (1.0, 3.0, 6.0, 12.0, 24.0)
UK_TEST = pd.date_range("2019-03-22T00", "2019-03-30T18", freq="6h")
UK_TRAIN = ("2019-03-01", "2019-03-21")
#: Cache key of the baselines: those of generators.correction.baselines (one seed stream per init and lead)
BASELINES_KEY = "baselines:generators.correction.baselines"
UK_HELD_OUT = pd.date_range("2019-03-18T00", "2019-03-21T18", freq="6h")  # for choices
README_BASELINES = {
    "climatology": (0.93, 0.93, 0.94, 0.94, 0.95),
    "persistence": (0.20, 0.55, 0.80, 1.25, 0.91),
}


def pooled(rows: Sequence[dict]) -> dict:
    """Scores of several folds as one, per lead: the spread-skill ratio of the pooled
    variance and squared error, ``sqrt((M+1)/M) sqrt(sum n s^2 / sum n e^2)`` (n initial
    times of a fold), and the fair CRPS weighted by initial times."""
    out = {}
    for lead in rows[0]["leads"]:
        folds = [row["leads"][lead] for row in rows]
        n = np.array([f["inits"] for f in folds], dtype=float)
        m = folds[0]["members"]
        spread2 = np.dot(n, [f["spread"] ** 2 for f in folds]) / n.sum()
        error2 = np.dot(n, [f["rmse"] ** 2 for f in folds]) / n.sum()
        out[lead] = {
            "ssr": float(spread_skill_from_moments(spread2, error2, m)),
            "fair_crps": float(np.dot(n, [f["fair_crps"] for f in folds]) / n.sum()),
            "inits": int(n.sum()),
            "members": m,
        }
    return {"leads": out, "folds": list(rows)}


def cv_calibration(
    folds: Sequence[tuple[Checkpoint, pd.DatetimeIndex]], store, sampler_text: str, members: int
) -> dict:
    """Leave one fold out: each fold's forecasts of its held-out days, scaled by per-lead
    spread factors fitted (as ``wxens calibrate --fold`` fits them) on the other folds'
    forecasts of theirs, scored on all folds' initial times together beside the same
    forecasts unscaled: whether a calibration fitted on cross-validation folds holds on
    days outside them."""
    forecasts = fold_forecasts(folds, store, sampler_text, members)
    latitude = store.dataset.latitude.values
    factors = leave_one_fold_out_factors(forecasts, latitude)
    calibrated = [scale_spread(e, k) for (e, _), k in zip(forecasts, factors, strict=True)]
    truth = np.concatenate([t for _, t in forecasts])
    return {
        "sampler": sampler_text,
        "members": members,
        "held_out": [str(held_out_period(c)) for c, _ in folds],
        "inits": [str(t) for _, inits in folds for t in inits],
        "factors": [k[:, 0].tolist() for k in factors],
        "raw": score_leads(np.concatenate([e for e, _ in forecasts]), truth, latitude, UK_LEADS),
        "calibrated": score_leads(np.concatenate(calibrated), truth, latitude, UK_LEADS),
    }


def fold_forecasts(
    folds: Sequence[tuple[Checkpoint, pd.DatetimeIndex]], store, sampler_text: str, members: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Each fold model's members (N, M, L, C, H, W) of its held-out initial times and their
    truths (N, L, C, H, W)."""
    forecasts = []
    for checkpoint, inits in folds:
        data = ForecastData.from_store(checkpoint, store)
        ensemble = forecast_members(
            checkpoint,
            data,
            inits,
            UK_LEADS,
            members,
            sampler=parse_sampler(sampler_text),
            seed=0,
            device="cpu",
            progress=False,
        )
        truth = np.stack([data.truth(inits, lead) for lead in UK_LEADS], axis=1)
        forecasts.append((ensemble, truth))
    return forecasts


def cv_bias(
    folds: Sequence[tuple[Checkpoint, pd.DatetimeIndex]],
    store,
    sampler_text: str,
    members: int,
    corrections: Sequence[str],
) -> dict:
    """Each decaying-average correction (:func:`parse_correction`; 0: none) on the
    cross-validation folds' forecasts of the days they held out, the recursions run within
    each fold's days (causal: only errors verified by each initial time), scored on all
    folds together."""
    forecasts = fold_forecasts(folds, store, sampler_text, members)
    latitude = store.dataset.latitude.values
    truth = np.concatenate([t for _, t in forecasts])
    by_weight = {}
    for text in corrections:
        fixed = [
            corrected(e, t, inits, UK_LEADS, latitude, text)
            for (e, t), (_, inits) in zip(forecasts, folds, strict=True)
        ]
        scored = score_leads(np.concatenate(fixed), truth, latitude, UK_LEADS)
        by_weight[text] = {  # the per-initial-time means serve the test days only
            lead: {k: v for k, v in row.items() if k != "per_init"} for lead, row in scored.items()
        }
    return {
        "sampler": sampler_text,
        "members": members,
        "held_out": [str(held_out_period(c)) for c, _ in folds],
        "weights": by_weight,
    }


def leave_one_fold_out_factors(
    forecasts: Sequence[tuple[np.ndarray, np.ndarray]], latitude: np.ndarray
) -> list[np.ndarray]:
    """For each fold, the spread factors (L, C) fitted on all the other folds' members
    (N, M, L, C, H, W) and truths (N, L, C, H, W) together, never on its own."""
    factors = []
    for i in range(len(forecasts)):
        members = np.concatenate([e for j, (e, _) in enumerate(forecasts) if j != i])
        truth = np.concatenate([t for j, (_, t) in enumerate(forecasts) if j != i])
        k, _, _ = fit_spread_factors(
            [members[:, :, lead] for lead in range(members.shape[2])],
            [truth[:, lead] for lead in range(truth.shape[1])],
            latitude,
        )
        factors.append(k)
    return factors


def cv_folds(paths: str, store) -> list[tuple[Checkpoint, pd.DatetimeIndex]]:
    """The cross-validation checkpoints of a comma list of paths, each with its held-out
    initial times."""
    checkpoints = [load_checkpoint(path) for path in paths.split(",")]
    return [(c, held_out_inits(c, store)) for c in checkpoints]


def noise_scaled(checkpoint: Checkpoint, scale: str) -> str:
    """The spec of the checkpoint's default sampler with its initial noise scaled by
    ``scale`` (flow matching's and EDM's ``noise_scale``)."""
    sampler = default_sampler(checkpoint, checkpoint.build_model())
    return sampler_spec(dataclasses.replace(sampler, noise_scale=float(scale)))


def held_out_inits(checkpoint: Checkpoint, store) -> pd.DatetimeIndex:
    """Every 6 h of the one period a cross-validation checkpoint excluded from training
    (``data.exclude``), with the history in the store and the 24 h truth in the period."""
    fold = held_out_period(checkpoint)
    dataset = ForecastData.from_store(checkpoint, store).dataset
    inits = calibration_init_times(dataset.times, fold.start, fold.end, 6, max(UK_LEADS))
    positions = dataset.times.get_indexer(inits)
    return inits[(dataset.positions(positions, dataset.spec.history) >= 0).all(axis=1)]


def uk_baselines(
    store, inits: pd.DatetimeIndex = UK_TEST, members: int = 50, seed: int = 0
) -> dict:
    """Climatology and persistence + past tendencies as in shared/data/README.md
    (:mod:`generators.correction.baselines`, what ``wxens baseline`` writes), ``members`` draws from
    the training period, scored like the models."""
    config = BaselineConfig(*UK_TRAIN, members=members, seed=seed)
    t2m = store.dataset.t2m.load()
    leads = [pd.Timedelta(hours=h) for h in UK_LEADS]
    out: dict[str, dict] = {}
    for name in ("climatology", "persistence"):
        baseline = BASELINES[name](t2m.to_dataset(), config)
        drawn = np.stack([baseline.ensemble(t, leads).t2m.values for t in inits])
        out[name] = {
            f"{h:g}": scores(drawn[:, :, i], t2m.sel(time=inits + lead).values, t2m.latitude.values)
            for i, (h, lead) in enumerate(zip(UK_LEADS, leads, strict=True))
        }
    return out


def uk(args: argparse.Namespace) -> None:
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    store_path = work / "uk.zarr"
    store = (
        open_store(store_path)
        if store_path.exists()
        else ingest(ROOT / "data" / "era5-t2m-uk-2019-03.grib", store_path, progress=False)
    )
    cache = Cache(work / "uk_cache.json")
    baselines = cache.get(BASELINES_KEY, lambda: uk_baselines(store))
    rows = {}
    corrections: dict[str, list[str]] = {}
    for item in args.bias_correct:
        name, spec = item.rsplit("=", 1)
        parse_correction(spec)  # a typo fails before any forecast
        corrections.setdefault(name, []).append(spec)
    floor = ERROR_SURROGATE_REPLICAS  # the model rows are the only ones that show the floor
    for item in args.run:
        name, path, *sampler = item.split("=", 2)
        text = sampler[0] if sampler else None
        checkpoint = load_checkpoint(path)
        rows[name] = cache.get(
            f"run:{checkpoint.digest}:{args.members}:{text}",
            lambda path=path, text=text: evaluate(
                Path(path),
                store,
                UK_TEST,
                UK_LEADS,
                args.members,
                text,
                error_surrogate_replicas=floor,
            ),
        )
        for spec in corrections.get(name, []):
            rows[f"{name}, {correction_label(spec)}"] = cache.get(
                f"run:{checkpoint.digest}:{args.members}:{text}:correction{spec}",
                lambda path=path, text=text, spec=spec: evaluate(
                    Path(path),
                    store,
                    UK_TEST,
                    UK_LEADS,
                    args.members,
                    text,
                    correction=spec,
                    error_surrogate_replicas=floor,
                ),
            )
        if args.calibrated and checkpoint.calibration:
            rows[f"{name}+calibration"] = cache.get(
                f"run:{checkpoint.digest}:{args.members}:calibrated",
                lambda path=path: evaluate(
                    Path(path),
                    store,
                    UK_TEST,
                    UK_LEADS,
                    args.members,
                    None,
                    calibrated=True,
                    error_surrogate_replicas=floor,
                ),
            )
    sweep_inits = UK_TEST[:: args.sweep_stride]
    sweep_baselines = cache.get(
        f"{BASELINES_KEY}:stride{args.sweep_stride}", lambda: uk_baselines(store, sweep_inits)
    )
    sweeps = {}
    for item in args.sweep:
        name, path, samplers = item.split("=", 2)
        digest = load_checkpoint(path).digest
        for text in samplers.split(";"):
            key = f"sweep:{digest}:{text}:{args.sweep_members}:{args.sweep_stride}"
            sweeps.setdefault(name, []).append(
                cache.get(
                    key,
                    lambda path=path, text=text: evaluate(
                        Path(path), store, sweep_inits, UK_LEADS, args.sweep_members, text
                    ),
                )
            )
    members = args.select_members or args.members

    def select(folds: list[tuple[Checkpoint, pd.DatetimeIndex]], scales: str) -> dict:
        """Each initial-noise scale scored on the held-out initial times of each fold."""
        by_scale = {}
        for scale in scales.split(","):
            rows = [
                cache.get(
                    f"select:{checkpoint.digest}:{scale}:{members}",
                    lambda checkpoint=checkpoint, inits=inits, scale=scale: evaluate(
                        checkpoint.path,
                        store,
                        inits,
                        UK_LEADS,
                        members,
                        noise_scaled(checkpoint, scale),
                    ),
                )
                for checkpoint, inits in folds
            ]
            by_scale[scale] = rows[0] if len(rows) == 1 else pooled(rows)
        return {"inits": sum(len(inits) for _, inits in folds), "scales": by_scale}

    selections = {}
    for item in args.select_noise:
        name, path, scales = item.rsplit("=", 2)  # the name may hold "="
        selections[name] = select([(load_checkpoint(path), UK_HELD_OUT)], scales) | {
            "description": "Model trained on 1-17 March only, scored on {inits} initial times "
            "18-21 March (never trained on)"
        }
    for item in args.cv_noise:
        name, paths, scales = item.rsplit("=", 2)
        folds = cv_folds(paths, store)
        periods = ", ".join(str(held_out_period(c)) for c, _ in folds)
        description = (
            f"Model trained on 1-21 March without {periods} (`data.exclude`), scored on it, "
            "{inits} initial times"
            if len(folds) == 1
            else f"{len(folds)}-fold cross-validation: each model trained on all of 1-21 March "
            f"but one fold ({periods}; `data.exclude`), scored on its own fold, {{inits}} "
            "initial times in all; SSR of the pooled variance and squared error, CRPS "
            "weighted by initial times"
        )
        selections[name] = select(folds, scales) | {"description": description}
    cv_calibrations = {}
    for item in args.cv_calibration:
        name, paths, sampler_text = item.split("=", 2)  # the sampler spec holds "="
        folds = cv_folds(paths, store)
        digests = ",".join(c.digest for c, _ in folds)
        cv_calibrations[name] = cache.get(
            f"cv-calibration:{digests}:{sampler_text}:{members}",
            lambda folds=folds, text=sampler_text: cv_calibration(folds, store, text, members),
        )
    cv_biases = {}
    for item in args.cv_bias:
        name, paths, rest = item.split("=", 2)
        sampler_text, weights = rest.rsplit("=", 1)  # the sampler spec holds "="
        folds = cv_folds(paths, store)
        digests = ",".join(c.digest for c, _ in folds)
        values = weights.split(",")
        for value in values:
            parse_correction(value)  # a typo fails before the folds forecast
        cv_biases[name] = cache.get(
            f"cv-bias:{digests}:{sampler_text}:{members}:{weights}",
            lambda folds=folds, text=sampler_text, values=values: cv_bias(
                folds, store, text, members, values
            ),
        )
    payload = {
        "experiment": "uk_t2m",
        "train_period": UK_TRAIN,
        "test_inits": [str(t) for t in UK_TEST],
        "leads_hours": UK_LEADS,
        "baselines": baselines,
        "readme_baselines": README_BASELINES,
        "models": rows,
        "noise_selection": selections,
        "cv_calibration": cv_calibrations,
        "cv_bias": cv_biases,
        "nfe_sweep": {
            "inits": [str(t) for t in sweep_inits],
            "members": args.sweep_members,
            "baselines": sweep_baselines,
            "rows": sweeps,
        },
        "environment": environment(),
    }
    write(args.name, payload, uk_markdown(payload))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="experiment", required=True)
    s = sub.add_parser("synthetic", help="flow matching against the oracle; 10-day rollout")
    s.add_argument("--workdir", required=True)
    s.add_argument("--members", type=int, default=50)
    s.add_argument("--set", action="append", default=[], help="config override key=value")
    s.add_argument(
        "--sampler",
        action="append",
        default=[],
        help="more sampler specs to score, e.g. heun:nfe=20",
    )
    s.add_argument("--rollout-sampler", help="sampler of the 10-day rollout (default: the model's)")
    s.add_argument("--quiet", action="store_true")
    u = sub.add_parser("uk", help="UK t2m sample: models against the baselines, NFE sweep")
    u.add_argument("--workdir", required=True)
    u.add_argument(
        "--name",
        default="quality_uk",
        help="stem of the JSON and markdown written to benchmarks/results (default "
        "quality_uk; a run that scores only some rows, as after a lost cache, writes only "
        "those, so give it a name of its own)",
    )
    u.add_argument(
        "--run",
        action="append",
        default=[],
        metavar="NAME=CHECKPOINT[=SAMPLER]",
        help="a model to score (sampler spec optional, default: the checkpoint's)",
    )
    u.add_argument("--members", type=int, default=50)
    u.add_argument(
        "--calibrated", action="store_true", help="also score with the stored calibration"
    )
    u.add_argument(
        "--sweep",
        action="append",
        default=[],
        metavar="NAME=CHECKPOINT=SAMPLER;SAMPLER",
        help="CRPS against NFE, e.g. fm=runs/uk_fm/main.pt=euler:nfe=2;euler:nfe=4",
    )
    u.add_argument(
        "--select-noise",
        action="append",
        default=[],
        metavar="NAME=CHECKPOINT=SCALE,SCALE",
        help="score initial-noise scales on the held-out 18-21 March with a model trained "
        "on 1-17 March, e.g. fm=runs/uk_fm_cv/last.pt=1.0,1.15,1.3,1.5",
    )
    u.add_argument(
        "--cv-noise",
        action="append",
        default=[],
        metavar="NAME=CHECKPOINT,CHECKPOINT,...=SCALE,SCALE",
        help="score initial-noise scales by cross-validation: each checkpoint trained "
        "without one fold (data.exclude), scored on that fold with its default sampler at "
        "noise_scale=SCALE, pooled",
    )
    u.add_argument(
        "--bias-correct",
        action="append",
        default=[],
        metavar="NAME=W[:S[:R]]",
        help="also score the --run model NAME after a decaying-average bias correction of "
        "weight W and, with :S, the spread scaling of weight S, with :R the rank-histogram "
        "recalibration of weight R (wxens bias-correct --weight W --spread-weight S "
        "--rank-weight R; W::R without the spread scaling; the test days' errors verified by "
        "each initial time)",
    )
    u.add_argument(
        "--cv-bias",
        action="append",
        default=[],
        metavar="NAME=CHECKPOINT,CHECKPOINT,...=SAMPLER=W,W:S,W:S:R,...",
        help="score decaying-average bias-correction weights W (0: none), with :S a spread "
        "scaling of weight S and :R a rank-histogram recalibration of weight R, on the "
        "cross-validation folds' held-out days",
    )
    u.add_argument(
        "--cv-calibration",
        action="append",
        default=[],
        metavar="NAME=CHECKPOINT,CHECKPOINT,...=SAMPLER",
        help="leave one fold out: score each fold's held-out forecasts with the per-lead "
        "spread calibration fitted on the other folds' (as wxens calibrate --fold fits it)",
    )
    u.add_argument(
        "--select-members", type=int, help="members of the noise selection (default --members)"
    )
    u.add_argument("--sweep-members", type=int, default=10)
    u.add_argument("--sweep-stride", type=int, default=3, help="every n-th test initial time")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    {"synthetic": synthetic, "uk": uk}[args.experiment](args)


if __name__ == "__main__":
    main()
