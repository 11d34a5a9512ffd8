"""Edge cases of ``wxens export`` and ``wxens compact``: a store just created with nothing
committed, an output path below a file, and a reader that opened the store before a
compaction."""

from __future__ import annotations

import icechunk

from flows.cli import main


def test_export_of_a_store_with_nothing_committed_says_so(tmp_path, capsys):
    """A store whose creation is in progress (or was interrupted) holds no root group:
    ``wxens export`` ended in zarr's GroupNotFoundError traceback, where ``wxens info``
    names the state and the fix."""
    path = tmp_path / "new.zarr"
    icechunk.Repository.create(icechunk.local_filesystem_storage(str(path)))
    assert main(["export", str(path), "--out", str(tmp_path / "x.zarr"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "new.zarr: an empty store" in err and "Traceback" not in err
    assert not (tmp_path / "x.zarr").exists()

