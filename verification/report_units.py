"""The report in the units ``wxens verify --units`` asks for (``t2m=degC``, ``msl=hPa``), as
the printed scorecard is, so that a forecaster reads one unit in both; the scores file keeps
the store's units.

:func:`tree_in_units` converts what the report shows; :func:`relabel` then names the units
on the figures. The plots label each variable with the store's units (:func:`verification.
plots.channel_units`): the report draws the converted data with them and renames the unit on
the axes that show it, rather than threading units through every plot function.
"""

from __future__ import annotations

from collections.abc import Mapping

import xarray as xr
from matplotlib.figure import Figure

from pipeline.errors import InputError
from pipeline.schema import split_channel
from verification.config import VARIABLE
from verification.output import (
    POWER_UNITS,
    VARIABLE_UNITS,
    card_in_units,
    conversion,
    spectrum_units,
)
from verification.plots import channel_units
from verification.spectra import ZONAL_WAVENUMBER

#: ``{variable: (unit shown, factor)}`` of :func:`verification.output.unit_factors`: the
#: factor scales a difference (a CRPS, a spread) from the store's units to the unit shown.
Units = Mapping[str, tuple[str, float]]


def tree_in_units(tree: xr.DataTree, units: Units) -> xr.DataTree:
    """``tree`` with what the report shows in ``units`` (``tree`` itself where none): the
    scorecard's scores in the variable's units scaled by the factor (no offset: differences),
    the maps' fields converted in full (K to degC subtracts 273.15), the spectra's power
    scaled by the factor squared; ``variable_units`` and ``power_units`` say so."""
    if not units:
        return tree
    out = tree.copy()
    out["scorecard"] = _named(card_in_units(tree["scorecard"].to_dataset(), units), units)
    if "maps" in tree.children:
        out["maps"] = _named(_fields_in_units(tree["maps"].to_dataset(), units), units)
    if "spectra" in tree.children:
        out["spectra"] = _named(_power_in_units(tree["spectra"].to_dataset(), units), units)
    return out


def relabel(figure: Figure, units: Units) -> None:
    """Name the units shown on ``figure``: a panel titled with a converted channel (scores
    by lead, spectra) or a colour bar labelled with one (the member maps) reads the store's
    units in its y label's parentheses (``score (K)``, ``power (Pa²)``, ``t2m (K)``); they
    become the unit shown (``score (degC)``, ``power (hPa²)``, ``t2m (degC)``)."""
    for ax in figure.axes:
        label = ax.get_ylabel()
        channel = ax.get_title() or label.split(" (")[0]
        try:
            variable = split_channel(channel)[0]
        except ValueError:  # a map's panel ("t2m: truth"), a ratio's ("members / truth")
            continue
        held = channel_units(channel)
        if variable in units and held and f"({held}" in label:
            ax.set_ylabel(label.replace(f"({held}", f"({units[variable][0]}", 1))


def _shown(ds: xr.Dataset, units: Units) -> list[str]:
    """The unit each channel of ``ds`` is shown in: the one asked, else the store's."""
    held = ds[VARIABLE_UNITS].values
    return [
        units.get(split_channel(str(c))[0], (str(u), 1.0))[0]
        for c, u in zip(ds[VARIABLE].values, held, strict=True)
    ]


def _named(ds: xr.Dataset, units: Units) -> xr.Dataset:
    """``ds`` with its ``variable_units`` (and a spectrum's ``power_units``) those shown."""
    if VARIABLE_UNITS not in ds.coords:
        return ds
    shown = _shown(ds, units)
    named = {VARIABLE_UNITS: ds[VARIABLE_UNITS].copy(data=shown)}
    if POWER_UNITS in ds.coords:
        per_metre = ZONAL_WAVENUMBER in ds.dims
        power = [spectrum_units(u, per_metre) or "" for u in shown]
        named[POWER_UNITS] = ds[POWER_UNITS].copy(data=power)
    return ds.assign_coords(named)


def _along(ds: xr.Dataset, values: list[float]) -> xr.DataArray:
    return xr.DataArray(values, dims=VARIABLE, coords={VARIABLE: ds[VARIABLE]})


def _fields_in_units(maps: xr.Dataset, units: Units) -> xr.Dataset:
    """The maps' members and truth converted in full, offset included, into the units
    shown; an InputError where the table of conversions has none from the maps' units."""
    pairs = []
    for channel, held, shown in zip(
        maps[VARIABLE].values, maps[VARIABLE_UNITS].values, _shown(maps, units), strict=True
    ):
        pair = conversion(str(held), shown)
        if pair is None:
            raise InputError(
                f"units {channel}={shown}: the maps of {channel} are in {held!r}, which does "
                "not convert to it (pipeline.normalize.UNIT_CONVERSIONS)"
            )
        pairs.append(pair)
    scale, offset = (_along(maps, [p[i] for p in pairs]) for i in (0, 1))
    out = maps.copy()
    for name in ("forecast", "truth"):
        da = maps[name]
        out[name] = (da * scale + offset).astype(da.dtype).assign_attrs(da.attrs)
    return out


def _power_in_units(spectra: xr.Dataset, units: Units) -> xr.Dataset:
    """The spectra's member and truth power scaled by the square of each variable's factor
    (the power of a field in hPa is that of Pa / 100²); their ratio unchanged."""
    scale = _along(
        spectra,
        [units.get(split_channel(str(c))[0], ("", 1.0))[1] ** 2 for c in spectra[VARIABLE].values],
    )
    out = spectra.copy()
    for name in ("forecast_power", "truth_power"):
        da = spectra[name]
        out[name] = (da * scale).astype(da.dtype).assign_attrs(da.attrs)
    return out
