"""Normalisation of states and residuals (:class:`Normalization`): the store statistics per
channel and the tendency std per lead, fitted on the training period by
:func:`fit_normalization` and stored in every checkpoint."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import xarray as xr

from pipeline.errors import InputError, StoreError
from pipeline.schema import LEVEL, split_channel

if TYPE_CHECKING:
    from generators.data.dataset import ResidualDataset

TENDENCY_FLOOR = 0.05  # a grid point's tendency std is at least this share of the grid median


def recent_variability(history: torch.Tensor, offsets: Sequence[int]) -> torch.Tensor:
    """(B, C) mean squared increment per native step of a normalised history
    (B, K, C, H, W) with offsets ``o_1 < ... < o_K``:
    v = mean over k and the grid of (z[o_k+1] - z[o_k])^2 / (o_k+1 - o_k)
    (a random walk's increments scale with the square root of the gap); NaN points (a
    masked field) are skipped."""
    gaps = torch.as_tensor(np.diff(np.asarray(offsets)), dtype=history.dtype, device=history.device)
    increments = history[:, 1:] - history[:, :-1]
    return (increments.square().nanmean(dim=(-2, -1)) / gaps[None, :, None]).mean(dim=1)


@dataclass(frozen=True, eq=False)
class Normalization:
    """States ``(x - mean) / std`` per channel; residuals at a lead
    ``(x[t+l] - x[t]) / (tendency_std[l] * s)``, with ``s = 1`` or, under variability
    scaling, ``s = sqrt(v / variability)`` clipped to [1/4, 4] (:func:`recent_variability`
    of the sample's history against its training-period mean ``variability``).

    mean, std:    (C,) from the store statistics.
    tendency_std: (L, C) per channel, or (L, C, H, W) per channel and grid point; one row
                  per entry of ``leads_hours``.
    variability:  (C,) or None (no variability scaling).
    """

    channels: tuple[str, ...]
    mean: np.ndarray
    std: np.ndarray
    leads_hours: tuple[float, ...]
    tendency_std: np.ndarray
    variability: np.ndarray | None = None

    def variability_scale(self, history: torch.Tensor, offsets: Sequence[int]) -> torch.Tensor:
        """(B, C) residual scale ``s`` of normalised histories (B, K, C, H, W); ones
        without variability scaling."""
        if self.variability is None:
            return history.new_ones(history.shape[0], history.shape[2])
        reference = torch.as_tensor(self.variability, dtype=history.dtype, device=history.device)
        return (recent_variability(history, offsets) / reference).sqrt().clamp(0.25, 4.0)

    def lead_index(self, lead_hours: float) -> int:
        for i, lead in enumerate(self.leads_hours):
            if abs(lead - lead_hours) < 1e-6:
                return i
        raise InputError(
            f"lead {lead_hours:g} h has no tendency std: the model was trained for leads "
            f"{[f'{h:g}' for h in self.leads_hours]} h; ask for one of them or a multiple of "
            "a rollout step"
        )

    @property
    def per_grid_point(self) -> bool:
        return self.tendency_std.ndim == 4

    def residual_to_state(self, lead_hours: float) -> np.ndarray:
        """(C, 1, 1), or (C, H, W) per grid point: the factor turning a normalised residual
        into a normalised-state increment, ``tendency_std[l] / std``."""
        return (self._tendency(lead_hours) / self.std[:, None, None]).astype(np.float32)

    def state_to_residual(self, lead_hours: float) -> np.ndarray:
        """The inverse factor, ``std / tendency_std[l]`` (computed in float64)."""
        return (self.std[:, None, None] / self._tendency(lead_hours)).astype(np.float32)

    def _tendency(self, lead_hours: float) -> np.ndarray:
        tendency = self.tendency_std[self.lead_index(lead_hours)]
        return tendency if self.per_grid_point else tendency[:, None, None]

    def to_dict(self) -> dict[str, Any]:
        return {
            "channels": list(self.channels),
            "mean": self.mean.tolist(),
            "std": self.std.tolist(),
            "leads_hours": list(self.leads_hours),
            "tendency_std": self.tendency_std.tolist(),
            "variability": None if self.variability is None else self.variability.tolist(),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Normalization:
        return cls(
            channels=tuple(d["channels"]),
            mean=np.asarray(d["mean"], dtype=np.float64),
            std=np.asarray(d["std"], dtype=np.float64),
            leads_hours=tuple(float(h) for h in d["leads_hours"]),
            tendency_std=np.asarray(d["tendency_std"], dtype=np.float64),
            variability=None
            if d.get("variability") is None
            else np.asarray(d["variability"], dtype=np.float64),
        )


def grid_point_tendency_std(
    tendency: np.ndarray, std: np.ndarray, channel_std: np.ndarray
) -> np.ndarray:
    """(C, H, W) std over the samples of normalised tendencies (N, C, H, W), in physical
    units (times ``std``), floored at ``TENDENCY_FLOOR`` times each channel's grid median;
    ``channel_std`` where a point has no finite sample."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN points: filled below
        point = np.nanstd(tendency, axis=0) * std[:, None, None]
    point = np.where(np.isfinite(point), point, channel_std[:, None, None])
    floor = TENDENCY_FLOOR * np.median(point, axis=(1, 2))
    return np.maximum(point, floor[:, None, None])


TENDENCY_SAMPLES = 256  # initial times used to estimate a tendency std, evenly spaced


def channel_statistics(
    statistics: xr.Dataset, channels: Sequence[str], constant_ok: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """(C,) mean and std per channel from a store's statistics (dims statistic[, level]);
    a zero std (a constant field) is a StoreError unless ``constant_ok``."""
    out: dict[str, list[float]] = {"mean": [], "std": []}
    for ch in channels:
        var, level = split_channel(ch)
        if var not in statistics:
            raise StoreError(
                f"the store statistics have no entry for {var!r} (channel {ch}); the store "
                "was not finalised — rerun `wxens ingest` on it"
            )
        da = statistics[var] if level is None else statistics[var].sel({LEVEL: level})
        for stat in out:
            out[stat].append(float(da.sel(statistic=stat)))
    std = np.asarray(out["std"])
    empty = [ch for ch, s in zip(channels, std, strict=True) if not np.isfinite(s)]
    if empty:
        raise StoreError(
            f"channel(s) {empty} have no value in the store: every point is NaN, kept by "
            "allow_nan=True (--allow-nan); ingest them from files that hold values, or train "
            "without them: variables= (--variables) naming the others at ingest, or "
            "data.channels= (--set 'data.channels=[...]')"
        )
    bad = [ch for ch, s in zip(channels, std, strict=True) if s < 0 or (not constant_ok and s == 0)]
    if bad:
        raise StoreError(
            f"channel(s) {bad} are constant in the store (std 0): a generator cannot learn "
            "their change; leave them out: variables= (--variables) at ingest, or "
            "data.channels= (--set 'data.channels=[...]')"
        )
    return np.asarray(out["mean"]), std


def fit_normalization(data: ResidualDataset) -> Normalization:
    """Store mean/std of ``data``, and the std of each lead's tendency over its items
    (at most ``TENDENCY_SAMPLES`` evenly spaced initial times per lead, NaNs ignored):
    over the grid as well, or per grid point under ``tendency_per_grid_point`` (floored
    at ``TENDENCY_FLOOR`` times the grid median; the channel's value where a point has
    no data)."""
    spec = data.spec
    variability = None
    if spec.variability_scaling:
        inits = np.unique(data.pairs[:, 0])
        pick = inits[
            np.linspace(0, len(inits) - 1, min(TENDENCY_SAMPLES, len(inits)))
            .round()
            .astype(np.int64)
        ]
        variability = (
            recent_variability(data.history_at(pick), spec.history).mean(dim=0).double().numpy()
        )
    unscaled = Normalization(
        data.channels, data.mean, data.std, (), np.zeros((0, len(data.channels))), variability
    )
    rows = []
    for j, lead in enumerate(spec.leads):
        positions = data.pairs[data.pairs[:, 1] == j, 0]
        n = min(TENDENCY_SAMPLES, len(positions))
        pick = positions[np.linspace(0, len(positions) - 1, n).round().astype(np.int64)]
        if spec.variability_scaling:
            scale = unscaled.variability_scale(data.history_at(pick), spec.history).numpy()
        else:  # no history to read: on a global grid, 256 of them are gigabytes
            scale = np.ones((n, len(data.channels)), dtype=np.float32)
        states = data.states(data.positions(pick, (0, lead)))
        tendency = (states[:, 1] - states[:, 0]) / scale[:, :, None, None]
        channel_std = np.nanstd(tendency, axis=(0, 2, 3)) * data.std
        if not np.all(np.isfinite(channel_std)) or np.any(channel_std <= 0):
            raise InputError(
                f"{data.name}: the {lead}-step tendency std over {data.period} is not "
                f"positive for every channel "
                f"({dict(zip(data.channels, channel_std.tolist(), strict=True))}); "
                "a constant channel cannot be modelled — drop it"
            )
        if spec.tendency_per_grid_point:
            rows.append(grid_point_tendency_std(tendency, data.std, channel_std))
        else:
            rows.append(channel_std)
    tendency_std = np.stack(rows).astype(np.float64)
    return Normalization(
        data.channels, data.mean, data.std, data.leads_hours, tendency_std, variability
    )
