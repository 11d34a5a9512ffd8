"""Balanced upper air at forecast time: the members' z and t projected onto the hypsometric
relation and their winds made geostrophic, at every step of the rollout.

A network that predicts every channel on its own leaves each with its own error, so the
members' layers disagree with their temperatures and their winds with their heights far
more than the analysis does. :class:`UpperAirBalance` removes that, per grid point and
member, with fixed linear operators on the states in physical units:

- **hypsometric**: with x = (Phi_1..Phi_L, T_1..T_L) of the levels (bottom first) and the
  layer constraints ``A x = 0``,
  ``Phi_(l+1) - Phi_l - R_d (T_l + T_(l+1)) / 2 ln(p_l / p_(l+1)) = 0``, the smallest
  change in the metric of the channels' error scales ``w`` (one-step tendency std) that
  satisfies them: ``x' = x - W A^T (A W A^T)^-1 A x``, ``W = diag(w^2)`` (a weighted
  least-squares projection; Phi, T unchanged where already balanced);
- **geostrophic**: ``u = -1/(f R) dPhi/dphi``, ``v = 1/(f R cos phi) dPhi/dlambda`` of the
  projected Phi, fourth-order centred differences inside, second-order at the two rows
  and columns next to the edges (:func:`derivative`).

Given the state a step started from, the step's change of Phi and T is first freed of
grid-scale noise (:func:`shapiro_filter`): a network leaves its error at every scale,
the atmosphere has little power at two to three grid lengths, and there heights give
winds that depend on the difference scheme (members balanced under this one were
ageostrophic by another's far more than the analysis). Filtering the change, not the
state, leaves what the state already holds undamped however long the rollout.

Needs z and t on the same two or more levels on a regular latitude/longitude grid. The
winds (u and v on those levels) are made geostrophic only on latitudes of one hemisphere
away from the equator (:func:`pipeline.grid.balance_grid_problem`); on another grid (a
global one: f = 0 on the equator) they are kept as drawn, which is logged once (once a
block of :func:`grid_note_once`, where a command makes one operator a fold). Where the
longitudes close the circle, the filter and the differences wrap across the dateline, and the
filter goes on across a pole the grid holds or ends half a step from. Reference:
Holton & Hakim, *An Introduction to Dynamic Meteorology* (5th ed.), 1.6.2 and 3.2;
Fornberg (1988), Math. Comp. 51, for the difference weights; Shapiro (1970), Rev.
Geophys. 8, 359-387, for the filter.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar

import numpy as np
import torch

from pipeline.errors import InputError
from pipeline.grid import balance_grid_problem
from pipeline.schema import EARTH_RADIUS, OMEGA, R_DRY, split_channel
from verification.spectra import is_global

log = logging.getLogger(__name__)
_SAID: ContextVar[set[str] | None] = ContextVar("balance_grid_notes", default=None)


@contextmanager
def grid_note_once() -> Iterator[None]:
    """Within the block, each grid's note of winds kept as drawn (:class:`UpperAirBalance`)
    is said by the first operator made for it only: ``wxens calibrate --balance`` makes one
    operator per cross-validation fold, all on one grid, and said the same line a fold."""
    token = _SAID.set(set())
    try:
        yield
    finally:
        _SAID.reset(token)


def derivative(
    field: torch.Tensor, spacing: float, dim: int, periodic: bool = False
) -> torch.Tensor:
    """d field / d x along ``dim`` on a uniform grid of ``spacing``: fourth-order centred
    (8 (f[i+1] - f[i-1]) - (f[i+2] - f[i-2])) / 12 h inside (everywhere where ``periodic``,
    the axis closing on itself), second-order centred next to the edges and second-order
    one-sided at them (``n >= 5`` points)."""
    f = field.movedim(dim, -1)
    if f.shape[-1] < 5:
        raise InputError(f"a balanced derivative needs at least 5 grid points, got {f.shape[-1]}")
    if periodic:
        ahead = [torch.roll(f, -k, -1) - torch.roll(f, k, -1) for k in (1, 2)]
        return ((8 * ahead[0] - ahead[1]) / (12 * spacing)).movedim(-1, dim)
    out = torch.empty_like(f)
    out[..., 2:-2] = (8 * (f[..., 3:-1] - f[..., 1:-3]) - (f[..., 4:] - f[..., :-4])) / 12
    out[..., 1] = (f[..., 2] - f[..., 0]) / 2
    out[..., -2] = (f[..., -1] - f[..., -3]) / 2
    out[..., 0] = (-3 * f[..., 0] + 4 * f[..., 1] - f[..., 2]) / 2
    out[..., -1] = (3 * f[..., -1] - 4 * f[..., -2] + f[..., -3]) / 2
    return (out / spacing).movedim(-1, dim)


def second_difference(field: torch.Tensor, dim: int, periodic: bool = False) -> torch.Tensor:
    """``f[i+1] - 2 f[i] + f[i-1]`` along ``dim``: zero at its two edge points, or, where
    ``periodic``, taken across them (the last point's neighbour is the first)."""
    if periodic:
        return torch.roll(field, -1, dim) - 2 * field + torch.roll(field, 1, dim)
    f = field.movedim(dim, -1)
    out = torch.zeros_like(f)
    out[..., 1:-1] = f[..., 2:] - 2 * f[..., 1:-1] + f[..., :-2]
    return out.movedim(-1, dim)


def shapiro_filter(
    field: torch.Tensor, periodic_longitude: bool = False, poles: Poles = (None, None)
) -> torch.Tensor:
    """Second-order Shapiro filter over the last two dims (latitude, longitude): per
    direction ``f - d4 f / 16``, ``d4`` the second difference twice. Response to a wave of
    wavenumber k away from the edges ``1 - sin(k h / 2)**4`` per direction: a wave of two
    grid lengths removed, four kept at 0.75, eight at 0.979. Near the edges the second
    difference is taken as zero at the edge points; with ``periodic_longitude`` (longitudes
    closing the circle) it is taken across the dateline instead, and with ``poles``
    (:func:`across_poles`) across a pole, where the field goes on along the meridian half a
    circle round, so that the response holds there too and the field stays continuous."""
    field = field - _across_poles(_across_poles(field, poles), poles) / 16
    twice = second_difference(
        second_difference(field, -1, periodic_longitude), -1, periodic_longitude
    )
    return field - twice / 16


Poles = tuple[int | None, int | None]
"""Per latitude edge (south, north), the row whose values, half a circle round in
longitude, lie one step beyond that edge across the pole (:func:`across_poles`); None
where the edge is no pole's neighbour."""


def across_poles(latitude: np.ndarray, longitude: np.ndarray) -> Poles:
    """:data:`Poles` of a regular ascending grid: on one whose longitudes close the circle
    in an even number of columns, an edge row on a pole has row 1 (or -2) beyond it, an
    edge row half a step from it the edge row itself; elsewhere None (an edge)."""
    if not is_global(longitude) or longitude.size % 2:
        return None, None
    step = latitude[1] - latitude[0]
    beyond = {0.0: 1, 0.5: 0}  # the edge's distance to its pole, in steps

    def row(distance: float) -> int | None:
        return next((r for d, r in beyond.items() if abs(distance / step - d) < 1e-6), None)

    return row(latitude[0] + 90.0), row(90.0 - latitude[-1])


def _across_poles(field: torch.Tensor, poles: Poles) -> torch.Tensor:
    """:func:`second_difference` along latitude (dim -2) whose edge rows next to a pole
    (``poles``) take the row beyond it from across the pole: their ``beyond`` row's values
    half a circle round in longitude."""
    out = second_difference(field, -2)
    half = field.shape[-1] // 2
    for edge, inner, beyond in ((0, 1, poles[0]), (-1, -2, poles[1])):
        if beyond is not None:
            across = torch.roll(field[..., beyond if edge == 0 else -1 - beyond, :], half, -1)
            out[..., edge, :] = across - 2 * field[..., edge, :] + field[..., inner, :]
    return out


class UpperAirBalance:
    """The operator of the module docstring for states (..., C, H, W) of ``channels``.

    ``error_scale``: (C,) the channels' typical one-step errors in physical units (the
    projection's weights); ``latitude``, ``longitude``: the grid in degrees, uniform. On a
    grid where f vanishes (:func:`pipeline.grid.balance_grid_problem`) the winds are kept
    as drawn (``wind_index`` all None), which is logged once, here.
    """

    def __init__(
        self,
        channels: Sequence[str],
        error_scale: np.ndarray,
        latitude: np.ndarray,
        longitude: np.ndarray,
    ) -> None:
        named, levels = _balanced_levels(channels)
        self.z_index = [named["z", p] for p in levels]
        self.t_index = [named["t", p] for p in levels]
        self.wind_index = _tied_winds(named, levels, latitude)
        self.projection = torch.from_numpy(
            _hypsometric_projection(levels, np.asarray(error_scale)[self.z_index + self.t_index])
        ).float()
        self._grid(np.asarray(latitude, np.float64), np.asarray(longitude, np.float64))

    def _grid(self, latitude: np.ndarray, longitude: np.ndarray) -> None:
        for name, axis in (("latitude", latitude), ("longitude", longitude)):
            steps = np.diff(axis)
            if axis.size < 5 or not np.allclose(steps, steps[0], rtol=1e-4) or steps[0] <= 0:
                raise InputError(
                    f"balance needs a regular ascending {name} axis of 5 or more points; got "
                    f"{axis.size} points, steps {np.unique(np.round(steps, 6))[:4].tolist()}"
                )
        self.periodic = is_global(longitude)
        self.poles = across_poles(latitude, longitude)
        self.dphi = float(np.deg2rad(latitude[1] - latitude[0]))
        self.dlambda = float(np.deg2rad(longitude[1] - longitude[0]))
        self.factors: list[torch.Tensor] = []  # of u and v, where the winds are balanced
        problem = balance_grid_problem(latitude)
        if problem is not None:
            _say_winds_kept(problem)
            return
        phi = torch.from_numpy(np.deg2rad(latitude))[:, None]
        f = 2 * OMEGA * torch.sin(phi)
        self.factors = [
            (-1.0 / (f * EARTH_RADIUS)).float(),
            (1.0 / (f * EARTH_RADIUS * torch.cos(phi))).float(),
        ]

    def to(self, device: torch.device | str) -> UpperAirBalance:
        """This operator with its tensors on ``device`` (once, not at every call: a copy
        from the host at every rollout step would also wait for the device)."""
        self.projection = self.projection.to(device)
        self.factors = [factor.to(device) for factor in self.factors]
        return self

    def __call__(self, states: torch.Tensor, before: torch.Tensor | None = None) -> torch.Tensor:
        """Balanced copies of ``states`` (..., C, H, W) in physical units (the operator's
        tensors are moved to the states' device if :meth:`to` did not put them there);
        with ``before``, the states the step started from, the change of Phi and T since
        them filtered first (:func:`shapiro_filter`)."""
        out = states.clone()
        columns = self.z_index + self.t_index
        x = states[..., columns, :, :]
        if before is not None:
            start = before[..., columns, :, :]
            x = start + shapiro_filter(x - start, self.periodic, self.poles)
        projection = self.projection.to(states.device, states.dtype)
        out[..., columns, :, :] = torch.einsum("ij,...jhw->...ihw", projection, x)
        factors = [factor.to(states.device) for factor in self.factors]  # none: winds kept
        for z, wind in zip(self.z_index, self.wind_index, strict=True):
            if wind is None:
                continue
            phi_ = out[..., z, :, :]
            out[..., wind[0], :, :] = factors[0] * derivative(phi_, self.dphi, -2)
            out[..., wind[1], :, :] = factors[1] * derivative(phi_, self.dlambda, -1, self.periodic)
        return out


def _say_winds_kept(problem: str) -> None:
    """Log that the grid's ``problem`` keeps the winds as drawn, unless said already in this
    :func:`grid_note_once` block."""
    said = _SAID.get()
    if said is not None:
        if problem in said:
            return
        said.add(problem)
    log.warning(
        "balance: %s (f = 2 Omega sin(lat) vanishes at the equator), so u and v are "
        "kept as the network drew them; z and t are made hypsometric",
        problem,
    )


def _balanced_levels(channels: Sequence[str]) -> tuple[dict[tuple[str, int], int], list[int]]:
    """The channels' indexes by (variable, level), and the levels with both z and t,
    bottom first; InputError if fewer than two."""
    named = {}
    for i, channel in enumerate(channels):
        variable, level = split_channel(channel)
        if level is not None:
            named[variable, level] = i
    levels = sorted((p for (v, p) in named if v == "z" and ("t", p) in named), reverse=True)
    if len(levels) < 2:
        raise InputError(
            f"balance needs z and t on at least two common levels; the channels are "
            f"{list(channels)}"
        )
    return named, levels


def balanced_channels(
    channels: Sequence[str], latitude: Sequence[float] | np.ndarray
) -> tuple[int, ...]:
    """Indexes of the channels :class:`UpperAirBalance` ties together on a grid of
    ``latitude`` (z and t on their common levels, u and v where both are on one of them and
    the grid allows geostrophic winds); none when there is no such system. The relations
    are linear and homogeneous, so members that satisfy them still do after their
    deviations from a balanced mean are scaled by one common factor."""
    try:
        named, levels = _balanced_levels(channels)
    except InputError:
        return ()
    tied = [named[v, p] for p in levels for v in ("z", "t")]
    tied += [i for pair in _tied_winds(named, levels, latitude) if pair is not None for i in pair]
    return tuple(sorted(tied))


def _tied_winds(
    named: dict[tuple[str, int], int],
    levels: Sequence[int],
    latitude: Sequence[float] | np.ndarray,
) -> list[tuple[int, int] | None]:
    """Per level, the indexes of its u and v channels, or None where either is missing or
    where f vanishes on the grid of ``latitude`` (none then made geostrophic)."""
    geostrophic = balance_grid_problem(latitude) is None
    return [
        (named["u", p], named["v", p])
        if geostrophic and ("u", p) in named and ("v", p) in named
        else None
        for p in levels
    ]


def _hypsometric_projection(levels: Sequence[int], scale: np.ndarray) -> np.ndarray:
    """(2L, 2L) ``I - W A^T (A W A^T)^-1 A`` for x = (Phi bottom-up, T bottom-up)."""
    n = len(levels)
    a = np.zeros((n - 1, 2 * n))
    for layer in range(n - 1):
        half = 0.5 * R_DRY * np.log(levels[layer] / levels[layer + 1])
        a[layer, layer], a[layer, layer + 1] = -1.0, 1.0
        a[layer, n + layer] = a[layer, n + layer + 1] = -half
    w = np.diag(np.asarray(scale, np.float64) ** 2)
    return np.eye(2 * n) - w @ a.T @ np.linalg.solve(a @ w @ a.T, a)
