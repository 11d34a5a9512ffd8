"""Spread calibration: a per-channel, per-lead factor on the members' deviations from the
ensemble mean, fitted on a held-out period, stored in the checkpoint, applied at generation
and recorded in the forecast store — never silent.

Correction: x'_m = x̄ + k (x_m − x̄), which scales the spread by k and keeps the ensemble
mean (hence the skill). The fit chooses k so that the spread-skill ratio

    SSR = sqrt((M+1)/M) · spread / skill,
    spread² = w-mean over (init, lat, lon) of var_m(x, ddof=1),
    skill²  = w-mean over (init, lat, lon) of (x̄ − y)²,      w = cos(latitude)

(the definition of :func:`verification.scores.spread_skill_ratio`, with the
finite-ensemble factor; Fortin et al. 2014) is 1 on the fit period: k = 1 / SSR. The
generators package does not import verification (DESIGN.md), so the two weighted means
are computed here with numpy.

generators.md (lever 6) warns that a factor fitted on a short, easy period transfers badly:
fit on as long and varied a period as the data allows, and prefer a model calibrated
without it. A model trained on all the data has no held-out period of its own: then the
factors are fitted on cross-validation folds (the same recipe trained without one period
each, each forecasting the period it held out, pooled), as its noise scale was chosen. The
report gives SSR before and after, on the fit period and on any other.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from generators.checkpoint import Checkpoint, load_checkpoint
from generators.config import CalibrationConfig, TrainConfig, parse_sampler, sampler_spec
from generators.data.forecast import ForecastData
from generators.device import resolve_device
from generators.rollout import default_sampler, forecast_members
from generators.samplers import Sampler
from pipeline.errors import InputError
from pipeline.schema import Period
from pipeline.store import AnalysisStore, open_store

log = logging.getLogger(__name__)


def spread_and_skill(
    members: np.ndarray, truth: np.ndarray, latitude: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(C,) spread and skill of members (N, M, C, H, W) against truth (N, C, H, W),
    cos-latitude-weighted over N, H, W (module docstring)."""
    w = np.cos(np.deg2rad(np.asarray(latitude, dtype=np.float64)))[:, None]
    w = w / w.mean()
    members = members.astype(np.float64)
    variance = members.var(axis=1, ddof=1)
    error = (members.mean(axis=1) - truth) ** 2
    spread = np.sqrt((variance * w).mean(axis=(0, 2, 3)))
    skill = np.sqrt((error * w).mean(axis=(0, 2, 3)))
    return spread, skill


def spread_skill_ratio(members: np.ndarray, truth: np.ndarray, latitude: np.ndarray) -> np.ndarray:
    """(C,) sqrt((M+1)/M) · spread / skill (module docstring)."""
    m = members.shape[1]
    if m < 2:
        raise InputError(f"a spread-skill ratio needs at least 2 members, got {m}")
    spread, skill = spread_and_skill(members, truth, latitude)
    return np.sqrt((m + 1) / m) * spread / skill


@dataclass(frozen=True, eq=False)
class SpreadCalibration:
    """Factors k (L, C) by lead (hours) and channel, with the SSR before and after on the
    fit period and how they were fitted: ``sampler`` is the spec of the sampler of the fit
    forecasts (None in calibrations written before it was recorded). The factors hold for
    that sampler only: another NFE or noise scale changes the spread they correct."""

    channels: tuple[str, ...]
    leads_hours: tuple[float, ...]
    factors: np.ndarray
    ssr_before: np.ndarray
    ssr_after: np.ndarray
    period: str
    members: int
    n_inits: int
    sampler: str | None = None

    def lead_index(self, lead_hours: float) -> int | None:
        for i, lead in enumerate(self.leads_hours):
            if abs(lead - lead_hours) < 1e-6:
                return i
        return None

    def apply(self, members: torch.Tensor, lead_hours: float) -> torch.Tensor:
        """Members (B, M, C, H, W) with their deviations from the mean scaled by k(lead);
        unchanged (and logged) for a lead that was not calibrated."""
        i = self.lead_index(lead_hours)
        if i is None:
            log.warning(
                "no spread calibration for lead %g h: its members are left as drawn", lead_hours
            )
            return members
        k = torch.as_tensor(self.factors[i], dtype=members.dtype, device=members.device)[
            :, None, None
        ]
        mean = members.mean(dim=1, keepdim=True)
        return mean + k * (members - mean)

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": "spread factor on deviations from the ensemble mean, k = 1 / SSR",
            "channels": list(self.channels),
            "leads_hours": list(self.leads_hours),
            "factors": self.factors.tolist(),
            "ssr_before": self.ssr_before.tolist(),
            "ssr_after": self.ssr_after.tolist(),
            "period": self.period,
            "members": self.members,
            "n_inits": self.n_inits,
            "sampler": self.sampler,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SpreadCalibration:
        return cls(
            channels=tuple(d["channels"]),
            leads_hours=tuple(float(h) for h in d["leads_hours"]),
            factors=np.asarray(d["factors"], dtype=np.float64),
            ssr_before=np.asarray(d["ssr_before"], dtype=np.float64),
            ssr_after=np.asarray(d["ssr_after"], dtype=np.float64),
            period=str(d["period"]),
            members=int(d["members"]),
            n_inits=int(d["n_inits"]),
            sampler=d.get("sampler"),
        )

    def check_sampler(self, sampler: Sampler) -> None:
        """Refuse to apply the factors to members drawn with another sampler than the fit's."""
        from generators.config import parse_sampler, sampler_spec

        if self.sampler is None:
            log.warning(
                "the spread calibration does not record the sampler it was fitted with (an "
                "older checkpoint): its factors hold only for that sampler; refit with wxens "
                "calibrate to record it"
            )
        elif parse_sampler(self.sampler) != sampler:
            spec = sampler_spec(sampler)
            raise InputError(
                f"the checkpoint's spread calibration was fitted on forecasts of {self.sampler}; "
                f"its factors do not hold for {spec}, whose spread differs. Forecast with "
                f"--sampler {self.sampler!r} (the default of a calibrated checkpoint), leave "
                "the calibration out (--no-calibration), or refit it for this sampler "
                "(wxens calibrate --sampler)"
            )

    def report(self) -> str:
        """A markdown table: lead, channel, factor, SSR before and after on the fit period."""
        lines = [
            f"Spread calibration fitted on {self.period} ({self.n_inits} initial times, "
            f"{self.members} members, {self.sampler or 'sampler not recorded'})",
            "",
            "| lead (h) | channel | factor k | SSR before | SSR after |",
            "| --- | --- | --- | --- | --- |",
        ]
        for i, lead in enumerate(self.leads_hours):
            for c, channel in enumerate(self.channels):
                lines.append(
                    f"| {lead:g} | {channel} | {self.factors[i, c]:.3f} | "
                    f"{self.ssr_before[i, c]:.3f} | {self.ssr_after[i, c]:.3f} |"
                )
        return "\n".join(lines)


def scale_spread(members: np.ndarray, factors: np.ndarray) -> np.ndarray:
    """x̄ + k (x_m − x̄) for members (N, M, *F, H, W) and factors k of shape F: (C,) for
    F = (C,), (L, C) for F = (L, C)."""
    mean = members.mean(axis=1, keepdims=True)
    return mean + factors[..., None, None] * (members - mean)


def fit_spread_factors(
    members_by_lead: Sequence[np.ndarray], truth_by_lead: Sequence[np.ndarray], latitude: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Factors k = 1 / SSR (L, C) and the SSR before and after applying them, from
    per-lead members (N, M, C, H, W) and truths (N, C, H, W)."""
    factors, before, after = [], [], []
    for members, truth in zip(members_by_lead, truth_by_lead, strict=True):
        ssr = spread_skill_ratio(members, truth, latitude)
        if not np.all(np.isfinite(ssr)) or np.any(ssr <= 0):
            raise InputError(
                f"cannot calibrate: spread-skill ratio {ssr} is not positive (identical members "
                "or a perfect ensemble mean)"
            )
        k = 1.0 / ssr
        factors.append(k)
        before.append(ssr)
        after.append(spread_skill_ratio(scale_spread(members, k), truth, latitude))
    return np.stack(factors), np.stack(before), np.stack(after)


def calibration_init_times(
    times: pd.DatetimeIndex,
    period_start: str | None,
    period_end: str | None,
    every_hours: float,
    max_lead_hours: float,
) -> pd.DatetimeIndex:
    """Initial times of a period, every ``every_hours`` from the first time in it, whose
    truth at ``max_lead_hours`` still lies in the period (no truth from after it is used)."""
    window = times[times.slice_indexer(period_start, period_end)]
    last = window[-1] - pd.Timedelta(hours=max_lead_hours) if len(window) else None
    if last is None or last < window[0]:
        raise InputError(
            f"the calibration period {period_start} to {period_end} holds no initial time whose "
            f"{max_lead_hours:g} h truth is in the period; give a longer period"
        )
    return pd.date_range(window[0], last, freq=pd.Timedelta(hours=every_hours))


def held_out_period(checkpoint: Checkpoint) -> Period:
    """The one period a cross-validation checkpoint held out of training (``data.exclude``)."""
    excluded = checkpoint.train_config.data.exclude
    if len(excluded) != 1:
        raise InputError(
            f"{checkpoint.path}: a cross-validation fold must hold exactly one period out of "
            f"training (data.exclude), not {len(excluded)}; train it with "
            "--set 'data.exclude=[{start: ..., end: ...}]'"
        )
    return excluded[0]


def trained_on(checkpoint: Checkpoint, times: pd.DatetimeIndex) -> np.ndarray:
    """(N,) bool: which ``times`` lie in a period ``checkpoint`` trained on (``data.train``
    or its fine-tune's period) and outside the periods it held out (``data.exclude``)."""
    config = checkpoint.train_config
    periods = [config.data.train]
    if config.fine_tune is not None and config.fine_tune.period is not None:
        periods.append(config.fine_tune.period)
    inside = np.any([period.contains(times) for period in periods], axis=0)
    for period in config.data.exclude:
        inside &= ~period.contains(times)
    return inside


# Training-config fields in which a fold may differ from the model it calibrates: which
# period it held out (and validated on), and the settings used only after training.
FOLD_FREE_FIELDS = ("data.exclude", "data.validation", "sampler", "calibration")


def check_fold(checkpoint: Checkpoint, fold: Checkpoint) -> None:
    """InputError unless ``fold`` is the recipe of ``checkpoint`` with one period held out:
    same channels, grid and training config but for :data:`FOLD_FREE_FIELDS` (its held-out
    period is :func:`held_out_period`'s to check)."""

    def recipe(c: Checkpoint) -> TrainConfig:
        t = c.train_config
        return replace(
            t, data=replace(t.data, exclude=(), validation=None), sampler=None, calibration=None
        )

    if fold.channels != checkpoint.channels or not (
        np.array_equal(fold.latitude, checkpoint.latitude)
        and np.array_equal(fold.longitude, checkpoint.longitude)
    ):
        raise InputError(
            f"fold {fold.path} has channels {list(fold.channels)} on a "
            f"{len(fold.latitude)} x {len(fold.longitude)} grid, {checkpoint.path} "
            f"{list(checkpoint.channels)} on {len(checkpoint.latitude)} x "
            f"{len(checkpoint.longitude)}; calibrate with folds of the same recipe"
        )
    theirs, ours = asdict(recipe(fold)), asdict(recipe(checkpoint))
    differ = sorted(_differences(theirs, ours))
    if differ:
        raise InputError(
            f"fold {fold.path} was not trained with the recipe of {checkpoint.path}: they "
            f"differ in {', '.join(differ)} (a fold may differ only in "
            f"{', '.join(FOLD_FREE_FIELDS)}); retrain the fold from the same config"
        )


def _differences(a: dict, b: dict, prefix: str = "") -> list[str]:
    out = []
    for key in sorted(set(a) | set(b)):
        x, y = a.get(key), b.get(key)
        if isinstance(x, dict) and isinstance(y, dict):
            out += _differences(x, y, f"{prefix}{key}.")
        elif x != y:
            out.append(f"{prefix}{key}")
    return out


def fit_calibration(
    checkpoint: Checkpoint,
    store: AnalysisStore | str | Path,
    config: CalibrationConfig,
    *,
    folds: Sequence[Checkpoint] = (),
    device: str = "auto",
    progress: bool = True,
    model: torch.nn.Module | None = None,
) -> SpreadCalibration:
    """Fit the factors per lead and channel (see module docstring) on uncalibrated
    forecasts against the store's truth: ``checkpoint``'s own forecasts of
    ``config.period`` (``model`` defaults to its EMA model), or, given cross-validation
    ``folds`` (checkpoints of the same recipe, each trained without one period), each
    fold's forecasts of the period it held out, pooled. Folds calibrate a model trained on
    all the data, which has no held-out period of its own. Every forecast uses
    ``checkpoint``'s sampler (``config.sampler`` when set)."""
    leads = config.leads_hours or checkpoint.leads_hours
    if folds:
        for fold in folds:
            check_fold(checkpoint, fold)
        sources = [(fold, None, held_out_period(fold)) for fold in folds]
        period = (
            f"the held-out periods of {len(folds)} cross-validation folds ("
            + ", ".join(str(p) for _, _, p in sources)
            + ")"
        )
    elif config.period is None:
        raise InputError(
            "a spread calibration needs a held-out period (calibration.period, --start/--end) "
            "or cross-validation folds (--fold)"
        )
    else:
        sources, period = [(checkpoint, model, config.period)], str(config.period)
    members, truths, n_inits = [], [], 0
    for source, source_model, source_period in sources:
        data = ForecastData.from_store(source, store)
        inits = calibration_init_times(
            data.times,
            source_period.start,
            source_period.end,
            config.init_every_hours,
            max(leads),
        )
        inits = data.usable_inits(inits, leads)
        seen = inits[trained_on(source, inits)]
        if len(seen):
            raise InputError(
                f"{len(seen)} of the {len(inits)} initial times of the calibration period "
                f"{source_period} ({seen[0]} to {seen[-1]}) lie in the training period of "
                f"{source.path}: its errors there are too small to calibrate on; fit on days "
                "it never trained on, or on cross-validation folds (wxens calibrate --fold)"
            )
        if source_model is None:
            source_model = source.build_model(device=resolve_device(device))
        sampler = (
            parse_sampler(config.sampler)
            if config.sampler
            else default_sampler(checkpoint, source_model)
        )
        members.append(
            forecast_members(
                source,
                data,
                inits,
                leads,
                config.members,
                sampler=sampler,
                seed=config.seed,
                device=device,
                calibration=None,
                progress=progress,
                model=source_model,
            )
        )
        truths.append(np.stack([data.truth(inits, lead) for lead in leads], axis=1))
        n_inits += len(inits)
    pooled, truth = np.concatenate(members), np.concatenate(truths)
    factors, before, after = fit_spread_factors(
        [pooled[:, :, i] for i in range(len(leads))],
        [truth[:, i] for i in range(len(leads))],
        checkpoint.latitude,
    )
    calibration = SpreadCalibration(
        channels=checkpoint.channels,
        leads_hours=tuple(float(h) for h in leads),
        factors=factors,
        ssr_before=before,
        ssr_after=after,
        period=period,
        members=config.members,
        n_inits=n_inits,
        sampler=sampler_spec(sampler),
    )
    log.info(
        "spread calibration on %s: factors %s by lead %s h",
        period,
        np.round(factors, 3).tolist(),
        [f"{h:g}" for h in leads],
    )
    return calibration


def calibrate_checkpoint(
    path: str | Path,
    store: AnalysisStore | str | Path,
    config: CalibrationConfig,
    *,
    folds: Sequence[str | Path] = (),
    out: str | Path | None = None,
    device: str = "auto",
    progress: bool = True,
) -> SpreadCalibration:
    """Fit a calibration for the checkpoint at ``path`` (on ``config.period``, or on the
    held-out periods of the fold checkpoints at ``folds``) and write the checkpoint with it
    to ``out``, by default over ``path`` (atomically; the digest changes, so forecasts
    record which calibration they used)."""
    store = store if isinstance(store, AnalysisStore) else open_store(store)
    checkpoint = load_checkpoint(path)
    calibration = fit_calibration(
        checkpoint,
        store,
        config,
        folds=[load_checkpoint(f) for f in folds],
        device=device,
        progress=progress,
    )
    checkpoint.replace(calibration=calibration.to_dict()).save(out or checkpoint.path)
    return calibration
