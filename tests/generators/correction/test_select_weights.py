"""Cross-validated weight selection on synthetic folds whose answer is known: a biased,
under-dispersed ensemble wants a bias correction and a spread scaling; a reliable one is
best left as it is."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from generators.correction.select_weights import NONE, choose_weights, select_weights
from generators.correction.spec import CorrectionSpec
from pipeline.errors import InputError

LEADS = pd.to_timedelta([6, 24], unit="h")
FOLD_DAYS = (("2000-01-01", "2000-01-04T18"), ("2000-01-06", "2000-01-09T18"))


def truth() -> xr.Dataset:
    """Independent N(0, 1) fields every 6 h: the law every reliable member is drawn from."""
    times = pd.date_range("2000-01-01", "2000-01-12", freq="6h")
    values = np.random.default_rng(0).standard_normal((len(times), 6, 8))
    return xr.Dataset(
        {"t2m": (("time", "latitude", "longitude"), values)},
        coords={"time": times, "latitude": np.linspace(50, 60, 6), "longitude": np.arange(8.0)},
    )


def fold(start: str, end: str, offset: float, scale: float, seed: int) -> xr.Dataset:
    """Members N(offset, scale²), independent of the truth, for the 6-hourly inits of a fold."""
    inits = pd.date_range(start, end, freq="6h")
    shape = (len(inits), 10, len(LEADS), 6, 8)
    members = offset + scale * np.random.default_rng(seed).standard_normal(shape)
    return xr.Dataset(
        {"t2m": (("init_time", "member", "lead_time", "latitude", "longitude"), members)},
        coords={
            "init_time": inits,
            "member": np.arange(10),
            "lead_time": LEADS,
            "latitude": np.linspace(50, 60, 6),
            "longitude": np.arange(8.0),
        },
    )


def test_a_biased_under_dispersed_ensemble_is_corrected_and_its_spread_scaled():
    folds = [fold(*days, offset=2.0, scale=0.5, seed=i) for i, days in enumerate(FOLD_DAYS)]
    chosen = select_weights(folds, truth(), [0.2, 0.5], [0.3, 1.0], [0.5])
    assert chosen.spec is not None and chosen.spec.bias_weight in (0.2, 0.5)
    assert chosen.spec.spread_weight in (0.3, 1.0) and chosen.spec.rank_weight in (None, 0.5)
    table = chosen.table
    scaled = replace(chosen.spec, rank_weight=None).label()
    assert table.loc[scaled, "stage"] == "spread"
    assert list(table.stage).count("rank") == 1  # the rank stage tried its one weight
    bias_only = CorrectionSpec(chosen.spec.bias_weight).label()
    assert table.loc[bias_only, "mean_fair_crps"] < table.loc[NONE, "mean_fair_crps"]
    # the spread scaling brings the spread-skill ratio towards 1
    assert table.loc[scaled, "mean_abs_log_ssr"] < table.loc[bias_only, "mean_abs_log_ssr"]
    assert set(chosen.by_lead.candidate.values) == set(table.index)
    assert chosen.by_lead.fair_crps.sizes == {"candidate": len(table), "lead_time": 2}


def test_a_reliable_ensemble_is_left_as_it_is():
    folds = [fold(*days, offset=0.0, scale=1.0, seed=i) for i, days in enumerate(FOLD_DAYS)]
    chosen = select_weights(folds, truth(), [0.2, 0.5, 1.0], [0.5], [0.5])
    assert chosen.spec is None  # every bias weight only adds the noise of past errors
    assert list(chosen.table.index) == [NONE, "0.2", "0.5", "1"]  # later stages skipped
    assert (chosen.table.stage == "bias").all()
    assert chosen.table.mean_fair_crps.idxmin() == NONE


def test_a_bad_candidate_is_refused_naming_its_flag():
    folds = [fold(*FOLD_DAYS[0], offset=0.0, scale=1.0, seed=0)]
    with pytest.raises(InputError, match="bias-correction weight must be in .*--bias-weight"):
        select_weights(folds, truth(), [1.5])
    with pytest.raises(InputError, match="at least one candidate bias weight"):
        select_weights(folds, truth(), [])


def test_a_stage_that_does_not_lower_the_fair_crps_is_off():
    """The spread weight of spread-skill ratio nearest 1 raises the CRPS here, and the rank
    weight of flattest histogram leaves it unchanged: both stages are off."""
    table = {  # label: (mean fair CRPS, mean |log SSR|, mean rank max/min)
        NONE: (1.0, 0.5, 3.0),
        "0.2": (0.8, 0.4, 2.0),
        "0.2:0.7": (0.81, 0.0, 1.5),
        "0.2::0.1": (0.8, 0.4, 1.2),
    }

    def score(spec):
        crps, ssr, ranks = table[NONE if spec is None else spec.label()]
        return {"mean_fair_crps": crps, "mean_abs_log_ssr": ssr, "mean_rank_max_min": ranks}

    chosen = choose_weights(score, [0.2], [0.7], [0.1])
    assert chosen.spec == CorrectionSpec(0.2)
    assert list(chosen.table.stage) == ["bias", "bias", "spread", "rank"]
    table["0.2::0.1"] = (0.79, 0.4, 1.2)  # now it lowers the CRPS: kept
    assert choose_weights(score, [0.2], [0.7], [0.1]).spec == CorrectionSpec(0.2, None, 0.1)
    # the flattest histogram (0.2) raises the CRPS: the flatter of those that lower it wins
    table |= {"0.2::0.05": (0.795, 0.4, 1.6), "0.2::0.2": (0.85, 0.4, 1.1)}
    chosen = choose_weights(score, [0.2], [0.7], [0.05, 0.1, 0.2])
    assert chosen.spec == CorrectionSpec(0.2, None, 0.1)
