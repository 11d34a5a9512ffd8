"""The source interface: anything that opens as a lazy ``xarray.Dataset``.

A source returns its producer's own names and units; :mod:`pipeline.normalize` maps
them to the canonical schema. Sources register themselves by name in
:data:`SOURCES`; :func:`resolve_source` turns a CLI argument (a path, a glob, a URL
or ``synthetic:...``) into a source without any if/elif on strings.
"""

from __future__ import annotations

import functools
from abc import ABC, abstractmethod
from typing import ClassVar

import xarray as xr

from pipeline.errors import InputError

SOURCES: dict[str, type[Source]] = {}


def register_source(cls: type[Source]) -> type[Source]:
    """Class decorator: make ``cls`` resolvable by its ``name`` and ``claims``."""
    if cls.name in SOURCES:
        raise ValueError(f"source name {cls.name!r} registered twice")
    SOURCES[cls.name] = cls
    return cls


class Source(ABC):
    """One input: files of one format, a store, or the synthetic model."""

    name: ClassVar[str]

    @classmethod
    @abstractmethod
    def claims(cls, spec: str) -> bool:
        """Whether this source kind reads ``spec`` (a path, glob, URL or scheme)."""

    @classmethod
    @abstractmethod
    def from_spec(cls, spec: str) -> Source:
        """Build the source from the string a user typed."""

    @abstractmethod
    def open(self) -> xr.Dataset:
        """The data, lazily (dask-backed), in the producer's own names and units."""

    @property
    @abstractmethod
    def description(self) -> str:
        """Short text for provenance (``history``) and error messages."""


def resolve_source(spec: str | Source) -> Source:
    """A :class:`Source` for ``spec``; the first registered kind that claims it wins."""
    if isinstance(spec, Source):
        return spec
    _load_builtin_sources()
    for cls in SOURCES.values():
        if cls.claims(str(spec)):
            return cls.from_spec(str(spec))
    raise InputError(
        f"no source reads {spec!r}: give a GRIB (.grib/.grb/.grib2), NetCDF (.nc/.nc4), "
        f"Zarr (.zarr, or an fsspec URL such as gs://...zarr) path or glob, or 'synthetic'"
    )


@functools.cache
def _load_builtin_sources() -> None:
    """Import the built-in source modules once, so that they register."""
    import pipeline.sources.files  # noqa: F401
    import pipeline.synthetic  # noqa: F401
