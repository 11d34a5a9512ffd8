"""Quality experiments of the generators issue: synthetic source against its oracle, the UK
t2m sample against the two baselines, flow matching against EDM, CRPS against NFE, and a
10-day synthetic rollout. Writes JSON and a markdown table per experiment into
``benchmarks/results/`` (``quality_synthetic.*``, ``quality_uk.*``).

Every score comes from :mod:`verification.scores`: fair CRPS (cos-latitude-weighted mean
over initial times and grid), spread-skill ratio with the finite-ensemble factor
sqrt((M+1)/M), rank histogram (random tie-breaking) summarised by its max/min bin ratio.

Training goes through :func:`generators.train.train` with the configs in ``configs/`` and
resumes, so an interrupted experiment restarts where it stopped; each evaluation row is
cached in the work directory. Run with ``OMP_NUM_THREADS=1 nice -n 10`` on a shared CPU.

    python -m benchmarks.quality synthetic --workdir /tmp/quality
    python -m benchmarks.quality uk --workdir /tmp/quality --run fm=/tmp/runs/uk_fm/last.pt ...
    python -m benchmarks.quality uk ... --select-noise fm=/tmp/runs/uk_fm_1_17/last.pt=1.0,1.3
    python -m benchmarks.quality uk ... --cv-noise fm=/tmp/runs/cv1/last.pt,/tmp/runs/cv2/last.pt=1.0,1.3
    python -m benchmarks.quality uk ... --cv-calibration fm=CV1,CV2,CV3=euler:nfe=2,noise_scale=1.2

(``-m`` from the repository root: run as a script, ``benchmarks/verification.py`` would
shadow the ``verification`` package.)
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

from generators.baselines import BASELINES, BaselineConfig
from generators.bias_correction import DecayingAverageBias
from generators.calibration import (
    calibration_init_times,
    fit_spread_factors,
    held_out_period,
    scale_spread,
)
from generators.checkpoint import Checkpoint, load_checkpoint
from generators.config import load_train_config, parse_sampler, sampler_spec
from generators.rollout import ForecastData, default_sampler, forecast_members
from generators.train import train
from pipeline.store import ingest, open_store
from verification.resampling import score_intervals, score_parts
from verification.scores import (
    ensemble_mean_error,
    ensemble_mean_rmse,
    ensemble_spread,
    fair_crps,
    rank_histogram,
    spread_skill_from_moments,
    spread_skill_ratio,
)

log = logging.getLogger("quality")
ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
DIMS = ("init", "member", "latitude", "longitude")

# ---------------------------------------------------------------------------------- scoring


PERFECT_MODEL_DRAWS = 5


def rank_max_min(members: np.ndarray, truth: np.ndarray, seed: int = 0) -> float:
    """Max/min bin ratio of the rank histogram pooled over initial times and the grid."""
    f = xr.DataArray(members, dims=DIMS)
    y = xr.DataArray(truth, dims=DIMS[:1] + DIMS[2:])
    counts = rank_histogram(f, y, over=("init", "latitude", "longitude"), seed=seed).values
    return float(counts.max() / max(counts.min(), 1))


def scores(
    members: np.ndarray, truth: np.ndarray, latitude: np.ndarray, seed: int = 0
) -> dict[str, float]:
    """Fair CRPS, SSR and rank-histogram max/min ratio of one channel and lead:
    members (N, M, H, W), truth (N, H, W).

    ``rank_max_min_perfect_model``: the median ratio when member k (k < 5) stands in for the
    truth against the other members: what a perfectly calibrated ensemble with the same
    spatial and temporal dependence shows on this many initial times (the sampling noise
    of the statistic; a pooled grid of correlated points is far from independent draws).
    """
    f = xr.DataArray(members, dims=DIMS, coords={"latitude": latitude})
    y = xr.DataArray(truth, dims=DIMS[:1] + DIMS[2:], coords={"latitude": latitude})
    over, grid = ("init", "latitude", "longitude"), ("latitude", "longitude")
    perfect = [
        rank_max_min(np.delete(members, k, axis=1), members[:, k], seed=seed + k)
        for k in range(min(PERFECT_MODEL_DRAWS, members.shape[1] - 1))
    ]
    return {
        "fair_crps": float(fair_crps(f, y, mean_over=over)),
        "ssr": float(spread_skill_ratio(f, y, mean_over=over)),
        "spread": float(ensemble_spread(f, y, mean_over=over)),
        "rmse": float(ensemble_mean_rmse(f, y, mean_over=over)),
        "mean_error": float(ensemble_mean_error(f, y, mean_over=over)),
        "rank_max_min": rank_max_min(members, truth, seed),
        "rank_max_min_perfect_model": float(np.median(perfect)),
        "members": int(members.shape[1]),
        "inits": int(members.shape[0]),
        "per_init": {  # grid means of each initial time, for the intervals and the bias
            name: part.values.tolist()
            for name, part in score_parts(f, y, mean_over=grid)
            .assign(mean_error=ensemble_mean_error(f, y, mean_over=grid))
            .items()
        },
    }


INTERVAL_LEVEL, INTERVAL_DRAWS = 0.9, 2000


def bootstrap_intervals(
    leads: dict, baseline: dict, inits: pd.DatetimeIndex
) -> dict[str, dict[str, tuple[float, float]]]:
    """90 % intervals by lead of a row's spread-skill ratio and of its fair CRPS minus
    ``baseline``'s (per lead, the same initial times), days of ``inits`` resampled whole
    (:func:`verification.resampling.score_intervals`; the difference is taken per initial
    time, so the model and the baseline share each resample). ``leads`` and ``baseline``
    map a lead to :func:`scores`."""
    kwargs = {"blocks": inits.normalize(), "level": INTERVAL_LEVEL, "draws": INTERVAL_DRAWS}
    out = {}
    for lead, row in leads.items():
        parts = {name: ("init", values) for name, values in row["per_init"].items()}
        # the CRPS part is the per-initial-time gain: its resampled mean is the paired gain
        gain = np.subtract(row["per_init"]["fair_crps"], baseline[lead]["per_init"]["fair_crps"])
        parts["fair_crps"] = ("init", gain)
        bounds = score_intervals(xr.Dataset(parts), row["members"], **kwargs)
        out[lead] = {
            "ssr": tuple(bounds["spread_skill_ratio"].values.tolist()),
            "fair_crps_minus_baseline": tuple(bounds["fair_crps"].values.tolist()),
        }
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
) -> dict:
    """Forecast ``inits`` with a checkpoint and score every lead (first channel), after the
    decaying-average correction of :func:`parse_correction` ``correction`` (0: none)."""
    checkpoint = load_checkpoint(checkpoint_path)
    data = ForecastData.from_store(checkpoint, store)
    model = checkpoint.build_model()
    sampler = parse_sampler(sampler_text) if sampler_text else default_sampler(checkpoint, model)
    calibration = None
    if calibrated:
        from generators.calibration import SpreadCalibration

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
        "leads": score_leads(ensemble, truth, data.dataset.latitude, leads),
    }


def parse_correction(text: str) -> DecayingAverageBias | None:
    """``W`` (bias weight), ``W:S`` (and spread weight) or ``0`` (none), as
    ``wxens bias-correct --weight W --spread-weight S``."""
    try:
        weights = [float(part) for part in text.split(":")]
    except ValueError:
        weights = []
    if not 1 <= len(weights) <= 2 or (len(weights) == 2 and not weights[0]):
        raise SystemExit(f"correction {text!r}: give W, W:S (bias and spread weights) or 0")
    return DecayingAverageBias.with_weights(*weights) if weights[0] else None


def correction_label(text: str) -> str:
    """How a row corrected by :func:`parse_correction` ``text`` is named."""
    bias, *spread = text.split(":")
    label = f"bias-corrected (w {float(bias):g})"
    return label + (f", spread-scaled (w {float(spread[0]):g})" if spread else "")


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
    ensemble: np.ndarray, truth: np.ndarray, latitude: np.ndarray, leads: Sequence[float]
) -> dict:
    """:func:`scores` by lead of members (N, M, L, C, H, W) against truth (N, L, C, H, W),
    first channel."""
    return {
        f"{lead:g}": scores(ensemble[:, :, i, 0], truth[:, i, 0], latitude)
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
    from pipeline.synthetic import SyntheticConfig, conditional_moments, oracle_ensemble

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
#: Cache key of the baselines: those of generators.baselines (one seed stream per init and lead)
BASELINES_KEY = "baselines:generators.baselines"
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
    (:mod:`generators.baselines`, what ``wxens baseline`` writes), ``members`` draws from
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
    for item in args.run:
        name, path, *sampler = item.split("=", 2)
        text = sampler[0] if sampler else None
        checkpoint = load_checkpoint(path)
        rows[name] = cache.get(
            f"run:{checkpoint.digest}:{args.members}:{text}",
            lambda path=path, text=text: evaluate(
                Path(path), store, UK_TEST, UK_LEADS, args.members, text
            ),
        )
        for spec in corrections.get(name, []):
            rows[f"{name}, {correction_label(spec)}"] = cache.get(
                f"run:{checkpoint.digest}:{args.members}:{text}:correction{spec}",
                lambda path=path, text=text, spec=spec: evaluate(
                    Path(path), store, UK_TEST, UK_LEADS, args.members, text, correction=spec
                ),
            )
        if args.calibrated and checkpoint.calibration:
            rows[f"{name}+calibration"] = cache.get(
                f"run:{checkpoint.digest}:{args.members}:calibrated",
                lambda path=path: evaluate(
                    Path(path), store, UK_TEST, UK_LEADS, args.members, None, calibrated=True
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
    write("quality_uk", payload, uk_markdown(payload))


def short_sampler(spec: str) -> str:
    """``euler:nfe=2,noise_scale=1.5`` -> ``euler, noise x1.5`` (the noise scale only when not 1)."""
    name, _, params = spec.partition(":")
    scale = dict(p.split("=") for p in params.split(",") if "=" in p).get("noise_scale", "1.0")
    return name if float(scale) == 1.0 else f"{name}, noise x{float(scale):g}"


def _cell(fmt: str, scores_: dict, key: str) -> str:
    """A score, with its perfect-model reference in brackets for the rank ratio."""
    text = fmt.format(scores_[key])
    reference = scores_.get(f"{key}_perfect_model")
    return text if reference is None else f"{text} ({fmt.format(reference)})"


def better_baseline(baselines: dict, leads: Sequence[str]) -> dict[str, str]:
    """The name of the baseline of lower fair CRPS at each lead."""
    return {h: min(baselines, key=lambda name, h=h: baselines[name][h]["fair_crps"]) for h in leads}


def uk_markdown(p: dict) -> str:
    leads = [f"{h:g}" for h in p["leads_hours"]]
    better = better_baseline(p["baselines"], leads)
    best = [p["baselines"][better[h]][h]["fair_crps"] for h in leads]
    head = "| model | sampler (NFE) | " + " | ".join(f"{h} h" for h in leads) + " |"
    rule = "| --- | --- | " + " | ".join("---" for _ in leads) + " |"
    lines = [
        "# UK t2m sample: fair CRPS (K), spread-skill ratio, rank histogram",
        "",
        f"Train 1-21 March 2019 (see each checkpoint's config), test: {len(p['test_inits'])} initial times "
        "22-30 March every 6 h; cos-latitude-weighted means; members as listed. A row "
        "ending in +calibration applies the spread calibration its checkpoint holds (fitted "
        "on the period or the cross-validation folds its label names).",
        "",
        "## Fair CRPS (K)",
        "",
        head,
        rule,
        "| README: climatology | - | "
        + " | ".join(f"{v:.2f}" for v in p["readme_baselines"]["climatology"])
        + " |",
        "| README: persistence + past tendencies | - | "
        + " | ".join(f"{v:.2f}" for v in p["readme_baselines"]["persistence"])
        + " |",
    ]
    for name in ("climatology", "persistence"):
        lines.append(
            f"| ours: {name} (50 draws) | - | "
            + " | ".join(f"{p['baselines'][name][h]['fair_crps']:.3f}" for h in leads)
            + " |"
        )
    lines.append(
        "| **best baseline (ours)** | - | " + " | ".join(f"**{v:.3f}**" for v in best) + " |"
    )
    for name, row in p["models"].items():
        cells = []
        for h, b in zip(leads, best, strict=True):
            v = row["leads"][h]["fair_crps"]
            cells.append(f"{v:.3f}" + (" ✓" if v < b else ""))
        members = row["leads"][leads[0]]["members"]
        label = f"| {name} ({members} members) | {short_sampler(row['sampler'])} ({row['nfe']}) | "
        lines.append(label + " | ".join(cells) + " |")
    for title, key, fmt in (
        ("Spread-skill ratio", "ssr", "{:.2f}"),
        ("Rank histogram max/min bin ratio", "rank_max_min", "{:.2f}"),
    ):
        lines += ["", f"## {title}", "", head, rule]
        for name in ("climatology", "persistence"):
            lines.append(
                f"| {name} | - | "
                + " | ".join(fmt.format(p["baselines"][name][h][key]) for h in leads)
                + " |"
            )
        for name, row in p["models"].items():
            lines.append(
                f"| {name} | {short_sampler(row['sampler'])} ({row['nfe']}) | "
                + " | ".join(_cell(fmt, row["leads"][h], key) for h in leads)
                + " |"
            )
    lines += [
        "",
        "Rank cells read `model (perfect model)`: the second figure is the ratio a calibrated "
        "ensemble with the model's own dependence shows on these initial times (the median "
        "over 5 members standing in for the truth); it is the statistic's noise floor here.",
    ]
    lines += uncertainty_markdown(p, leads)
    lines += bias_markdown(p, leads)
    for name, selection in p.get("noise_selection", {}).items():
        by_scale = selection["scales"]
        mean_abs_log_ssr = {
            scale: np.mean([abs(np.log(row["leads"][h]["ssr"])) for h in leads])
            for scale, row in by_scale.items()
        }
        chosen = min(mean_abs_log_ssr, key=mean_abs_log_ssr.get)
        # a single fold keeps its rank histograms (pooled folds do not)
        ranked = all("rank_max_min" in row["leads"][leads[0]] for row in by_scale.values())
        rank_header = "".join(f" rank {h} h |" for h in leads) if ranked else ""
        lines += [
            "",
            f"## Initial-noise scale chosen on held-out days: {name}",
            "",
            selection["description"].format(inits=selection["inits"])
            + f", {by_scale[chosen]['leads'][leads[0]]['members']} members. "
            "The scale whose spread-skill ratio is nearest 1 over the leads (least mean "
            f"abs(log SSR)): **{chosen}**.",
            "",
            "| noise scale | "
            + " | ".join(f"SSR {h} h" for h in leads)
            + " | mean abs(log SSR) | "
            + " | ".join(f"CRPS {h} h" for h in leads)
            + " |"
            + rank_header,
            "| --- | "
            + " | ".join("---" for _ in leads)
            + " | --- | "
            + " | ".join("---" for _ in leads)
            + " |"
            + " --- |" * (len(leads) if ranked else 0),
        ]
        for scale, row in by_scale.items():
            ranks = (
                "".join(f" {_cell('{:.2f}', row['leads'][h], 'rank_max_min')} |" for h in leads)
                if ranked
                else ""
            )
            lines.append(
                f"| {scale} | "
                + " | ".join(f"{row['leads'][h]['ssr']:.2f}" for h in leads)
                + f" | {mean_abs_log_ssr[scale]:.3f} | "
                + " | ".join(f"{row['leads'][h]['fair_crps']:.3f}" for h in leads)
                + " |"
                + ranks
            )
    for name, cv in p.get("cv_calibration", {}).items():
        lines += cv_calibration_markdown(name, cv, leads)
    for name, cv in p.get("cv_bias", {}).items():
        lines += cv_bias_markdown(name, cv, leads)
    sweep = p["nfe_sweep"]
    if sweep["rows"]:
        lines += [
            "",
            f"## Fair CRPS (K) against NFE ({len(sweep['inits'])} initial times, {sweep['members']} members)",
            "",
            "| model | sampler | NFE | "
            + " | ".join(f"{h} h" for h in leads)
            + " | mean SSR | seconds |",
            "| --- | --- | --- | " + " | ".join("---" for _ in leads) + " | --- | --- |",
        ]
        for name in ("climatology", "persistence"):
            base = sweep["baselines"][name]
            cells = " | ".join(f"{base[h]['fair_crps']:.3f}" for h in leads)
            ssr = np.mean([base[h]["ssr"] for h in leads])
            lines.append(f"| {name} (50 draws) | - | - | {cells} | {ssr:.2f} | - |")
        for name, rows in sweep["rows"].items():
            for row in rows:
                ssr = np.mean([row["leads"][h]["ssr"] for h in leads])
                lines.append(
                    f"| {name} | `{row['sampler'].split(',')[0]}` | {row['nfe']} | "
                    + " | ".join(f"{row['leads'][h]['fair_crps']:.3f}" for h in leads)
                    + f" | {ssr:.2f} | {row['seconds']} |"
                )
    return "\n".join(lines) + "\n"


def uncertainty_markdown(p: dict, leads: Sequence[str]) -> list[str]:
    """The rows scored with per-initial-time means: 90 % block-bootstrap intervals of the
    spread-skill ratio and of the fair CRPS minus the better baseline at each lead."""
    baselines = p["baselines"]
    rows = {n: r for n, r in p["models"].items() if "per_init" in r["leads"][leads[0]]}
    if not rows or "per_init" not in baselines["persistence"][leads[0]]:
        return []
    better = better_baseline(baselines, leads)
    best = {h: baselines[better[h]][h] for h in leads}
    inits = pd.DatetimeIndex(p["test_inits"])
    lines = [
        "",
        f"## Sampling uncertainty on the test days ({INTERVAL_LEVEL:.0%} intervals)",
        "",
        f"The {len(inits)} initial times fall on {inits.normalize().nunique()} days, and "
        f"forecasts of one day share its weather. Each interval comes from {INTERVAL_DRAWS} resamples "
        "of whole days with replacement (block bootstrap); the model and the baseline share "
        "each resample. A CRPS interval below 0 beats the baseline beyond this sampling "
        "noise. Better baseline by lead: " + ", ".join(f"{h} h {better[h]}" for h in leads) + ".",
        "",
        "| model | "
        + " | ".join(f"SSR {h} h" for h in leads)
        + " | "
        + " | ".join(f"CRPS - baseline {h} h" for h in leads)
        + " |",
        "| --- | " + " | ".join("---" for _ in range(2 * len(leads))) + " |",
    ]
    for name, row in rows.items():
        got = bootstrap_intervals(row["leads"], best, inits)
        lines.append(
            f"| {name} | "
            + " | ".join(
                f"{row['leads'][h]['ssr']:.2f} [{got[h]['ssr'][0]:.2f}, {got[h]['ssr'][1]:.2f}]"
                for h in leads
            )
            + " | "
            + " | ".join(
                "{:+.3f} [{:+.3f}, {:+.3f}]".format(
                    row["leads"][h]["fair_crps"] - best[h]["fair_crps"],
                    *got[h]["fair_crps_minus_baseline"],
                )
                for h in leads
            )
            + " |"
        )
    return lines


def bias_by_init_hour(leads: dict, inits: pd.DatetimeIndex) -> dict[str, list[float]]:
    """Mean error of the ensemble mean by lead and initial hour (sorted hours), from the
    per-initial-time grid means of :func:`scores`."""
    hours = sorted(set(inits.hour))
    return {
        lead: [
            float(np.mean(np.asarray(row["per_init"]["mean_error"])[inits.hour == h]))
            for h in hours
        ]
        for lead, row in leads.items()
    }


def bias_markdown(p: dict, leads: Sequence[str]) -> list[str]:
    """Ensemble-mean error by initial hour: baselines and models on the test days, and the
    uncalibrated cross-validation forecasts of the training days (rows scored with it)."""
    test = pd.DatetimeIndex(p["test_inits"])
    rows = [(f"{name}, test days", r, test) for name, r in p["baselines"].items()]
    rows += [  # a calibrated or spread-scaled row has its twin's mean: scaling keeps it
        (f"{name}, test days", r["leads"], test)
        for name, r in p["models"].items()
        if not r["calibrated"] and ":" not in r.get("correction", "")
    ]
    rows += [
        (f"{name}, CV days", cv["raw"], pd.DatetimeIndex(cv["inits"]))
        for name, cv in p.get("cv_calibration", {}).items()
        if "inits" in cv
    ]
    rows = [(n, r, i) for n, r, i in rows if "mean_error" in r[leads[0]].get("per_init", {})]
    if not rows:
        return []
    hours = " / ".join(f"{h:02d}" for h in sorted(set(test.hour)))
    lines = [
        "",
        "## Ensemble-mean error (K) by initial hour",
        "",
        "Forecast minus truth, grid mean (cos-latitude weights), averaged over the initial "
        f"times of each hour ({hours} UTC); the spread calibration and the spread scaling "
        "leave it unchanged (their rows are left out). A "
        "bias of either sign piles the truth into one end of the rank histogram however "
        "well the spread matches the error. CV days: each fold model's forecasts of the "
        "days it held out of training (1-21 March), uncalibrated.",
        "",
        "| forecasts | " + " | ".join(f"{h} h: {hours}" for h in leads) + " |",
        "| --- | " + " | ".join("---" for _ in leads) + " |",
    ]
    for name, scored, inits in rows:
        by_hour = bias_by_init_hour({h: scored[h] for h in leads}, inits)
        lines.append(
            f"| {name} | "
            + " | ".join(" ".join(f"{b:+.2f}" for b in by_hour[h]) for h in leads)
            + " |"
        )
    return lines


def cv_bias_markdown(name: str, cv: dict, leads: Sequence[str]) -> list[str]:
    """The decaying-average corrections on the cross-validation days (:func:`cv_bias`): the
    bias weight of least mean CRPS, then with it the spread weight of least mean
    abs(log SSR) (the noise scale's rule)."""
    by_weight = cv["weights"]
    mean_crps = {w: np.mean([row[h]["fair_crps"] for h in leads]) for w, row in by_weight.items()}
    log_ssr = {
        w: np.mean([abs(np.log(row[h]["ssr"])) for h in leads]) for w, row in by_weight.items()
    }
    chosen = min((w for w in by_weight if ":" not in w), key=mean_crps.get)
    spread = [w for w in by_weight if w.split(":")[0] == chosen and ":" in w]
    choice = f"The bias weight of least mean CRPS over the leads: **{chosen}**"
    if spread:
        best = min(spread, key=log_ssr.get).split(":")[1]
        choice += f"; with it, the spread weight of least mean abs(log SSR): **{best}**"
    first = next(iter(by_weight.values()))[leads[0]]
    lines = [
        "",
        f"## Decaying-average bias correction chosen on held-out days: {name}",
        "",
        f"Each fold model's forecasts of the days it held out ({first['inits']} initial times "
        f"in all, {cv['members']} members, `{cv['sampler']}`), corrected by `wxens "
        "bias-correct` with weight w (0: none; w:s adds the spread scaling of weight s, "
        "`--spread-weight`) within each fold's days: only errors verified by an initial time "
        f"correct it, and each fold's first day goes uncorrected. {choice}. Rank cells read "
        "`model (perfect model)`.",
        "",
        f"| w | {_score_header(leads)} | mean CRPS | mean abs(log SSR) |",
        "| --- | " + " | ".join("---" for _ in range(3 * len(leads))) + " | --- | --- |",
    ]
    for w, row in by_weight.items():
        lines.append(
            f"| {w} | {_score_cells(row, leads)} | {mean_crps[w]:.4f} | {log_ssr[w]:.3f} |"
        )
    return lines


SCORE_COLUMNS = (("SSR", "ssr", "{:.2f}"), ("CRPS", "fair_crps", "{:.3f}"))


def _score_header(leads: Sequence[str]) -> str:
    """Column titles of :func:`_score_cells`."""
    titles = [title for title, _, _ in SCORE_COLUMNS] + ["rank"]
    return " | ".join(f"{title} {h} h" for title in titles for h in leads)


def _score_cells(row: dict, leads: Sequence[str]) -> str:
    """SSR, fair CRPS and rank ratio (with its perfect-model reference) of a
    :func:`score_leads` row at every lead, as table cells."""
    cells = [fmt.format(row[h][key]) for _, key, fmt in SCORE_COLUMNS for h in leads]
    cells += [_cell("{:.2f}", row[h], "rank_max_min") for h in leads]
    return " | ".join(cells)


def cv_calibration_markdown(name: str, cv: dict, leads: Sequence[str]) -> list[str]:
    """The leave-one-fold-out calibration check (:func:`cv_calibration`) as a section."""
    rows = {"uncalibrated": cv["raw"], "calibrated by the other folds' factors": cv["calibrated"]}
    n = cv["raw"][leads[0]]["inits"]
    lines = [
        "",
        f"## Per-lead spread calibration, one fold left out: {name}",
        "",
        f"Each fold's forecasts of the days it held out ({n} initial times in all, "
        f"{cv['members']} members, `{cv['sampler']}`), scaled by the per-lead factors fitted "
        "on the other folds' forecasts of theirs (as `wxens calibrate --fold` fits them for "
        "the model trained on all the days), scored together: does a factor fitted on some "
        "days hold on others? Rank cells read `model (perfect model)` as above.",
        "",
        f"| forecasts | {_score_header(leads)} |",
        "| --- | " + " | ".join("---" for _ in range(3 * len(leads))) + " |",
    ]
    for label, row in rows.items():
        lines.append(f"| {label} | {_score_cells(row, leads)} |")
    lines += [
        "",
        "| fold left out | " + " | ".join(f"factor {h} h" for h in leads) + " |",
        "| --- | " + " | ".join("---" for _ in leads) + " |",
    ]
    for period, factors in zip(cv["held_out"], cv["factors"], strict=True):
        lines.append(f"| {period} | " + " | ".join(f"{k:.3f}" for k in factors) + " |")
    return lines


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
        metavar="NAME=W[:S]",
        help="also score the --run model NAME after a decaying-average bias correction of "
        "weight W and, with :S, the spread scaling of weight S (wxens bias-correct --weight W "
        "--spread-weight S; the test days' errors verified by each initial time)",
    )
    u.add_argument(
        "--cv-bias",
        action="append",
        default=[],
        metavar="NAME=CHECKPOINT,CHECKPOINT,...=SAMPLER=W,W:S,...",
        help="score decaying-average bias-correction weights W (0: none), with :S a spread "
        "scaling of weight S, on the cross-validation folds' held-out days",
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
