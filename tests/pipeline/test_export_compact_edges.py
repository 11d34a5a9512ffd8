"""Edge cases of ``wxens export`` and ``wxens compact``: a store just created with nothing
committed, an output path below a file, and a reader that opened the store before a
compaction."""

from __future__ import annotations

import os
import time
from datetime import timedelta

import icechunk
import numpy as np
import pytest
import xarray as xr

from flows.cli import main
from pipeline.forecast_store import open_forecast, write_forecast
from pipeline.store_export import export
from pipeline.transaction import compact
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


def _age(path, seconds: float) -> None:
    """Make every file under ``path`` ``seconds`` older (a store last written long ago)."""
    then = time.time() - seconds
    for p in path.rglob("*"):
        os.utime(p, (then, then))


def test_compact_spares_the_commit_a_reader_opened_moments_ago(tmp_path):
    """A notebook opens a store last written an hour ago; a scheduled forecast appends to
    it and compacts it (``--keep 0h``). The commit the notebook opened was the store's last
    one a moment ago, but its files were an hour old, older than the ten-minute grace
    meant for such readers: they were deleted, and the notebook's next read failed with
    "manifests/... not found". A commit that was the last one within the grace stays."""
    path = tmp_path / "f.zarr"
    write_forecast(path, ensemble(["2019-03-22T00"], 1.0), PROVENANCE)
    _age(path, 3600)
    opened = open_forecast(path)  # lazily: nothing read yet
    write_forecast(path, ensemble(["2019-03-23T00"], 2.0), PROVENANCE)
    done = compact(path, timedelta(0))
    assert done.commits_left == 3  # the reader's, the new last one and the empty first one
    assert done.commits_spared == 1  # the reader's: older than --keep 0h, kept for the grace
    xr.testing.assert_identical(
        opened.load(), open_forecast(path).sel(init_time=opened.init_time).load()
    )

    forgotten = compact(path, timedelta(0), grace=timedelta(0))  # later: it goes
    assert forgotten.commits_expired == 1 and forgotten.objects_deleted > 0
    assert forgotten.commits_spared == 0
    assert open_forecast(path).sizes["init_time"] == 2
    assert export(path, tmp_path / "plain.zarr", progress=False).is_dir()


def two_commits(path):
    """A forecast store of two initial times written in two commits (and its creation's)."""
    write_forecast(path, ensemble(["2019-03-22T00"], 1.0), PROVENANCE)
    write_forecast(path, ensemble(["2019-03-23T00"], 2.0), PROVENANCE)
    return path


def test_compact_says_why_it_kept_commits_older_than_keep(tmp_path, capsys):
    """``wxens compact STORE --keep 0h`` just after an ingest printed "0 commits older than
    0h forgotten, 3 left" and no reason: the ten-minute grace for readers is said only in
    ``--help``. The line now counts the commits it spared and says to compact again later."""
    path = two_commits(tmp_path / "f.zarr")
    assert main(["compact", str(path), "--keep", "0h"]) == 0
    out = capsys.readouterr().out
    assert "0 commits older than 0h forgotten, 3 left" in out, out
    assert "; 1 commit older than 0h kept: the store's last commit within the last 10 " in out
    assert "compact again later" in out
    assert main(["compact", str(path), "--keep", "7d"]) == 0
    assert "older than 7d kept" not in capsys.readouterr().out  # none older: none spared


def test_compact_says_the_grace_it_keeps(tmp_path, capsys, monkeypatch):
    """The help and the line said "10 minutes" as written, not the grace compact keeps
    (:data:`pipeline.grace.GC_GRACE`): another grace is said, and kept, as it is."""
    monkeypatch.setattr("pipeline.grace.GC_GRACE", timedelta(seconds=90))
    with pytest.raises(SystemExit):
        main(["compact", "--help"])
    said = " ".join(capsys.readouterr().out.split())
    assert "files younger than 90 seconds stay" in said and "within those 90 seconds" in said
    assert "10 minutes" not in said
    path = two_commits(tmp_path / "f.zarr")
    assert main(["compact", str(path), "--keep", "0h"]) == 0
    out = capsys.readouterr().out
    assert "kept: the store's last commit within the last 90 seconds (a reader" in out, out
    monkeypatch.setattr("pipeline.grace.GC_GRACE", timedelta(0))  # the grace it says, kept
    assert main(["compact", str(path), "--keep", "0h"]) == 0
    assert "1 commit older than 0h forgotten, 2 left" in capsys.readouterr().out


def test_export_into_the_store_itself_is_refused(tmp_path, capsys):
    """``--out STORE/plain.zarr`` (a slip for ``STORE-plain.zarr``) wrote the copy into the
    transactional store's own folder, among its chunk files."""
    store = tmp_path / "f.zarr"
    write_forecast(store, ensemble(["2019-03-22T00"], 1.0), PROVENANCE)
    inside = store / "chunks" / "plain.zarr"
    assert main(["export", str(store), "--out", str(inside), "--no-progress"]) == 2
    assert "inside the store" in capsys.readouterr().err
    assert not inside.exists()


def _an_interrupted_append(tmp_path, monkeypatch):
    """The store of the first 5 of 8 times, to which an append of 3 was killed after it
    grew the time axis (an ingest writing it now reads the same)."""
    import pipeline.store as store_module
    from pipeline.store import ingest
    from tests.pipeline.test_ingest import store_of_the_first_five

    _, store = store_of_the_first_five(tmp_path)

    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(store_module, "write_blocks", killed)
        try:
            ingest(tmp_path / "all.nc", store, progress=False)
        except KeyboardInterrupt:
            pass
    return store


def test_export_of_a_store_whose_append_has_not_finished_exports_what_readers_read(
    tmp_path, monkeypatch, caplog
):
    """``wxens export`` copied the unfinished commit: 8 times, 3 of them fill values a
    plain-Zarr tool takes for analyses, and a state open_store refused. It exports the
    last complete commit (the 5 times), with the readers' warning."""
    from pipeline.store import open_store

    store = _an_interrupted_append(tmp_path, monkeypatch)
    out = tmp_path / "plain.zarr"
    assert main(["export", str(store), "--out", str(out), "--no-progress"]) == 0
    assert "its last ingest has not finished" in caplog.text
    assert xr.open_zarr(out).sizes["time"] == 5
    xr.testing.assert_identical(open_store(out).statistics, open_store(store).statistics)


def test_compact_keeps_the_commit_readers_read_while_an_append_is_unfinished(
    tmp_path, monkeypatch, caplog
):
    """``wxens compact --keep 0h`` of a store whose append was killed forgot its last
    complete commit (once the grace had passed), so every reader was refused until the
    ingest was rerun. It keeps that commit, and readers still read the 5 times."""
    import pipeline.transaction as transaction
    from pipeline.store import open_store

    store = _an_interrupted_append(tmp_path, monkeypatch)
    monkeypatch.setitem(transaction.compact.__kwdefaults__, "grace", timedelta(0))
    caplog.set_level("INFO")
    assert main(["compact", str(store), "--keep", "0h"]) == 0
    assert "keeping the last complete commit" in caplog.text
    assert open_store(store).dataset.sizes["time"] == 5


def test_info_of_a_store_whose_append_is_unfinished_says_so_on_its_output(
    tmp_path, monkeypatch, capsys, caplog
):
    """``wxens info`` described the last complete commit (5 times) beside a 'committed' line
    naming the unfinished one, and only the warning on stderr told why. Its line and the
    warning said it in two wordings of their own ("an ingest has written 5 of the 8 times
    of the last commit (writing now, or interrupted: rerun it)"); they say it in one."""
    store = _an_interrupted_append(tmp_path, monkeypatch)
    capsys.readouterr()
    with caplog.at_level("WARNING", logger="pipeline.analysis_store"):
        assert main(["info", str(store)]) == 0
    out = capsys.readouterr().out
    assert "(5 times, step 6 h" in out
    said = (
        "5 of 8 times written: an ingest is writing it now or was interrupted; if none is "
        "running, rerun it"
    )
    assert f"\nunfinished {said}; above is the store as its readers read it, its last " in out
    assert f"its last ingest has not finished ({said}); reading the store as it" in caplog.text


def test_verify_against_a_store_whose_append_has_not_finished_warns_once(
    tmp_path, monkeypatch, caplog
):
    """``wxens verify`` opened the analysis store twice (its units, then the scores) and
    printed "its last ingest has not finished ..." twice for one store."""
    import numpy as np

    from pipeline.store import open_store

    store = _an_interrupted_append(tmp_path, monkeypatch)
    truth = open_store(store).dataset.load()
    caplog.clear()
    fields = truth["t2m"].isel(time=[0, 1]).values  # lead 6 h of the first two times
    rng = np.random.default_rng(0)
    t2m = fields[:, None, None] + rng.normal(0, 1, (2, 3, 1, *fields.shape[1:]))
    forecast = xr.Dataset(
        {"t2m": (("init_time", "member", "lead_time", "latitude", "longitude"), t2m)},
        coords={
            "init_time": truth.time.values[[0, 1]] - np.timedelta64(6, "h"),
            "member": np.arange(3),
            "lead_time": [np.timedelta64(6, "h")],
            "latitude": truth.latitude.values,
            "longitude": truth.longitude.values,
        },
    )
    forecast["t2m"].attrs["units"] = truth["t2m"].attrs.get("units", "")
    write_forecast(tmp_path / "f.zarr", forecast, PROVENANCE)
    out = tmp_path / "scores.nc"
    argv = ["verify", str(tmp_path / "f.zarr"), "--truth", str(store), "--out", str(out)]
    with caplog.at_level("WARNING"):
        assert main([*argv, "--no-progress", "--no-energy-score"]) == 0
    assert caplog.text.count("its last ingest has not finished") == 1, caplog.text


def test_baseline_from_a_store_whose_append_has_not_finished_warns_once(
    tmp_path, monkeypatch, caplog
):
    """``wxens baseline`` opened the analysis store twice (its step, then the draw) and
    printed "its last ingest has not finished ..." twice for one store."""
    store = _an_interrupted_append(tmp_path, monkeypatch)
    caplog.clear()
    argv = ["baseline", "persistence", "--store", str(store), "--train", "2021-01-01/2021-01-02"]
    argv += ["--init", "2021-01-01T12", "--lead", "6h", "--members", "2", "--no-progress"]
    with caplog.at_level("WARNING"):
        assert main([*argv, "--out", str(tmp_path / "b.zarr")]) == 0
    assert caplog.text.count("its last ingest has not finished") == 1, caplog.text


def test_bias_correct_against_a_store_whose_append_has_not_finished_warns_once(
    tmp_path, monkeypatch, caplog
):
    """``wxens bias-correct`` opened --truth twice (the correction, then its summary) and
    printed "its last ingest has not finished ..." twice for one store."""
    from pipeline.store import open_store

    store = _an_interrupted_append(tmp_path, monkeypatch)
    truth = open_store(store).dataset.load()
    inits = truth.time.values[:4]
    forecast = xr.Dataset(
        {"t2m": (("init_time", "member", "lead_time", "latitude", "longitude"),
                 truth["t2m"].values[1:5, None, None].repeat(2, axis=1) + 1.0)},
        coords={"init_time": inits, "member": [0, 1], "lead_time": [np.timedelta64(6, "h")],
                "latitude": truth.latitude.values, "longitude": truth.longitude.values},
    )  # fmt: skip
    forecast["t2m"].attrs["units"] = truth["t2m"].attrs.get("units", "")
    write_forecast(tmp_path / "f.zarr", forecast, PROVENANCE)
    caplog.clear()
    argv = ["bias-correct", str(tmp_path / "f.zarr"), "--truth", str(store), "--bias-weight"]
    with caplog.at_level("WARNING"):
        assert main([*argv, "0.5", "--out", str(tmp_path / "c.zarr")]) == 0
    assert caplog.text.count("its last ingest has not finished") == 1, caplog.text
