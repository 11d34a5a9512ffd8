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
