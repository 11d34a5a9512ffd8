"""Output files written whole or not at all, and a refused write names its file."""

from __future__ import annotations

import errno
import resource

import pytest

from verification.output import atomic_output


def test_a_write_past_a_file_size_limit_names_the_file_and_leaves_the_old_one(tmp_path):
    """`wxens verify --report r.html` past a file-size limit (a full disk alike) said
    '[Errno 27] File too large' without naming the file (a write's OSError has none)."""
    path = tmp_path / "report.html"
    path.write_text("old")
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (4096, hard))
    try:
        with pytest.raises(OSError) as err, atomic_output(path) as tmp:
            tmp.write_text("x" * 100_000)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    assert err.value.errno == errno.EFBIG and str(path) in str(err.value)
    assert path.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.html"]


def test_scores_past_a_file_size_limit_are_an_os_error_naming_the_file(tmp_path):
    """`wxens verify --out s.nc` under `ulimit -f 50` ended in a traceback, netCDF's
    'RuntimeError: NetCDF: HDF error', where the CLI prints the file system's error."""
    import numpy as np
    import xarray as xr

    from verification.output import write_scores

    tree = xr.DataTree(xr.Dataset({"crps": ("x", np.random.default_rng(0).random(50_000))}))
    path = tmp_path / "scores.nc"
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (50 * 1024, hard))
    try:
        with pytest.raises(OSError) as err:
            write_scores(tree, path)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    assert err.value.errno == errno.EFBIG and str(path) in str(err.value)
    assert list(tmp_path.iterdir()) == []


KILLED_WRITE = """
import os, sys
from verification.output import atomic_output
with atomic_output(sys.argv[1]) as tmp:
    tmp.write_text("half")
    os._exit(9)  # kill -9 mid-write: no finally, no cleanup
"""


def test_a_write_killed_mid_way_leaves_no_temporary_after_the_next_write(tmp_path):
    """A `wxens verify --out s.nc` killed while writing left its hidden temporary
    (``.s.nc.XXXXXXXX.nc``, a whole scores file's worth) for good: every killed run leaked
    one more. The next write of the same file removes it once it is an hour old (a younger
    one may be a live writer's); another file's is kept."""
    import os
    import subprocess
    import sys

    path, other = tmp_path / "scores.nc", tmp_path / "other.nc"
    for target in (path, path, other):
        done = subprocess.run([sys.executable, "-c", KILLED_WRITE, str(target)], check=False)
        assert done.returncode == 9
    left = list(tmp_path.glob(".*.nc.*.nc"))
    assert len(left) == 3
    for stale in left:
        os.utime(stale, (0, 0))  # unwritten since 1970: long dead
    with atomic_output(path) as tmp:
        tmp.write_text("whole")
    assert path.read_text() == "whole"
    assert sorted(p.name for p in tmp_path.iterdir() if "scores" in p.name) == ["scores.nc"]
    assert len(list(tmp_path.glob(".other.nc.*.nc"))) == 1


def test_a_live_writers_temporary_is_kept(tmp_path):
    """Two writers of one file at once (two `wxens tune` of one checkpoint) each keep their
    temporary until they rename it: the cleanup removes only those of dead writers."""
    path = tmp_path / "k.correction.json"
    with atomic_output(path) as first:
        first.write_text("first")
        with atomic_output(path) as second:
            second.write_text("second")
        assert first.read_text() == "first"
    assert path.read_text() == "first"
