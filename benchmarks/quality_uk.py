"""UK t2m study: a checkpoint's ensembles of the test days, raw and after the
decaying-average correction chain, against the climatology and persistence baselines.

Every figure comes from the library's own calls, as a user would chain them:
:func:`generators.rollout_store.forecast_to_store` (the raw forecast store) ->
:func:`generators.correction.bias.bias_correct_store` with a
:class:`~generators.correction.spec.CorrectionSpec` (one corrected store per chain) ->
:func:`verification.run.verify_store` against the analysis store, with a baseline store
(:func:`generators.correction.baseline_store.baseline_to_store`) as the reference; the tables are
read off the scorecards. Writes ``benchmarks/results/NAME.json`` and ``NAME.md``. Forecast
stores in the work directory are reused when they hold every test initial time.

    python -m benchmarks.quality_uk --checkpoint runs/uk_fm/last.pt --workdir /tmp/quality \\
        --sampler euler:nfe=2,noise_scale=1.2 --correction 0.2:0.7 --correction 0.2:0.7:0.1

Run with ``OMP_NUM_THREADS=1 nice`` on a shared CPU.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import pandas as pd

from benchmarks.quality_tables import lead_table, run_key, scorecard, write_results
from generators.correction.baseline_store import baseline_to_store
from generators.correction.baselines import BaselineConfig
from generators.correction.bias import bias_correct_store
from generators.correction.spec import CorrectionSpec
from generators.rollout_store import forecast_to_store
from pipeline.errors import InputError
from pipeline.forecast_store import complete_init_times, provenance
from pipeline.schema import Period
from pipeline.store import ingest
from verification.config import VerifyConfig
from verification.run import verify_store

log = logging.getLogger("quality_uk")
ROOT = Path(__file__).resolve().parents[1]
BASELINES = ("climatology", "persistence")
RANK_TARGET = 1.5  # the rank max/min ratio the UK sample aims at
FLOOR = ("rank_max_min_error_surrogate", "floor_at_least_model", "floor_above_target")
#: what every scorecard computes: no physics, spectra or energy score; intervals of 2000 draws
SCORECARD = dict(physics_init_times=0, energy_score=False, interval_draws=2000, progress=False)


def spec_of(text: str) -> CorrectionSpec:
    """``W``, ``W:S``, ``W:S:R`` or ``W::R`` (bias, spread, rank weights) as a spec; the
    weights are checked by :class:`CorrectionSpec`."""
    parts = text.split(":")
    try:
        weights = [float(p) if p else None for p in parts]
    except ValueError:
        weights = []
    if not 1 <= len(weights) <= 3 or weights[0] is None:
        raise InputError(f"correction {text!r}: give W, W:S, W:S:R or W::R (bias, spread, rank)")
    try:
        return CorrectionSpec(*weights)
    except InputError as error:
        raise InputError(f"correction {text!r}: {error}") from None


def row_label(spec: CorrectionSpec | None) -> str:
    if spec is None:
        return "raw"
    label = f"bias-corrected (w {spec.bias_weight:g})"
    if spec.spread_weight is not None:
        label += f", spread-scaled (w {spec.spread_weight:g})"
    if spec.rank_weight is not None:
        label += f", rank-recalibrated (w {spec.rank_weight:g})"
    return label


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--workdir", required=True, type=Path)
    parser.add_argument("--label", help="the model's name in the tables (default: checkpoint)")
    parser.add_argument("--store", type=Path, help="analysis store (default: ingest the GRIB)")
    parser.add_argument("--grib", default=str(ROOT / "data" / "era5-t2m-uk-2019-03.grib"))
    parser.add_argument("--sampler", help="sampler spec (default: the checkpoint's)")
    parser.add_argument("--members", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--correction",
        action="append",
        default=[],
        metavar="W[:S[:R]]",
        help="a correction chain to score: bias weight, spread weight, rank weight "
        "(wxens bias-correct --bias-weight/--spread-weight/--rank-weight)",
    )
    parser.add_argument("--train", default="2019-03-01/2019-03-21", help="baselines' pool")
    parser.add_argument("--test", default="2019-03-22T00/2019-03-30T18", help="initial times")
    parser.add_argument("--every", default="6h", help="spacing of the test initial times")
    parser.add_argument("--leads", default="1,3,6,12,24", help="lead hours")
    parser.add_argument("--floor-replicas", type=int, default=100, help="rank-floor replicas")
    parser.add_argument("--name", default="quality_uk")
    args = parser.parse_args()
    if args.floor_replicas < 1:
        parser.error("--floor-replicas: give at least 1 (the tables show the rank floor)")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")

    work = args.workdir
    work.mkdir(parents=True, exist_ok=True)
    store = args.store or work / "uk.zarr"
    if not store.exists():
        ingest(args.grib, store, progress=False)
    test, train = Period.parse(args.test, "--test"), Period.parse(args.train, "--train")
    inits = pd.date_range(test.start, test.end, freq=args.every)
    leads = [float(h) for h in args.leads.split(",")]
    specs = [spec_of(text) for text in args.correction]  # a typo fails before any forecast

    def complete(path: Path) -> bool:
        return path.exists() and inits.isin(complete_init_times(path)).all()

    stores = {}
    for name in BASELINES:
        drawn = run_key(args.train, args.test, args.every, args.leads, args.members, args.seed)
        stores[name] = work / f"{name}-{drawn}.zarr"
        if not complete(stores[name]):
            config = BaselineConfig(train.start, train.end, members=args.members, seed=args.seed)
            baseline_to_store(name, store, config, inits, leads, stores[name], progress=False)
    key = run_key(
        args.checkpoint, args.sampler, args.members, args.seed, args.test, args.every, args.leads
    )
    raw = work / f"raw-{key}.zarr"
    if not complete(raw):
        run = forecast_to_store(
            args.checkpoint, store, inits, leads, args.members, str(raw),
            sampler=args.sampler, seed=args.seed, calibrate=False, device="cpu", progress=False,
        )  # fmt: skip
        log.info("forecast %d initial times with %s", len(run.init_times), run.provenance.sampler)
    models = {row_label(None): raw}
    for spec in specs:
        out = work / f"corrected-{key}-{spec.label()}.zarr"
        bias_correct_store(raw, store, out, spec)
        models[row_label(spec)] = out

    def verify(path: Path, reference: Path | None = None, **config) -> dict:
        scores = work / f"{path.stem}-vs-{reference.stem if reference else 'none'}.nc"
        tree = verify_store(
            path, store, scores, reference=reference, config=VerifyConfig(**SCORECARD | config)
        ).tree
        card = scorecard(tree, "t2m")
        if "rank_floor" in tree.children:  # every replica: the shares beside the median
            replicas = tree["rank_floor"]["rank_max_min_error_surrogate"].sel(variable="t2m")
            for h, lead in zip(card, replicas.lead_time, strict=True):
                ratios = replicas.sel(lead_time=lead).values
                card[h]["floor_at_least_model"] = float((ratios >= card[h]["rank_max_min"]).mean())
                card[h]["floor_above_target"] = float((ratios > RANK_TARGET).mean())
        return card

    hours = sorted(set(inits.hour))

    def by_hour(path: Path) -> dict[str, list[float]]:
        """Ensemble-mean error by lead and initial hour (verify_store on each hour's inits)."""
        parts = [
            verify_store(
                path,
                store,
                work / f"{path.stem}-{h:02d}h.nc",
                init_times=inits[inits.hour == h],
                config=VerifyConfig(
                    scores=("ensemble_mean_error",),
                    interval_level=0,
                    perfect_model_stand_ins=0,
                    **SCORECARD,
                ),
            ).tree
            for h in hours
        ]
        cards = [scorecard(tree, "t2m") for tree in parts]
        return {lead: [c[lead]["ensemble_mean_error"] for c in cards] for lead in cards[0]}

    baselines = {name: verify(path) for name, path in stores.items()}
    lead_keys = list(baselines[BASELINES[0]])
    better = {h: min(BASELINES, key=lambda n, h=h: baselines[n][h]["fair_crps"]) for h in lead_keys}
    rows = {}
    for label, path in models.items():
        against = {  # the paired difference with each baseline; the rank floor once
            name: verify(path, stores[name], error_surrogate_replicas=floor)
            for name, floor in zip(BASELINES, (0, args.floor_replicas), strict=True)
        }
        rows[label] = {
            h: against[better[h]][h] | {k: against[BASELINES[1]][h][k] for k in FLOOR}
            for h in lead_keys
        }
    bias = {name: by_hour(path) for name, path in {**stores, **models}.items()}
    payload = {
        "study": "uk_t2m",
        "checkpoint": args.checkpoint,
        "checkpoint_digest": provenance(raw).checkpoint_digest,
        "sampler": provenance(raw).sampler,
        "members": args.members,
        "seed": args.seed,
        "train": args.train,
        "test_inits": [str(t) for t in inits],
        "leads_hours": leads,
        "better_baseline": better,
        "baselines": baselines,
        "models": rows,
        "bias_by_init_hour": {"hours": hours, "rows": bias},
    }
    write_results(args.name, payload, markdown(payload, args.label or args.checkpoint))


def markdown(p: dict, model: str) -> str:
    leads = list(p["baselines"]["climatology"])
    baselines, rows, better = p["baselines"], p["models"], p["better_baseline"]
    best = {h: baselines[better[h]][h]["fair_crps"] for h in leads}
    sampler = p["sampler"] or "the checkpoint's default sampler"
    lines = [
        "# UK t2m sample: fair CRPS (K), spread-skill ratio, rank histogram",
        "",
        f"Model `{model}` with `{sampler}`, {p['members']} members (seed {p['seed']}); test: "
        f"{len(p['test_inits'])} initial times {p['test_inits'][0]} to {p['test_inits'][-1]}; "
        f"baselines drawn from {p['train']}. Cos-latitude-weighted means over initial times "
        "and grid (`verify_store`). Corrected rows: `bias_correct_store` on the raw store, "
        "causal (only errors verified by each initial time correct it).",
        "",
        "## Fair CRPS (K)",
        "",
        *lead_table(
            {f"{n} ({p['members']} draws)": baselines[n] for n in BASELINES}
            | {"**best baseline**": {h: {"fair_crps": best[h]} for h in leads}},
            leads,
            lambda s, h: f"{s['fair_crps']:.3f}",
        ),
        *lead_table(
            rows,
            leads,
            lambda s, h: f"{s['fair_crps']:.3f}" + (" ✓" if s["fair_crps"] < best[h] else ""),
            header=False,
        ),
        "",
        "## Spread-skill ratio",
        "",
        *lead_table(baselines | rows, leads, lambda s, h: f"{s['spread_skill_ratio']:.2f}"),
        "",
        "## Rank histogram max/min bin ratio",
        "",
        "Cells read `model (perfect model)`: the second figure is the median ratio when each of "
        "5 members in turn stands in for the truth, the statistic's noise floor here.",
        "",
        *lead_table(
            baselines | rows,
            leads,
            lambda s, h: f"{s['rank_max_min']:.2f} ({s['rank_max_min_perfect_model']:.2f})",
        ),
        "",
        "## Rank max/min against a reliable ensemble with the errors' spatial correlation",
        "",
        "Replicas of a reliable ensemble whose fields correlate in space as the row's "
        "ensemble-mean errors do (`VerifyConfig.error_surrogate_replicas`). Cells read "
        f"`model / floor (P(floor ≥ model); P(floor > {RANK_TARGET:g}))`: the median replica, "
        "the share of replicas at least as uneven as the model, and the share that would miss "
        f"the target of {RANK_TARGET:g}.",
        "",
        *lead_table(
            rows,
            leads,
            lambda s, h: (
                f"{s['rank_max_min']:.2f} / {s['rank_max_min_error_surrogate']:.2f} "
                f"({s['floor_at_least_model']:.2f}; {s['floor_above_target']:.2f})"
            ),
        ),
        "",
        "## Sampling uncertainty on the test days (90% intervals)",
        "",
        "Block bootstrap of whole days (2000 resamples, `VerifyConfig.interval_*`); the CRPS "
        "difference is paired with the better baseline of each lead ("
        + ", ".join(f"{h} h {better[h]}" for h in leads)
        + "), which shares each resample.",
        "",
        *lead_table(
            rows,
            leads,
            lambda s, h: (
                f"{s['spread_skill_ratio']:.2f} [{s['spread_skill_ratio_low']:.2f}, "
                f"{s['spread_skill_ratio_high']:.2f}]"
            ),
            title="SSR",
        ),
        "",
        *lead_table(
            rows,
            leads,
            lambda s, h: (
                f"{s['fair_crps'] - s['reference_fair_crps']:+.3f} "
                f"[{s['fair_crps_minus_reference_low']:+.3f}, "
                f"{s['fair_crps_minus_reference_high']:+.3f}]"
            ),
            title="CRPS - baseline",
        ),
        "",
        "## Ensemble-mean error (K) by initial hour",
        "",
        "Forecast minus truth at initial hours "
        + " / ".join(f"{h:02d}" for h in p["bias_by_init_hour"]["hours"])
        + " UTC (`verify_store` on each hour's initial times); spread scaling keeps the mean "
        "the bias correction left.",
        "",
        *lead_table(
            p["bias_by_init_hour"]["rows"],
            leads,
            lambda s, h: " ".join(f"{b:+.2f}" for b in s),
        ),
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
