"""Spectral check: the members' power by wavenumber band against the truth's, per channel.

Power spectra from :mod:`verification.spectra` (zonal on global grids, isotropic on
regional ones); the bands are the three log-equal thirds of the non-zero wavenumbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import dask
import numpy as np
import pandas as pd
import xarray as xr

from pipeline.schema import CHANNEL, INIT_TIME, LAT, LEAD_TIME, LON, MEMBER, VALID_TIME, to_channels
from verification.base import CheckResult, register_check
from verification.physics.common import NO_TRUTH, PhysicsCheckBase, largest, where_members
from verification.spectra import (
    BAND,
    BANDS,
    MASKED_TRUTH,
    band_mean,
    has_spectrum,
    power_spectrum,
    wavenumber_dim,
)

SAMPLE = "sample"

NOISY = (
    "the truth's own power at these scales varies from sample to sample more than a mean "
    "over these samples can tell a 2x excess or deficit from: too few samples to judge "
    "(more initial times or leads)"
)
NO_SPECTRUM = (
    "no latitude within 60° on a grid of global longitudes: its zonal spectra are averaged "
    "over |latitude| <= 60° (a polar cap has none)"
)
FEW_SAMPLES = (
    "too few valid times with a complete truth: the truth's own sampling noise, which sets "
    "the tolerance, needs two or more at the same hour of day (more initial times or leads)"
)


@register_check
@dataclass(frozen=True)
class SpectralRatio(PhysicsCheckBase):
    """Member against truth power spectra in three wavenumber bands, per channel.

    Per channel (variable and level) and band, from the spectra averaged over the samples
    (initial times and leads whose truth is complete): the band mean over wavenumbers of
    ``ln(member power / truth power)`` — the log of the geometric-mean power ratio, so a
    2x excess at every small-scale wavenumber reads ln 2 however red the spectrum. Its
    tolerance is the truth's own sampling noise times ``factor``, at least ``floor``: the
    standard error of the difference of two means over the samples, ``sqrt(2/N_eff)``
    times the std over the truth's valid times of its band-mean log power about its mean at
    the same hour of day (members are compared at the truth's valid times, so the diurnal
    cycle is shared, not noise), ``N_eff`` the valid times' number reduced for their
    lag-one autocorrelation (:func:`sampling_noise`). Where that tolerance exceeds
    ``limit`` (ln 2) the band cannot flag a 2x excess or deficit on this sample, and is
    "n/a" for that channel. Power below
    ``power_floor`` times the truth's total (non-zero wavenumber) power, float32 round-off
    on smooth fields, counts as that floor in both spectra.

    One result per band: the score of a member is its largest ``|ln ratio| / tolerance``
    over channels (it passes at ≤ 1); the truth's, the same statistic between two halves
    of its distinct valid times, alternating within each hour of day (:func:`halves`), on
    the same scale.
    """

    name: ClassVar[str] = "spectral_ratio"
    description: ClassVar[str] = (
        "Power spectra of members against the truth in large/medium/small-scale bands "
        "(zonal spectra on global grids, isotropic on regional ones), per channel: a ratio "
        "below 1 at small scales means smoothed members, above 1 noisy ones. Score: largest "
        "|mean ln(member/truth power)| over channels, in units of the band's tolerance (the "
        "truth's own sampling noise, at most ln 2: a 2x excess or deficit fails)."
    )
    units: ClassVar[str] = "band tolerance"
    requires: ClassVar[str] = "a grid of at least 8 x 8 points"
    factor: float = 3.0
    floor: float = 0.223  # ln 1.25
    limit: float = 0.693  # ln 2: the smallest excess or deficit the check must flag
    power_floor: float = 1e-10

    def applies(self, forecast: xr.Dataset) -> bool:
        return has_spectrum(forecast, min_points=8)

    def judge(
        self, forecast: xr.Dataset, truth: xr.Dataset, initial: xr.Dataset | None = None
    ) -> list[CheckResult]:
        return self.conclude(self.summarise(forecast, truth, initial))

    def summarise(
        self, forecast: xr.Dataset, truth: xr.Dataset, initial: xr.Dataset | None = None
    ) -> tuple[xr.DataArray, dict[str, Spectra]]:
        """The member template and, per channel, the :class:`Spectra` of the samples."""
        members = to_channels(forecast)
        observed = to_channels(where_members(truth, forecast))
        # a copy, not a view that would keep the block in memory with the summary
        template = members.isel({d: 0 for d in members.dims if d != MEMBER}, drop=True).copy()
        return template, {
            channel: self._spectra(
                members.sel({CHANNEL: channel}, drop=True),
                observed.sel({CHANNEL: channel}, drop=True),
            )
            for channel in members[CHANNEL].values.tolist()
        }

    def combine(
        self, partials: list[tuple[xr.DataArray, dict[str, Spectra]]]
    ) -> tuple[xr.DataArray, dict[str, Spectra]]:
        template, first = partials[0]
        return template, {
            channel: Spectra.joined([spectra[channel] for _, spectra in partials])
            for channel in first
        }

    def conclude(self, summary: tuple[xr.DataArray, dict[str, Spectra]]) -> list[CheckResult]:
        template, spectra = summary
        per_band: dict[str, list[tuple[str, xr.DataArray, float]]] = {b: [] for b in BANDS}
        not_computed = []
        for channel, of_channel in spectra.items():
            ratios = self._channel(of_channel)
            if isinstance(ratios, str):
                not_computed.append(CheckResult.not_computed(self, template, ratios, channel))
                continue
            member_ratio, noise, own = ratios
            for band in BANDS:
                tolerance = max(self.factor * float(noise.sel({BAND: band})), self.floor)
                if tolerance > self.limit:
                    part = f"{channel} {band} scales"
                    not_computed.append(CheckResult.not_computed(self, template, NOISY, part))
                    continue
                scaled = np.abs(member_ratio.sel({BAND: band}, drop=True)) / tolerance
                own_score = float(own.sel({BAND: band})) / tolerance
                per_band[band].append((channel, scaled, own_score))
        results = []
        for band in BANDS:
            part = f"{band} scales"
            if not per_band[band]:
                continue  # every channel's n/a says why
            channels, scaled_scores, _ = zip(*per_band[band], strict=True)
            score, worst = largest(list(scaled_scores), list(channels))
            results.append(
                CheckResult(
                    name=self.name,
                    description=self.description,
                    units=self.units,
                    member_score=score,
                    truth_score=max(t for _, _, t in per_band[band]),
                    tolerance=1.0,
                    tolerance_rule=(
                        f"per channel max({self.factor:g} × the sampling noise of the truth's "
                        f"band power, {self.floor:g}), at most {self.limit:g} (ln 2); score "
                        "in units of it"
                    ),
                    part=part,
                    worst=worst,
                )
            )
        return results + not_computed

    def _spectra(self, members: xr.DataArray, truth: xr.DataArray) -> Spectra:
        """Of one channel: the spectra of the samples whose truth is complete."""
        complete = truth.notnull().all([LAT, LON]).compute()
        stacked = {SAMPLE: [d for d in (INIT_TIME, LEAD_TIME) if d in truth.dims]}
        flags = complete.stack(stacked).values
        valid = (
            truth[VALID_TIME].stack(stacked).values[flags]
            if VALID_TIME in truth.coords
            else np.zeros(int(flags.sum()), "datetime64[ns]")
        )
        keep = np.flatnonzero(flags)
        spectra = Spectra(bool(truth.notnull().any()), pd.DatetimeIndex(valid).values)
        if keep.size == 0:
            return spectra
        truth_power = power_spectrum(truth.stack(stacked).isel({SAMPLE: keep}))
        member_power = power_spectrum(members.stack(stacked).isel({SAMPLE: keep}))
        truth_power, member_power = dask.compute(truth_power, member_power)
        return Spectra(
            spectra.any_truth,
            spectra.valid,
            truth_power.drop_vars([SAMPLE, *stacked[SAMPLE]]),
            member_power.sum(SAMPLE),
            member_power.count(SAMPLE),
        )

    def _channel(self, spectra: Spectra) -> tuple[xr.DataArray, xr.DataArray, xr.DataArray] | str:
        """Of one channel: the (member, band) mean log power ratio, the (band,) sampling
        noise of that statistic and the (band,) truth's own statistic between its even and
        odd samples; or why they cannot be computed."""
        if spectra.truth_power is None:
            return MASKED_TRUTH if spectra.any_truth else NO_TRUTH
        valid = spectra.valid
        order = np.argsort(valid, kind="stable")
        unique = np.unique(valid)
        if unique.size - np.unique(pd.DatetimeIndex(unique).hour).size < 1:
            return FEW_SAMPLES
        truth_power = spectra.truth_power.isel({SAMPLE: order})  # by valid time
        member_power = spectra.member_sum / spectra.member_count
        if not bool(np.isfinite(truth_power).any()):
            return NO_SPECTRUM
        dim = wavenumber_dim(truth_power)
        positive = truth_power[dim] > 0
        floor = self.power_floor * float(truth_power.where(positive).sum(dim).mean(SAMPLE))
        mean = truth_power.mean(SAMPLE) + floor
        member_ratio = band_mean(np.log((member_power + floor) / mean).where(positive))
        per_sample = band_mean(np.log(truth_power + floor).where(positive))  # (sample, band)
        noise = sampling_noise(per_sample.transpose(SAMPLE, BAND).values, valid[order])
        noise = xr.DataArray(noise, dims=BAND, coords={BAND: per_sample[BAND].values})
        first, second = halves(valid[order])
        even = truth_power.isel({SAMPLE: first}).mean(SAMPLE) + floor
        odd = truth_power.isel({SAMPLE: second}).mean(SAMPLE) + floor
        own = np.abs(band_mean(np.log(even / odd).where(positive)))
        return member_ratio, noise, own


@dataclass(frozen=True)
class Spectra:
    """Of one channel, what the spectral check reads of a block of samples: whether the
    truth holds any value, the valid times of the samples whose truth is complete (in
    init time, lead order), the truth's spectrum of each of them, the sum over them of each
    member's spectrum and how many it sums (None without such a sample). The spectra of
    blocks of initial times, :meth:`joined`, are those of all."""

    any_truth: bool
    valid: np.ndarray
    truth_power: xr.DataArray | None = None
    member_sum: xr.DataArray | None = None
    member_count: xr.DataArray | None = None

    @staticmethod
    def joined(blocks: list[Spectra]) -> Spectra:
        valid = np.concatenate([b.valid for b in blocks])
        held = [b for b in blocks if b.truth_power is not None]
        if not held:
            return Spectra(any(b.any_truth for b in blocks), valid)
        return Spectra(
            True,
            valid,
            xr.concat([b.truth_power for b in held], dim=SAMPLE),
            sum(b.member_sum for b in held[1:]) + held[0].member_sum,
            sum(b.member_count for b in held[1:]) + held[0].member_count,
        )


def halves(valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Positions of two halves of samples whose valid times are ``valid`` (sorted): each
    distinct valid time once (a time several samples share is one field), alternating
    within each hour of day (one with a single time in neither), so that both halves hold
    the hours alike. Alternating over all the times put 06 and 18 UTC in one half and 00
    and 12 UTC in the other (forecasts 6 h apart), and the truth's own score was its
    diurnal cycle."""
    times, first = np.unique(valid, return_index=True)
    hours = pd.DatetimeIndex(times).hour.values
    rank = np.full(times.size, -1)  # an hour of one time only is in neither half
    for hour in np.unique(hours):
        if (n := int((hours == hour).sum())) > 1:
            rank[hours == hour] = np.arange(n)
    return first[(rank >= 0) & (rank % 2 == 0)], first[rank % 2 == 1]


def sampling_noise(log_power: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """(band,) standard error of the difference of two means of band log power over the
    truth's samples: ``std × sqrt(2 / N_eff)``.

    ``log_power`` (sample, band) in valid-time order, ``valid`` the samples' valid times.
    A valid time that several samples share counts once; the std is taken about the mean
    at the same hour of day (the diurnal cycle is common to members and truth), with one
    degree of freedom per hour spent; ``N_eff = N (1 - r) / (1 + r)`` for ``N`` distinct
    valid times whose anomalies have lag-one autocorrelation ``r ≥ 0`` (Wilks 2011,
    eq. 5.12), the estimate of ``r`` raised by its small-sample bias ``(1 + 4r)/N``
    (Kendall 1954).
    """
    times, first = np.unique(valid, return_index=True)
    values = log_power[first]
    hours = pd.DatetimeIndex(times).hour.values
    anomaly = values.copy()
    for hour in np.unique(hours):
        anomaly[hours == hour] -= values[hours == hour].mean(axis=0)
    dof = times.size - np.unique(hours).size
    std = np.sqrt((anomaly**2).sum(axis=0) / dof)
    if times.size > 2:
        lagged = (anomaly[:-1] * anomaly[1:]).sum(axis=0) / np.maximum(
            (anomaly**2).sum(axis=0), 1e-300
        )
        r = np.clip(lagged + (1 + 4 * lagged) / times.size, 0.0, 0.99)  # less its bias
    else:
        r = np.zeros(values.shape[1])
    n_eff = np.maximum(times.size * (1 - r) / (1 + r), 1.0)
    return std * np.sqrt(2.0 / n_eff)
