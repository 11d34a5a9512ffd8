"""Edge cases of ``wxens export`` and ``wxens compact``: a store just created with nothing
committed, an output path below a file, and a reader that opened the store before a
compaction."""

from __future__ import annotations

import icechunk

from flows.cli import main
from pipeline.forecast_store import write_forecast
from tests.pipeline.test_forecast_store import PROVENANCE, ensemble


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


def test_a_store_path_below_a_file_is_refused_in_one_line(tmp_path, capsys):
    """``--out afile/x.zarr`` where ``afile`` is a file ended in a FileExistsError (or
    NotADirectoryError) traceback from making the lock's folder, in export, baseline,
    ingest and forecast alike; ``wxens verify --out`` already said it in one line."""
    store = tmp_path / "f.zarr"
    write_forecast(store, ensemble(["2019-03-22T00"], 1.0), PROVENANCE)
    (tmp_path / "afile").write_text("")
    for out in ("afile/x.zarr", "afile/sub/x.zarr"):
        target = tmp_path / out
        assert main(["export", str(store), "--out", str(target), "--no-progress"]) == 2
        err = capsys.readouterr().err
        assert f"{tmp_path / 'afile'} is a file, not a folder" in err, err

