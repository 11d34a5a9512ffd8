"""Fixed spread factors: a per-channel, per-lead factor on the members' deviations from the
ensemble mean, fitted on a held-out period, stored in the checkpoint, applied at generation
and recorded in the forecast store — never silent.

Correction: x'_m = x̄ + k (x_m − x̄), which scales the spread by k and keeps the ensemble
mean (hence the skill). The fit chooses k so that the spread-skill ratio

    SSR = sqrt((M+1)/M · spread² / skill²),
    spread² = w-mean over (init, lat, lon) of var_m(x, ddof=1),
    skill²  = w-mean over (init, lat, lon) of (x̄ − y)²,      w = cos(latitude)

(the definition of :func:`verification.scores.spread_skill_ratio`, with the
finite-ensemble factor; Fortin et al. 2014) is 1 on the fit period: k = 1 / SSR. The
point-wise moments and the ratio are verification's kernels
(:func:`verification.kernels.ensemble_moments`,
:func:`verification.kernels.spread_skill_from_moments`), the weights
:func:`pipeline.schema.cos_latitude_weights`.

A factor fitted on a short, easy period transfers badly: fit on as long and varied a
period as the data allows, and prefer a model calibrated without it. A model trained on all
the data has no held-out period of its own: then the factors are fitted on
cross-validation folds (the same recipe trained without one period each, each forecasting
the period it held out, pooled), as its noise scale was chosen. The report gives SSR
before and after, on the fit period and on any other.

The fit's forecasts come from the models (:mod:`generators.calibration`); everything here
works on numpy arrays.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from pipeline.errors import InputError
from pipeline.schema import Period, cos_latitude_weights, split_channel
from pipeline.timeaxis import hours_text
from verification.kernels import ensemble_moments, spread_skill_from_moments

log = logging.getLogger(__name__)


@dataclass
class PooledMoments:
    """Cos-latitude-weighted sums over (N, H, W), and counts, of the member variance (ddof
    1) and of the squared error of the ensemble mean, per channel, pooled batch by batch
    (:meth:`add`) so that a fit over many initial times holds one batch of members at a
    time. NaN points (a masked field) are skipped. Their means are the spread² and skill²
    of the module docstring."""

    latitude: np.ndarray
    members: int = 0
    sums: np.ndarray | None = None  # (2, C): variance, squared error
    counts: np.ndarray | None = None

    @classmethod
    def of(cls, members: np.ndarray, truth: np.ndarray, latitude: np.ndarray) -> PooledMoments:
        """The moments of members (N, M, C, H, W) against truth (N, C, H, W)."""
        return cls(np.asarray(latitude, dtype=np.float64)).add(members, truth)

    def add(self, members: np.ndarray, truth: np.ndarray) -> PooledMoments:
        """Pool members (N, M, C, H, W) against truth (N, C, H, W) in; returns self."""
        if self.members and members.shape[1] != self.members:
            raise ValueError(f"{members.shape[1]} members pooled with {self.members}")
        self.members = members.shape[1]
        w = cos_latitude_weights(self.latitude)[:, None]
        squared_error, variance = ensemble_moments(np.moveaxis(members, 1, -1), truth)
        moments = np.stack([variance, squared_error]) * w
        sums = np.nansum(moments, axis=(1, 3, 4))
        counts = np.sum(~np.isnan(moments), axis=(1, 3, 4))
        self.sums = sums if self.sums is None else self.sums + sums
        self.counts = counts if self.counts is None else self.counts + counts
        return self

    def means(self) -> tuple[np.ndarray, np.ndarray]:
        """(C,) spread² and skill²: the weighted means of the variance and squared error."""
        with np.errstate(invalid="ignore", divide="ignore"):
            variance, squared_error = self.sums / self.counts
        return variance, squared_error

    def spread_skill_ratio(self) -> np.ndarray:
        """(C,) sqrt((M+1)/M · spread² / skill²) (module docstring)."""
        if self.members < 2:
            raise InputError(f"a spread-skill ratio needs at least 2 members, got {self.members}")
        return spread_skill_from_moments(*self.means(), self.members)


def spread_skill_ratio(members: np.ndarray, truth: np.ndarray, latitude: np.ndarray) -> np.ndarray:
    """(C,) sqrt((M+1)/M · spread² / skill²) (module docstring)."""
    return PooledMoments.of(members, truth, latitude).spread_skill_ratio()


def scale_spread(members: np.ndarray, factors: np.ndarray) -> np.ndarray:
    """x̄ + k (x_m − x̄) for members (N, M, *F, H, W) and factors k of shape F: (C,) for
    F = (C,), (L, C) for F = (L, C)."""
    mean = members.mean(axis=1, keepdims=True)
    return mean + factors[..., None, None] * (members - mean)


#: Factors outside this range are said (:func:`far_factors`): a factor of 3 takes members
#: whose spread is a third of their error and multiplies their variance by 9, so what the
#: calibrated members show is mostly the sampler's noise scaled up, not the model's
#: uncertainty (a 27-step model fitted 4.7-6.0); a third shrinks a spread three times too
#: large, as much a sign of an untrained model or a wrong sampler.
NEAR_ONE = (1 / 3, 3.0)


def far_factors(leads_hours: Sequence[float], factors: np.ndarray, channels: Sequence[str]) -> str:
    """A warning naming the lead, channel and factor of each of ``factors`` (leads x
    channels) outside :data:`NEAR_ONE`, and the fix; "" where every one is inside."""
    far = [
        f"{lead:g} h {channel} {k:.3g}"
        for lead, row in zip(leads_hours, np.asarray(factors), strict=True)
        for channel, k in zip(channels, row, strict=True)
        if not NEAR_ONE[0] <= k <= NEAR_ONE[1]
    ]
    if not far:
        return ""
    return (
        f"spread factors far from 1 ({', '.join(far)}; outside 1/{1 / NEAR_ONE[0]:g} to "
        f"{NEAR_ONE[1]:g}): the members' spread is not the model's, and the calibration "
        "scales their noise; train longer (more steps, a larger --budget) or check the "
        "sampler (its NFE, `wxens info` of the checkpoint), then calibrate again"
    )


def fit_spread_factors(
    moments_by_lead: Sequence[PooledMoments], shared: Sequence[int] = ()
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Factors k = 1 / SSR (L, C) and the SSR before and after applying them, from the
    per-lead :class:`PooledMoments` of the fit's members against their truth. Scaling the
    deviations by k keeps the ensemble mean and scales the spread by k, so the SSR after
    is k times the SSR before.

    ``shared``: channels that take one factor, k = 1 / sqrt(mean of their SSR²) (the k
    that brings the sum over them of SSR² / SSR_c², each channel in its own units, to
    their number), so that linear relations between them (hypsometric, geostrophic:
    :func:`generators.balance.balanced_channels`) hold in the scaled members as in the
    drawn ones."""
    shared = list(shared)
    factors, before = [], []
    for moments in moments_by_lead:
        ssr = moments.spread_skill_ratio()
        if not np.all(np.isfinite(ssr)) or np.any(ssr <= 0):
            raise InputError(
                f"cannot calibrate: spread-skill ratio {ssr} is not positive (identical members "
                "or a perfect ensemble mean)"
            )
        k = 1.0 / ssr
        if shared:
            k[shared] = 1.0 / np.sqrt(np.mean(ssr[shared] ** 2))
        factors.append(k)
        before.append(ssr)
    factors, before = np.stack(factors), np.stack(before)
    return factors, before, factors * before


@dataclass(frozen=True, eq=False)
class SpreadCalibration:
    """Factors k (L, C) by lead (hours) and channel, with the SSR before and after on the
    fit period and how they were fitted: ``sampler`` is the spec of the sampler of the fit
    forecasts (None in calibrations written before it was recorded). The factors hold for
    that sampler only: another NFE or noise scale changes the spread they correct.
    ``shared``: the channels fitted with one factor (:func:`fit_spread_factors`);
    ``balance``: whether the fit forecasts' upper air was balanced at every step (which
    changes their spread, so the factors hold for such forecasts only); ``seed``: the fit
    forecasts' seed (None in calibrations written before it was recorded). ``period`` is
    the fit period as text, for display; ``fit_period`` the one held-out period of the fit
    (``period_start``, ``period_end`` in the dict, as the config gives them, null an open
    side) and ``fold_periods`` those of cross-validation folds (``fold_periods``): both
    empty in calibrations written before they were recorded, whose period is text only."""

    channels: tuple[str, ...]
    leads_hours: tuple[float, ...]
    factors: np.ndarray
    ssr_before: np.ndarray
    ssr_after: np.ndarray
    period: str
    members: int
    n_inits: int
    sampler: str | None = None
    shared: tuple[str, ...] = ()
    balance: bool = False
    seed: int | None = None
    fit_period: Period | None = None
    fold_periods: tuple[Period, ...] = ()

    def lead_index(self, lead_hours: float) -> int | None:
        for i, lead in enumerate(self.leads_hours):
            if abs(lead - lead_hours) < 1e-6:
                return i
        return None

    def factors_for(self, lead_hours: float) -> np.ndarray:
        """The factors (C,) of a lead: those fitted at a calibrated lead; between two, linear
        in lead; before the first or after the last (a rollout past the trained leads), the
        nearest lead's. A forecast asks for every native step up to ``--lead`` by default,
        not only the calibrated leads, and a model's factor varies slowly with lead (left
        at 1, such leads kept the raw spread: spread-skill 2.7 between calibrated leads at
        0.95 for a 3-minute model of the synthetic upper air); :meth:`note_unfitted`."""
        i = self.lead_index(lead_hours)
        if i is not None:
            return self.factors[i]
        order = np.argsort(self.leads_hours)
        leads = np.asarray(self.leads_hours, np.float64)[order]
        factors = self.factors[order]
        return np.array(
            [np.interp(lead_hours, leads, factors[:, c]) for c in range(factors.shape[1])]
        )

    def note_unfitted(self, leads_hours: Sequence[float]) -> None:
        """Log the leads of a forecast whose factors were not fitted: interpolated (info),
        or past the fitted leads (a warning: the nearest lead's, with the fix)."""
        unfitted = [h for h in leads_hours if self.lead_index(h) is None]
        first, last = min(self.leads_hours), max(self.leads_hours)
        inside = [f"{h:g}" for h in unfitted if first < h < last]
        outside = [h for h in unfitted if not first < h < last]
        if inside:
            log.info("spread factors interpolated in lead at %s h", ", ".join(inside))
        if outside:
            log.warning(
                "leads %s h are outside the calibrated leads (%g to %g h): their spread "
                "factors are the nearest lead's; fit them with `wxens calibrate --lead`",
                hours_text(outside),
                first,
                last,
            )

    def apply(self, members: np.ndarray, lead_hours: float) -> np.ndarray:
        """Members (B, M, C, H, W) with their deviations from the mean scaled by k(lead)
        (:func:`scale_spread`; :meth:`factors_for`)."""
        return scale_spread(members, self.factors_for(lead_hours).astype(members.dtype))

    def to_dict(self) -> dict[str, Any]:
        return (
            {
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
                "shared": list(self.shared),
                "balance": self.balance,
            }
            | ({} if self.seed is None else {"seed": self.seed})
            | self._periods_dict()
        )

    def _periods_dict(self) -> dict[str, Any]:
        """The fit's periods as fields (none in a calibration that recorded text only)."""
        fit = self.fit_period
        return ({} if fit is None else {"period_start": fit.start, "period_end": fit.end}) | (
            {"fold_periods": [[p.start, p.end] for p in self.fold_periods]}
            if self.fold_periods
            else {}
        )

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
            shared=tuple(d.get("shared", ())),
            balance=bool(d.get("balance", False)),
            seed=None if d.get("seed") is None else int(d["seed"]),
            fit_period=(
                Period(d.get("period_start"), d.get("period_end"))
                if {"period_start", "period_end"} & d.keys()
                else None
            ),
            fold_periods=tuple(Period(*p) for p in d.get("fold_periods", ())),
        )

    def check_sampler(self, sampler: str) -> None:
        """Refuse to apply the factors to members drawn with another sampler than the fit's.
        ``sampler``: the canonical spec (``generators.config.sampler_spec``) of the sampler
        the members are drawn with, which the fit records in the same form."""
        if self.sampler is None:
            log.warning(
                "the spread calibration does not record the sampler it was fitted with (an "
                "older checkpoint): its factors hold only for that sampler; refit with wxens "
                "calibrate to record it"
            )
        elif self.sampler != sampler:
            raise InputError(
                f"the checkpoint's spread calibration was fitted on forecasts of {self.sampler}; "
                f"its factors do not hold for {sampler}, whose spread differs. Forecast with "
                f"sampler={self.sampler!r} (--sampler), the default of a calibrated checkpoint, "
                "leave the calibration out, calibrate=False (--no-calibration), or refit it "
                "for this sampler (`wxens calibrate --sampler`)"
            )

    def check_balance(self, balance: bool) -> None:
        """Refuse to apply the factors to members drawn with (``balance``) or without
        balanced upper air when the fit forecasts were drawn the other way."""
        if balance != self.balance:
            fitted, asked = ("with", "without") if self.balance else ("without", "with")
            refit = "wxens calibrate" if self.balance else "wxens calibrate --balance"
            raise InputError(
                f"the checkpoint's spread calibration was fitted on forecasts {fitted} balanced "
                f"upper air; its factors do not hold for forecasts {asked} it, whose spread "
                f"differs. Forecast {fitted} balance=True (--balance), leave the calibration "
                f"out, calibrate=False (--no-calibration), or refit it ({refit})"
            )

    def summary(self) -> str:
        """One line: where and how the factors were fitted, at which leads, their range."""
        return (
            f"fitted on {self.period} at {', '.join(f'{h:g}' for h in self.leads_hours)} h, "
            f"factors {self.factors.min():.2f} to {self.factors.max():.2f} "
            "(-v logs them all)"
        )

    def report(self) -> str:
        """A markdown table: lead, channel, factor, SSR before and after on the fit period."""
        lines = [
            f"Spread calibration fitted on {self.period} ({self.n_inits} initial times, "
            f"{self.members} members, {self.sampler or 'sampler not recorded'})"
            + ("; upper air balanced at every step" if self.balance else ""),
            *([self._shared_note()] if self.shared else []),
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

    def _shared_note(self) -> str:
        """Why the channels in ``shared`` take one factor, for every fit (balanced or not):
        the relations between them are linear, so one factor keeps the members' as drawn.
        Geostrophic only where u and v are among them (not on a global grid, f = 0 there)."""
        winds = any(split_channel(name)[0] in ("u", "v") for name in self.shared)
        relations = "hypsometric and geostrophic" if winds else "hypsometric"
        return (
            f"One factor per lead for {', '.join(self.shared)} (the channels wxens forecast "
            f"--balance ties), with or without --balance: scaled alike, the members keep the "
            f"{relations} relations they were drawn with, which a factor each would break."
        )
