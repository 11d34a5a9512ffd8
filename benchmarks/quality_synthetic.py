"""Synthetic study: a generator against the oracle ensemble of the synthetic source (its
exact conditional law) at 1 and 4 model steps, and a 10-day autoregressive rollout.

Every figure comes from the library's own calls (:mod:`benchmarks.synthetic_study`): the
model's forecasts and the oracle's members
(:func:`pipeline.sources.synthetic.oracle_ensemble`) as forecast stores, both scored by
:func:`verification.run.verify_store`; the tables are read off the scorecards. Without
``--checkpoint`` the model is trained first (``configs/synthetic_flow_matching.yaml``,
resumed when interrupted). Writes
``benchmarks/results/NAME.json`` and ``NAME.md``.

    python -m benchmarks.quality_synthetic --workdir /tmp/quality --sampler heun:nfe=20

The config is flow matching's; EDM is the same config with its model section given whole
(its ``sample_nfe`` is flow matching's key), in a work directory of its own:

    python -m benchmarks.quality_synthetic --workdir /tmp/quality_edm \
        --name quality_synthetic_edm --sampler edm_euler:num_steps=10 \
        --set 'model={kind: edm, backbone: {widths: [32, 64], attention_heads: 0,
        embedding_dim: 64}, sample_steps: 10}'

Run with ``OMP_NUM_THREADS=1 nice`` on a shared CPU.
"""

from __future__ import annotations

import logging

import pandas as pd

from benchmarks.quality_tables import write_results
from benchmarks.synthetic_study import SyntheticStudy, study_parser
from pipeline.forecast_store import open_forecast, provenance
from pipeline.schema import LEAD_TIME, TIME
from pipeline.sources.synthetic import SyntheticConfig, conditional_moments, oracle_ensemble

SOURCE = "synthetic:n_lat=16,n_lon=24,n_times=1700,step=6h,seed=7"
CONFIG = "configs/synthetic_flow_matching.yaml"
TEST = pd.date_range("2001-02-01", "2001-02-19", freq="18h")  # held out of training
LEADS = (6.0, 24.0)  # 1 and 4 model steps
ROLLOUT_INITS, ROLLOUT_DAYS, ROLLOUT_SEED = 6, 10, 1
NAMES = {"flow_matching": "flow matching", "edm": "EDM"}  # the generators' names in titles
log = logging.getLogger("quality_synthetic")


def main() -> None:
    parser = study_parser(__doc__)
    parser.add_argument(
        "--sampler", action="append", default=[], help="more sampler specs to score"
    )
    parser.add_argument("--rollout-sampler", help="sampler of the rollout (default: the model's)")
    parser.add_argument("--name", default="quality_synthetic")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")

    study = SyntheticStudy.prepare(
        args.workdir, SOURCE, ["t2m"], CONFIG, args.set, args.members, args.checkpoint
    )
    config = SyntheticConfig.from_spec(SOURCE)
    oracle = args.workdir / f"oracle-{args.members}.zarr"
    if not oracle.exists():
        state = study.store.dataset.t2m.sel({TIME: TEST}).load()
        study.write_oracle(
            oracle,
            [
                oracle_ensemble(state, f"{h:g}h", args.members, 0, config).to_dataset()
                for h in LEADS
            ],
        )
    rows = {}
    for sampler in [None, *args.sampler]:
        out = study.forecast("model", TEST, LEADS, sampler)
        made = provenance(out)
        rows[made.sampler] = {"nfe": made.nfe, "leads": study.scores(out, ["t2m"])["t2m"]}
    leads = [24.0 * d for d in range(1, ROLLOUT_DAYS + 1)]
    first = TEST[:ROLLOUT_INITS]
    rollout = study.forecast("rollout", first, leads, args.rollout_sampler, seed=ROLLOUT_SEED)
    members = open_forecast(rollout).t2m
    card = study.scores(rollout, ["t2m"])["t2m"]
    state = study.store.dataset.t2m.sel({TIME: first}).load()
    rollout_rows = {
        f"{h:g}": {
            "spread": card[f"{h:g}"]["ensemble_spread"],
            "oracle_spread": float(conditional_moments(state, f"{h:g}h", config)[1].mean()),
            "min": float(members.sel({LEAD_TIME: pd.Timedelta(hours=h)}).min()),
            "max": float(members.sel({LEAD_TIME: pd.Timedelta(hours=h)}).max()),
        }
        for h in leads
    }
    t2m = study.store.dataset.t2m
    payload = {
        "study": "synthetic",
        "source": SOURCE,
        "config": CONFIG,
        "overrides": args.set,
        "checkpoint": study.checkpoint,
        "generator": provenance(rollout).generator,
        "checkpoint_digest": provenance(rollout).checkpoint_digest,
        "train_steps": study.train_steps,
        "test_inits": [str(t) for t in TEST],
        "members": args.members,
        "models": rows,
        "oracle": study.scores(oracle, ["t2m"])["t2m"],
        "rollout": {
            "inits": [str(t) for t in first],
            "sampler": provenance(rollout).sampler,
            "leads": rollout_rows,
        },
        "truth_range": [float(t2m.min()), float(t2m.max())],
    }
    write_results(args.name, payload, markdown(payload))


def markdown(p: dict) -> str:
    o = p["oracle"]
    overrides = "".join(f" `--set {item}`" for item in p["overrides"])
    lines = [
        f"# Synthetic source: {NAMES.get(p['generator'], p['generator'])} against the oracle "
        "ensemble",
        "",
        f"Source `{p['source']}` (t2m, 6-hourly), model `{p['config']}`{overrides}, "
        f"{len(p['test_inits'])} test initial times 1-19 February 2001 (held out), "
        f"{p['members']} members; 4 model steps = an autoregressive rollout. Fair CRPS in K; "
        "rank max/min over "
        f"{p['members'] + 1} bins (oracle's own for scale); `verify_store` scorecards.",
        "",
        "| sampler (NFE) | model steps | oracle CRPS | model CRPS | ratio | model SSR | "
        "oracle SSR | rank max/min model / oracle |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for sampler, row in p["models"].items():
        for steps, lead in ((1, "6"), (4, "24")):
            m, r = row["leads"][lead], o[lead]
            lines.append(
                f"| `{sampler}` ({row['nfe']}) | {steps} ({lead} h) | {r['fair_crps']:.3f} | "
                f"{m['fair_crps']:.3f} | {m['fair_crps'] / r['fair_crps']:.3f} | "
                f"{m['spread_skill_ratio']:.2f} | {r['spread_skill_ratio']:.2f} | "
                f"{m['rank_max_min']:.2f} / {r['rank_max_min']:.2f} |"
            )
    rollout = p["rollout"]
    lines += [
        "",
        f"## 10-day rollout ({len(rollout['inits'])} initial times, {p['members']} members, one "
        f"6 h step at a time, `{rollout['sampler']}`)",
        "",
        "Model spread: the scorecard's ensemble spread (cos-latitude weighted); oracle spread: "
        "the exact conditional std.",
        "",
        "| lead (days) | model spread (K) | oracle spread (K) | member min (K) | member max (K) |",
        "| --- | --- | --- | --- | --- |",
    ]
    for lead, row in rollout["leads"].items():
        lines.append(
            f"| {float(lead) / 24:g} | {row['spread']:.2f} | {row['oracle_spread']:.2f} | "
            f"{row['min']:.1f} | {row['max']:.1f} |"
        )
    low, high = p["truth_range"]
    lines.append(f"\nTruth range over the whole store: {low:.1f} to {high:.1f} K.")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
