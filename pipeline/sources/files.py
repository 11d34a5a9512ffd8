"""File and store sources: GRIB (cfgrib), NetCDF (netCDF4/h5netcdf), Zarr (path or URL).

Each accepts one path, a glob, or (through :func:`pipeline.store.ingest`) many specs at
once; every file is checked before it is handed to its decoder, so a corrupt or
mislabelled file is named in the error instead of surfacing as a decoder traceback.
"""

from __future__ import annotations

import glob
import importlib.util
import math
import warnings
from abc import abstractmethod
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import xarray as xr
from xarray.backends import BackendArray
from xarray.core.indexing import LazilyIndexedArray

from pipeline.duplicate_times import check_unique_times
from pipeline.errors import InputError, refuse_dangling_link
from pipeline.grid import combine_on_one_grid
from pipeline.normalize import COORD_ALIASES
from pipeline.redact import redact
from pipeline.schema import HORIZONTAL, MEMBER_ALIASES
from pipeline.sources.base import SOURCES, Source
from pipeline.sources.grib import count_grib_messages, open_grib
from pipeline.sources.netcdf_header import check_netcdf_header
from pipeline.standard_names import coordinate_renames
from pipeline.timeaxis import check_one_axis
from pipeline.transaction import is_repository, open_dataset

#: The time-like dims producers use, along which a decoded file is split into dask chunks.
TIME_DIMS = ("time", "step", "valid_time")
#: Bytes of one such chunk: few chunks amortise the decoder's per-chunk cost (cfgrib
#: walks every message of the file for each), and a chunk still fits in memory (24 steps
#: of a 0.25° global field).
CHUNK_BYTES = 96 * 2**20


def expand_paths(spec: str, suffixes: tuple[str, ...]) -> list[Path]:
    """The files a path or glob names, sorted; an error if there are none. A path that
    exists is taken literally, even with glob characters (``[``, ``*``, ``?``) in its name."""
    if glob.has_magic(spec) and not Path(spec).exists():  # `era5 [v2].grib` is a name
        paths = sorted(Path(p) for p in glob.glob(spec))
        if not paths:
            raise InputError(
                f"the pattern {spec!r} matches no file; check the directory and pattern"
            )
    else:
        paths = [Path(spec)]
    for path in paths:
        refuse_dangling_link(path, InputError)
        if not path.exists():
            raise InputError(f"{path}: no such file or directory")
        if path.suffix.lower() not in suffixes and not path.is_dir():
            raise InputError(f"{path}: expected a file ending in {', '.join(suffixes)}")
    return paths


def _horizontal_dims(parts: list[xr.Dataset]) -> list[str]:
    """The dims that every one of ``parts`` (a producer's files) has and that
    :func:`pipeline.normalize.normalize` reads as latitude or longitude: by their name
    (``lat``, ``nav_lon``) or their CF ``standard_name``."""
    first = parts[0]
    by_standard_name = coordinate_renames(first)
    return [
        dim
        for dim in map(str, first.dims)
        if COORD_ALIASES.get(dim, by_standard_name.get(dim, dim)) in HORIZONTAL
        and all(dim in part.indexes for part in parts)
    ]


def _one_time_as_dim(ds: xr.Dataset) -> xr.Dataset:
    """A file of one time (a scalar ``valid_time`` or ``time``, no time-like dim) with that
    time as a dim of size one, so that the files of a glob combine along it (one such file
    alone is made so by :func:`pipeline.normalize_time.to_time_axis`)."""
    if set(TIME_DIMS).isdisjoint(ds.dims):
        for name in ("valid_time", "time"):
            if name in ds.coords and ds[name].ndim == 0 and ds[name].dtype.kind == "M":
                return ds.expand_dims(name)
    return ds


LEAD_NAMES = ("step", "forecast_period", "prediction_timedelta", "lead_time")
"""The producers' names of a forecast's lead (cfgrib, CF, WeatherBench 2, wxens)."""


def _holds_leads(ds: xr.Dataset) -> bool:
    """Whether ``ds`` holds forecasts at a lead (a lead coordinate not all zero): files of
    forecasts, whose initial times follow no one step (sub-seasonal starts on Mondays and
    Thursdays), as ``wxens verify`` opens a glob of them."""
    return any(
        name in ds.coords and bool((ds[name].values != np.zeros((), ds[name].dtype)).any())
        for name in LEAD_NAMES
    )


INIT_NAMES = ("time", "forecast_reference_time", "init_time")
"""The producers' names of a forecast's start (cfgrib, CF, wxens)."""


def _forecast_dims(parts: list[xr.Dataset]) -> list[xr.Dataset]:
    """Forecast files with their start, lead and member as dims wherever a file holds one
    as a scalar that is another's dim or differs between files: a file a start (a scalar
    ``time``), ECMWF's control beside the perturbed members (``number`` 0 against a dim
    1..50), a file a lead. Combined by coordinates, they then join along those dims."""
    expand = set()
    for name in (*INIT_NAMES, *LEAD_NAMES, *MEMBER_ALIASES):
        scalars = {p[name].values.item() for p in parts if name in p.coords and p[name].ndim == 0}
        if len(scalars) > 1 or (scalars and any(name in p.dims for p in parts)):
            expand.add(name)
    return [
        part.expand_dims([n for n in expand if n in part.coords and n not in part.dims])
        for part in parts
    ]


class FileSource(Source):
    """A source of one or more local files decoded by one xarray engine."""

    suffixes: ClassVar[tuple[str, ...]]

    def __init__(self, spec: str) -> None:
        self.spec = spec
        self.paths = expand_paths(spec, self.suffixes)

    @classmethod
    def claims(cls, spec: str) -> bool:
        return "://" not in spec and spec.lower().endswith(cls.suffixes)

    @classmethod
    def from_spec(cls, spec: str) -> FileSource:
        return cls(spec)

    @property
    def description(self) -> str:
        return redact(f"{self.name}:{self.spec}")

    def open(self) -> xr.Dataset:
        """The files as one dataset, in the producer's names: refused when they lie on two
        grids, else each on the first file's grid points (so that the outer join fills with
        NaN only what a file lacks, never a point). Analyses are refused where they give a
        variable one time twice or leave one time axis; files holding forecast leads
        (:func:`_holds_leads`: one a start, or the control and the perturbed members apart)
        share valid times and start when they do (Mondays and Thursdays), and are combined
        by start, lead and member (:func:`_forecast_dims`)."""
        parts = [self._open_checked(path) for path in self.paths]
        if len(parts) == 1:
            return parts[0]
        parts = [_one_time_as_dim(part) for part in parts]
        forecasts = any(map(_holds_leads, parts))
        if forecasts:
            parts = _forecast_dims(parts)
        labelled = list(zip(map(str, self.paths), parts, strict=True))
        if not forecasts:  # a time the target store holds may come twice: kept once
            labelled = check_unique_times(labelled, self.description)
            check_one_axis(labelled, self.description)
        return combine_on_one_grid(labelled, _horizontal_dims(parts), self.description)

    def _open_checked(self, path: Path) -> xr.Dataset:
        self.check(path)
        try:
            return self.decode(path)
        except InputError:
            raise
        except ValueError as err:
            if "decode time units" not in str(err):
                raise self._unreadable(path, err) from err
            raise InputError(  # a whole file, not a corrupt one: its time units
                f"{path}: its times cannot be decoded ({err}); months and years since a date "
                "are no fixed durations: give the time in days, hours or seconds since a date "
                "(CF units), e.g. with xarray's decode_times=False and a conversion"
            ) from err
        except Exception as err:  # the decoder's own error, re-raised naming the file
            raise self._unreadable(path, err) from err

    def _unreadable(self, path: Path, err: Exception) -> InputError:
        return InputError(
            f"{path}: cannot be read as {self.name} ({type(err).__name__}: {err}); "
            "the file may be truncated or corrupt: download it again"
        )

    def check(self, path: Path) -> None:
        """Cheap structural check before decoding (default: none)."""

    @abstractmethod
    def decode(self, path: Path) -> xr.Dataset:
        """Open one checked file lazily."""


@SOURCES.register("grib")
class GribSource(FileSource):
    """GRIB 1/2 through cfgrib (:func:`pipeline.sources.grib.open_grib`: nothing is written
    beside the input; an ensemble's control and perturbed members are read as one)."""

    name = "grib"
    reads = "a GRIB (.grib/.grb/.grib2) path or glob"
    suffixes = (".grib", ".grb", ".grib1", ".grib2", ".grb2")

    def check(self, path: Path) -> None:
        count_grib_messages(path)

    def decode(self, path: Path) -> xr.Dataset:
        return open_grib(path, stored_time_chunks)


@SOURCES.register("netcdf")
class NetcdfSource(FileSource):
    """NetCDF 3/4 through netCDF4 (h5netcdf, when installed, for NetCDF-4 files netCDF4
    cannot open). A file that neither opens is named as corrupt or truncated, with the
    decoder's own reason."""

    name = "netcdf"
    reads = "a NetCDF (.nc/.nc4) path or glob"
    suffixes = (".nc", ".nc4", ".netcdf", ".cdf")

    def check(self, path: Path) -> None:
        check_netcdf_header(path)

    def decode(self, path: Path) -> xr.Dataset:
        with warnings.catch_warnings():  # years out of range: refused by name at normalize
            warnings.filterwarnings("ignore", "Unable to decode time axis into full numpy")
            try:
                ds = xr.open_dataset(path, engine="netcdf4", cache=False)
            except OSError as err:
                ds = None
                if importlib.util.find_spec("h5py") is not None:  # h5netcdf's own reader
                    try:
                        ds = xr.open_dataset(path, engine="h5netcdf", cache=False)
                    except Exception:  # noqa: S110 (netCDF4's reason is the one to report)
                        pass
                if ds is None:
                    raise InputError(_unreadable_netcdf(path, err.strerror or str(err))) from err
        for name, variable in ds.variables.items():
            if name not in ds.indexes:  # read later, block by block: a corrupt one is named
                variable.data = LazilyIndexedArray(_NamedReads(variable._data, path))
        return ds.chunk(stored_time_chunks(ds))


def stored_time_chunks(ds: xr.Dataset) -> dict[str, int]:
    """Dask chunks along the time-like dims of a decoded file: about :data:`CHUNK_BYTES`
    of its largest variable, but a whole number of the chunks the file stores (the lowest
    common multiple of its data variables' chunks), so that no stored chunk, which is
    decompressed whole, is read again for a second dask chunk."""
    out = {}
    for dim in TIME_DIMS:
        having = [var for var in ds.data_vars.values() if dim in var.dims]
        if not having:
            continue
        per_step = max(var.nbytes // max(var.sizes[dim], 1) for var in having)
        stored = {var.encoding.get("preferred_chunks", {}).get(dim) for var in having} - {None}
        unit = math.lcm(*stored) if stored else 1
        out[dim] = unit * max(1, CHUNK_BYTES // max(per_step, 1) // unit)
    return out


def _unreadable_netcdf(path: Path, reason: str) -> str:
    return f"{path}: cannot be read as NetCDF ({reason}) (corrupt or truncated?); download it again"


class _NamedReads(BackendArray):
    """A decoder's lazy array whose read errors (a corrupt compressed chunk surfaces as a
    ``RuntimeError`` only when read) become an :class:`InputError` naming the file; the
    original stays the cause, so a transient one is still retried."""

    def __init__(self, array: Any, path: Path) -> None:
        self.array, self.path = array, path
        self.shape, self.dtype = array.shape, array.dtype

    def __getitem__(self, key: Any) -> np.ndarray:
        try:
            return np.asarray(self.array[key])
        except (RuntimeError, OSError) as err:
            raise InputError(_unreadable_netcdf(self.path, str(err))) from err


@SOURCES.register("zarr")
class ZarrSource(Source):
    """A Zarr store (v2 or v3) from a local path or any fsspec URL (``gs://``, ``s3://``,
    ``https://``), e.g. a WeatherBench 2 or ARCO ERA5 store; storage options such as
    ``token="anon"`` pass through ``storage_options``."""

    name = "zarr"
    reads = "a Zarr path (.zarr) or fsspec URL (gs://...zarr)"

    def __init__(self, spec: str, storage_options: dict | None = None) -> None:
        self.spec = spec
        self.storage_options = storage_options or {}

    @classmethod
    def claims(cls, spec: str) -> bool:
        return spec.rstrip("/").lower().endswith(".zarr") or spec.startswith(
            ("gs://", "gcs://", "s3://", "az://", "abfs://", "https://", "http://", "memory://")
        )

    @classmethod
    def from_spec(cls, spec: str) -> ZarrSource:
        return cls(spec)

    @property
    def description(self) -> str:
        """``zarr:`` and the path or URL, credentials in the URL replaced by ``***``."""
        return redact(f"zarr:{self.spec}")

    def open(self) -> xr.Dataset:
        if "://" not in self.spec and not Path(self.spec).exists():
            raise InputError(f"{redact(self.spec)}: no such Zarr store")
        if "://" not in self.spec and is_repository(self.spec):
            return open_dataset(self.spec)  # a wxens store: its last commit
        try:
            with warnings.catch_warnings():
                # Stores without consolidated metadata (wxens's own) open just as well.
                warnings.filterwarnings("ignore", "Failed to open Zarr store with consolidated")
                return xr.open_zarr(self.spec, storage_options=self.storage_options or None)
        except Exception as err:
            raise InputError(
                redact(
                    f"{self.spec}: cannot be opened as a Zarr store ({type(err).__name__}: "
                    f"{err}); check the path or URL (and credentials for cloud buckets)"
                )
            ) from err
