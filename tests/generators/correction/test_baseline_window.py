"""The baselines' window of days of the year: on a training period of a year or more it
keeps to the season by default (generators.correction.baselines.BaselineConfig.window)."""

from __future__ import annotations

import logging
import math

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from flows.cli import main
from generators.correction.baseline_store import baseline_to_store
from generators.correction.baselines import (
    WINDOW_DAYS,
    BaselineConfig,
    ClimatologyEnsemble,
    PersistenceEnsemble,
)
from pipeline.errors import InputError
from pipeline.forecast_store import open_forecast
from pipeline.store import ingest
from pipeline.timeaxis import days_from_date
from verification.scores import fair_crps

YEARS = BaselineConfig("2000-01-01", "2002-12-31", members=30, seed=3)
DAY = pd.Timedelta("1D")


def seasonal(end: str = "2003-03-31") -> xr.Dataset:
    """Daily t2m on a 3 x 3 grid from 2000: a seasonal cycle of amplitude 10 K (coldest in
    mid-January) plus independent noise of 1.5 K, so March differs from July by ~17 K."""
    times = pd.date_range("2000-01-01", end, freq="D")
    cycle = 283.0 - 10.0 * np.cos(2 * np.pi * (times.day_of_year.values - 15) / 365.25)
    noise = np.random.default_rng(7).normal(0.0, 1.5, (len(times), 3, 3))
    coords = {"time": times, "latitude": [52.0, 51.0, 50.0], "longitude": [-2.0, -1.0, 0.0]}
    dims = ("time", "latitude", "longitude")
    return xr.Dataset({"t2m": (dims, cycle[:, None, None] + noise)}, coords=coords)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A synthetic analysis store of 800 days from 2000-01-01."""
    path = tmp_path_factory.mktemp("window") / "years.zarr"
    spec = "synthetic:n_lat=4,n_lon=4,n_times=800,step=24h,seed=1"
    return ingest(spec, path, variables=["t2m"], progress=False)


def test_a_multi_year_period_keeps_each_pool_within_15_days_of_the_year_by_default():
    """Members were drawn from the whole period unless --window-days was given: on four years
    the climatology forecast March from July."""
    ds = seasonal()
    assert YEARS.window == WINDOW_DAYS == 15 and YEARS.window_by_default
    init = pd.Timestamp("2003-03-14")
    for baseline, reference in (
        (ClimatologyEnsemble(ds, YEARS), init + DAY),  # the valid date
        (PersistenceEnsemble(ds, YEARS), init),  # the initial date
    ):
        picks = baseline.picks(init, DAY)
        assert (days_from_date(picks, reference) <= 15).all(), picks
        assert len(set(picks.year)) == 3 and len(set(picks)) == 30  # every year, no repeat
    members = ClimatologyEnsemble(ds, YEARS).ensemble(init, [DAY]).t2m
    march = 283.0 - 10.0 * np.cos(2 * np.pi * (74 - 15) / 365.25)  # 15 March: ~277.7 K
    assert abs(float(members.mean()) - march) < 1.0


def test_the_default_window_scores_a_better_climatology_than_the_whole_period():
    """Fair CRPS against March truth drawn from the same law: the seasonal pool's members
    share its mean, the whole period's spread over the full cycle."""
    ds = seasonal()
    inits = pd.date_range("2003-03-01", "2003-03-30", freq="D")
    whole = BaselineConfig(YEARS.train_start, YEARS.train_end, 30, 3, window_days=math.inf)
    crps = {}
    for config in (YEARS, whole):
        baseline = ClimatologyEnsemble(ds, config)
        members = xr.concat(
            [baseline.ensemble(t, [DAY]) for t in inits], pd.Index(inits, name="init_time")
        ).t2m
        truth = ds.t2m.sel(time=members.init_time + members.lead_time)
        crps[config.window] = float(fair_crps(members, truth).mean())
    assert crps[15] < 0.5 * crps[None], crps  # ~0.85 K against ~4 K


def test_the_whole_period_is_asked_for_with_inf():
    ds = seasonal()
    config = BaselineConfig(YEARS.train_start, YEARS.train_end, 30, 3, window_days=math.inf)
    assert config.window is None and not config.window_by_default
    baseline = ClimatologyEnsemble(ds, config)
    valid = pd.Timestamp("2003-03-15")
    assert len(baseline.pool(valid - DAY, DAY)) == 366 + 365 + 365
    assert set(baseline.picks(valid - DAY, DAY).month) - {2, 3, 4}  # months far from March


def test_a_period_shorter_than_a_year_draws_as_before():
    """The UK sample's 21 days (wxens demo) keep the whole period: the same members."""
    ds = seasonal()
    short = BaselineConfig("2000-03-01", "2000-03-21", members=8, seed=1)
    whole = BaselineConfig("2000-03-01", "2000-03-21", members=8, seed=1, window_days=math.inf)
    assert short.window is None and not short.window_by_default
    init = pd.Timestamp("2000-03-22")
    for kind in (ClimatologyEnsemble, PersistenceEnsemble):
        a, b = kind(ds, short), kind(ds, whole)
        assert len(a.pool(init, DAY)) == 21 - (kind is PersistenceEnsemble)
        assert a.picks(init, DAY).equals(b.picks(init, DAY))
    assert BaselineConfig("2001-01-01", "2001-12-30").window is None  # 364 days
    assert BaselineConfig("2001-01-01", "2001-12-31").window == 15  # 365 days: a year


@pytest.mark.parametrize("bad", [-1.0, math.nan])
def test_a_bad_window_is_refused_naming_the_fix(bad):
    with pytest.raises(InputError, match=r"window_days must be a number of days >= 0, or inf"):
        BaselineConfig("2000-01-01", "2002-12-31", window_days=bad)
    with pytest.raises(InputError, match=r"window_days must be a number, got 'all'"):
        BaselineConfig("2000-01-01", "2002-12-31", window_days="all")


def test_the_cli_takes_inf_and_refuses_other_words(store, tmp_path, capsys):
    argv = ["baseline", "climatology", "--store", str(store.path), "--members", "4"]
    argv += ["--train", "2000-01-01/2001-12-31", "--init", "2002-01-05", "--lead", "24h"]
    out = tmp_path / "whole.zarr"
    assert main([*argv, "--window-days", "inf", "--out", str(out), "--no-progress"]) == 0
    assert "the whole period (--window-days inf)" in capsys.readouterr().out
    assert "window_days=None" in open_forecast(out).attrs["wxens_sampler"]
    with pytest.raises(SystemExit) as refused:
        main([*argv, "--window-days", "all", "--out", str(tmp_path / "x.zarr")])
    assert refused.value.code == 2 and not (tmp_path / "x.zarr").exists()
    said = capsys.readouterr().err
    assert "--window-days" in said and "'all'" in said and "or inf for the whole period" in said


def test_the_log_and_the_store_name_the_window_and_that_it_was_the_default(
    store, tmp_path, capsys, caplog
):
    out = tmp_path / "clim.zarr"
    config = BaselineConfig("2000-01-01", "2001-12-31", members=4)
    logger = logging.getLogger("generators.correction.baseline_store")
    logger.addHandler(caplog.handler)
    try:
        with caplog.at_level(logging.INFO, logger=logger.name):
            inits = [pd.Timestamp("2002-01-05")]
            baseline_to_store("climatology", store.path, config, inits, [24.0], out, progress=False)
    finally:
        logger.removeHandler(caplog.handler)
    said = "\n".join(r.getMessage() for r in caplog.records)
    default = "15 days of the year (the default for a training period of a year or more)"
    assert f"climatology: members drawn from 2000-01-01 to 2001-12-31, {default}" in said
    assert "window_days=15" in open_forecast(out).attrs["wxens_sampler"]
    assert main(["info", str(out)]) == 0
    assert f"window     {default}" in capsys.readouterr().out
