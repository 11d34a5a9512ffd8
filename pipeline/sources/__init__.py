"""Sources: GRIB, NetCDF and Zarr files or stores, and the synthetic model.

Importing this package registers every built-in source kind in :data:`SOURCES` (the
imports below); :func:`resolve_source` picks the kind that reads what a user typed. A new
kind is one :class:`Source` subclass registered with ``@SOURCES.register(name)`` in a module
imported here.
"""

from __future__ import annotations

from pipeline.errors import InputError
from pipeline.redact import redact
from pipeline.sources.base import SOURCES, Source
from pipeline.sources.files import GribSource, NetcdfSource, ZarrSource
from pipeline.sources.synthetic import SyntheticSource

__all__ = [
    "SOURCES",
    "GribSource",
    "NetcdfSource",
    "Source",
    "SyntheticSource",
    "ZarrSource",
    "resolve_source",
]


def resolve_source(spec: str | Source) -> Source:
    """A :class:`Source` for ``spec``; the first registered kind that claims it wins."""
    if isinstance(spec, Source):
        return spec
    for cls in SOURCES.values():
        if cls.claims(str(spec)):
            return cls.from_spec(str(spec))
    raise InputError(
        f"no source reads {redact(str(spec))!r}: give a GRIB (.grib/.grb/.grib2), NetCDF (.nc/.nc4), "
        f"Zarr (.zarr, or an fsspec URL such as gs://...zarr) path or glob, or 'synthetic'"
    )
