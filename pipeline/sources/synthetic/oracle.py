"""The oracle of the synthetic source: the exact law of ``t2m`` at a lead given a state.

For the process of :mod:`pipeline.sources.synthetic.surface`, ``t2m`` k steps after a
state is Gaussian with mean ``clim(t + k) + rho^k S^k(t2m(t) - clim(t))`` and pointwise
std ``sigma sqrt(1 - rho^(2k))``: :func:`conditional_moments` returns both and
:func:`oracle_ensemble` draws members from that law, the best any generator can do.

The upper air (:mod:`pipeline.sources.synthetic.upper_air`) is a fixed affine function of
the wave states, whose law k steps ahead is Gaussian and exact;
:func:`upper_air_oracle_ensemble` projects the state's z and t on the known basis to get
its wave states, draws the states k steps ahead from that law and returns their balanced
fields: members in hypsometric and geostrophic balance exactly as the truth is.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from pipeline.errors import InputError
from pipeline.schema import INIT_TIME, LAT, LEAD_TIME, LEVEL, LON, MEMBER, TIME, variable_attrs
from pipeline.sources.synthetic.config import SyntheticConfig
from pipeline.sources.synthetic.surface import advect, climatology, correlated_noise, grid_coords
from pipeline.sources.synthetic.upper_air import (
    UPPER_AIR_VARIABLES,
    balanced_upper_air,
    draw_wave_states,
    project_states,
)


def lead_steps(lead: Any, config: SyntheticConfig) -> int:
    """The lead as a whole number k >= 0 of ``config.step``; InputError otherwise."""
    if isinstance(lead, int | float | np.number) and not isinstance(lead, np.timedelta64):
        raise InputError(
            f"lead={lead!r} has no unit; give a duration such as '24h' or pd.Timedelta(hours=24)"
        )
    try:
        duration = pd.Timedelta(lead)
    except (TypeError, ValueError) as err:
        raise InputError(f"lead={lead!r} is not a duration such as '24h'") from err
    steps, remainder = divmod(duration, config.step)
    if remainder != pd.Timedelta(0) or steps < 0:
        raise InputError(
            f"lead {duration} is not a non-negative whole multiple of the synthetic step "
            f"{config.step}; use e.g. {config.step * 4}"
        )
    return int(steps)


def conditional_moments(
    state: xr.DataArray | xr.Dataset, lead: Any, config: SyntheticConfig
) -> tuple[xr.DataArray, xr.DataArray]:
    """Exact mean and std of ``t2m`` at ``lead`` after ``state`` (Gaussian, see module doc).

    mean = clim(t + k) + rho^k S^k(t2m(t) - clim(t)),   std = sigma sqrt(1 - rho^(2k)).

    ``state``: ``t2m`` (or a dataset holding it) with dims ``([time,] latitude,
    longitude)`` on the config's grid and a ``time`` coordinate (the init time(s)).
    Returns two float64 DataArrays of that shape indexed by **valid** time, so they align
    with the truth: ``time`` = init + lead, with coords ``init_time(time)`` and
    ``lead_time``.
    """
    field, init, squeeze = _t2m_state(state, config)
    k = lead_steps(lead, config)
    valid = init + k * config.step
    anomaly = field - climatology(config, init)
    mean = climatology(config, valid) + config.rho**k * advect(anomaly, k, config)
    std = np.full_like(mean, config.sigma * np.sqrt(1.0 - config.rho ** (2 * k)))
    return (
        _valid_time_array(mean, init, valid, config, squeeze, "t2m_conditional_mean"),
        _valid_time_array(std, init, valid, config, squeeze, "t2m_conditional_std"),
    )


def oracle_ensemble(
    state: xr.DataArray | xr.Dataset,
    lead: Any,
    n_members: int,
    seed: int,
    config: SyntheticConfig,
) -> xr.DataArray:
    """``n_members`` draws of ``t2m`` at ``lead`` from its exact conditional law.

    Members are mean + std * eps with eps ~ N(0, C) independent per member and init time
    (C the spatial correlation of the process), so they share the truth's spatial
    structure as well as its pointwise law. Dims ``(member, [time,] latitude, longitude)``,
    float32, ``time`` the valid time as in :func:`conditional_moments`. Same seed, same
    members.
    """
    _check_members(n_members)
    mean, std = conditional_moments(state, lead, config)
    rng = np.random.default_rng(seed)
    eps = correlated_noise(rng, (n_members, *mean.shape[:-2]), config)
    members = (mean.values + std.values * eps).astype(np.float32)
    out = xr.DataArray(
        members,
        dims=(MEMBER, *mean.dims),
        coords=mean.coords,
        name="t2m",
        attrs=variable_attrs("t2m")
        | {"description": f"oracle ensemble of the synthetic t2m, seed {seed}"},
    )
    return out.assign_coords({MEMBER: np.arange(n_members)})


def upper_air_oracle_ensemble(
    state: xr.Dataset, lead: Any, n_members: int, seed: int, config: SyntheticConfig
) -> xr.Dataset:
    """``n_members`` draws of ``z, t, u, v`` at ``lead`` from the exact law of the waves.

    ``state``: a dataset with ``z`` and ``t`` (``([time,] level, latitude, longitude)``,
    the config's levels and grid) and a ``time`` coordinate (the init times). Its wave
    states c are recovered by projection (:func:`~.upper_air.project_states`); members are
    the balanced fields of draws of c k steps ahead, N(phi^k P^k c, sigma^2 (1 - phi^(2k))
    / 2 per real part), independent per member and init time. Dims ``(member, [time,]
    level, latitude, longitude)``, float32, ``time`` the valid time with coords
    ``init_time(time)`` and ``lead_time``. Same seed, same members.
    """
    _check_members(n_members)
    k = lead_steps(lead, config)
    missing = {"z", "t"} - set(state.data_vars)
    if missing or TIME not in state.coords:
        raise InputError(
            f"the upper-air state needs z, t and a time coordinate; it lacks "
            f"{sorted(missing) or ['time']}: pass the synthetic dataset at the init times"
        )
    scalar_time = TIME not in state.dims
    fields = state[["z", "t"]].expand_dims(TIME) if scalar_time else state[["z", "t"]]
    fields = fields.transpose(TIME, LEVEL, LAT, LON)
    if (
        [int(p) for p in fields[LEVEL].values] != list(config.levels)
        or fields.sizes[LAT] != config.n_lat
        or fields.sizes[LON] != config.n_lon
    ):
        raise InputError(
            f"the upper-air state (levels {fields[LEVEL].values.tolist()}, grid "
            f"{fields.sizes[LAT]}x{fields.sizes[LON]}) is not the config's (levels "
            f"{list(config.levels)}, {config.n_lat}x{config.n_lon}); pass the config the data "
            f"was made with"
        )
    states = project_states(config, fields["z"].values, fields["t"].values)
    draws = draw_wave_states(np.random.default_rng(seed), config, states, k, n_members)
    members = balanced_upper_air(config, draws)
    init = pd.DatetimeIndex(fields[TIME].values)
    valid = init + k * config.step
    coords = grid_coords(config) | {
        MEMBER: np.arange(n_members),
        TIME: valid,
        INIT_TIME: (TIME, init),
        LEAD_TIME: k * config.step,
        LEVEL: fields[LEVEL],
    }
    dims = (MEMBER, TIME, LEVEL, LAT, LON)
    out = xr.Dataset(
        {name: (dims, members[name], variable_attrs(name)) for name in UPPER_AIR_VARIABLES},
        coords=coords,
        attrs={"description": f"oracle ensemble of the synthetic upper air, seed {seed}"},
    )
    return out.squeeze(TIME) if scalar_time else out


def _check_members(n_members: int) -> None:
    if isinstance(n_members, bool) or not isinstance(n_members, int | np.integer) or n_members < 1:
        raise InputError(f"n_members={n_members!r} must be a positive integer")


def _as_t2m(state: xr.DataArray | xr.Dataset) -> xr.DataArray:
    if isinstance(state, xr.Dataset):
        if "t2m" not in state:
            raise InputError(
                f"the state has no t2m variable (it has {sorted(map(str, state.data_vars))}); "
                f"pass the synthetic dataset or its t2m"
            )
        return state["t2m"]
    return state


def _t2m_state(
    state: xr.DataArray | xr.Dataset, config: SyntheticConfig
) -> tuple[np.ndarray, pd.DatetimeIndex, bool]:
    """The state as float64 (time, lat, lon), its init times, and whether time was scalar."""
    field = _as_t2m(state)
    if TIME not in field.coords:
        raise InputError("the t2m state has no 'time' coordinate; the oracle needs the init time")
    extra = set(field.dims) - {TIME, LAT, LON}
    if extra or not {LAT, LON} <= set(field.dims):
        raise InputError(
            f"the t2m state has dims {field.dims}; expected ([time,] latitude, longitude)"
        )
    for name, expected in ((LAT, config.latitude), (LON, config.longitude)):
        got = field[name].values
        if got.shape != expected.shape or not np.allclose(got, expected, atol=1e-6):
            raise InputError(
                f"the t2m state's {name} ({got.size} points, {got.min():g}..{got.max():g}) is not "
                f"the config's grid ({expected.size} points, {expected[0]:g}..{expected[-1]:g} "
                f"ascending); pass the config the data was made with"
            )
    scalar_time = TIME not in field.dims
    if scalar_time:
        field = field.expand_dims(TIME)
    values = field.transpose(TIME, LAT, LON).values.astype(np.float64)
    if not np.isfinite(values).all():
        raise InputError("the t2m state has NaN or infinite values; the oracle needs a full field")
    return values, pd.DatetimeIndex(field[TIME].values), scalar_time


def _valid_time_array(
    values: np.ndarray,
    init: pd.DatetimeIndex,
    valid: pd.DatetimeIndex,
    config: SyntheticConfig,
    squeeze: bool,
    name: str,
) -> xr.DataArray:
    out = xr.DataArray(
        values,
        dims=(TIME, LAT, LON),
        coords=grid_coords(config)
        | {TIME: valid, INIT_TIME: (TIME, init), LEAD_TIME: valid[0] - init[0]},
        name=name,
        attrs=variable_attrs("t2m"),
    )
    return out.squeeze(TIME) if squeeze else out
