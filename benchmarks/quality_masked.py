"""A masked field: the UK t2m sample with its sea points set to NaN, run through
``wxens demo`` (the product's defaults: a config derived from the store, its spread
calibration, the tuned correction) and verified over land against the persistence and
climatology baselines.

The land mask is a rule on the field itself: a grid point is land where the mean daily
range (max - min over each day) of t2m over the sample's 1-21 March is at least
``--land-range`` kelvin (the sea's diurnal cycle is damped). The masked field is written to
NetCDF and given to ``wxens demo --sample ... --allow-nan``, so the model sees NaN over the
sea; the baselines and the scores come from the library's own calls
(:func:`baseline_to_store`, :func:`verify_store`), the fair CRPS a mean over the land
points. ``--split`` as in ``benchmarks/demo.py``: ``validation`` trains on 1-16 March and
forecasts 17-20 (choose settings there), ``test`` the demo's days. Writes
``benchmarks/results/NAME.json`` and ``.md``.

    OMP_NUM_THREADS=2 python -m benchmarks.quality_masked --workdir /tmp/masked --split validation
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import pandas as pd
import xarray as xr

from benchmarks.demo import SPLITS, delivered_store, run_demo
from benchmarks.quality_tables import lead_table, scorecard, write_results
from flows.commands.demo import FIRST_DAY
from flows.commands.forecast import parse_inits
from generators.checkpoint import load_checkpoint
from generators.correction.baseline_store import baseline_to_store
from generators.correction.baselines import BaselineConfig
from pipeline.schema import LAT, LON, TIME, Period
from pipeline.store import ingest, open_store
from verification.config import VerifyConfig
from verification.run import open_forecast_any, verify_store

log = logging.getLogger("quality_masked")
ROOT = Path(__file__).resolve().parents[1]
MASK_PERIOD = "2019-03-01/2019-03-21"
"""The days the land rule reads (geography: the same mask for both splits)."""
BASELINES = ("persistence", "climatology")
SCORECARD = dict(
    physics_init_times=0,
    energy_score=False,
    interval_draws=200,
    perfect_model_stand_ins=0,
    error_surrogate_replicas=0,
    progress=False,
)


def land_mask(t2m: xr.DataArray, period: Period, min_range: float) -> xr.DataArray:
    """(latitude, longitude) True where the mean daily range of ``t2m`` over ``period`` is
    at least ``min_range``."""
    days = t2m.sel({TIME: slice(period.start, period.end)}).resample({TIME: "1D"})
    return ((days.max() - days.min()).mean(TIME) >= min_range).transpose(LAT, LON)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workdir", required=True, type=Path)
    parser.add_argument("--grib", default=str(ROOT / "data" / "era5-t2m-uk-2019-03.grib"))
    parser.add_argument("--land-range", type=float, default=3.0, help="K, see the docstring")
    parser.add_argument("--split", choices=sorted(SPLITS), default="test")
    parser.add_argument("--members", type=int, default=20)
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], help="passed to wxens demo"
    )
    parser.add_argument("--name", default="quality_masked")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")

    work = args.workdir
    work.mkdir(parents=True, exist_ok=True)
    full = work / "uk.zarr"
    if not full.exists():
        ingest(args.grib, full, progress=False)
    ds = open_store(full).dataset.load()
    land = land_mask(ds.t2m, Period.parse(MASK_PERIOD, "mask period"), args.land_range)
    nc = work / "uk-land.nc"
    if not nc.exists():
        out = ds.copy()
        out.attrs = {}
        out["t2m"] = ds.t2m.where(land)
        out["t2m"].attrs = ds.t2m.attrs
        out.to_netcdf(nc)

    demo = work / f"demo-{args.split}"
    extra = ["--sample", str(nc), "--allow-nan", "--members", str(args.members)]
    extra += [f"--set={item}" for item in args.overrides]
    stdout, wall, _ = run_demo(demo, args.split, extra)
    log.info("wxens demo on the masked field took %.0f s", wall)
    masked = demo / "era5-uk.zarr"
    train_end, init_text = SPLITS[args.split]
    inits = parse_inits([init_text])
    trained = load_checkpoint(demo / "model").step
    stores = {"model": Path(delivered_store(demo))}
    members = open_forecast_any(stores["model"]).t2m
    lead_hours = [float(h) for h in members.lead_time.values / pd.Timedelta(hours=1)]
    for name in BASELINES:
        stores[name] = work / f"{name}-{args.split}.zarr"
        baseline = BaselineConfig(FIRST_DAY, train_end, members=args.members)
        baseline_to_store(name, masked, baseline, inits, lead_hours, stores[name], progress=False)
    cards = {}
    for name, path in stores.items():
        tree = verify_store(
            path, masked, work / f"{name}-{args.split}-scores.nc", config=VerifyConfig(**SCORECARD)
        ).tree
        cards[name] = scorecard(tree, "t2m")
    sea = ~land.values
    nan_exact = bool(
        members.isnull().values[..., sea].all() and members.notnull().values[..., ~sea].all()
    )
    lead_keys = list(cards["model"])
    payload = {
        "study": "masked_uk_t2m",
        "mask_rule": f"land where the mean daily t2m range over {MASK_PERIOD} >= "
        f"{args.land_range:g} K",
        "land_fraction": float(land.values.mean()),
        "split": args.split,
        "train_end": train_end,
        "overrides": args.overrides,
        "train_steps": trained,
        "delivered": stores["model"].name,
        "demo_seconds": round(wall, 1),
        "members": args.members,
        "test_inits": [str(t) for t in inits],
        "members_nan_exactly_on_sea": nan_exact,
        "fair_crps_over_land": {
            n: {h: c[h]["fair_crps"] for h in lead_keys} for n, c in cards.items()
        },
        "spread_skill_ratio": {h: cards["model"][h].get("spread_skill_ratio") for h in lead_keys},
        "model_beats_both_baselines": {
            h: all(cards["model"][h]["fair_crps"] < cards[b][h]["fair_crps"] for b in BASELINES)
            for h in lead_keys
        },
        "demo_output": stdout[-3000:],
    }
    lines = [
        "# Masked UK t2m: fair CRPS over land (K)",
        "",
        f"Mask: {payload['mask_rule']} ({payload['land_fraction']:.0%} of the grid is land); "
        f"sea NaN. Model: `wxens demo --allow-nan` on the masked field (derived config, "
        f"{trained} steps, overrides {args.overrides or 'none'}, its spread calibration and "
        f"tuned correction; delivered: "
        f"`{stores['model'].name}`), trained to {train_end} ({args.split} split); "
        f"{args.members} members, {len(inits)} initial times {init_text}. Members NaN exactly "
        f"on the sea: {nan_exact}.",
        "",
        *lead_table(
            {n: {h: c[h]["fair_crps"] for h in lead_keys} for n, c in cards.items()},
            lead_keys,
            lambda v, h: f"{v:.3f}",
        ),
        *lead_table(
            {"model spread-skill ratio": payload["spread_skill_ratio"]},
            lead_keys,
            lambda v, h: f"{v:.2f}",
            header=False,
        ),
        "",
    ]
    write_results(args.name, payload, "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
