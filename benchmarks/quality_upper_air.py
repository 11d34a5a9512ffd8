"""Synthetic upper-air study: a many-variable model (t2m and z, t, u, v on three levels)
against the oracle ensemble of the stochastic balanced synthetic source, per variable, at 1
and 4 model steps, and the members' balance against the truth's tolerance.

The source's wave states follow an Ornstein-Uhlenbeck process (``upper_air_phi`` < 1), so
the upper air has an exact conditional law (:func:`pipeline.sources.synthetic.
upper_air_oracle_ensemble`) beside t2m's (:func:`~pipeline.sources.synthetic.
oracle_ensemble`). Per variable and lead: fair CRPS of the model and of the oracle (from
:func:`verification.run.verify_store` scorecards) and their ratio; per lead and layer /
level: the fraction of members within the hypsometric and geostrophic checks' tolerance
(max(factor x truth's score, floor), :mod:`verification.physics.balance`), model and
oracle. The model is scored as it is and with its upper air balanced at every step
(:mod:`generators.balance`). Without ``--checkpoint`` the model is trained first
(``configs/synthetic_upper_air.yaml``). Writes ``benchmarks/results/NAME.{json,md}``.

    OMP_NUM_THREADS=1 nice python -m benchmarks.quality_upper_air --workdir /tmp/upper
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import xarray as xr

from benchmarks.quality_tables import RESULTS, run_key, write_results
from benchmarks.synthetic_study import SyntheticStudy, study_parser
from flows.commands.forecast import parse_inits
from generators.checkpoint import load_checkpoint
from pipeline.alignment import align_with_truth
from pipeline.forecast_store import open_forecast, provenance
from pipeline.schema import LEAD_TIME, TIME, Period
from pipeline.sources.synthetic import (
    UPPER_AIR_VARIABLES,
    SyntheticConfig,
    oracle_ensemble,
    upper_air_oracle_ensemble,
)
from verification.physics import Geostrophic, Hypsometric

SOURCE = (
    "synthetic:n_lat=16,n_lon=24,n_times=1700,step=6h,seed=7,levels=300/500/850,"
    "upper_air_phi=0.9,upper_air_sigma=1"
)
CONFIG = "configs/synthetic_upper_air.yaml"
TEST = pd.date_range("2001-02-01", "2001-02-19", freq="18h")  # held out of training
VALIDATION = Period("2001-01-01", "2001-01-31")  # the config's; fits the spread calibration
LEADS = (6.0, 24.0)  # 1 and 4 model steps
VARIABLES = ("t2m", *UPPER_AIR_VARIABLES)
log = logging.getLogger("quality_upper_air")


def channels(config: SyntheticConfig) -> list[str]:
    """The scored channels: ``t2m`` and every upper-air variable on every level (``z500``)."""
    return ["t2m"] + [f"{v}{p}" for v in UPPER_AIR_VARIABLES for p in config.levels]


def oracle_leads(
    state: xr.Dataset, leads: Sequence[float], members: int, config: SyntheticConfig
) -> list[xr.Dataset]:
    """The oracle's members of every variable at each lead (hours), seed 0: t2m from its
    exact law, the upper air from the wave states'."""
    return [
        xr.merge(
            [
                oracle_ensemble(state, f"{h:g}h", members, 0, config),
                upper_air_oracle_ensemble(state, f"{h:g}h", members, 0, config),
            ],
            join="exact",
            compat="override",
        )
        for h in leads
    ]


def balance(forecast: Path, truth: xr.Dataset) -> dict[str, dict[str, dict[str, float]]]:
    """Per lead (hours) and check part: the fraction of members within the tolerance, the
    truth's score, the tolerance and the members' median score."""
    aligned = align_with_truth(open_forecast(forecast), truth)
    out = {}
    for lead in aligned.forecast[LEAD_TIME].values:
        pick = {LEAD_TIME: [lead]}
        members, target = aligned.forecast.sel(pick).load(), aligned.truth.sel(pick).load()
        hours = f"{pd.Timedelta(lead) / pd.Timedelta(hours=1):g}"
        out[hours] = {
            result.label: {
                "fraction": result.pass_fraction,
                "truth": result.truth_score,
                "tolerance": result.tolerance,
                "member_median": float(result.member_score.median()),
            }
            for check in (Hypsometric(), Geostrophic())
            for result in check(members, target)
        }
    return out


def run_study(
    workdir: Path,
    *,
    source: str = SOURCE,
    config: str = CONFIG,
    overrides: Sequence[str] = (),
    test: pd.DatetimeIndex = TEST,
    validation: Period = VALIDATION,
    members: int = 50,
    checkpoint: str | None = None,
    sampler: str | None = None,
) -> dict:
    """Train (or take ``checkpoint``), calibrate its spread on ``validation``, forecast
    ``test`` at 1 and 4 steps, score model and oracle (``sampler``: the model's default
    when None); the payload of the results file."""
    study = SyntheticStudy.prepare(
        workdir, source, VARIABLES, config, overrides, members, checkpoint
    )
    synthetic = SyntheticConfig.from_spec(source)
    names = channels(synthetic)
    oracle = workdir / f"oracle-{members}-{run_key(tuple(str(t) for t in test), LEADS)}.zarr"
    if not oracle.exists():
        state = study.store.dataset.sel({TIME: test}).load()
        study.write_oracle(oracle, oracle_leads(state, LEADS, members, synthetic))
    calibrated = study.calibrated(validation, LEADS, sampler, balance=True)
    models = {
        "network": study.forecast("model", test, LEADS, sampler),
        "network + balance": study.forecast("model", test, LEADS, sampler, balance=True),
        "network + balance + calibration": calibrated.forecast(
            "model", test, LEADS, sampler, balance=True, calibrate=True
        ),
    }
    truth = study.store.dataset
    return {
        "study": "synthetic upper air",
        "source": source,
        "config": config,
        "overrides": list(overrides),
        "checkpoint": study.checkpoint,
        "sampler": provenance(models["network"]).sampler,
        "train_steps": study.train_steps,
        "checkpoint_steps": load_checkpoint(study.checkpoint).step,
        "test_inits": [str(t) for t in test],
        "validation": str(validation),
        "members": members,
        "channels": names,
        "models": {name: study.scores(path, names) for name, path in models.items()},
        "oracle": study.scores(oracle, names),
        "balance": {name: balance(path, truth) for name, path in models.items()}
        | {"oracle": balance(oracle, truth)},
    }


def trained(p: dict) -> str:
    """Where the model's steps came from, for the header."""
    if p["train_steps"] is not None:
        return f"{p['train_steps']} steps trained here"
    return f"a given checkpoint of {p.get('checkpoint_steps', 'an unknown number of')} steps"


def markdown(p: dict) -> str:
    """The per-channel CRPS table and the balance table at each lead."""
    leads = list(next(iter(p["oracle"].values())))
    models = list(p["models"])
    lines = [
        "# Synthetic upper air: a many-variable model against the oracle ensemble",
        "",
        f"Source `{p['source']}`, model `{p['config']}` (sampler `{p.get('sampler')}`, "
        f"{trained(p)}; overrides {p['overrides'] or 'none'}), {len(p['test_inits'])} held-out "
        f"test initial times, {p['members']} members; 4 model steps = an autoregressive "
        "rollout. "
        "Fair CRPS in the store's units (z in m2 s-2), spread-skill ratio in brackets; ratio = "
        "model / oracle CRPS, aim <= 1.05. "
        "`network + balance`: the same network, every step's upper air projected onto "
        "hypsometric balance and its winds made geostrophic (`generators.balance`); "
        "`+ calibration`: and its spread calibrated (`wxens calibrate --balance`, fitted on "
        f"the held-out {p['validation']}, 16 members every 6 h; one factor per "
        "lead for the balanced channels, so members stay balanced).",
        "",
    ]
    for h in leads:
        lines += [
            f"## {h} h: fair CRPS",
            "",
            "| channel | oracle (SSR) | " + " | ".join(f"{m} (SSR) | ratio" for m in models) + " |",
            "| --- | --- |" + " --- | --- |" * len(models),
        ]
        for name in p["channels"]:
            oracle = p["oracle"][name][h]
            cells = [
                f"{p['models'][m][name][h]['fair_crps']:.4g} "
                f"({p['models'][m][name][h]['spread_skill_ratio']:.2f}) | "
                f"{p['models'][m][name][h]['fair_crps'] / oracle['fair_crps']:.3f}"
                for m in models
            ]
            lines.append(
                f"| {name} | {oracle['fair_crps']:.4g} ({oracle['spread_skill_ratio']:.2f}) | "
                + " | ".join(cells)
                + " |"
            )
        lines.append("")
    lines += [
        "## Balance: fraction of members within the truth's tolerance (aim >= 0.95)",
        "",
        "Tolerance max(factor x truth's score, floor) of `verification.physics`; scores: "
        "hypsometric RMS residual / RMS thickness per layer, geostrophic mean |V - V_g| / "
        "mean |V| per level. Cells: fraction (members' median score).",
        "",
        "| lead | check | truth score | tolerance | " + " | ".join([*models, "oracle"]) + " |",
        "| --- | --- | --- | --- |" + " --- |" * (len(models) + 1),
    ]
    balance = p["balance"]
    for h in leads:
        for label, first in balance["oracle"][h].items():
            cells = [
                f"{balance[m][h][label]['fraction']:.2f} "
                f"({balance[m][h][label]['member_median']:.3g})"
                for m in [*models, "oracle"]
            ]
            lines.append(
                f"| {h} h | {label} | {first['truth']:.3g} | {first['tolerance']:.3g} | "
                + " | ".join(cells)
                + " |"
            )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = study_parser(__doc__)
    parser.add_argument("--sampler", help="the model's sampler (default: the checkpoint's)")
    parser.add_argument(
        "--test",
        help="test initial times START/END/EVERY, held out of training and calibration "
        "(default 2001-02-01/2001-02-19/18h, 25 times)",
    )
    parser.add_argument("--name", default="quality_upper_air")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    payload = run_study(
        args.workdir,
        overrides=args.set,
        members=args.members,
        checkpoint=args.checkpoint,
        sampler=args.sampler,
        test=TEST if args.test is None else parse_inits([args.test]),
    )
    write_results(args.name, payload, markdown(payload), RESULTS)


if __name__ == "__main__":
    main()
