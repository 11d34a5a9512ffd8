"""Which faults the physics checks detect, and which they cannot.

Members are the truth itself, altered in one known way (displaced, biased, smoothed,
noisy, small scales amplified or damped), on two truths: the synthetic source's balanced
upper air (``z, t, u, v`` on 500/700/850 hPa, with ``t2m``) and the shipped ERA5 t2m sample
(``data/era5-t2m-uk-2019-03.grib``). Every registered check runs on each case through the
library's own calls (:func:`pipeline.alignment.align_with_truth`, the checks of
:data:`verification.base.CHECKS`); the table gives each check's verdict by part. Writes
``benchmarks/results/physics_sensitivity.json`` (or ``--out``) and prints the Markdown table that
``docs/physics.md`` shows.

    python -m benchmarks.physics_sensitivity [--out PATH]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from pipeline.alignment import align_with_truth
from pipeline.schema import G0
from pipeline.sources.synthetic import SyntheticConfig, synthetic_dataset
from pipeline.store import ingest, open_store
from verification import physics as _checks  # noqa: F401  (registers the checks)
from verification.base import CHECKS

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "physics_sensitivity.json"
SAMPLE = ROOT / "data" / "era5-t2m-uk-2019-03.grib"
MEMBERS = 3
LEADS = (6, 24)
GRID = ["latitude", "longitude"]

Fault = Callable[[xr.Dataset, np.random.Generator], xr.Dataset]


def _each(ds: xr.Dataset, change: Callable[[xr.DataArray], xr.DataArray]) -> xr.Dataset:
    return ds.assign({n: change(ds[n]).transpose(*ds[n].dims) for n in ds.data_vars})


def _at_500(ds: xr.Dataset, names: tuple[str, ...], change) -> xr.Dataset:
    out = ds.copy()
    for name in (n for n in names if n in ds and "level" in ds[n].dims):
        out[name] = ds[name].where(ds.level != 500, change(ds[name])).transpose(*ds[name].dims)
    return out


def scale_small_scales(da: xr.DataArray, factor: float, cutoff: float = 0.35) -> xr.DataArray:
    """``da`` with the power of every 2-D wavenumber above ``cutoff`` x Nyquist times
    ``factor`` (the scales of the spectral check's small band)."""
    fy = np.fft.fftfreq(da.sizes["latitude"])[:, None] / 0.5
    fx = np.fft.fftfreq(da.sizes["longitude"])[None, :] / 0.5
    gain = np.where(np.hypot(fy, fx) >= cutoff, np.sqrt(factor), 1.0)

    def apply(values: np.ndarray) -> np.ndarray:
        return np.real(np.fft.ifft2(np.fft.fft2(values) * gain)).astype(values.dtype)

    return xr.apply_ufunc(apply, da, input_core_dims=[GRID], output_core_dims=[GRID])


def _noise(ds: xr.Dataset, rng: np.random.Generator, fraction: float) -> xr.Dataset:
    def add(da: xr.DataArray) -> xr.DataArray:
        scale = da.std([d for d in da.dims if d != "level"])
        noise = xr.DataArray(rng.standard_normal(da.shape).astype(np.float32), dims=da.dims)
        return da + fraction * scale * noise

    return _each(ds, add)


FAULTS: dict[str, tuple[str, Fault]] = {
    "none": ("the truth itself", lambda ds, rng: ds),
    "shift all 5": (
        "every field displaced 5 grid points east",
        lambda ds, rng: _each(ds, lambda da: da.roll(longitude=5)),
    ),
    "shift 500 wind 5": (
        "500 hPa u, v displaced 5 grid points",
        lambda ds, rng: _at_500(ds, ("u", "v"), lambda da: da.roll(longitude=5)),
    ),
    "shift 500 wind 20": (
        "500 hPa u, v displaced 20 grid points",
        lambda ds, rng: _at_500(ds, ("u", "v"), lambda da: da.roll(longitude=20)),
    ),
    "warm 2 K": (
        "t and t2m 2 K too warm",
        lambda ds, rng: ds.assign({n: ds[n] + 2.0 for n in ("t", "t2m") if n in ds}),
    ),
    "warm 2 K at 500": (
        "t 2 K too warm at 500 hPa only",
        lambda ds, rng: _at_500(ds, ("t",), lambda da: da + 2.0),
    ),
    "z500 +30 m": (
        "500 hPa geopotential 30 m too high",
        lambda ds, rng: _at_500(ds, ("z",), lambda da: da + 30.0 * G0),
    ),
    "hot spots": (
        "1 % of t and t2m values at 360 K",
        lambda ds, rng: ds.assign(
            {n: ds[n].where(rng.random(ds[n].shape) > 0.01, 360.0) for n in ("t", "t2m") if n in ds}
        ),
    ),
    "smoothed 5x5": (
        "every field a 5 x 5 running mean",
        lambda ds, rng: _each(
            ds, lambda da: da.rolling(latitude=5, longitude=5, center=True, min_periods=1).mean()
        ),
    ),
    "noise 10 %": (
        "white noise of 10 % of each field's std",
        lambda ds, rng: _noise(ds, rng, 0.1),
    ),
    "small scales x6": (
        "small-scale power times 6",
        lambda ds, rng: _each(ds, lambda da: scale_small_scales(da, 6.0)),
    ),
    "small scales x0.5": (
        "small-scale power halved",
        lambda ds, rng: _each(ds, lambda da: scale_small_scales(da, 0.5)),
    ),
}


def truth_as_forecast(truth: xr.Dataset, inits: pd.DatetimeIndex, leads_h) -> xr.Dataset:
    """``MEMBERS`` copies of the truth in the forecast layout (init, member, lead)."""
    leads = pd.to_timedelta(list(leads_h), unit="h")
    rows = [
        xr.concat(
            [truth.sel(time=i + lead).drop_vars("time") for lead in leads],
            dim=pd.Index(leads, name="lead_time"),
        )
        for i in inits
    ]
    forecast = xr.concat(rows, dim=pd.Index(inits, name="init_time"))
    forecast = forecast.expand_dims(member=np.arange(MEMBERS))
    return forecast.transpose("init_time", "member", "lead_time", ...)


def run_checks(forecast: xr.Dataset, truth: xr.Dataset, seed: int) -> dict[str, dict]:
    """Every fault that changes ``forecast`` through every applicable check:
    {fault: {row label: outcome}}. The forecast's grid is wider than the truth's, so that
    displacements, smoothing and filters act away from the edges of the truth's grid;
    alignment keeps the truth's points."""
    out = {}
    for fault, (_, apply) in FAULTS.items():
        members = apply(forecast, np.random.default_rng(seed))
        if fault != "none" and members.identical(forecast):
            continue  # nothing this fault alters (no upper air in the sample)
        aligned = align_with_truth(members, truth)
        rows = {}
        for name in CHECKS:
            check = CHECKS[name]()
            if not check.applies(aligned.forecast):
                continue
            for result in check(aligned.forecast, aligned.truth, aligned.initial):
                rows[result.label] = {
                    "verdict": result.verdict,
                    "median_member": float(result.member_score.median()),
                    "truth": result.truth_score,
                    "tolerance": result.tolerance,
                    "reason": result.reason,
                }
        out[fault] = rows
    return out


def synthetic_case() -> tuple[xr.Dataset, xr.Dataset, dict]:
    """48 x 32 points over 60 x 40 degrees, members on 20 more points each side."""
    step = 60.0 / 47
    config = SyntheticConfig(
        n_lat=32,
        n_lon=88,
        lon_min=-30.0 - 20 * step,
        lon_max=30.0 + 20 * step,
        n_times=40,
        levels=(500, 700, 850),
        seed=4,
    )
    wide = synthetic_dataset(config).load()
    truth = wide.isel(longitude=slice(20, -20))
    inits = config.times[:32]
    setup = {"source": config.to_spec(), "truth_grid": "32 x 48", "init_times": len(inits)}
    return truth_as_forecast(wide, inits, LEADS), truth, setup | {"leads_h": list(LEADS)}


def sample_case(workdir: Path) -> tuple[xr.Dataset, xr.Dataset, dict]:
    """The sample's 33 x 49 grid; the truth on its 39 inner longitudes."""
    store = workdir / "uk.zarr"
    ingest(str(SAMPLE), store, progress=False)
    wide = open_store(store).dataset[["t2m"]].load()
    truth = wide.isel(longitude=slice(5, -5))
    inits = pd.DatetimeIndex(wide.time.values[:-24:12])
    setup = {"source": SAMPLE.name, "truth_grid": "33 x 39", "init_times": len(inits)}
    return truth_as_forecast(wide, inits, LEADS), truth, setup | {"leads_h": list(LEADS)}


def families(rows: dict[str, dict]) -> dict[str, str]:
    """Per check, its verdict: ``FAIL`` with the failing parts, ``pass``, or ``n/a``."""
    out: dict[str, list[tuple[str, str]]] = {}
    for label, row in rows.items():
        family, _, part = label.partition(" ")
        out.setdefault(family, []).append((part, row["verdict"]))
    summary = {}
    for family, parts in out.items():
        failed = [p for p, v in parts if v == "fail"]
        if failed:
            summary[family] = "FAIL " + ", ".join(failed)
        elif any(v == "pass" for _, v in parts):
            summary[family] = "pass"
        else:
            summary[family] = "n/a"
    return summary


def markdown(results: dict) -> str:
    lines = []
    for case, payload in results.items():
        table = {fault: families(rows) for fault, rows in payload["faults"].items()}
        checks = sorted({c for row in table.values() for c in row}, key=list(CHECKS).index)
        lines += [f"**{case}** ({payload['setup']['source']})", ""]
        lines.append("| members = truth, then | " + " | ".join(f"`{c}`" for c in checks) + " |")
        lines.append("| --- " * (len(checks) + 1) + "|")
        for fault, row in table.items():
            if not row:
                continue
            cells = [row.get(c, "n/a") for c in checks]
            lines.append(f"| {FAULTS[fault][0]} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=RESULTS, help=f"default {RESULTS.name}")
    args = parser.parse_args(argv)
    results = {}
    with tempfile.TemporaryDirectory() as workdir:
        for case, build in (("synthetic upper air", synthetic_case), ("ERA5 UK t2m", None)):
            forecast, truth, setup = build() if build else sample_case(Path(workdir))
            results[case] = {"setup": setup, "faults": run_checks(forecast, truth, seed=0)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1, default=float) + "\n")
    print(markdown(results))


if __name__ == "__main__":
    main()
