"""Input files as a person names them: a name with glob characters that exists is that
file; a NetCDF file that is not one, truncated or corrupt is named as such (one line,
exit 2), never as a missing optional module."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from flows.cli import main
from pipeline.sources.files import expand_paths
from pipeline.store import open_store


@pytest.fixture(scope="module")
def netcdf(tmp_path_factory):
    """A small NetCDF-4 t2m file, compressed: most of its bytes are data chunks."""
    path = tmp_path_factory.mktemp("netcdf") / "good.nc"
    rng = np.random.default_rng(0)
    xr.Dataset(
        {
            "t2m": (
                ("time", "latitude", "longitude"),
                (280 + rng.random((12, 30, 40))).astype("f4"),
                {"units": "K"},
            )
        },
        coords={
            "time": pd.date_range("2000-01-01", periods=12, freq="6h"),
            "latitude": np.linspace(60, 50, 30),
            "longitude": np.linspace(-10, 9.5, 40),
        },
    ).to_netcdf(path, engine="netcdf4", encoding={"t2m": {"zlib": True}})
    return path


def refused(capsys, argv: list[str], *names: str) -> str:
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "Traceback" not in err, err
    for name in names:
        assert name in err, (name, err)
    return err


@pytest.mark.parametrize("name", ["era5 [v2].nc", "era5*.nc", "t2m?.nc"])
def test_a_file_that_exists_is_taken_literally_even_with_glob_characters(
    netcdf, tmp_path, capsys, name
):
    path = tmp_path / name
    path.write_bytes(netcdf.read_bytes())
    (tmp_path / "era5v.nc").write_bytes(netcdf.read_bytes())  # what `[v2]` would match
    assert expand_paths(str(path), (".nc",)) == [path]
    store = tmp_path / "s.zarr"
    assert main(["ingest", str(path), "--store", str(store), "--no-progress"]) == 0
    assert open_store(store).dataset.sizes["time"] == 12
    # a pattern that names no file is still a pattern
    assert expand_paths(str(tmp_path / "era5[v].nc"), (".nc",)) == [tmp_path / "era5v.nc"]


def ingest_argv(path, tmp_path) -> list[str]:
    return ["ingest", str(path), "--store", str(tmp_path / "s.zarr"), "--no-progress"]


def test_a_truncated_netcdf_file_is_named_as_such(netcdf, tmp_path, capsys):
    path = tmp_path / "cut.nc"
    path.write_bytes(netcdf.read_bytes()[:3000])
    err = refused(
        capsys, ingest_argv(path, tmp_path), f"{path}: cannot be read as NetCDF: 3000 bytes"
    )
    assert "(corrupt or truncated?)" in err and "h5py" not in err
    assert not (tmp_path / "s.zarr").exists()


@pytest.mark.parametrize("kept", [0.5, 0.99])
@pytest.mark.parametrize("format", ["NETCDF3_CLASSIC", "NETCDF3_64BIT"])
def test_a_truncated_netcdf3_file_is_named_as_such(netcdf, tmp_path, capsys, format, kept):
    """netCDF4 opens a cut NetCDF 3 file without complaint; its garbage coordinates were
    reported as 'duplicate latitude values'."""
    whole = tmp_path / "whole.nc"
    xr.open_dataset(netcdf).to_netcdf(whole, format=format)
    path = tmp_path / "cut.nc"
    body = whole.read_bytes()
    path.write_bytes(body[: int(len(body) * kept)])
    err = refused(capsys, ingest_argv(path, tmp_path), f"{path}: cannot be read as NetCDF: its")
    assert "(corrupt or truncated?)" in err and "latitude" not in err
    assert not (tmp_path / "s.zarr").exists()
    assert main(ingest_argv(whole, tmp_path)) == 0, "the whole file still ingests"


@pytest.mark.parametrize("start", [60, 200, 1000])
def test_a_netcdf_file_with_a_corrupt_header_is_named_as_such(netcdf, tmp_path, capsys, start):
    body = bytearray(netcdf.read_bytes())
    body[start : start + 400] = b"\xff" * 400
    path = tmp_path / "bad.nc"
    path.write_bytes(bytes(body))
    err = refused(capsys, ingest_argv(path, tmp_path), f"{path}: cannot be read as NetCDF (")
    assert "(corrupt or truncated?)" in err and "h5py" not in err


@pytest.mark.parametrize(
    ("head", "shown"), [(b"<html><body>Not found", "b'<htm'"), (b"GRIB\0\0\0\2", "b'GRIB'")]
)
def test_a_file_that_is_not_netcdf_is_named_as_such(tmp_path, capsys, head, shown):
    path = tmp_path / "download.nc"
    path.write_bytes(head + b"\0" * 2000)
    refused(capsys, ingest_argv(path, tmp_path), f"{path}: is not a NetCDF file", shown)


def test_a_netcdf_file_with_a_corrupt_body_is_named_when_read(netcdf, tmp_path, capsys):
    # the header opens; a compressed chunk of t2m is garbage: found only when read
    body = bytearray(netcdf.read_bytes())
    assert len(body) > 30_000  # the middle is data
    body[len(body) // 2 : len(body) // 2 + 300] = b"\xff" * 300
    path = tmp_path / "body.nc"
    path.write_bytes(bytes(body))
    err = refused(capsys, ingest_argv(path, tmp_path), f"{path}: cannot be read as NetCDF (")
    assert "(corrupt or truncated?)" in err and "h5py" not in err


def test_a_read_error_of_a_netcdf_file_keeps_its_cause(netcdf, monkeypatch):
    import errno

    from pipeline.errors import InputError, is_transient
    from pipeline.sources.files import NetcdfSource

    ds = NetcdfSource(str(netcdf)).open()
    np.testing.assert_array_equal(ds.t2m.values, xr.open_dataset(netcdf).t2m.values)

    def dropped_mount(self, key):
        raise OSError(errno.EIO, "Input/output error")

    import xarray.backends.netCDF4_ as backend

    monkeypatch.setattr(backend.NetCDF4ArrayWrapper, "__getitem__", dropped_mount)
    with pytest.raises(InputError, match="cannot be read as NetCDF") as caught:
        NetcdfSource(str(netcdf)).open().t2m.load()
    assert is_transient(caught.value)
