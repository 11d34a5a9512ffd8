"""Sources read with the user's corrections: renamed variables, declared units, one member.

A file from another centre may need a word from its user before wxens can read it: a
variable whose name and attributes match nothing wxens knows (``rename={"Tair": "t2m"}``,
``--rename Tair=t2m``), a variable without a ``units`` attribute (``units={"slp": "hPa"}``,
``--units slp=hPa``), or one member of an ensemble file (``select={"number": 3}``,
``--select number=3``). :class:`Adjustments` holds them; :class:`AdjustedSource` applies
them to a source's dataset, in the producer's own names, before
:func:`pipeline.normalize.normalize` maps it onto the canonical schema;
:func:`pipeline.sources.adjust_sources` wraps several sources and refuses an adjustment
that names nothing in any of them (so a typo is an error, not a silent no-op).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import xarray as xr

from pipeline.duplicate_times import dropped_apart, note_dropped
from pipeline.errors import InputError
from pipeline.normalize import COORD_ALIASES, SOURCE_NAME, canonical_names
from pipeline.schema import HORIZONTAL, LEVEL, TIME, VARIABLES
from pipeline.sources.base import Source
from pipeline.sources.files import LEAD_NAMES
from pipeline.spec import split_pair
from pipeline.variable_aliases import VARIABLE_ALIASES

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Adjustments:
    """Corrections applied to a source's own dataset, in this order:

    select: dimension -> the label of the one index to keep (``{"number": 3}``); a dimension
            without coordinate values takes a position.
    units:  variable -> its units, set (or replaced) before conversion (``{"slp": "hPa"}``);
            the variable by its name in the file, its ``rename`` target, or the canonical
            name that one variable is read as (``t2m`` for ``2m_temperature``).
    rename: name in the file -> new name (``{"Tair": "t2m"}``), variables or coordinates.
    """

    rename: Mapping[str, str] = field(default_factory=dict)
    units: Mapping[str, str] = field(default_factory=dict)
    select: Mapping[str, object] = field(default_factory=dict)

    @classmethod
    def parse(
        cls, rename: Iterable[str] = (), units: Iterable[str] = (), select: Iterable[str] = ()
    ) -> Adjustments:
        """From ``OLD=NEW``, ``VAR=UNITS`` and ``DIM=VALUE`` items as typed on the command
        line; a malformed or repeated item is an :class:`InputError`."""
        return cls(
            rename=_pairs(rename, "--rename", "OLD=NEW"),
            units=_pairs(units, "--units", "VAR=UNITS"),
            select=_pairs(select, "--select", "DIM=VALUE"),
        )

    def __bool__(self) -> bool:
        return bool(self.rename or self.units or self.select)

    def describe(self) -> str:
        """``units slp=hPa; rename Tair=t2m``: for provenance and messages."""
        return "; ".join(
            f"{what} " + ",".join(f"{k}={v}" for k, v in items.items())
            for what, items in self._options()
            if items
        )

    def apply(self, ds: xr.Dataset, origin: str) -> tuple[xr.Dataset, set[tuple[str, str]]]:
        """``ds`` adjusted, and the ``(option, key)`` pairs that named something in it."""
        used: set[tuple[str, str]] = set()
        for dim, value in self.select.items():
            if dim in ds.dims or dim in ds.coords:
                ds = _select_one(ds, dim, value, origin)
                used.add(("select", dim))
        renames = {old: new for old, new in self.rename.items() if old in ds.variables}
        for old, new in renames.items():
            if old in ds.data_vars:
                _check_rename_target(old, new, origin)
            if new in ds.variables and new not in renames:
                raise InputError(
                    f"{origin}: rename= (--rename {old}={new}): it already has a variable {new!r}; "
                    f"rename that one too ({new}=OTHER) or choose another name"
                )
            used.add(("rename", old))
        for name, units in self.units.items():
            named = self.units_names(ds, origin, name)
            if len(named) != 1:
                continue
            target = named[0]
            if ds[target].attrs.get("units", units) != units:
                log.info(
                    "%s: %s%s in %s, not %r as its file says",
                    origin,
                    target,
                    "" if name == target else f" (--units {name})",
                    units,
                    ds[target].attrs["units"],
                )
            ds = ds.assign({target: ds[target].assign_attrs(units=units)})
            used.add(("units", name))
        for old in renames:
            if old in ds.data_vars:
                source = ds[old].attrs.get(SOURCE_NAME, old)
                ds = ds.assign({old: ds[old].assign_attrs({SOURCE_NAME: source})})
        return ds.rename(renames), used

    def units_names(self, ds: xr.Dataset, origin: str, name: str | None = None) -> list[str]:
        """The variables of ``ds`` (selected, not yet renamed) that ``--units name`` names: the
        one of that name, else the one that ``--rename`` names so, else those read as that
        canonical name (:func:`pipeline.normalize.canonical_names`), which may be several.
        Without ``name``, every name that names exactly one, for a refusal to list."""
        old_name = {new: old for old, new in self.rename.items() if old in ds.data_vars}
        if name in ds.data_vars or name in old_name:
            return [old_name.get(name, name)]
        renamed = ds.rename({old: new for old, new in self.rename.items() if old in ds.variables})
        by_canonical: dict[str, list[str]] = {}
        for read, canonical in canonical_names(renamed, origin).items():
            by_canonical.setdefault(canonical, []).append(old_name.get(read, read))
        if name is not None:
            return by_canonical.get(name, [])
        one = {canonical for canonical, names in by_canonical.items() if len(names) == 1}
        return sorted({*map(str, ds.data_vars), *old_name, *one})

    def named(self) -> list[tuple[str, str]]:
        """Every ``(option, key)`` pair, in the order they are applied."""
        return [(what, key) for what, items in self._options() for key in items]

    def _options(self) -> tuple[tuple[str, Mapping[str, object]], ...]:
        return (("select", self.select), ("units", self.units), ("rename", self.rename))


class AdjustedSource(Source):
    """A source whose dataset is read with :class:`Adjustments` applied. Built by
    :func:`pipeline.sources.adjust_sources` (or directly, for one source); not a source kind
    of its own, so it claims nothing typed on a command line."""

    name = "adjusted"

    def __init__(self, source: Source, adjustments: Adjustments) -> None:
        self.source, self.adjustments = source, adjustments
        #: The adjusted dataset, the pairs used, and the later copies of times the store
        #: holds that the source dropped among its files (in its producer's names).
        self._opened: (
            tuple[xr.Dataset, set[tuple[str, str]], list[tuple[str, xr.Dataset]]] | None
        ) = None

    @classmethod
    def claims(cls, spec: str) -> bool:
        return False

    @classmethod
    def from_spec(cls, spec: str) -> AdjustedSource:
        raise InputError(f"{spec!r}: an adjusted source is built from a source, not typed")

    @property
    def description(self) -> str:
        return f"{self.source.description} [{self.adjustments.describe()}]"

    def open(self) -> xr.Dataset:
        """The source's dataset adjusted (opened once, then reused); each call passes on
        the copies its files' opening dropped (:func:`pipeline.duplicate_times.note_dropped`)
        as a fresh open would, so a reused open is still compared with the store."""
        ds, _, dropped = self._open()
        for label, copy in dropped:
            note_dropped(label, copy)
        return ds

    def used(self) -> set[tuple[str, str]]:
        """The ``(option, key)`` pairs that named something in this source."""
        return self._open()[1]

    def _open(self) -> tuple[xr.Dataset, set[tuple[str, str]], list[tuple[str, xr.Dataset]]]:
        if self._opened is None:
            with dropped_apart() as dropped:  # kept for every open, not only this one
                ds = self.source.open()
            self._opened = (*self.adjustments.apply(ds, self.source.description), dropped)
        return self._opened


def _check_rename_target(old: str, new: str, origin: str) -> None:
    """Refuse ``--rename old=new`` of a data variable where ``new`` is neither a canonical
    name nor a producer's name of one (nor a coordinate's, for a latitude stored as a data
    variable): a store holds canonical names only, and the variable's standard_name or
    long_name, still read after the rename, stored it under another name in silence."""
    coordinates = {*COORD_ALIASES, *COORD_ALIASES.values(), TIME, LEVEL, *HORIZONTAL}
    if new in VARIABLES or new in VARIABLE_ALIASES or new in coordinates:
        return
    surface = ", ".join(name for name, v in VARIABLES.items() if not v.upper_air)
    upper_air = ", ".join(name for name, v in VARIABLES.items() if v.upper_air)
    raise InputError(
        f"{origin}: rename= (--rename {old}={new}): {new!r} is no canonical name, and a store "
        f"holds those only; read {old!r} as one of them: surface {surface}; on pressure "
        f"levels {upper_air} (or as a producer's name of one, such as 2m_temperature)"
    )


def _pairs(items: Iterable[str], what: str, form: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        key, value = split_pair(item, what=what, form=form)
        if key in out:
            raise InputError(f"{what}: {key!r} is given twice")
        out[key] = value
    return out


def _select_one(ds: xr.Dataset, dim: str, value: object, origin: str) -> xr.Dataset:
    """``ds`` at the one index of ``dim`` labelled ``value`` (a position when ``dim`` has
    no coordinate values), the dimension and its coordinate dropped, except a pressure
    level's, kept as the one level of the fields, and a lead's, which dates them. A scalar
    coordinate ``dim`` (a file of one member) must hold ``value`` itself."""
    if dim in ds.dims and dim not in ds.indexes:
        position = _label(xr.DataArray(np.arange(ds.sizes[dim])), value, dim, origin)
        if not 0 <= position < ds.sizes[dim]:
            raise InputError(
                f"{origin}: select= (--select {dim}={value}): {dim} has positions "
                f"0..{ds.sizes[dim] - 1}"
            )
        return ds.isel({dim: position})
    labels = pd.Index(np.atleast_1d(ds[dim].values))
    label = _label(ds[dim], value, dim, origin)
    if label not in labels:
        shown = ", ".join(str(v) for v in labels[:10]) + (" ..." if len(labels) > 10 else "")
        raise InputError(
            f"{origin}: select= (--select {dim}={value}): no such {dim}; it has {shown}"
        )
    selected = ds.sel({dim: label}) if dim in ds.dims else ds
    if COORD_ALIASES.get(dim, dim) == LEVEL:  # kept as the field's one level: z500, not z
        return selected
    if dim in LEAD_NAMES:  # kept: the fields are valid at their start plus it
        return selected
    return selected.drop_vars(dim)


def _label(coord: xr.DataArray, value: object, dim: str, origin: str) -> object:
    """``value`` (text as typed, or a Python value) as a label of ``coord``'s type."""
    kind = coord.dtype.kind
    try:
        if kind in "iu":
            number = float(value)
            if not number.is_integer():
                raise ValueError("not a whole number")
            return int(number)
        if kind == "f":
            return float(value)
        if kind == "M":
            return pd.Timestamp(value)
        if kind == "m":
            return pd.Timedelta(value)
    except (TypeError, ValueError) as err:
        raise InputError(
            f"{origin}: select= (--select {dim}={value}): {dim} holds {coord.dtype} values ({err})"
        ) from err
    return value
