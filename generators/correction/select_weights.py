"""Cross-validated choice of the correction weights.

The forecasts of a model's cross-validation folds (each fold's model forecasting the days it
held out) are corrected by each candidate :class:`~generators.correction.spec.CorrectionSpec`
within each fold's days (causal: only errors verified by an initial time correct it, the
first forecasts of each fold go uncorrected), then scored on all folds together, lead by
lead, with :mod:`verification.scores`. The weights are chosen stage by stage, each stage
kept from the one before:

1. the bias weight of least mean fair CRPS over the leads;
2. with it, the spread weight of least mean ``|log SSR|`` over the leads (the spread
   scaling's aim is a spread-skill ratio of 1);
3. with both, the rank weight of least mean rank-histogram max/min ratio.

Each stage chooses only among the weights that lower the mean fair CRPS of the chain
without them (the uncorrected forecast's for the bias), of all the folds together and of
every fold alone; when none does, that stage is off (weight 0): every stage kept must make
the forecast better by the score that judges the whole distribution, and not by the luck of
one block of days (a flatter histogram bought with a worse CRPS does not shut out a milder
weight that improves both). On a synthetic model of 9 channels tuned on 3 folds, t and v
took a bias weight of 0.1 on pooled gains of 0.5 and 0.9 %, made mostly in one fold (t:
-4.3, +2.6 and +0.0 %; v: -4.1, +1.7 and -0.9 %), and it raised their fair CRPS by 2 to 3 %
on 18 later days; the rule of every fold rejects both. A stage is skipped when no candidate
weight is given for it, and the spread and rank stages when no bias correction wins. Only the
candidates a stage needs are scored.

A forecast of several variables has its weights chosen variable by variable (unless one is
named), each by the rule above on its own scores pooled over its levels, and each variable
is corrected by its own (:class:`~generators.correction.spec.CorrectionByVariable`): one set
for all serves them only as well as their mean. On a synthetic model of t2m and z, t, u, v
at two levels, the one set best on the mean over the channels of each one's fair CRPS
relative to the uncorrected forecast's was none, where t2m alone chose weights that lowered
its fair CRPS by 4 % on later days and raised every upper-air channel's by 3 to 6 %.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import NamedTuple

import numpy as np
import pandas as pd
import xarray as xr

from generators.correction.bias import DecayingAverageBias, bias_correct
from generators.correction.spec import Correction, CorrectionByVariable, CorrectionSpec
from pipeline.alignment import align_with_truth
from pipeline.errors import InputError
from pipeline.schema import INIT_TIME, LEAD_TIME, LEVEL, MEMBER, split_channel
from verification.ranks import rank_histogram, rank_max_min_ratio
from verification.scores import fair_crps, spread_skill_ratio

NONE = "0"
"""The label of the uncorrected forecasts in :attr:`WeightSelection.table`."""


Scores = Mapping[str, object]
"""A candidate's ``mean_fair_crps``, ``mean_abs_log_ssr`` and ``mean_rank_max_min`` over the
leads, and :data:`FOLDS`, each fold's mean fair CRPS (left out: one fold)."""
FOLDS = "fold_fair_crps"
"""The key of a candidate's mean fair CRPS over the leads of each fold alone."""


class WeightSelection(NamedTuple):
    """:func:`select_weights`'s result. spec: the chosen weights, or None when the
    uncorrected forecasts score best (of several variables, each one's weights, a bias
    weight of 0 where none is chosen). table: one row per candidate scored (index: its
    :meth:`CorrectionSpec.label`, ``"0"`` for none; of several variables, ``variable,
    candidate``), with the stage that scored it and the mean over the leads of the fair CRPS,
    of ``|log SSR|`` and of the rank max/min ratio. by_lead: the same scores lead by lead
    (dims ``candidate, lead_time``, and ``variable`` of several, NaN for a candidate a
    variable did not score; empty from :func:`choose_weights`)."""

    spec: Correction | None
    table: pd.DataFrame
    by_lead: xr.Dataset


def fold_scores(
    folds: Sequence[xr.Dataset],
    truth: xr.Dataset,
    spec: CorrectionSpec | None,
    variable: str,
    *,
    seed: int = 0,
) -> xr.Dataset:
    """Fair CRPS, spread-skill ratio and rank max/min ratio by lead of ``variable`` in the
    fold forecasts, each corrected by ``spec`` (None: as they are) against the analysis
    ``truth``, pooled over every fold's initial times and grid (and levels); and each fold's
    fair CRPS alone (:data:`FOLDS`, dims ``fold, lead_time``)."""
    corrected = [
        fold[[variable]]
        if spec is None
        else bias_correct(fold[[variable]], truth, DecayingAverageBias.from_spec(spec)).forecast
        for fold in folds
    ]
    aligned = align_with_truth(xr.concat(corrected, INIT_TIME), truth, variables=[variable])
    forecast, observed = aligned.forecast[variable], aligned.truth[variable]
    over = [d for d in observed.dims if d != LEAD_TIME]
    counts = rank_histogram(forecast, observed, member_dim=MEMBER, mean_over=over, seed=seed)
    in_folds = [{INIT_TIME: fold[INIT_TIME].values} for fold in folds]
    by_fold = [fair_crps(forecast.sel(f), observed.sel(f), mean_over=over) for f in in_folds]
    return xr.Dataset(
        {
            FOLDS: xr.concat(by_fold, pd.Index(range(1, len(folds) + 1), name="fold")),
            "fair_crps": fair_crps(forecast, observed, mean_over=over),
            "spread_skill_ratio": spread_skill_ratio(forecast, observed, mean_over=over),
            "rank_max_min": rank_max_min_ratio(counts),
        }
    ).compute()


def choose_weights(
    score: Callable[[CorrectionSpec | None], Scores | None],
    bias_weights: Sequence[float],
    spread_weights: Sequence[float] = (),
    rank_weights: Sequence[float] = (),
) -> WeightSelection:
    """The stage-by-stage rule of the module docstring over the candidate weights, each
    candidate scored once by ``score`` (None: no correction), which may return None for a
    candidate it cannot score (left out; a stage left with no candidate is skipped). The
    table's ``folds_lowered``: in how many folds a candidate lowers the fair CRPS of the
    chain without its stage."""
    rows: dict[str, dict[str, object]] = {}
    in_folds: dict[str, tuple[float, ...]] = {}

    def label_of(spec: CorrectionSpec | None) -> str:
        return NONE if spec is None else spec.label()

    def scored(stage: str, specs: Sequence[CorrectionSpec | None]) -> dict[str, object]:
        """The specs among ``specs`` that can be scored (scored now unless scored before),
        by label."""
        labels = {}
        for spec in specs:
            label = label_of(spec)
            if label not in rows:
                scores = score(spec)
                if scores is None:
                    continue
                scores = dict(scores)
                in_folds[label] = tuple(scores.pop(FOLDS, (scores["mean_fair_crps"],)))
                rows[label] = {"stage": stage, **scores}
            labels[label] = spec
        return labels

    if not scored("bias", [None]):
        raise InputError("the uncorrected forecasts could not be scored")
    rows[NONE]["folds_lowered"] = "-"  # the reference of the bias stage

    def least_lowering(
        stage: str, specs: Sequence[CorrectionSpec], key: str, before: CorrectionSpec | None
    ) -> CorrectionSpec | None:
        """The spec of least ``key`` among those of ``specs`` whose mean fair CRPS is below
        that of ``before``, of all folds and of each, or ``before`` when none is."""
        limit = label_of(before)
        lowering = {}
        for label, candidate in scored(stage, specs).items():
            lower = [a < b for a, b in zip(in_folds[label], in_folds[limit], strict=True)]
            rows[label]["folds_lowered"] = f"{sum(lower)}/{len(lower)}"
            if rows[label]["mean_fair_crps"] < rows[limit]["mean_fair_crps"] and all(lower):
                lowering[label] = candidate
        return lowering[min(lowering, key=lambda label: rows[label][key])] if lowering else before

    bias = [CorrectionSpec(w) for w in bias_weights]
    spec = least_lowering("bias", bias, "mean_fair_crps", None)

    if spec is not None and spread_weights:
        spreads = [replace(spec, spread_weight=w) for w in spread_weights]
        spec = least_lowering("spread", spreads, "mean_abs_log_ssr", spec)
    if spec is not None and rank_weights:
        ranks = [replace(spec, rank_weight=w) for w in rank_weights]
        spec = least_lowering("rank", ranks, "mean_rank_max_min", spec)
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "candidate"
    return WeightSelection(spec, table, xr.Dataset())


def select_weights(
    folds: Sequence[xr.Dataset],
    truth: xr.Dataset,
    bias_weights: Sequence[float],
    spread_weights: Sequence[float] = (),
    rank_weights: Sequence[float] = (),
    *,
    variable: str | None = None,
    seed: int = 0,
) -> WeightSelection:
    """The correction weights chosen on cross-validation folds (module docstring).

    folds: each fold model's forecast (wxens layout: ``init_time, member, lead_time,
    [level], latitude, longitude``) of the days it held out; truth: the analysis (dims
    ``time, [level], latitude, longitude``); the candidate weights of each stage, each in
    (0, 1]; variable: the one whose scores, pooled over its levels, choose one set of weights
    (default: each variable of the forecasts its own, :class:`CorrectionByVariable`, one
    variable's alone its :class:`CorrectionSpec`); seed: the rank histogram's tie-breaking
    draw."""
    if not folds:
        raise InputError("give the forecasts of at least one cross-validation fold")
    if not bias_weights:
        raise InputError("give at least one candidate bias weight")
    names = [str(name) for name in folds[0].data_vars]
    if not names:
        raise InputError("the forecasts of the folds hold no variable to score")
    weights = (bias_weights, spread_weights, rank_weights)
    if variable is None and len(names) > 1:
        return _select_by_variable(folds, truth, names, *weights, seed=seed)
    variable = variable or names[0]
    by_lead = {}

    def score(spec: CorrectionSpec | None) -> Scores:
        scores = fold_scores(folds, truth, spec, variable, seed=seed)
        by_lead[NONE if spec is None else spec.label()] = scores
        return {
            "mean_fair_crps": float(scores.fair_crps.mean()),
            "mean_abs_log_ssr": float(np.abs(np.log(scores.spread_skill_ratio)).mean()),
            "mean_rank_max_min": float(scores.rank_max_min.mean()),
            FOLDS: tuple(float(v) for v in scores[FOLDS].mean(LEAD_TIME).values),
        }

    chosen = choose_weights(score, bias_weights, spread_weights, rank_weights)
    scores = xr.concat(list(by_lead.values()), pd.Index(list(by_lead), name="candidate"))
    return chosen._replace(by_lead=scores)


def one_channel(ds: xr.Dataset, channel: str) -> xr.Dataset:
    """The variable of ``channel`` alone, at its level for an upper-air one (``"z500"``: ``z``
    at 500 hPa, the level dimension dropped)."""
    name, level = split_channel(channel)
    selected = ds[[name]]
    return selected if level is None else selected.sel({LEVEL: level}, drop=True)


def _select_by_variable(
    folds: Sequence[xr.Dataset],
    truth: xr.Dataset,
    names: Sequence[str],
    *weights: Sequence[float],
    seed: int,
) -> WeightSelection:
    """:func:`select_weights` of each of the variables ``names`` alone, its weights its own
    (module docstring)."""
    missing = [name for name in names if name not in truth.data_vars]
    if missing:
        raise InputError(
            f"the truth lacks {missing} of the forecasts' variables {list(names)}: give an "
            "analysis holding them all, or name the variable whose scores choose (variable=)"
        )
    chosen = {
        name: select_weights(folds, truth, *weights, variable=name, seed=seed) for name in names
    }
    spec = CorrectionByVariable(
        tuple((name, one.spec or CorrectionSpec()) for name, one in chosen.items())
    )
    candidates = list(dict.fromkeys(c for one in chosen.values() for c in one.table.index))
    return WeightSelection(
        spec,
        pd.concat({name: one.table for name, one in chosen.items()}, names=["variable"]),
        xr.concat(  # NaN for a candidate a variable did not score
            [one.by_lead.reindex(candidate=candidates) for one in chosen.values()],
            pd.Index(names, name="variable"),
        ),
    )
