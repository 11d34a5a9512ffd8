"""Shared builders for the verification tests: oracle ensembles of the synthetic source,
small random ensembles, a quick ``wxens verify`` command line. A module of its own, not
``conftest``: a test importing from ``conftest`` got the first one imported, another
directory's when several ran together."""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from pipeline.sources.synthetic import (
    SyntheticConfig,
    conditional_moments,
    oracle_ensemble,
    synthetic_dataset,
)


def oracle_forecast(
    config: SyntheticConfig,
    truth: xr.Dataset,
    n_init: int,
    leads_h: tuple[int, ...],
    n_members: int,
    *,
    seed: int = 0,
    spread_factor: float = 1.0,
) -> xr.Dataset:
    """A wxens-layout t2m forecast drawn from the exact conditional law of the synthetic
    process (``spread_factor`` < 1 shrinks members toward the conditional mean)."""
    state = truth["t2m"].isel(time=slice(0, n_init))
    parts = []
    for k, hours in enumerate(leads_h):
        lead = pd.Timedelta(hours=hours)
        members = oracle_ensemble(state, lead, n_members, seed + k, config)
        mean, _ = conditional_moments(state, lead, config)
        members = mean + spread_factor * (members - mean)
        parts.append(members.swap_dims(time=INIT).drop_vars(["time", "lead_time"]))
    t2m = xr.concat(parts, dim=pd.Index(pd.to_timedelta(list(leads_h), unit="h"), name="lead_time"))
    return xr.Dataset({"t2m": t2m.transpose(INIT, "member", "lead_time", "latitude", "longitude")})


INIT = "init_time"


def balanced_members(
    config: SyntheticConfig, truth: xr.Dataset, n_init: int, leads_h, seeds
) -> xr.Dataset:
    """Upper-air members that are balanced but not the truth: the synthetic fields of other
    seeds (other waves), at the forecast's valid times."""
    from dataclasses import replace

    members = []
    for seed in seeds:
        other = synthetic_dataset(replace(config, seed=seed))[["z", "t", "u", "v"]].load()
        members.append(at_leads(other, truth.time.values[:n_init], leads_h))
    return xr.concat(members, dim=pd.Index(np.arange(len(seeds)), name="member")).transpose(
        INIT, "member", ...
    )


def at_leads(ds: xr.Dataset, inits, leads_h) -> xr.Dataset:
    """A dataset indexed by (init_time, lead_time): ``ds`` at init + lead."""
    leads = pd.to_timedelta(list(leads_h), unit="h")
    rows = [
        xr.concat(
            [ds.sel(time=i + lead).drop_vars("time") for lead in leads],
            dim=pd.Index(leads, name="lead_time"),
        )
        for i in inits
    ]
    return xr.concat(rows, dim=pd.Index(inits, name=INIT))


def ensemble(rng, n_init=4, n_member=7, n_lat=5, n_lon=6, spread=1.0):
    """A float64 forecast (init_time, member, latitude, longitude) and a truth."""
    lat = np.linspace(-60, 60, n_lat)
    lon = np.arange(n_lon) * 360.0 / n_lon
    coords = {
        "init_time": pd.date_range("2021-01-01", periods=n_init, freq="12h"),
        "latitude": lat,
        "longitude": lon,
    }
    truth = xr.DataArray(
        rng.normal(size=(n_init, n_lat, n_lon)),
        dims=("init_time", "latitude", "longitude"),
        coords=coords,
    )
    members = spread * rng.normal(size=(n_init, n_member, n_lat, n_lon))
    forecast = xr.DataArray(
        members, dims=("init_time", "member", "latitude", "longitude"), coords=coords
    ).assign_coords(member=np.arange(n_member))
    return forecast, truth


def iid_ensemble(rng, n_points, n_member, spread=1.0, shift=0.0):
    """Truth and members exchangeable N(0, 1) draws at independent points (reliable)."""
    truth = xr.DataArray(rng.normal(size=n_points), dims=("x",))
    members = xr.DataArray(
        shift + spread * rng.normal(size=(n_points, n_member)), dims=("x", "member")
    )
    return members, truth


def point(members, y):
    forecast = xr.DataArray(np.asarray(members, float)[None, :], dims=("x", "member"))
    return forecast, xr.DataArray([float(y)], dims=("x",))


def verify_command(forecast, truth, out, *extra: str, every_group: bool = False) -> list[str]:
    """``wxens verify FORECAST --truth TRUTH --out OUT`` without progress bars or intervals;
    without ``every_group``, no physics, maps or energy score (faster); ``extra`` last."""
    quick = [] if every_group else ["--physics-init-times", "0", "--no-energy-score"]
    fixed = ["--interval-level", "0", "--no-progress"]
    files = [str(forecast), "--truth", str(truth), "--out", str(out)]
    return ["verify", *files, *quick, *fixed, *extra]
