"""The block bootstrap of means: Efron's variance of the mean for single-element blocks,
whole blocks kept together, nominal coverage under day-to-day dependence, missing values,
dask, errors; and the score intervals built on it."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from pipeline.errors import InputError
from pipeline.schema import INIT_TIME
from verification import scores as vs
from verification.resampling import block_bootstrap_means, score_intervals, score_parts


def per_init(values: np.ndarray) -> xr.Dataset:
    return xr.Dataset({"score": (INIT_TIME, values)})


def test_single_element_blocks_give_the_bootstrap_variance_of_the_mean():
    # Efron: the bootstrap variance of a mean of n resampled values is var(x, ddof=0) / n.
    x = np.random.default_rng(0).normal(size=200)
    draws = block_bootstrap_means(per_init(x), np.arange(200), draws=8000, seed=1)["score"]
    assert draws.sizes == {"draw": 8000}
    assert float(draws.mean()) == pytest.approx(x.mean(), abs=0.01)
    assert float(draws.std()) == pytest.approx(x.std() / np.sqrt(200), rel=0.04)


def test_one_block_resamples_the_whole_sample():
    x = np.random.default_rng(1).normal(size=12)
    draws = block_bootstrap_means(per_init(x), ["day"] * 12, draws=50)["score"]
    np.testing.assert_allclose(draws, x.mean())


def test_blocks_are_drawn_whole():
    # Each day holds +a and -a: any resample of whole days has mean 0 exactly; a
    # resample of single initial times would not.
    a = np.random.default_rng(2).uniform(1, 2, size=10)
    x = np.stack([a, -a], axis=1).ravel()
    days = np.repeat(np.arange(10), 2)
    draws = block_bootstrap_means(per_init(x), days, draws=500)["score"]
    np.testing.assert_allclose(draws, 0.0, atol=1e-12)
    singles = block_bootstrap_means(per_init(x), np.arange(20), draws=500)["score"]
    assert float(np.abs(singles).max()) > 0.1


def test_day_blocks_cover_the_true_mean_under_day_to_day_dependence():
    # 20 days x 4 inits sharing a day effect (the inits of a day are not independent).
    # The 90 % interval from day blocks covers the true mean 0 near 90 % of the time;
    # resampling single inits ignores the dependence and covers far less often.
    rng = np.random.default_rng(3)
    days = np.repeat(np.arange(20), 4)

    def covers(blocks: np.ndarray, x: np.ndarray, seed: int) -> bool:
        draws = block_bootstrap_means(per_init(x), blocks, draws=1000, seed=seed)["score"]
        low, high = np.quantile(draws, [0.05, 0.95])
        return bool(low <= 0.0 <= high)

    samples = [rng.normal(size=20)[days] + 0.3 * rng.normal(size=80) for _ in range(300)]
    by_day = np.mean([covers(days, x, i) for i, x in enumerate(samples)])
    by_init = np.mean([covers(np.arange(80), x, i) for i, x in enumerate(samples)])
    assert 0.8 <= by_day <= 0.97
    assert by_init < 0.7


def test_several_variables_share_each_resample_and_dask_gives_the_same_draws():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(30, 3))
    ds = xr.Dataset({"a": ((INIT_TIME, "lead"), x), "b": ((INIT_TIME, "lead"), 2 * x)})
    days = np.repeat(np.arange(10), 3)
    eager = block_bootstrap_means(ds, days, draws=200, seed=5)
    lazy = block_bootstrap_means(ds.chunk({INIT_TIME: 7}), days, draws=200, seed=5)
    assert lazy["a"].chunks is not None
    xr.testing.assert_allclose(lazy.compute(), eager)
    xr.testing.assert_allclose(eager["b"], 2 * eager["a"])  # same resample for both
    assert set(eager["a"].dims) == {"lead", "draw"}


def test_missing_elements_are_skipped():
    x = np.array([1.0, np.nan, 3.0, np.nan])
    draws = block_bootstrap_means(per_init(x), [0, 0, 1, 1], draws=400)["score"]
    # a resample holds day 0 (mean 1), day 1 (mean 3) or both (mean 2)
    assert set(np.round(draws.values, 12)) == {1.0, 2.0, 3.0}
    only_missing = block_bootstrap_means(per_init(np.full(3, np.nan)), [0, 1, 2], draws=5)
    assert bool(only_missing["score"].isnull().all())


@pytest.mark.parametrize(
    ("blocks", "kwargs", "message"),
    [
        (np.arange(5), {}, "5 block labels for 6 elements of 'init_time'"),
        (np.arange(6), {"dim": "time"}, "dim 'time' is not in the data"),
        (np.arange(6), {"draws": 0}, "draws=0"),
    ],
)
def test_bad_arguments_are_named(blocks, kwargs, message):
    with pytest.raises(InputError, match=message):
        block_bootstrap_means(per_init(np.zeros(6)), blocks, **kwargs)


def test_two_identical_blocks_close_the_intervals_on_the_scores_of_the_whole_sample():
    # Every resample is the whole sample twice: both bounds equal the scores computed directly.
    rng = np.random.default_rng(6)
    dims = (INIT_TIME, "member", "latitude", "longitude")
    latitude = np.linspace(50, 60, 4)
    f = xr.DataArray(rng.normal(size=(9, 7, 4, 5)), dims=dims, coords={"latitude": latitude})
    y = xr.DataArray(rng.normal(size=(9, 4, 5)), dims=dims[:1] + dims[2:], coords=f.latitude.coords)
    everything = (INIT_TIME, "latitude", "longitude")
    per_init = score_parts(f, y, mean_over=("latitude", "longitude"))
    twice = xr.concat([per_init, per_init], INIT_TIME)
    got = score_intervals(twice, 7, ["one day"] * 9 + ["another"] * 9, draws=20)
    np.testing.assert_allclose(got["fair_crps"], float(vs.fair_crps(f, y, mean_over=everything)))
    np.testing.assert_allclose(
        got["spread_skill_ratio"], float(vs.spread_skill_ratio(f, y, mean_over=everything))
    )
    nine_days = score_intervals(per_init, 7, np.arange(9), draws=500)["spread_skill_ratio"]
    assert float(nine_days[0]) < float(vs.spread_skill_ratio(f, y, mean_over=everything))
    with pytest.raises(InputError, match="level=1.5"):
        score_intervals(per_init, 7, np.arange(9), level=1.5)


def test_an_interval_from_fewer_than_two_blocks_is_undefined_not_zero_wide():
    """One block resamples to itself: its interval would be [x, x]. A lead whose truth
    exists in one block only (one day of initial times) gets no interval; one verified
    in two days does."""
    rng = np.random.default_rng(3)
    parts = xr.Dataset(
        {
            name: ((INIT_TIME, "lead"), rng.uniform(0.5, 1.5, size=(6, 2)))
            for name in ("fair_crps", "variance", "squared_error")
        }
    )
    parts = parts.where((parts.lead == 0) | (parts[INIT_TIME] < 3))  # lead 1: the first day only
    days = ["d1"] * 3 + ["d2"] * 3
    bounds = score_intervals(parts, 5, days, draws=200)
    for name in ("fair_crps", "spread_skill_ratio"):
        assert np.isfinite(bounds[name].isel(lead=0)).all()
        assert bounds[name].isel(lead=0).diff("quantile").item() > 0
        assert np.isnan(bounds[name].isel(lead=1)).all()
    one_day = score_intervals(parts.isel({INIT_TIME: slice(3)}), 5, days[:3], draws=200)
    assert np.isnan(one_day.fair_crps).all()
    lazy = score_intervals(parts.chunk({INIT_TIME: 2}), 5, days, draws=200)
    xr.testing.assert_allclose(lazy.compute(), bounds)


def test_intervals_and_the_reference_weigh_each_init_time_by_the_grid_it_verifies():
    """Half the initial times verify 2 of 9 latitude rows, with an error 3 K larger: the
    score (a mean over initial times and grid together) weighs them by their 2 rows, and
    so must the interval around it and the comparison with a reference (they averaged
    each initial time's grid mean alike: an interval [1.47, 1.60] around a score of 0.94)."""
    import pandas as pd

    from pipeline.alignment import align_with_truth
    from verification.config import VerifyConfig
    from verification.scorecard import verify

    rng = np.random.default_rng(0)
    times = pd.date_range("2020-01-01", periods=60, freq="6h")
    grid = {"latitude": np.linspace(50, 60, 9), "longitude": np.linspace(-10, 2, 13)}
    dims = ("time", "latitude", "longitude")
    truth = xr.Dataset(
        {"t2m": (dims, 280 + rng.normal(size=(60, 9, 13)), {"units": "K"})},
        coords={"time": times, **grid},
    )
    inits, leads = times[:40:2], pd.to_timedelta([6, 12], unit="h")
    shape = (inits.size, 5, leads.size, 9, 13)
    forecast = xr.Dataset(
        {
            "t2m": (
                ("init_time", "member", "lead_time", "latitude", "longitude"),
                280 + rng.normal(size=shape),
                {"units": "K"},
            )
        },
        coords={"init_time": inits, "lead_time": leads, **grid},
    )
    sparse = inits[::2]  # their truth on 2 rows only, their forecasts 3 K off
    valid_times = (sparse.values[:, None] + leads.values[None, :]).ravel()
    truth["t2m"] = truth.t2m.where(~truth.time.isin(valid_times) | (truth.latitude < 52.6), np.nan)
    forecast["t2m"] = forecast.t2m + 3.0 * forecast.init_time.isin(sparse)
    reference = forecast + 0.5
    card = verify(forecast, truth, VerifyConfig(progress=False), reference=reference)["/scorecard"]
    crps = card.fair_crps.squeeze()
    assert ((card.fair_crps_low <= crps) & (crps <= card.fair_crps_high)).all()
    alone = verify(reference, truth, VerifyConfig(progress=False, interval_level=0))
    np.testing.assert_allclose(card.reference_fair_crps, alone["/scorecard"].fair_crps, rtol=1e-6)
    assert align_with_truth(forecast, truth).truth.t2m.isnull().any()  # the case is built
