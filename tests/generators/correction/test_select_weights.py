"""Cross-validated weight selection on synthetic folds whose answer is known: a biased,
under-dispersed ensemble wants a bias correction and a spread scaling; a reliable one is
best left as it is."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from generators.correction.select_weights import (
    FOLDS,
    NONE,
    choose_weights,
    fold_scores,
    select_weights,
)
from generators.correction.spec import CorrectionByVariable, CorrectionSpec
from pipeline.errors import InputError

LEADS = pd.to_timedelta([6, 24], unit="h")
FOLD_DAYS = (("2000-01-01", "2000-01-04T18"), ("2000-01-06", "2000-01-09T18"))
LEVELS = [500, 850]


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


def test_a_weight_that_lowers_the_pooled_crps_but_not_every_folds_is_not_chosen():
    """A bias weight lowering the fair CRPS of the folds together by a gain made in one of
    them (t on a synthetic 9-channel model: -4.3, +2.6 and +0.0 % by fold) raised it on
    later days: it is chosen only where it lowers every fold's too."""
    table = {  # label: (mean fair CRPS, each fold's)
        NONE: (1.0, (1.0, 1.0, 1.0)),
        "0.1": (0.995, (0.96, 1.025, 1.0)),
        "0.2": (0.998, (0.99, 1.0, 0.999)),
    }

    def score(spec):
        crps, folds = table[NONE if spec is None else spec.label()]
        return {"mean_fair_crps": crps, "mean_abs_log_ssr": 0.0, FOLDS: folds}

    chosen = choose_weights(score, [0.1, 0.2])
    assert chosen.spec is None
    assert chosen.table.folds_lowered.tolist() == ["-", "1/3", "2/3"]
    table["0.2"] = (0.998, (0.99, 0.999, 0.999))  # lower in each: chosen, the milder gain
    assert choose_weights(score, [0.1, 0.2]).spec == CorrectionSpec(0.2)


def test_each_folds_crps_is_that_fold_scored_alone():
    folds = [fold(*days, offset=2.0, scale=0.5, seed=i) for i, days in enumerate(FOLD_DAYS)]
    spec = CorrectionSpec(0.5)
    both = fold_scores(folds, truth(), spec, "t2m")
    for i, one in enumerate(folds, start=1):
        alone = fold_scores([one], truth(), spec, "t2m").fair_crps
        xr.testing.assert_allclose(both[FOLDS].sel(fold=i, drop=True), alone)
    assert not np.allclose(both[FOLDS].sel(fold=1), both[FOLDS].sel(fold=2))


def with_z(ds: xr.Dataset, dims: tuple[str, ...], z: np.ndarray) -> xr.Dataset:
    """``ds`` with a ``z`` of ``z``'s values on :data:`LEVELS`, its level dim before the grid."""
    return ds.assign({"z": ((*dims, "level", "latitude", "longitude"), z)}).assign_coords(
        level=LEVELS
    )


def several(scale_t2m: float = 1.0, z_bias: float = 0.5) -> tuple[list[xr.Dataset], xr.Dataset]:
    """Folds and truth of t2m (biased by 2, under-dispersed) and z at two levels, z500
    biased by ``z_bias`` of its spread, z850 reliable, in units far apart (z about 1e4 times
    t2m), t2m's forecast and truth times ``scale_t2m`` (a change of its units)."""
    sky = truth()
    times = sky.sizes["time"]
    rng = np.random.default_rng(7)
    z = 1e4 * rng.standard_normal((times, 2, 6, 8))
    sky = with_z(sky, ("time",), z)
    folds = []
    for i, days in enumerate(FOLD_DAYS):
        one = fold(*days, offset=2.0, scale=0.5, seed=i)
        shape = (*one.t2m.shape[:3], 2, 6, 8)
        members = rng.standard_normal(shape) * 1e4
        members[:, :, :, 0] += z_bias * 1e4
        folds.append(with_z(one, ("init_time", "member", "lead_time"), members))
    sky["t2m"] = sky.t2m * scale_t2m
    return [f.assign(t2m=f.t2m * scale_t2m) for f in folds], sky


WEIGHTS = ([0.2, 0.5], [1.0], [0.5])


def test_each_variable_of_a_forecast_of_several_chooses_its_own_weights():
    """Without variable=, each variable's weights are those it chooses alone, on its own
    scores pooled over its levels (one set was chosen for all, on the mean of the channels'
    relative scores): the biased t2m is corrected, the reliable z is left as it is."""
    folds, sky = several(z_bias=0.0)
    chosen = select_weights(folds, sky, *WEIGHTS)
    alone = {v: select_weights(folds, sky, *WEIGHTS, variable=v) for v in ("t2m", "z")}
    assert isinstance(chosen.spec, CorrectionByVariable)
    assert [v for v, _ in chosen.spec.specs] == ["t2m", "z"]
    assert chosen.spec.of("t2m") == alone["t2m"].spec and chosen.spec.of("t2m").applies
    assert alone["z"].spec is None and not chosen.spec.of("z").applies
    assert chosen.spec.applies and chosen.spec.label() == f"t2m {alone['t2m'].spec.label()}, z 0"
    for v in ("t2m", "z"):
        pd.testing.assert_frame_equal(chosen.table.loc[v], alone[v].table)
        scored = chosen.by_lead.sel(variable=v).dropna("candidate", how="all")
        xr.testing.assert_allclose(scored.drop_vars("variable"), alone[v].by_lead)
    assert chosen.table.index.names == ["variable", "candidate"]


def test_a_variable_pooled_over_its_levels_is_scored_as_its_channels_together():
    """z's scores are :func:`fold_scores` of z at both levels at once, checked against the
    fair CRPS of each level taken apart by hand (equal counts: the mean of the two)."""
    folds, sky = several()
    table = select_weights(folds, sky, *WEIGHTS).table.loc["z"]
    for label, row in table.iterrows():
        by_level = [
            fold_scores(
                [f[["z"]].sel(level=level, drop=True) for f in folds],
                sky[["z"]].sel(level=level, drop=True),
                spec_of(label),
                "z",
            ).fair_crps.values.mean()
            for level in LEVELS
        ]
        assert row["mean_fair_crps"] == pytest.approx(np.mean(by_level), rel=1e-9)


def test_a_change_of_one_variables_units_changes_neither_the_choice_nor_the_others_scores():
    """t2m's forecast and truth times 100 (K to cK): its fair CRPS is 100 times larger, its
    choice and z's scores the same."""
    plain = select_weights(*several(), *WEIGHTS)
    scaled = select_weights(*several(scale_t2m=100.0), *WEIGHTS)
    crps = plain.table.loc["t2m", "mean_fair_crps"]
    assert scaled.table.loc["t2m", "mean_fair_crps"].to_numpy() == pytest.approx(100 * crps)
    assert scaled.spec == plain.spec
    pd.testing.assert_frame_equal(scaled.table.loc["z"], plain.table.loc["z"])


def spec_of(label: str) -> CorrectionSpec | None:
    """The candidate of a table row's label (``W``, ``W:S``, ``W::R``, ``W:S:R``)."""
    if label == NONE:
        return None
    return CorrectionSpec(*(float(part) if part else None for part in label.split(":")))


def test_a_variable_named_is_chosen_on_alone_as_a_forecast_of_it_alone():
    folds, sky = several()
    named = select_weights(folds, sky, *WEIGHTS, variable="t2m")
    alone = select_weights([f[["t2m"]] for f in folds], sky[["t2m"]], *WEIGHTS)
    assert named.spec == alone.spec
    pd.testing.assert_frame_equal(named.table, alone.table)
    xr.testing.assert_identical(named.by_lead, alone.by_lead)


def test_a_truth_without_one_of_the_variables_is_refused_naming_it():
    folds, sky = several()
    with pytest.raises(InputError, match=r"the truth lacks \['z'\] of the forecasts' variables"):
        select_weights(folds, sky[["t2m"]], *WEIGHTS)
