"""The block bootstrap of means: Efron's variance of the mean for single-element blocks,
whole blocks kept together, nominal coverage under day-to-day dependence, dask, errors."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from pipeline.errors import InputError
from verification.resampling import block_bootstrap_means


def per_init(values: np.ndarray) -> xr.Dataset:
    return xr.Dataset({"score": ("init", values)})


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
    ds = xr.Dataset({"a": (("init", "lead"), x), "b": (("init", "lead"), 2 * x)})
    days = np.repeat(np.arange(10), 3)
    eager = block_bootstrap_means(ds, days, draws=200, seed=5)
    lazy = block_bootstrap_means(ds.chunk({"init": 7}), days, draws=200, seed=5)
    assert lazy["a"].chunks is not None
    xr.testing.assert_allclose(lazy.compute(), eager)
    xr.testing.assert_allclose(eager["b"], 2 * eager["a"])  # same resample for both
    assert set(eager["a"].dims) == {"lead", "draw"}


@pytest.mark.parametrize(
    ("blocks", "kwargs", "message"),
    [
        (np.arange(5), {}, "5 block labels for 6 elements of 'init'"),
        (np.arange(6), {"dim": "time"}, "dim 'time' is not in the data"),
        (np.arange(6), {"draws": 0}, "draws=0"),
    ],
)
def test_bad_arguments_are_named(blocks, kwargs, message):
    with pytest.raises(InputError, match=message):
        block_bootstrap_means(per_init(np.zeros(6)), blocks, **kwargs)
