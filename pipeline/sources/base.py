"""The source interface: anything that opens as a lazy ``xarray.Dataset``.

A source returns its producer's own names and units; :mod:`pipeline.normalize` maps
them to the canonical schema. Each source kind registers itself by name in
:data:`SOURCES` (``@SOURCES.register("grib")``); :func:`pipeline.sources.resolve_source`
turns a CLI argument (a path, a glob, a URL or ``synthetic:...``) into a source without
any if/elif on strings.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

import xarray as xr

from pipeline.registry import Registry

SOURCES: Registry[type[Source]] = Registry("source")
"""Every source kind by name, in registration order: the order in which
:func:`pipeline.sources.resolve_source` asks them whether they read an input."""


class Source(ABC):
    """One input: files of one format, a store, or the synthetic model."""

    name: ClassVar[str]
    #: What this kind reads, in words ("a NetCDF (.nc/.nc4) path or glob"): listed, in
    #: registration order, where no kind reads an input. Empty: the name and the first
    #: line of the class's docstring are listed instead.
    reads: ClassVar[str] = ""

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
