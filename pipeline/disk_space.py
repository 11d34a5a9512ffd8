"""Room on disk for an ingest, checked before its data are written (once it has planned
which times to write), so that an ingest of hours that will fill its file system says so
at its start rather than at its end.

The bound is the uncompressed size of what the ingest writes (times x grid x variables x
the dtype's bytes). Zstandard writes less (0.63 of it on the shipped ERA5 sample), and
noise-like fields hardly compress at all, so a store may fit in less room than the bound
or need all of it: an ingest beyond the free space is warned of, not refused. A full disk
stops it cleanly at its last committed block, and the same command resumes it.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import xarray as xr

from pipeline.analysis_store import bytes_per_time as variable_bytes_per_time

log = logging.getLogger(__name__)


def bytes_per_time(ds: xr.Dataset) -> int:
    """Uncompressed bytes one time of ``ds`` takes, every variable and level."""
    return sum(variable_bytes_per_time(da) for da in ds.data_vars.values())


def warn_if_short_of_room(ds: xr.Dataset, times: int, path: Path) -> None:
    """Warn when an ingest of ``times`` times of ``ds`` into ``path`` writes, uncompressed,
    more than the free space of the file system that is to hold ``path``."""
    need = times * bytes_per_time(ds)
    where = path.absolute()
    while not where.exists() and where != where.parent:
        where = where.parent
    free = shutil.disk_usage(where).free
    if need > free:
        log.warning(
            "%s: this ingest writes up to %s (%d times of %s, uncompressed; compressed often "
            "about 0.6 of it), and the file system of %s has %s free: it may fill the disk "
            "(then it stops at its last committed block, and the same command resumes it "
            "once there is room); free some space, give a store= (--store) on a larger disk, or "
            "ingest a shorter period per run (time= (--start/--end): a store grows at its end)",
            path, size_text(need), times, size_text(bytes_per_time(ds)), where, size_text(free),
        )  # fmt: skip


def size_text(n: int) -> str:
    """``n`` bytes as a person reads them: ``812 bytes``, ``3.1 GiB``."""
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.3g} {unit}" if unit != "bytes" else f"{n} bytes"
        n /= 1024
    raise AssertionError
