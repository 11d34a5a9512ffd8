"""The check of a NetCDF file's header before it is decoded (:func:`check_netcdf_header`): a
file that is not NetCDF (an error page, a GRIB file) or whose header records more bytes than
it holds (truncated) is refused by name, with the fix, from a few small reads. Apart from
the decoding in :mod:`pipeline.sources.files`, which it guards."""

from __future__ import annotations

import warnings
from pathlib import Path

from pipeline.errors import InputError

NETCDF_CLASSIC = (b"CDF\x01", b"CDF\x02", b"CDF\x05")
"""The first bytes of a NetCDF 3 file (classic, 64-bit offset, 64-bit data)."""
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
"""The first bytes of an HDF5 superblock (a NetCDF-4 file), at byte 0, 512, 1024, ..."""


def check_netcdf_header(path: Path) -> None:
    """Refuse a file that is not NetCDF (an error page, a GRIB file) or whose NetCDF-4
    superblock records more bytes than the file holds (truncated), naming the file, what
    was found and the fix. Cost: a few small reads."""
    size = path.stat().st_size
    with path.open("rb") as f:
        head = first = f.read(8)
        if head[:4] in NETCDF_CLASSIC:
            _check_classic_size(path, head[:4])
            return
        offset = 0
        while head != HDF5_SIGNATURE:
            offset = 512 if offset == 0 else 2 * offset
            if offset + 8 > size:
                raise InputError(
                    f"{path}: is not a NetCDF file (starts with {first[:4]!r}); check "
                    "that it was downloaded as NetCDF, not as GRIB or an error page"
                )
            f.seek(offset)
            head = f.read(8)
        superblock = f.read(64)
    expected = _hdf5_end_of_file(superblock)
    if expected is not None and offset + expected > size:
        raise InputError(
            f"{path}: cannot be read as NetCDF: {size} bytes where its header records "
            f"{offset + expected} (corrupt or truncated?); download the file again"
        )


def _check_classic_size(path: Path, magic: bytes) -> None:
    """Refuse a NetCDF 3 file whose data end before what its header records: netCDF4
    reads such a file without complaint (the missing values come back as fill or garbage,
    and the coordinates make no sense). scipy maps the variables onto the file without
    reading them and fails on the short ones. The 64-bit-data format (CDF-5), which scipy
    does not read, is left to netCDF4."""
    if magic == b"CDF\x05":
        return
    import scipy.io  # here, not at the top: 0.27-0.30 s of every command's start (-X importtime)

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # arrays still mapped on close
            scipy.io.netcdf_file(path, mmap=True).close()
    except ValueError as err:
        raise InputError(
            f"{path}: cannot be read as NetCDF: its variables end past the end of the file "
            f"({err}) (corrupt or truncated?); download the file again"
        ) from err


def _hdf5_end_of_file(superblock: bytes) -> int | None:
    """The end-of-file address of an HDF5 superblock (the bytes after its signature);
    None for a version this does not know or too short a read."""
    version = superblock[0] if superblock else None
    if version in (0, 1):
        size_of_offsets, at = superblock[5], 16 if version == 0 else 20
        at += 2 * size_of_offsets  # after the base and free-space addresses
    elif version in (2, 3):
        size_of_offsets, at = superblock[1], 4 + 2 * superblock[1]
    else:
        return None
    field = superblock[at : at + size_of_offsets]
    if size_of_offsets not in (2, 4, 8) or len(field) < size_of_offsets:
        return None
    return int.from_bytes(field, "little")
