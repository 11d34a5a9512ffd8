"""The ensemble's products for a forecaster, as ECMWF's ENS gives them: the ensemble mean
and spread, member quantiles and the probability of an event (``t2m < 273.15 K``: frost).

Each product is a numpy kernel over the member axis (last), wrapped once with
``xr.apply_ufunc(dask="parallelized")`` by :func:`over_members`, so it runs lazily on a
store bigger than memory (one chunk holds every member of a point). The coordinates other
than the member's (``init_time``, ``lead_time``, ``valid_time``, ``level``, latitude,
longitude) are kept, and each result is labelled with CF attributes: a probability's
``units`` are ``"1"`` and its ``long_name`` names the event. Where any member is NaN (a
masked field) every product is NaN: an ensemble with members missing is not the ensemble
the product describes.

Each kind of product is one :class:`Product` registered in :data:`PRODUCTS`: its
``fields(ensemble)`` maps a forecast dataset to the named fields it adds.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import xarray as xr

from pipeline.cf_export import COORDINATE_ATTRS
from pipeline.errors import InputError
from pipeline.normalize import difference_units
from pipeline.registry import Registry
from pipeline.schema import LEVEL, MEMBER, split_channel
from pipeline.standard_names import cf_names

QUANTILE = "quantile"
#: numpy's default (``method="linear"``, Hyndman & Fan 1996 type 7); see member_quantiles.
QUANTILE_METHOD = "linear"
#: The ``quantile`` coordinate's CF attributes: a fraction (0.1 for the 10th percentile).
QUANTILE_ATTRS = {"long_name": "quantile of the ensemble members", "units": "1"}


def over_members(
    kernel: Callable[..., np.ndarray],
    forecast: xr.DataArray,
    *,
    member_dim: str = MEMBER,
    new_dim: tuple[str, int] | None = None,
    **kwargs: Any,
) -> xr.DataArray:
    """``kernel(members, **kwargs)`` with ``member_dim`` moved last and reduced away (and
    ``new_dim``, ``(name, size)``, added last), lazily where ``forecast`` is dask-backed:
    the member dim is made one chunk, as a forecast store already holds it. The kernel
    computes in float64; its result is stored in the forecast's float dtype (float32 in a
    store: half the size, and the members' own precision)."""
    if member_dim not in forecast.dims:
        raise InputError(
            f"{forecast.name!r} has no member dim {member_dim!r} (its dims are "
            f"{list(forecast.dims)}); pass member_dim= or adapt the forecast with "
            "pipeline.adapters.to_wxens_forecast"
        )
    if forecast.chunks is not None:
        forecast = forecast.chunk({member_dim: -1})
    dtype = forecast.dtype if np.issubdtype(forecast.dtype, np.floating) else np.float64

    def in_dtype(members: np.ndarray, **kw: Any) -> np.ndarray:
        return kernel(members, **kw).astype(dtype, copy=False)

    out_dims = [new_dim[0]] if new_dim else []
    sizes = {"output_sizes": dict([new_dim])} if new_dim else {}
    return xr.apply_ufunc(
        in_dtype,
        forecast,
        input_core_dims=[[member_dim]],
        output_core_dims=[out_dims],
        dask="parallelized",
        output_dtypes=[dtype],
        dask_gufunc_kwargs=sizes,
        kwargs=kwargs,
    )


def _labelled(
    result: xr.DataArray, forecast: xr.DataArray, long_name: str, units: str | None, **attrs: str
) -> xr.DataArray:
    """``result`` with only CF attributes: ``long_name``, ``units`` (none where None) and
    ``attrs`` (cell_methods), not the forecast's that apply_ufunc carries along; and the
    forecast variable's standard name and height (:func:`~pipeline.standard_names.cf_names`:
    a mean of t2m is still air temperature at 2 m)."""
    out = result.rename(forecast.name).copy(deep=False)
    out.attrs = {"long_name": long_name, **({"units": units} if units else {}), **attrs}
    return cf_names(out, _channel(str(forecast.name))[0])


def ensemble_mean(forecast: xr.DataArray, *, member_dim: str = MEMBER) -> xr.DataArray:
    """Ensemble mean ``x̄ = Σ_i x_i / M`` over the M members, in float64.

    Shapes: ``(..., member, ...) -> (...)``; NaN where any member is NaN. Units: the
    forecast's. CF ``cell_methods: realization: mean``: a standard name names the axis (CF
    7.3.4), the member dim being reduced away (the IOOS checker wants a coordinate of it).
    """
    mean = over_members(np.mean, forecast, member_dim=member_dim, axis=-1, dtype=np.float64)
    return _labelled(
        mean,
        forecast,
        f"ensemble mean of {forecast.name}",
        forecast.attrs.get("units"),
        cell_methods="realization: mean",
    )


def ensemble_spread(forecast: xr.DataArray, *, member_dim: str = MEMBER) -> xr.DataArray:
    """Ensemble spread: the sample standard deviation with ``ddof=1``,
    ``s = sqrt(Σ_i (x_i - x̄)² / (M - 1))``, the unbiased variance's root, as the
    spread-skill ratio uses it (Fortin et al. 2014); NaN for one member.

    Shapes: ``(..., member, ...) -> (...)``; NaN where any member is NaN. Units: the
    forecast's, as a difference (:func:`pipeline.normalize.difference_units`: K for degC).
    """
    std = over_members(_sample_std, forecast, member_dim=member_dim)
    return _labelled(
        std,
        forecast,
        f"ensemble standard deviation (ddof=1) of {forecast.name}",
        difference_units(units) if (units := forecast.attrs.get("units")) else None,
        cell_methods="realization: standard_deviation",
    )


def _sample_std(members: np.ndarray) -> np.ndarray:
    """Standard deviation with ddof=1 over the last axis; NaN for a single member."""
    if members.shape[-1] < 2:
        return np.full(members.shape[:-1], np.nan)
    return members.astype(np.float64, copy=False).std(axis=-1, ddof=1)


def member_quantiles(
    forecast: xr.DataArray, q: Sequence[float] = (0.1, 0.5, 0.9), *, member_dim: str = MEMBER
) -> xr.DataArray:
    """Quantiles ``q`` (in [0, 1]) of the members, with a new last dim ``quantile``.

    Definition: numpy's default, ``np.quantile(method="linear")`` (Hyndman & Fan 1996,
    type 7): the sorted members ``x_(1) <= ... <= x_(M)`` at plotting positions
    ``(k - 1)/(M - 1)``, linearly interpolated; q = 0 and 1 are the extreme members and the
    median of an even ensemble is the mean of the middle two. Chosen because it is what
    xarray, numpy and pandas give a forecaster checking a product, and it never leaves the
    members' range (the fair plotting position ``k/(M + 1)`` must extrapolate beyond it).
    Shapes: ``(..., member, ...) -> (..., quantile)``; NaN where any member is NaN.
    """
    q = np.asarray(q, dtype=np.float64)
    if q.ndim != 1 or not len(q) or ((q < 0) | (q > 1)).any() or np.isnan(q).any():
        raise InputError(f"q= (--quantiles) {q.tolist()}: give quantiles in [0, 1], e.g. 0.1,0.5")
    out = over_members(_quantiles, forecast, member_dim=member_dim, new_dim=(QUANTILE, len(q)), q=q)
    return _labelled(
        out.assign_coords({QUANTILE: (QUANTILE, q, QUANTILE_ATTRS)}),
        forecast,
        f"quantiles of the ensemble members of {forecast.name} (linear interpolation)",
        forecast.attrs.get("units"),
    )


def _quantiles(members: np.ndarray, q: np.ndarray) -> np.ndarray:
    """``np.quantile`` over the last axis, the quantiles moved last: (..., M) -> (..., Q)."""
    values = np.quantile(members.astype(np.float64, copy=False), q, axis=-1, method="linear")
    return np.moveaxis(values, 0, -1)


def exceedance_probability(
    forecast: xr.DataArray,
    threshold: float,
    below: bool = False,
    *,
    member_dim: str = MEMBER,
    coordinate: str = "threshold",
) -> xr.DataArray:
    """Probability of the event ``x > threshold`` (``x < threshold`` where ``below``),
    strict, as the fraction of members beyond it: ``p = #{i : x_i > τ} / M``, the
    ensemble's own probability (Wilks 2019, section 8.4; the Brier score of
    :func:`verification.events.brier_score` scores the same ``p``).

    ``threshold`` is in the forecast's units. Shapes: ``(..., member, ...) -> (...)``,
    values in {0, 1/M, ..., 1}; NaN where any member is NaN (a masked field). Units ``"1"``;
    ``long_name`` names the event, ``"probability of t2m < 273.15 K"``; the threshold is
    kept exactly in ``threshold`` (``threshold_units``: the forecast's units) and the
    comparison in ``relative_to_threshold`` (``less_than``, ``greater_than``: IMPROVER's
    words), for a tool to read back rather than parse from the name or long_name. CF has
    no standard name for a probability; as its ``X_below_threshold`` names (and IMPROVER)
    do, the threshold is also the scalar coordinate ``coordinate`` of the variable's
    standard name and units, its ``spp__relative_to_threshold`` the comparison.
    """
    p = over_members(
        _fraction_beyond, forecast, member_dim=member_dim, threshold=threshold, below=below
    )
    units = forecast.attrs.get("units", "")
    event = f"{forecast.name} {'<' if below else '>'} {threshold:g} {units}".rstrip()
    out = _labelled(p, forecast, f"probability of {event}", "1")
    standard = out.attrs.pop("standard_name", None)
    relation = "less_than" if below else "greater_than"
    out.attrs["threshold"] = float(threshold)
    if units:
        out.attrs["threshold_units"] = units
    out.attrs["relative_to_threshold"] = relation
    said = {"standard_name": standard, "units": units or None}
    cf = {
        "long_name": f"threshold of {forecast.name}",
        **{key: value for key, value in said.items() if value},
        "spp__relative_to_threshold": relation,
    }
    out = out.assign_coords({coordinate: xr.Variable((), float(threshold), cf)})
    out.encoding["coordinates"] = f"{out.encoding['coordinates']} {coordinate}".strip()
    return out


def _fraction_beyond(members: np.ndarray, threshold: float, below: bool) -> np.ndarray:
    """Share of members strictly beyond ``threshold`` (over the last axis), NaN where any
    member is NaN."""
    beyond = members < threshold if below else members > threshold
    share = beyond.mean(axis=-1, dtype=np.float64)
    return np.where(np.isnan(members).any(axis=-1), np.nan, share)


class Product(ABC):
    """One kind of product: ``fields(ensemble)``, the named fields it adds to the products
    dataset from a forecast dataset in the wxens layout (a ``member`` dim)."""

    @abstractmethod
    def fields(self, ensemble: xr.Dataset) -> dict[str, xr.DataArray]: ...


PRODUCTS: Registry[type[Product]] = Registry("ensemble product")


@PRODUCTS.register("mean")
@dataclass(frozen=True)
class Mean(Product):
    """The ensemble mean of every variable, ``NAME_mean``."""

    def fields(self, ensemble: xr.Dataset) -> dict[str, xr.DataArray]:
        return {f"{n}_mean": ensemble_mean(da) for n, da in ensemble.data_vars.items()}


@PRODUCTS.register("spread")
@dataclass(frozen=True)
class Spread(Product):
    """The ensemble spread (ddof=1) of every variable, ``NAME_spread``."""

    def fields(self, ensemble: xr.Dataset) -> dict[str, xr.DataArray]:
        return {f"{n}_spread": ensemble_spread(da) for n, da in ensemble.data_vars.items()}


@PRODUCTS.register("quantiles")
@dataclass(frozen=True)
class Quantiles(Product):
    """Member quantiles ``q`` of every variable, ``NAME_quantiles`` with a ``quantile`` dim."""

    q: tuple[float, ...] = (0.1, 0.5, 0.9)

    def fields(self, ensemble: xr.Dataset) -> dict[str, xr.DataArray]:
        return {
            f"{n}_quantiles": member_quantiles(da, self.q) for n, da in ensemble.data_vars.items()
        }


@PRODUCTS.register("probability")
@dataclass(frozen=True)
class Probability(Product):
    """The probability of ``variable`` beyond ``threshold`` (its units), strictly above or
    ``below``: ``NAME_below_VALUE`` / ``NAME_above_VALUE``, VALUE a CF name's letters and
    digits (:func:`threshold_text`: ``t2m_below_273p15``, ``t2m_below_m1``). ``variable``
    is a variable of the ensemble or a channel of one on levels (``z500``)."""

    variable: str
    threshold: float
    below: bool = False

    def fields(self, ensemble: xr.Dataset) -> dict[str, xr.DataArray]:
        relation = "below" if self.below else "above"
        name = f"{self.variable}_{relation}_{threshold_text(self.threshold)}"
        da = field(ensemble, self.variable, level_coordinate=True)
        return {
            name: exceedance_probability(
                da, self.threshold, self.below, coordinate=f"{name}_threshold"
            )
        }


def threshold_text(threshold: float) -> str:
    """``threshold`` (``:g``, 6 significant digits) as a part of a CF name, which holds only
    letters, digits and underscores (CF 2.3; cdo and NCO expressions break on ``.`` and
    ``-``): ``273.15 -> "273p15"``, ``-1 -> "m1"``, ``1e-05 -> "1em05"``."""
    return f"{threshold:g}".replace(".", "p").replace("-", "m").replace("+", "")


def field(ensemble: xr.Dataset, variable: str, *, level_coordinate: bool = False) -> xr.DataArray:
    """The variable ``variable`` of ``ensemble``, or its channel (``z500``: z at 500 hPa,
    named ``z500``); InputError naming the variables the ensemble holds. A channel's level
    is dropped, or with ``level_coordinate`` kept as the scalar coordinate
    :func:`level_name` names, CF's air pressure (what says "at 500 hPa" in a file)."""
    from_channel = _channel(variable)
    if variable not in ensemble.data_vars and from_channel[0] in ensemble.data_vars:
        name, level = from_channel
        da = ensemble[name]
        if level is not None and LEVEL in da.dims and level in da[LEVEL].values:
            da = da.sel(level=level, drop=True).rename(variable)
            if level_coordinate:
                attrs = {**COORDINATE_ATTRS[LEVEL], **ensemble[LEVEL].attrs}
                da = da.assign_coords({level_name(level): xr.Variable((), level, attrs)})
            return da
    if variable in ensemble.data_vars:
        return ensemble[variable]
    raise InputError(
        f"the forecast holds no variable (or channel) {variable!r}; it holds "
        f"{sorted(map(str, ensemble.data_vars))} (a channel: variable and level, e.g. z500)"
    )


def level_name(level: int) -> str:
    """The name of the scalar coordinate of a channel's pressure level, ``level_500hPa``:
    not ``level``, the dim of the variable's own products (``z_mean``) in the same file."""
    return f"{LEVEL}_{level}hPa"


def _channel(name: str) -> tuple[str, int | None]:
    """``z500 -> ("z", 500)``; a name that is no channel stays whole."""
    try:
        return split_channel(name)
    except ValueError:
        return name, None
