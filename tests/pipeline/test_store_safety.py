"""Safety of the stores: ``--overwrite`` replaces only a wxens analysis store, and
credentials in a source URL never reach a store's attributes, a log or an error."""

from __future__ import annotations

import logging
import warnings

import numpy as np
import pandas as pd
import pytest
import xarray as xr
import zarr

from flows.cli import main
from pipeline.errors import InputError, StoreError
from pipeline.forecast_store import ForecastProvenance, complete_init_times, write_forecast
from pipeline.redact import redact
from pipeline.sources import resolve_source
from pipeline.sources.files import ZarrSource
from pipeline.store import ingest, open_store
from pipeline.transaction import lock_path, open_dataset, read_attrs

SOURCE = "synthetic:n_lat=5,n_lon=4,n_times=3,levels=500/850"


def listing(root) -> dict[str, bytes]:
    """Every file under ``root`` with its bytes (to prove nothing was touched)."""
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def foreign_folder(path):
    path.mkdir()
    (path / "notes.txt").write_text("my thesis")
    (path / "sub").mkdir()
    (path / "sub" / "data.csv").write_text("1,2,3")
    return path


def regular_file(path):
    path.write_text("not a store")
    return path


def foreign_zarr(path):
    zarr.open_group(str(path), mode="w", zarr_format=3).attrs["title"] = "someone else's"
    return path


def forecast_store(path):
    times = pd.DatetimeIndex(["2021-01-01"])
    ds = xr.Dataset(
        {
            "t2m": (
                ("init_time", "member", "lead_time", "latitude", "longitude"),
                np.zeros((1, 2, 1, 2, 2)),
            )
        },
        coords={
            "init_time": times,
            "member": [0, 1],
            "lead_time": pd.to_timedelta(["6h"]),
            "latitude": [50.0, 51.0],
            "longitude": [0.0, 1.0],
        },
    )
    write_forecast(path, ds, ForecastProvenance("test", "0" * 8, "euler", 1, 0))
    return path


def test_a_foreign_zarr_store_read_as_analyses_says_to_ingest_it(tmp_path, capsys):
    """``wxens info wb2.zarr`` (or ``--truth`` of it) said only "a Zarr store, but not a
    wxens analysis store", without the way on that a GRIB or NetCDF file is given."""
    path = foreign_zarr(tmp_path / "wb2.zarr")
    with pytest.raises(StoreError, match=r"wb2\.zarr: a Zarr store, but not a wxens analysis"):
        open_store(path)
    assert main(["info", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"`wxens ingest {path} --store STORE.zarr`" in err
    with warnings.catch_warnings(record=True) as caught:  # and no xarray warning before it
        warnings.simplefilter("always")
        assert main(["info", str(path)]) == 2
    assert not [w for w in caught if "consolidated" in str(w.message)], caught


@pytest.mark.parametrize(
    ("make", "what"),
    [
        (foreign_folder, "a folder of 2 entries that is not a Zarr v3 store"),
        (regular_file, "a regular file"),
        (forecast_store, "a wxens forecast store"),
        (foreign_zarr, "a Zarr store"),
    ],
    ids=["folder", "file", "forecast-store", "foreign-zarr"],
)
@pytest.mark.parametrize("overwrite", [True, False], ids=["overwrite", "no-overwrite"])
def test_ingest_refuses_what_is_not_an_analysis_store(tmp_path, make, what, overwrite):
    path = make(tmp_path / "target")
    before = listing(tmp_path)
    with pytest.raises(InputError) as err:
        ingest(SOURCE, path, overwrite=overwrite, progress=False)
    assert str(path) in str(err.value) and what in str(err.value)
    assert listing(tmp_path) == before, "nothing deleted, nothing written"
    left = sorted(p.name for p in tmp_path.iterdir() if p.name != lock_path(path).name)
    assert left == ["target"], "no stray .ingest-tmp"


def test_overwrite_refuses_a_symbolic_link(tmp_path):
    real = tmp_path / "real.zarr"
    ingest(SOURCE, real, progress=False)
    link = tmp_path / "link.zarr"
    link.symlink_to(real)
    with pytest.raises(InputError, match="symbolic link") as err:
        ingest(SOURCE, link, overwrite=True, progress=False)
    # It said "is a symbolic link, not a wxens analysis store", though the link led to one,
    # and named no way to replace that store: it names the target to give instead.
    assert f"symbolic link to {real}, an analysis store" in str(err.value)
    assert f"--store {real} --overwrite" in str(err.value)
    assert open_store(real).dataset.sizes["time"] == 3
    left = sorted(p.name for p in tmp_path.iterdir() if p.name != lock_path(real).name)
    assert left == ["link.zarr", "real.zarr"]


def test_overwrite_refuses_a_store_it_cannot_delete(tmp_path, monkeypatch):
    # A store made read-only (chmod -R a-w, its folder writable) was renamed aside and
    # replaced, the old copy left as NAME.replaced-tmp without a word; the next
    # --overwrite built a whole new store, then crashed with a traceback (ENOTEMPTY) and
    # left it behind as NAME.ingest-tmp. Root writes anyway: emulate a user's permissions.
    import os
    import stat

    real_access = os.access

    def access(path, mode, **kw):
        if os.geteuid() == 0 and mode & os.W_OK:
            return bool(os.stat(path).st_mode & stat.S_IWUSR)
        return real_access(path, mode, **kw)

    monkeypatch.setattr(os, "access", access)
    path = tmp_path / "s.zarr"
    ingest(SOURCE, path, progress=False)
    leftover = tmp_path / "s.zarr.replaced-tmp"
    for protected in (path, leftover):
        if protected == leftover:
            path.chmod(0o755)
            leftover.mkdir()
            (leftover / "chunks").mkdir()
        protected.chmod(0o555)
        try:
            before = listing(tmp_path)
            with pytest.raises(InputError, match="cannot be deleted") as err:
                ingest(SOURCE.replace("n_lat=5", "n_lat=4"), path, overwrite=True, progress=False)
            assert str(protected) in str(err.value)
            assert listing(tmp_path) == before, "nothing built aside, nothing moved"
            assert open_store(path).dataset.sizes["latitude"] == 5
        finally:
            protected.chmod(0o755)


def test_empty_folder_becomes_a_store_and_analysis_store_is_replaced(tmp_path):
    path = tmp_path / "s.zarr"
    path.mkdir()
    ingest(SOURCE, path, progress=False)
    assert open_store(path).dataset.sizes["time"] == 3
    ingest(SOURCE.replace("n_lat=5", "n_lat=4"), path, overwrite=True, progress=False)
    assert open_store(path).dataset.sizes["latitude"] == 4


def test_cli_overwrite_of_a_foreign_folder_deletes_nothing(tmp_path, capsys):
    path = foreign_folder(tmp_path / "thesis")
    before = listing(tmp_path)
    code = main(["ingest", SOURCE, "--store", str(path), "--overwrite", "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert str(path) in err and "not a wxens analysis store" in err
    assert listing(tmp_path) == before


def test_forecast_refuses_an_analysis_store_or_a_file(tmp_path):
    analysis = tmp_path / "analysis.zarr"
    ingest(SOURCE, analysis, progress=False)
    before = listing(analysis)
    with pytest.raises(StoreError, match="not a wxens forecast store"):
        forecast_store(analysis)
    # what a forecast to it asks first (which initial times are done), in plain words
    with pytest.raises(StoreError, match="an analysis store, or another tool.s.*another store"):
        complete_init_times(analysis)
    assert listing(analysis) == before
    (tmp_path / "file").write_text("x")
    with pytest.raises(StoreError, match="regular file"):
        forecast_store(tmp_path / "file")


# --- credentials ---------------------------------------------------------------------

SECRETS = ("AKIAEXAMPLE", "s3cr3tPW", "tok123", "sigXYZ", "amzsig999", "sessTOK")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("s3://AKIAEXAMPLE:s3cr3tPW@bucket/era5.zarr", "s3://***@bucket/era5.zarr"),
        ("https://user:s3cr3tPW@host/a.zarr", "https://***@host/a.zarr"),
        ("https://host/a.zarr?token=tok123", "https://host/a.zarr?token=***"),
        ("gs://b/a.zarr?x=1&ACCESS_KEY=tok123&y=2", "gs://b/a.zarr?x=1&ACCESS_KEY=***&y=2"),
        (
            "https://h/a.zarr?X-Amz-Signature=amzsig999&X-Amz-Security-Token=sessTOK&v=1",
            "https://h/a.zarr?X-Amz-Signature=***&X-Amz-Security-Token=***&v=1",
        ),
        ("az://c/a.zarr?sv=2020&sig=sigXYZ", "az://c/a.zarr?sv=2020&sig=***"),
        (
            "https://b.s3.amazonaws.com/a.zarr?AWSAccessKeyId=AKIAEXAMPLE&Expires=1&Signature=x",
            "https://b.s3.amazonaws.com/a.zarr?AWSAccessKeyId=***&Expires=1&Signature=***",
        ),
        ("error at 'https://u:s3cr3tPW@h/x' (404)", "error at 'https://***@h/x' (404)"),
        ("/data/era5 [v2].grib", "/data/era5 [v2].grib"),
        ("synthetic:n_lat=3,seed=1", "synthetic:n_lat=3,seed=1"),
        ("user@example.org wrote a.nc", "user@example.org wrote a.nc"),
    ],
)
def test_redact(text, expected):
    assert redact(text) == expected
    assert redact(redact(text)) == expected, "idempotent"


@pytest.mark.parametrize(
    "url",
    [
        "https://AKIAEXAMPLE:s3cr3tPW@127.0.0.1:9/era5.zarr",
        "https://127.0.0.1:9/era5.zarr?token=tok123&X-Amz-Security-Token=sessTOK",
        "memory://AKIAEXAMPLE:s3cr3tPW@nowhere/era5.zarr?sig=sigXYZ",
    ],
)
def test_source_urls_with_credentials_never_show_them(url, caplog):
    caplog.set_level(logging.DEBUG)
    source = resolve_source(url)
    assert isinstance(source, ZarrSource)
    assert not any(s in source.description for s in SECRETS)
    with pytest.raises(InputError) as err:
        ingest(url, "unused.zarr", progress=False)
    message = str(err.value)
    assert "cannot be opened as a Zarr store" in message and "***" in message
    assert not any(s in message for s in SECRETS), message
    # wxens's own log lines at any level, and every library's at INFO and above (fsspec's
    # DEBUG lines quote the path it is asked for; they are off unless a user turns them on)
    shown = [
        r.getMessage()
        for r in caplog.records
        if r.levelno >= logging.INFO or r.name.split(".")[0] in ("pipeline", "flows")
    ]
    assert not any(s in line for line in shown for s in SECRETS)


def test_store_attributes_never_hold_credentials(tmp_path):
    """A source whose spec carries credentials (a local store opened through a URL-like
    spec) is recorded in ``source``/``history`` with the secret masked."""
    local = tmp_path / "src.zarr"
    ingest(SOURCE, local, progress=False)
    spec = f"file://AKIAEXAMPLE:s3cr3tPW@{local}?token=tok123"
    source = ZarrSource(spec)
    source.open = lambda: open_dataset(local)  # no fsspec credentials
    path = tmp_path / "copy.zarr"
    ingest(source, path, progress=False)
    attrs = read_attrs(path)
    recorded = attrs["source"] + attrs["history"]
    assert "***" in recorded and not any(s in recorded for s in SECRETS), recorded


def test_unclaimed_spec_error_hides_credentials():
    with pytest.raises(InputError) as err:
        resolve_source("ftp://AKIAEXAMPLE:s3cr3tPW@host/data.bin?token=tok123")
    assert not any(s in str(err.value) for s in SECRETS)


def test_a_full_disk_under_icechunk_is_one_line_and_a_rerun_completes(
    tmp_path, capsys, monkeypatch
):
    """Icechunk reports a full disk as an IcechunkError ending in '(os error 28)': a
    60-line traceback and exit 1. It is the OSError now, which the CLI prints as one line
    with the fix (exit 2); the store says it is incomplete, and a rerun completes it."""
    import icechunk

    import pipeline.ingest_blocks

    def full(*args, **kwargs):
        raise icechunk.IcechunkError("object store error: No space left on device (os error 28)")

    store, spec = tmp_path / "s.zarr", "synthetic:n_lat=4,n_lon=5,n_times=6"
    with monkeypatch.context() as patched:
        patched.setattr(pipeline.ingest_blocks, "write_region", full)
        assert main(["ingest", spec, "--store", str(store), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert f"[Errno 28] No space left on device: '{store}'; the disk is full" in err
    assert main(["ingest", spec, "--store", str(store), "--no-progress"]) == 0
    assert open_store(store).dataset.sizes["time"] == 6


def test_earlier_times_are_refused_with_advice_that_keeps_the_stores_times(tmp_path, caplog):
    """Times before a store's period are refused with '--overwrite to rebuild it'; that
    advice taken with the same input replaced a store of March 10-14 by March 5-9 alone
    and said nothing of the five days it dropped."""
    late = "synthetic:n_lat=5,n_lon=4,n_times=4,start=2000-01-02"
    early = "synthetic:n_lat=5,n_lon=4,n_times=5,start=2000-01-01"
    path = tmp_path / "s.zarr"
    ingest(late, path, progress=False)
    with pytest.raises(StoreError) as err:
        ingest(early, path, progress=False)
    assert "overwrite=True (--overwrite) with inputs of every time it is to hold" in str(err.value)
    with caplog.at_level(logging.WARNING):
        ingest(early, path, overwrite=True, progress=False)
    assert "drops 3 of the 4 time(s) it held (2000-01-02T06:00 to 2000-01-02T18:00)" in (
        caplog.text
    )


@pytest.mark.filterwarnings("ignore:Consolidated metadata")  # zarr's, on consolidating
@pytest.mark.parametrize("overwrite", [False, True])
def test_a_plain_analysis_store_of_an_older_version_is_named_with_its_fix(
    tmp_path, capsys, overwrite
):
    """An analysis store written before stores were transactional (plain Zarr, as an export
    is) is a wxens analysis store that ingest no longer writes: the refusal says so, and how
    to carry it into a store it writes, rather than 'not a wxens analysis store'."""
    from pipeline.store_export import EXPORT_ATTR, export

    made = tmp_path / "made.zarr"
    ingest(SOURCE, made, progress=False)
    plain = export(made, tmp_path / "old.zarr", progress=False)
    del zarr.open_group(plain, mode="r+", use_consolidated=False).attrs[EXPORT_ATTR]
    zarr.consolidate_metadata(plain)  # an export without its mark, as an older wxens wrote
    before = listing(plain)
    args = ["ingest", SOURCE, "--store", str(plain), "--no-progress"]
    code = main(args + (["--overwrite"] if overwrite else []))
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert "not a wxens analysis store" not in err
    assert "analysis store of an older wxens" in err
    fix = "give another --store" if overwrite else f"wxens ingest {plain} --store NEW.zarr"
    assert fix in err
    assert listing(plain) == before


@pytest.mark.parametrize("overwrite", [False, True])
def test_an_export_is_named_as_one_with_the_store_it_came_from(tmp_path, overwrite, capsys, caplog):
    """`wxens ingest ... --store C` on C, a `wxens export` copy, said C was "an analysis
    store of an older wxens": the user made it last week; it is named as an export, and
    the fix names the store it was exported from."""
    from pipeline.store_export import export

    made = ingest(SOURCE, tmp_path / "made.zarr", progress=False).path
    copy = export(made, tmp_path / "copy.zarr", progress=False)
    before = listing(copy)
    argv = ["ingest", SOURCE, "--store", str(copy), "--no-progress"]
    code = main(argv + (["--overwrite"] if overwrite else []))
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err + caplog.text
    assert "older wxens" not in err + caplog.text
    assert f"{copy} is a plain-Zarr export (wxens export) of the analysis store {made}" in err
    fix = "give another --store" if overwrite else f"ingest into {made}"
    assert fix in err
    assert listing(copy) == before
