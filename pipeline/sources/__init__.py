"""Sources: GRIB, NetCDF and Zarr files or stores, and the synthetic model.

Importing this package registers every built-in source kind in :data:`SOURCES` (the
imports below); :func:`resolve_source` picks the kind that reads what a user typed. A new
kind is one :class:`Source` subclass registered with ``@SOURCES.register(name)`` in a module
imported here. :func:`adjust_sources` resolves several and reads them with the user's
:class:`Adjustments` (renamed variables, declared units, one selected member).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from pipeline.errors import InputError
from pipeline.redact import redact
from pipeline.sources.adjusted import AdjustedSource, Adjustments
from pipeline.sources.base import SOURCES, Source
from pipeline.sources.files import GribSource, NetcdfSource, ZarrSource
from pipeline.sources.synthetic import SyntheticSource

__all__ = [
    "SOURCES",
    "AdjustedSource",
    "Adjustments",
    "GribSource",
    "NetcdfSource",
    "Source",
    "SyntheticSource",
    "ZarrSource",
    "adjust_sources",
    "resolve_source",
    "source_kind",
]


def resolve_source(spec: str | Source) -> Source:
    """A :class:`Source` for ``spec``; the first registered kind that claims it wins."""
    if isinstance(spec, Source):
        return spec
    return source_kind(str(spec)).from_spec(str(spec))


def source_kind(spec: str) -> type[Source]:
    """The first registered kind that claims ``spec``, by its text alone (nothing opened,
    no glob expanded): an :class:`InputError` listing what each kind reads (an installed
    extension's too, after the built-ins) where none does."""
    for cls in SOURCES.values():
        if cls.claims(spec):
            return cls
    kinds = [_reads(name, cls) for name, cls in SOURCES.items()]
    raise InputError(
        f"no source reads {redact(str(spec))!r}: give {', '.join(kinds[:-1])}, or {kinds[-1]}"
    )


def _reads(name: str, cls: type[Source]) -> str:
    """What the kind ``name`` reads, in words: its :attr:`Source.reads`, else (an
    extension's kind that does not say) its name and its docstring's first line."""
    if cls.reads:
        return cls.reads
    doc = (cls.__doc__ or "").strip().splitlines()
    return f"a {name} input" + (f" ({doc[0].rstrip('.')})" if doc else "")


def adjust_sources(
    sources: Sequence[str | Path | Source], adjustments: Adjustments
) -> list[Source]:
    """``sources`` resolved, each read with ``adjustments`` (without any: returned unopened).

    Every source is opened (lazily) here, so that an adjustment naming nothing in any of
    them (a misspelt variable or dimension) is an :class:`InputError` listing what the
    first one has; an adjustment may name what only some of the sources hold.
    """
    resolved = [resolve_source(s if isinstance(s, Source) else str(s)) for s in sources]
    if not adjustments:
        return resolved
    adjusted = [AdjustedSource(source, adjustments) for source in resolved]
    used = set().union(*(source.used() for source in adjusted))
    for what, key in adjustments.named():
        if (what, key) in used:
            continue
        first = adjusted[0].source
        where = "it has no" if len(adjusted) == 1 else "none of the inputs has a"
        if what == "units":
            raise InputError(
                f"{first.description}: units= (--units {key}=...): "
                + _units_refusal(adjustments, resolved, key, where)
            )
        ds = first.open()
        kind, has = ("dimension", ds.dims) if what == "select" else ("variable", ds.variables)
        raise InputError(
            f"{first.description}: {what}= (--{what} {key}=...): {where} {kind} {key!r} (its "
            f"{kind}s are {sorted(map(str, has))}); check the spelling"
        )
    return adjusted


def _units_refusal(
    adjustments: Adjustments, sources: Sequence[Source], key: str, where: str
) -> str:
    """Why ``--units key`` names no variable of any of ``sources``, and the names that
    ``--units`` takes in each (sources that take the same names, as the files of one glob
    do, named once, their first and a count of the others)."""
    opened = [(source.description, source.open()) for source in sources]
    for origin, ds in opened:
        several = adjustments.units_names(ds, origin, key)
        if len(several) > 1:
            inside = f" in {origin}" if len(opened) > 1 else ""
            return f"{key!r} is the canonical name of {several}{inside}: name one of them"
    takes: dict[tuple[str, ...], list[str]] = {}
    for origin, ds in opened:
        takes.setdefault(tuple(adjustments.units_names(ds, origin)), []).append(origin)
    listed = ", ".join(
        f"{list(names)}" + (f" in {_first_and_more(origins)}" if len(opened) > 1 else "")
        for names, origins in takes.items()
    )
    return (
        f"{where} variable {key!r} (units= takes {listed}: a variable's name in the file, "
        "its rename= target, or the canonical name that one variable is read as); check "
        "the spelling"
    )


def _first_and_more(origins: Sequence[str]) -> str:
    """``a.nc``, or ``a.nc and 2 more alike``."""
    return origins[0] + (f" and {len(origins) - 1} more alike" if len(origins) > 1 else "")
