"""Opening one GRIB file through cfgrib, including an ensemble as the centre delivers it.

An ECMWF ENS file holds the control forecast (``dataType`` ``cf``, member ``number`` 0)
and the perturbed ones (``pf``, members 1..N) in one file. cfgrib cannot build one
dataset from two data types, so :func:`open_grib` opens each on its own and stacks them
on ``number``: the control stays member 0 and the dataset's attribute
:data:`pipeline.schema.CONTROL_MEMBER` records it, so that it can be dropped later
(:func:`pipeline.members.perturbed_members`). Any other mix cfgrib refuses (surface and
pressure-level fields in one file, say) is an :class:`~pipeline.errors.InputError` naming
the key whose values differ and how to split the file.

A file of one message (ECMWF's open data and operational analyses come so) has cfgrib's
``time``, ``step`` and ``valid_time`` as scalars; its valid time becomes a dimension of
size one, so that one such file, or a glob of them, reads as a time series. A file of
forecasts from several initial times, on cfgrib's (time, step), marks the cells that a
message holds (:data:`pipeline.normalize_time.HAS_MESSAGE`): the others are no times.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator
from itertools import islice
from pathlib import Path

import numpy as np
import xarray as xr

from pipeline.errors import InputError, time_text
from pipeline.normalize_time import HAS_MESSAGE, STEP
from pipeline.schema import CONTROL_MEMBER, TIME, VALID_TIME

log = logging.getLogger(__name__)

#: The member dimension cfgrib writes.
NUMBER = "number"


#: The dask chunks to split a decoded dataset into.
Chunking = Callable[[xr.Dataset], dict[str, int]]


def open_grib(path: Path, chunks: Chunking) -> xr.Dataset:
    """``path`` as one lazy dataset (cfgrib, no index file written beside the input),
    split into ``chunks(ds)``. cfgrib (and with it ecCodes' C library) is imported here,
    when a GRIB file is opened, not by every command that imports the sources."""
    from cfgrib.dataset import DatasetBuildError

    try:
        return _open(path, chunks, {})
    except DatasetBuildError as err:
        key, choices = (err.args[1], err.args[2]) if len(err.args) == 3 else (None, [])
        values = sorted({str(choice.get(key)) for choice in choices})
        if key == "dataType" and values == ["cf", "pf"]:
            return _control_and_perturbed(path, chunks)
        if "undef" in values and (which := _undecodable(path, key)) is not None:
            raise InputError(
                f"{path}: GRIB message {which} cannot be decoded by ecCodes ({key} undef): "
                "its header or data section is corrupt; download the file again"
            ) from err
        differ = f"they differ in {key} ({', '.join(values)})" if key else str(err).splitlines()[0]
        split = f"`grib_copy {path.name} 'part_[{key}].grib'`" if key else "`grib_copy`"
        if key is None and (between := _variables_differ(path, str(err))) is not None:
            differ, split = between, f"`grib_copy {path.name} 'part_[shortName].grib'`"
        raise InputError(
            f"{path}: holds GRIB messages that cfgrib cannot read as one dataset: {differ}; "
            f"split it into files of one kind each, e.g. with ecCodes {split}"
        ) from err


def _variables_differ(path: Path, reason: str) -> str | None:
    """``messages differ in time: 2019-03-01T00:00 (t2m) and 2019-03-02T00:00 (d2m)``
    where cfgrib refused to merge variables whose coordinate (or dimension) ``key``
    differs: its error is only text, quoting its internals (``key present and new value is
    different: key='time' value=Variable(...)``), so the key is read from it and the values
    from :func:`cfgrib.open_datasets`, which splits the file where they differ. None where
    either cannot be had (then cfgrib's reason is kept)."""
    import cfgrib

    found = re.match(r"key present and new value is different: key='(\w+)'", reason)
    if found is None:
        return None
    key = found.group(1)
    try:
        groups = cfgrib.open_datasets(path, backend_kwargs={"indexpath": ""}, cache=False)
    except Exception:  # a detail of an error message: cfgrib's reason will do
        return None
    seen = [
        f"{_values_text(ds[key])} ({', '.join(map(str, ds.data_vars))})"
        for ds in groups
        if key in ds.coords
    ]
    return f"messages differ in {key}: {' and '.join(seen)}" if len(seen) > 1 else None


def _values_text(da: xr.DataArray) -> str:
    """The values of a cfgrib coordinate as messages show them: times, steps in hours."""
    values = np.atleast_1d(da.values)
    if np.issubdtype(values.dtype, np.datetime64):
        shown = [time_text(v) for v in values]
    elif np.issubdtype(values.dtype, np.timedelta64):
        shown = [f"{v / np.timedelta64(1, 'h'):g} h" for v in values]
    else:
        shown = [f"{v:g}" if isinstance(v, float) else str(v) for v in values.tolist()]
    return ", ".join(shown) if len(shown) <= 4 else f"{shown[0]} to {shown[-1]} ({len(shown)})"


def _undecodable(path: Path, key: str) -> str | None:
    """``3 (at byte 6720, 3342 bytes)``: the number (from 1), byte offset and length of the
    first message of ``path`` whose ``key`` ecCodes reads as undef (a message it cannot
    decode), the offset and length from the messages' length fields
    (:func:`grib_messages`: ``dd`` cuts it out with them), or None."""
    import eccodes

    with path.open("rb") as f:
        number = 0
        while (handle := eccodes.codes_grib_new_from_file(f)) is not None:
            number += 1
            try:
                if eccodes.codes_get(handle, key, ktype=str) == "undef":
                    break
            except eccodes.KeyValueNotFoundError:
                break
            finally:
                eccodes.codes_release(handle)
        else:
            return None
    offset, length = next(islice(grib_messages(path), number - 1, None))
    return f"{number} (at byte {offset}, {length} bytes)"


def _open(path: Path, chunks: Chunking, filter_by_keys: dict[str, str]) -> xr.Dataset:
    ds = xr.open_dataset(
        path,
        engine="cfgrib",
        backend_kwargs={"indexpath": "", "errors": "raise", "filter_by_keys": filter_by_keys},
        cache=False,  # the lazy arrays are read by dask, chunk by chunk, not kept whole
    )
    if {TIME, STEP, VALID_TIME}.isdisjoint(ds.dims) and VALID_TIME in ds.coords:
        ds = ds.expand_dims(VALID_TIME)  # one message: the files of a glob combine along it
    if {TIME, STEP} <= set(ds.dims) and (cells := _cells_with_a_message(ds)) is not None:
        ds = ds.assign_coords({HAS_MESSAGE: cells})
    return ds.chunk(chunks(ds))


def _cells_with_a_message(ds: xr.Dataset) -> xr.DataArray | None:
    """(time, step): whether a message of ``ds`` (of any variable, member or level) holds
    the cell, from cfgrib's index of the messages (their headers, no values read); None
    where that index is not found (another cfgrib: every cell is then taken as held, and
    an empty one shows as NaNs, as before)."""
    cells = []
    for da in ds.data_vars.values():
        array = da.variable._data
        while not hasattr(array, "field_id_index"):  # xarray's lazy wrappers of cfgrib's
            array = getattr(array, "array", None)
            if array is None:
                log.warning(
                    "%s: cfgrib's message index not found; every cell taken as held",
                    ds.encoding.get("source", "a GRIB file"),
                )
                return None
        headers = da.dims[: da.ndim - array.geo_ndim]
        has = np.zeros([da.sizes[dim] for dim in headers], dtype=bool)
        has[tuple(np.array(list(array.field_id_index)).T)] = True
        cells.append(
            xr.DataArray(has, dims=headers).any([d for d in headers if d not in (TIME, STEP)])
        )
    return xr.concat(cells, "variable").any("variable")


def _control_and_perturbed(path: Path, chunks: Chunking) -> xr.Dataset:
    """The control (``cf``) and perturbed (``pf``) members of ``path`` stacked on ``number``."""
    control, perturbed = (
        _members(_open(path, chunks, {"dataType": kind})) for kind in ("cf", "pf")
    )
    if set(control.data_vars) != set(perturbed.data_vars):
        raise InputError(
            f"{path}: its control forecast holds {sorted(map(str, control.data_vars))} and its "
            f"perturbed forecasts {sorted(map(str, perturbed.data_vars))}; give a file in "
            "which both hold the same variables"
        )
    try:
        both = xr.concat(
            [control, perturbed], dim=NUMBER, coords="minimal", compat="override", join="exact"
        )
    except ValueError as err:
        raise InputError(
            f"{path}: its control and perturbed forecasts differ in steps, levels or grid "
            f"({err}); give a file in which both cover the same ones"
        ) from err
    return both.assign_attrs({CONTROL_MEMBER: int(control[NUMBER][0])})


def _members(ds: xr.Dataset) -> xr.Dataset:
    """``ds`` with ``number`` as a dimension (cfgrib makes a single member a scalar)."""
    return ds if NUMBER in ds.dims else ds.expand_dims(NUMBER)


def count_grib_messages(path: Path) -> int:
    """The number of GRIB messages of ``path``, walked by their length fields without
    decoding (:func:`grib_messages`)."""
    return sum(1 for _ in grib_messages(path))


def grib_messages(path: Path) -> Iterator[tuple[int, int]]:
    """The byte offset and length of each GRIB message of ``path``, walked by their length
    fields, without decoding.

    Each message starts with ``GRIB`` and its total length (GRIB 1: 3 bytes at offset 4;
    GRIB 2: 8 bytes at offset 8) and ends with ``7777``; zero padding may follow each
    message (ECMWF pads GRIB 1 messages). Raises :class:`InputError` for a file that is
    not GRIB or is truncated, once the walk reaches the fault.
    """
    size = path.stat().st_size
    count, offset = 0, 0
    with path.open("rb") as f:
        while offset < size:
            f.seek(offset)
            head = f.read(16)
            if count and head[:1] == b"\0":
                offset += len(head) - len(head.lstrip(b"\0"))
                continue  # padding between or after messages
            if head[:4] != b"GRIB":
                what = "is not a GRIB file" if count == 0 else f"has garbage after message {count}"
                raise InputError(
                    f"{path}: {what} (found {head[:4]!r} at byte {offset}, expected b'GRIB'); "
                    "check that it was downloaded as GRIB, not as NetCDF or an error page"
                )
            edition = head[7]
            length = int.from_bytes(head[4:7] if edition == 1 else head[8:16], "big")
            if offset + length > size:
                raise InputError(
                    f"{path}: GRIB message {count + 1} (at byte {offset}, {length} bytes) is "
                    f"truncated: the file ends at byte {size}, {offset + length - size} bytes "
                    "before it does; a file still being written (a feed's copy) reads so: "
                    "wait for it to be whole, else download the file again"
                )
            f.seek(offset + length - 4)
            if f.read(4) != b"7777":
                raise InputError(
                    f"{path}: GRIB message {count + 1} (at byte {offset}, {length} bytes) is "
                    "truncated or corrupt; download the file again"
                )
            if (bad := _sections_mismatch(f, offset, edition, length)) is not None:
                raise InputError(
                    f"{path}: GRIB message {count + 1} (at byte {offset}, {length} bytes) is "
                    f"corrupt: {bad}; download the file again"
                )
            yield offset, length
            count, offset = count + 1, offset + length


def _sections_mismatch(f, offset: int, edition: int, length: int) -> str | None:
    """Why the section lengths of the message at ``offset`` do not add up to its
    ``length`` (a damaged header or data section that the ``7777`` check misses), or None.
    Reads the sections' length fields only. GRIB 1 messages of ECMWF's large-message
    encoding (lengths of 2^23 bytes or more) are not checked."""
    end = offset + length - 4  # where 7777 starts
    if edition == 1:
        if length >= 0x800000:
            return None
        f.seek(offset + 8)
        pds = f.read(8)
        at, flags = offset + 8 + int.from_bytes(pds[:3], "big"), pds[7]
        for name, present in (("grid", flags & 0x80), ("bitmap", flags & 0x40), ("data", 1)):
            if present:
                f.seek(at)
                size = int.from_bytes(f.read(3), "big")
                if size == 0 or at + size > end:
                    return f"its {name} section ({size} bytes at byte {at}) overruns it"
                at += size
        return None if at == end else f"its sections end at byte {at}, its 7777 at {end}"
    at, number = offset + 16, 0
    while at < end:
        f.seek(at)
        head = f.read(5)
        size = int.from_bytes(head[:4], "big")
        if size < 5 or at + size > end or head[4] < 1 or head[4] > 7:
            return f"its section at byte {at} ({size} bytes, number {head[4]}) is damaged"
        at, number = at + size, head[4]
    return None if number == 7 else f"it ends with section {number}, not the data section 7"
