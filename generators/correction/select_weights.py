"""Cross-validated choice of the correction weights.

The forecasts of a model's cross-validation folds (each fold's model forecasting the days it
held out) are corrected by each candidate :class:`~generators.correction.spec.CorrectionSpec`
within each fold's days (causal: only errors verified by an initial time correct it, the
first forecasts of each fold go uncorrected), then scored on all folds together, lead by
lead, with :mod:`verification.scores`. The weights are chosen stage by stage, each stage
kept from the one before:

1. the bias weight (or none) of least mean fair CRPS over the leads;
2. with it, the spread weight of least mean ``|log SSR|`` over the leads (the spread
   scaling's aim is a spread-skill ratio of 1);
3. with both, the rank weight of least mean rank-histogram max/min ratio.

Stages 2 and 3 choose only among the weights that lower the mean fair CRPS of the chain
without them; when none does, that stage is off (weight 0): every stage kept must make the
forecast better by the score that judges the whole distribution (and a flatter histogram
bought with a worse CRPS does not shut out a milder weight that improves both). A stage is
skipped when no candidate weight is given for it, and the spread and rank stages when no
bias correction wins. Only the candidates a stage needs are scored.

A forecast of several channels is scored on all of them (unless one is named): channel by
channel, each candidate's mean fair CRPS over the leads is divided by the uncorrected
forecast's, a skill ratio free of the channel's units (a channel in Pa does not outweigh
one in K), and the stages above compare the mean of these ratios over the channels, with
the mean over the channels of ``|log SSR|`` and of the rank max/min ratio.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import NamedTuple

import numpy as np
import pandas as pd
import xarray as xr

from generators.correction.bias import DecayingAverageBias, bias_correct
from generators.correction.spec import CorrectionSpec
from pipeline.alignment import align_with_truth
from pipeline.errors import InputError
from pipeline.schema import CHANNEL, INIT_TIME, LEAD_TIME, LEVEL, MEMBER, channels, split_channel
from verification.ranks import rank_histogram, rank_max_min_ratio
from verification.scores import fair_crps, spread_skill_ratio

NONE = "0"
"""The label of the uncorrected forecasts in :attr:`WeightSelection.table`."""


Scores = Mapping[str, float]
"""A candidate's ``mean_fair_crps``, ``mean_abs_log_ssr`` and ``mean_rank_max_min`` over the
leads (over several channels: ``mean_relative_fair_crps`` for the first, :data:`RELATIVE`)."""
RELATIVE = "mean_relative_fair_crps"
"""The column of the mean over the channels of each channel's mean fair CRPS over the leads
divided by the uncorrected forecast's (a forecast of several channels scored on all)."""


class WeightSelection(NamedTuple):
    """:func:`select_weights`'s result. spec: the chosen weights, or None when the
    uncorrected forecasts score best. table: one row per candidate scored (index: its
    :meth:`CorrectionSpec.label`, ``"0"`` for none), with the stage that scored it and the
    mean over the leads of the fair CRPS, of ``|log SSR|`` and of the rank max/min ratio;
    scored on several channels, :data:`RELATIVE` in place of the first, the other two means
    over the channels too, and ``relative_fair_crps[CHANNEL]``, each channel's ratio.
    by_lead: the same scores lead by lead (dims ``candidate, lead_time``, and ``channel``
    over several channels; empty from :func:`choose_weights`)."""

    spec: CorrectionSpec | None
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
    ``truth``, pooled over every fold's initial times and grid (and levels)."""
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
    return xr.Dataset(
        {
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
    *,
    crps: str = "mean_fair_crps",
) -> WeightSelection:
    """The stage-by-stage rule of the module docstring over the candidate weights, each
    candidate scored once by ``score`` (None: no correction), which may return None for a
    candidate it cannot score (left out; a stage left with no candidate is skipped); crps:
    the score's key judging the whole distribution (:data:`RELATIVE` over channels)."""
    rows: dict[str, dict[str, object]] = {}

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
                rows[label] = {"stage": stage, **scores}
            labels[label] = spec
        return labels

    labels = scored("bias", [None, *(CorrectionSpec(w) for w in bias_weights)])
    if not labels:
        raise InputError("no candidate could be scored, not even the uncorrected forecasts")
    spec = labels[min(labels, key=lambda label: rows[label][crps])]

    def least_lowering(
        stage: str, specs: Sequence[CorrectionSpec], key: str, before: CorrectionSpec
    ) -> CorrectionSpec:
        """The spec of least ``key`` among those of ``specs`` whose mean fair CRPS is below
        that of ``before``, or ``before`` when none is."""
        limit = rows[label_of(before)][crps]
        lowering = {
            label: candidate
            for label, candidate in scored(stage, specs).items()
            if rows[label][crps] < limit
        }
        return lowering[min(lowering, key=lambda label: rows[label][key])] if lowering else before

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
    (0, 1]; variable: the one scored, pooled over its levels (default: every channel of the
    forecasts, a variable at each level, on the mean of their relative scores; one channel
    alone is scored as named); seed: the rank histogram's tie-breaking draw."""
    if not folds:
        raise InputError("give the forecasts of at least one cross-validation fold")
    if not bias_weights:
        raise InputError("give at least one candidate bias weight")
    names = channels(folds[0])
    if not names:
        raise InputError("the forecasts of the folds hold no variable to score")
    if variable is None and len(names) > 1:
        return _select_on_channels(
            folds, truth, names, bias_weights, spread_weights, rank_weights, seed=seed
        )
    variable = variable or str(next(iter(folds[0].data_vars)))
    by_lead = {}

    def score(spec: CorrectionSpec | None) -> Scores:
        scores = fold_scores(folds, truth, spec, variable, seed=seed)
        by_lead[NONE if spec is None else spec.label()] = scores
        return {
            "mean_fair_crps": float(scores.fair_crps.mean()),
            "mean_abs_log_ssr": float(np.abs(np.log(scores.spread_skill_ratio)).mean()),
            "mean_rank_max_min": float(scores.rank_max_min.mean()),
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


def _select_on_channels(
    folds: Sequence[xr.Dataset],
    truth: xr.Dataset,
    names: Sequence[str],
    *weights: Sequence[float],
    seed: int,
) -> WeightSelection:
    """:func:`select_weights` on every one of the channels ``names``, each candidate scored on
    the means over the channels (module docstring), the uncorrected forecast's fair CRPS of
    each channel its reference."""
    try:
        pairs = {c: ([one_channel(f, c) for f in folds], one_channel(truth, c)) for c in names}
    except KeyError as error:
        raise InputError(
            f"the truth lacks {error} of the forecasts' channels {list(names)}: give an analysis "
            "holding them all, or name the channel whose scores choose (variable=)"
        ) from None
    by_lead: dict[str, xr.Dataset] = {}

    def per_channel(spec: CorrectionSpec | None) -> xr.Dataset:
        label = NONE if spec is None else spec.label()
        if label not in by_lead:
            scores = [
                fold_scores(fs, t, spec, split_channel(c)[0], seed=seed)
                for c, (fs, t) in pairs.items()
            ]
            by_lead[label] = xr.concat(scores, pd.Index(list(names), name=CHANNEL))
        return by_lead[label]

    reference = per_channel(None).fair_crps.mean(LEAD_TIME)
    unskilful = [c for c in names if not float(reference.sel({CHANNEL: c})) > 0]
    if unskilful:
        raise InputError(
            f"the uncorrected forecasts of {unskilful} score no fair CRPS above 0 (a perfect or "
            "missing forecast), so no skill ratio of theirs can be formed: name the channel "
            "whose scores choose (variable=)"
        )

    def score(spec: CorrectionSpec | None) -> Scores:
        scores = per_channel(spec)
        ratio = scores.fair_crps.mean(LEAD_TIME) / reference
        abs_log_ssr = np.abs(np.log(scores.spread_skill_ratio))
        return {
            RELATIVE: float(ratio.mean()),
            "mean_abs_log_ssr": float(abs_log_ssr.mean(LEAD_TIME).mean(CHANNEL)),
            "mean_rank_max_min": float(scores.rank_max_min.mean(LEAD_TIME).mean(CHANNEL)),
            **{f"relative_fair_crps[{c}]": float(ratio.sel({CHANNEL: c})) for c in names},
        }

    chosen = choose_weights(score, *weights, crps=RELATIVE)
    labels = list(chosen.table.index)
    return chosen._replace(
        by_lead=xr.concat([by_lead[k] for k in labels], pd.Index(labels, name="candidate"))
    )
